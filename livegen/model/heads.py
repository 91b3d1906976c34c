"""The critical path: the model's accompany heads and voice-by-voice sampling, in numpy.

`Heads` holds the model's head matrices (exported by the model file's `head_weights`, copied to
the CPU once at load) and runs accompany for one step: the context from the part known before
the step (`base`, computed by the recurrent net right after the previous step) plus the human
frame; then for each voice, in the model's order: logits, temperature, an additive bias (key
mask, ranges, leaps, density: built by the Accompanist), no unison doubling and no parallel
perfect fifths or octaves against the melody or a voice already chosen (both parts moving the
same way into the same perfect interval they left, measured from the pitches at the last step
where any part started a note), nucleus sampling with a given uniform draw, and the chosen
token folded into the context for the next voice.

Why numpy and not TorchScript: one step is ~100 tiny operations on vectors of 130-256 floats,
and there the per-operation overhead is what costs. Measured on this project's 2-core CPU: the
same step took ~240 us through TorchScript and ~70 us here, and the scripted version slowed
about threefold when called after a pause (cold caches). The recurrent update, the expensive
part, stays TorchScript on the model's device (`Stepper`), off the critical path.
`tests/test_sampler.py` checks these heads against the model file's own scripted methods.
"""


import numpy as np
import torch
from torch import Tensor, nn

from livegen.model.tokens import HOLD, PITCH0, REST, VOCAB

_P = np.arange(128)
_GAP = np.abs(_P[None, :] - _P[:, None]) % 12  # [q, p]
SAME_INTERVAL = np.stack([_GAP == 0, _GAP == 7])  # [octave|fifth][q] -> pitches p that way from q
ABOVE = _P[None, :] > _P[:, None]  # ABOVE[k][p]: p is higher than k
BELOW = _P[None, :] < _P[:, None]


class Heads:
    def __init__(self, weights: dict[str, np.ndarray], order: list[int]):
        self.ctx_human_rows = np.ascontiguousarray(weights["ctx_human"].T)  # [256, H]
        self.voice_w = np.ascontiguousarray(weights["voice_w"])  # [V, VOCAB, H]
        self.voice_b = np.ascontiguousarray(weights["voice_b"])  # [V, VOCAB]
        self.voice_cond = np.ascontiguousarray(weights["voice_cond"])  # [V * VOCAB, H]
        self.order = list(order)
        self.n = self.voice_w.shape[0]
        self._relu = np.empty(self.voice_w.shape[2], dtype=np.float32)

    def context(self, base: np.ndarray, human_idx: list[int]) -> np.ndarray:
        """The context of the step: `base` plus the human frame (active input indices)."""
        if not human_idx:
            return base.copy()
        return base + self.ctx_human_rows[human_idx].sum(axis=0)

    def logits(self, ctx: np.ndarray, k: int) -> np.ndarray:
        np.maximum(ctx, 0.0, out=self._relu)
        return self.voice_w[k] @ self._relu + self.voice_b[k]

    def sample(self, base: np.ndarray, human_idx: list[int], bias: np.ndarray, inv_temp: float,
               top_p: float, uniforms: list[float], sounding: list[int], allow_unison: bool,
               avoid_parallels: bool, prev: list[int], melody: int) -> list[int]:
        """Tokens for every voice. `sounding`: each voice's pitch now (-1 none); `prev`: the
        pitches of the melody then each voice at the last step where any part started a note;
        `melody`: its pitch now."""
        ctx = self.context(base, human_idx)
        tokens = [REST] * self.n
        current = list(sounding)  # each voice's pitch: as chosen this step, else as it sounds
        chosen = [False] * self.n
        for k in self.order:
            logits = self.logits(ctx, k) * inv_temp + bias[k]
            if not allow_unison:
                for j in range(self.n):
                    if j != k and current[j] >= 0:
                        logits[current[j] + PITCH0] = -np.inf
            if avoid_parallels and prev[k + 1] >= 0:
                pitch_logits = logits[PITCH0:]
                _no_parallels(pitch_logits, prev[k + 1], prev[0], melody)
                for j in range(self.n):
                    if chosen[j]:
                        _no_parallels(pitch_logits, prev[k + 1], prev[j + 1], current[j])
            token = top_p_sample(logits, top_p, uniforms[k])
            tokens[k] = token
            if token != HOLD:
                current[k] = token - PITCH0 if token >= PITCH0 else -1
            chosen[k] = True
            ctx += self.voice_cond[k * VOCAB + token]
        return tokens


def _no_parallels(pitch_logits: np.ndarray, was: int, other_was: int, other_now: int) -> None:
    """Forbid the moves of a voice (from `was`) that, with another part moving from
    `other_was` to `other_now`, make parallel fifths or octaves."""
    if other_was < 0 or other_now < 0 or other_now == other_was:
        return
    gap = abs(other_was - was) % 12
    if gap != 0 and gap != 7:
        return
    way = ABOVE[was] if other_now > other_was else BELOW[was]
    pitch_logits[SAME_INTERVAL[0 if gap == 0 else 1, other_now] & way] = -np.inf


def top_p_sample(logits: np.ndarray, top_p: float, u: float) -> int:
    """Nucleus sampling with a given uniform draw: deterministic for a seeded caller."""
    p = np.exp(logits - logits.max())
    order = np.argsort(-p, kind="stable")
    cum = np.cumsum(p[order])
    last = min(int(np.searchsorted(cum, top_p * cum[-1])), len(cum) - 1)  # crosses top_p
    pick = int(np.searchsorted(cum[: last + 1], u * cum[last]))
    return int(order[min(pick, last)])


class Stepper(nn.Module):
    """The recurrent side, scripted on the model's device: after the notes are out, the state
    past the step, lead's logits for the next step and the next step's context base."""

    def __init__(self, net: torch.jit.ScriptModule):
        super().__init__()
        self.net = net

    def forward(self, state: Tensor, human: Tensor, machine: Tensor, pos: int,
                next_pos: int) -> tuple[Tensor, Tensor, Tensor]:
        state = self.net.advance(state, human, machine, pos)
        return state, self.net.lead(state, next_pos), self.net.context_base(state, next_pos)

    @torch.jit.export
    def prepare(self, state: Tensor, pos: int) -> Tensor:
        return self.net.context_base(state, pos)
