"""Voice-by-voice sampling around a loaded model, scripted once at load (see Runtime).

Temperature, top-p, an additive bias per voice (the key mask, ranges, leaps, density: built by
the Accompanist), and two rules that depend on the voices chosen earlier in the same step: no
unison doubling, and no parallel perfect fifths or octaves against the melody or a voice already
chosen (both parts moving the same way into the same perfect interval they left, measured from
the pitches at the last step where any part started a note). The uniform draws are passed in, so
a seeded caller gets the same notes on any device. This module has no
`from __future__ import annotations`: TorchScript reads its annotations.
"""

from typing import Final

import torch
from torch import Tensor, nn

from livegen.tokens import HOLD, PITCH0, REST


class Sampler(nn.Module):
    """Voice-by-voice sampling around a loaded model; scripted once at load."""

    n_voices: Final[int]
    order: list[int]
    rest: Final[int]
    hold: Final[int]
    pitch0: Final[int]

    def __init__(self, net: torch.jit.ScriptModule, order: list[int], n_voices: int):
        super().__init__()
        self.net = net
        self.order = order
        self.n_voices = n_voices
        self.rest, self.hold, self.pitch0 = REST, HOLD, PITCH0
        p = torch.arange(128)
        gap = (p.view(1, -1) - p.view(-1, 1)).abs() % 12  # [q, p]
        # same_interval[0][q] / [1][q]: pitches an octave (unison) / a fifth from q
        self.same_interval = torch.stack([gap == 0, gap == 7])
        self.above = p.view(1, -1) > p.view(-1, 1)  # above[k][p]: p is higher than k
        self.below = p.view(1, -1) < p.view(-1, 1)

    def forward(self, base: Tensor, human: Tensor, bias: Tensor, inv_temp: float,
                top_p: float, uniforms: list[float], sounding: list[int],
                allow_unison: bool, avoid_parallels: bool, prev: list[int],
                melody: int) -> list[int]:
        """`base`: the context known before this step's human frame (from `advance_lead`);
        `sounding`: each voice's pitch now (-1 none); `prev`: the pitches of the melody then
        each voice at the last step where any part started a note; `melody`: its pitch now."""
        ctx = self.net.context_human(base, human)
        tokens = [self.rest] * self.n_voices
        current = list(sounding)  # each voice's pitch: as chosen this step, else as it sounds
        chosen = [False] * self.n_voices
        for k in self.order:
            logits = self.net.voice_logits(ctx, k) * inv_temp + bias[k]
            if not allow_unison:
                for j in range(self.n_voices):
                    if j != k and current[j] >= 0:
                        at = current[j] + self.pitch0
                        logits[at:at + 1].fill_(float("-inf"))
            if avoid_parallels and prev[k + 1] >= 0:
                self._no_parallels(logits, prev[k + 1], prev[0], melody)
                for j in range(self.n_voices):
                    if chosen[j]:
                        self._no_parallels(logits, prev[k + 1], prev[j + 1], current[j])
            token = _top_p(logits, top_p, uniforms[k])
            tokens[k] = token
            if token != self.hold:
                current[k] = token - self.pitch0 if token >= self.pitch0 else -1
            chosen[k] = True
            ctx = self.net.voice_condition(ctx, k, token)
        return tokens

    @torch.jit.export
    def advance_lead(self, state: Tensor, human: Tensor, machine: Tensor, pos: int,
                     next_pos: int) -> tuple[Tensor, Tensor, Tensor]:
        """After the notes are out: the state past this step, lead's logits for the next step
        and the part of the next step's context that does not need its human frame."""
        state = self.net.advance(state, human, machine, pos)
        return state, self.net.lead(state, next_pos), self.net.context_base(state, next_pos)

    @torch.jit.export
    def prepare(self, state: Tensor, pos: int) -> Tensor:
        return self.net.context_base(state, pos)

    def _no_parallels(self, logits: Tensor, was: int, other_was: int, other_now: int) -> None:
        """Forbid the moves of this voice (from `was`) that, with the other part moving from
        `other_was` to `other_now`, make parallel fifths or octaves."""
        if other_was < 0 or other_now < 0 or other_now == other_was:
            return
        gap = abs(other_was - was) % 12
        if gap != 0 and gap != 7:
            return
        same = self.same_interval[0 if gap == 0 else 1][other_now]
        way = self.above[was] if other_now > other_was else self.below[was]
        logits[self.pitch0:].masked_fill_(same & way, float("-inf"))


@torch.jit.script
def _top_p(logits: Tensor, top_p: float, u: float) -> int:
    """Nucleus sampling with a given uniform draw: deterministic for a seeded caller. Written
    in few ops: on one step's 130 logits, op overhead is what costs."""
    sorted_p, index = torch.sort(torch.softmax(logits, dim=0), descending=True)
    cum = torch.cumsum(sorted_p, dim=0)
    last = min(int(torch.searchsorted(cum, top_p)), cum.numel() - 1)  # crosses top_p
    pick = int(torch.searchsorted(cum[: last + 1], u * float(cum[last])))
    return int(index[min(pick, last)])
