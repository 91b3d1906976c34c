"""The critical path: the model's accompany heads and the sampling of a step's voices, in numpy.

`Heads` holds the model's head matrices (exported by the model file's `head_weights`, copied to
the CPU once at load) and runs accompany for one step: the context from the part known before
the step (`base`, computed by the recurrent net right after the previous step) plus the human
frame; then for each voice, in the model's order: logits, temperature, an additive bias (key
mask, ranges, leaps, density, no voice above the melody, cadences: built by the Accompanist), no
unison doubling, nucleus sampling with a given uniform draw, and the chosen token folded into
the context for the next voice.

The step's voices are chosen together, as a frame (`Heads.sample`): the model's own draw comes
first, and when it breaks a rule of voice leading (parallel perfect fifths or octaves between two
heard parts, both moving the same way into the same perfect interval they left, measured from the
pitches at the last step where any part started a note; two heard voices crossed; a heard voice
starting a minor second or major seventh against the melody on a beat), up to `CANDIDATES` - 1
other frames are drawn in turn: the same uniform draws moved to other strata of [0, 1), so each
candidate is a fair draw from the model and together they cover its distribution. The first
candidate without a fault plays; if every one has a fault, the one with the fewest (a parallel
counts `PARALLEL`, a crossing `CROSSING`, a clash `CLASH`), the likelier when close; when every
one moves in parallel, one more frame masks those moves voice by voice, as a last resort. So
avoiding a parallel does not, as a rule, push the last voice chosen into a dissonance (which
masking each voice in turn did). The first voice chosen has only the melody to move with, and
a frame where those two move in parallel has a fault whatever the other voices do, so that
voice's parallel moves are masked at once instead. On the chorales about one step in twenty-five
draws more than one frame, and most find a clean one at the second. To keep that cheap,
candidates that begin alike share the work of their beginning, and a candidate is left at its
first fault (finished only if none is clean). The choice depends only on the frame, the state
and the draws, so every proposal of a step gives the same frame for the same human frame.

Why numpy and not TorchScript: one step is ~100 tiny operations on vectors of 130-256 floats,
and there the per-operation overhead is what costs. Measured on this project's 2-core CPU: the
same step took ~240 us through TorchScript and ~70 us here, and the scripted version slowed
about threefold when called after a pause (cold caches). The recurrent update, the expensive
part, stays TorchScript on the model's device (`Stepper`), off the critical path.
`tests/model/test_heads.py` checks these heads against the model file's own scripted methods.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn

from livegen.model.tokens import HOLD, PITCH0, REST, VOCAB

CANDIDATES = 8  # frames drawn at most when the model's own draw breaks a rule
PARALLEL = 4.0  # fault weights
CROSSING = 2.0
CLASH = 1.0
LIKELIHOOD = 0.25  # among faulty frames: fault weight traded per nat of log-probability
_P = np.arange(128)
CLASH_INTERVALS = (1, 11)  # minor second / major seventh (and their octaves) against the melody


def strata(candidates: int, voices: int) -> np.ndarray:
    """[candidates, voices] offsets added (mod 1) to a step's uniform draws: candidate 0 keeps
    the draws; the others move each voice's draw to another stratum of width 1/candidates, in
    a different order for each voice (candidate r, voice k: stratum r * (2k + 1) mod
    candidates), so the candidates spread over the distribution without extra draws."""
    r = np.arange(candidates)[:, None]
    k = np.arange(voices)[None, :]
    return ((r * (2 * k + 1)) % candidates) / candidates


class Heads:
    def __init__(self, weights: dict[str, np.ndarray], order: list[int]):
        self.ctx_human_rows = np.ascontiguousarray(weights["ctx_human"].T)  # [256, H]
        self.voice_w = np.ascontiguousarray(weights["voice_w"])  # [V, VOCAB, H]
        self.voice_b = np.ascontiguousarray(weights["voice_b"])  # [V, VOCAB]
        self.voice_cond = np.ascontiguousarray(weights["voice_cond"])  # [V * VOCAB, H]
        self.order = list(order)
        self.n = self.voice_w.shape[0]
        self._relu = np.empty(self.voice_w.shape[2], dtype=np.float32)
        self._strata = strata(CANDIDATES, self.n).tolist()
        self.redraws = 0  # steps whose own draw broke a rule, so that candidates were drawn

    def context(self, base: np.ndarray, human_idx: list[int]) -> np.ndarray:
        """The context of the step: `base` plus the human frame (active input indices)."""
        if not human_idx:
            return base.copy()
        return base + self.ctx_human_rows[human_idx].sum(axis=0)

    def logits(self, ctx: np.ndarray, k: int) -> np.ndarray:
        np.maximum(ctx, 0.0, out=self._relu)
        return self.voice_w[k] @ self._relu + self.voice_b[k]

    def sample(self, base: np.ndarray, human_idx: list[int], bias: np.ndarray, inv_temp: float,
               top_p: float, uniforms: Sequence[float], sounding: Sequence[int],
               allow_unison: bool, avoid_parallels: bool, prev: Sequence[int], melody: int,
               audible: Sequence[bool] | None = None, beat: bool = False,
               candidates: int = CANDIDATES) -> list[int]:
        """Tokens for every voice, chosen as a frame (see the module's docstring).
        `uniforms`: one draw per voice; `sounding`: each voice's pitch now (-1 none); `prev`:
        the pitches of the melody then each voice at the last step where any part started a
        note; `melody`: its pitch now (-1 none); `audible`: which voices are heard (default
        all: the rules of voice leading judge only those); `beat`: the step is on a beat."""
        ctx = self.context(base, human_idx)
        heard = [k for k in range(self.n) if audible is None or audible[k]]
        rules = _Rules(heard, self.order, prev, melody, avoid_parallels, beat)
        # each voice's nucleus by the tokens chosen before it in the frame: candidates that
        # share a beginning share its work
        memo: dict[tuple[int, ...], tuple[_Nucleus, np.ndarray]] = {}
        args = (ctx, bias, inv_temp, top_p, sounding, allow_unison, memo, rules)
        early = candidates > 1  # a candidate is left as soon as it has a fault
        tokens, _, _, fault = self._draw_one(*args, uniforms, early)
        if fault == 0.0 or not early:
            return tokens
        # the other candidates, in turn, until one has no fault
        self.redraws += 1
        draws = [list(uniforms)]
        for r in range(1, candidates):
            draws.append([(u + self._strata[r][k]) % 1.0 for k, u in enumerate(uniforms)])
            tokens, _, _, fault = self._draw_one(*args, draws[-1], True)
            if fault == 0.0:
                return tokens
        # every candidate has a fault: finish each (its beginning is known) and weigh them
        options = []
        for u in draws:
            tokens, _, picks, fault = self._draw_one(*args, u, False)
            options.append((fault, _log_probability(picks), tokens))
        if min(o[0] for o in options) >= PARALLEL and rules.any_perfect:
            # every candidate moves in parallel: a last frame with those moves masked voice by
            # voice (the model forced one part's move; the others give way)
            tokens, _, picks, fault = self._draw_one(ctx, bias, inv_temp, top_p, sounding,
                                                     allow_unison, {}, rules, uniforms, False,
                                                     no_parallels=True)
            options.append((fault, _log_probability(picks), tokens))
        return min(options, key=lambda o: o[0] - LIKELIHOOD * o[1])[2]

    def _draw_one(self, ctx: np.ndarray, bias: np.ndarray, inv_temp: float, top_p: float,
                  sounding: Sequence[int], allow_unison: bool,
                  memo: dict[tuple[int, ...], tuple[_Nucleus, np.ndarray]], rules: _Rules,
                  uniforms: Sequence[float], early: bool, no_parallels: bool = False
                  ) -> tuple[list[int], list[int], list[tuple[_Nucleus, int]], float]:
        """One frame, voice by voice in the model's order, each voice conditioned on those
        chosen before it (`memo` keeps each voice's nucleus and context by the tokens before
        it). Returns the tokens, each voice's pitch after the step (-1 silent), each voice's
        pick (its nucleus, the index chosen in it) and the frame's faults; with `early`, the
        frame is left unfinished at its first fault. With `no_parallels`, each heard voice's
        moves into parallels with the melody or a voice chosen before it are masked."""
        n = self.n
        tokens = [REST] * n
        current = list(sounding)  # each voice's pitch: as chosen this step, else as it sounds
        picks: list[tuple[_Nucleus, int]] = []
        prefix: tuple[int, ...] = ()
        fault = 0.0
        last = self.order[-1]
        for k in self.order:
            known = memo.get(prefix)
            if known is None:
                logits = self.logits(ctx, k)
                logits *= inv_temp
                logits += bias[k]
                if not allow_unison:
                    for j in range(n):
                        if j != k and current[j] >= 0:
                            logits[current[j] + PITCH0] = -np.inf
                if no_parallels or not prefix:  # (the first voice: see the docstring)
                    rules.mask(logits[PITCH0:], k, current)
                nucleus = _Nucleus(logits, top_p)
                memo[prefix] = (nucleus, ctx)
            else:
                nucleus, ctx = known
            i = nucleus.pick(uniforms[k])
            token = int(nucleus.order[i])
            tokens[k] = token
            picks.append((nucleus, i))
            if token != HOLD:
                current[k] = token - PITCH0 if token >= PITCH0 else -1
            fault += rules.voice_fault(k, token, current)
            if early and fault:
                break
            if k != last:
                ctx = ctx + self.voice_cond[k * VOCAB + token]
                prefix = (*prefix, token)
        return tokens, current, picks, fault


class _Rules:
    """The faults of a candidate frame: what `Heads.sample` weighs (module docstring). Each
    pair of parts is judged when the later of the two in the model's order is chosen."""

    def __init__(self, heard: list[int], order: list[int], prev: Sequence[int], melody: int,
                 avoid_parallels: bool, beat: bool):
        self.heard = set(heard)
        self.melody = melody
        self.prev = prev
        self.clash = beat and melody >= 0
        before: list[int] = []  # heard voices chosen before, in the model's order
        # per heard voice: the parts (-1: the melody) a perfect interval from it at the last
        # onset step (only these can move in parallel with it), and the voices to cross
        self.perfect: dict[int, list[tuple[int, int]]] = {}
        self.cross: dict[int, list[int]] = {}
        for k in order:
            if k not in self.heard:
                continue
            pairs = []
            if avoid_parallels and prev[k + 1] >= 0:
                for other in (-1, *before):
                    was = prev[other + 1]
                    gap = abs(prev[k + 1] - was) % 12
                    if was >= 0 and gap in (0, 7):
                        pairs.append((other, gap))
            self.perfect[k] = pairs
            self.cross[k] = list(before)
            before.append(k)
        self.any_perfect = any(self.perfect.values())

    def voice_fault(self, k: int, token: int, pitches: list[int]) -> float:
        """The faults voice k makes with the parts chosen before it (`pitches`: each voice's
        pitch after the step, as far as chosen)."""
        if k not in self.heard:
            return 0.0
        out = 0.0
        now = pitches[k]
        for j in self.cross[k]:  # voices are listed top to bottom
            upper, lower = (k, j) if k < j else (j, k)
            if pitches[upper] >= 0 and pitches[lower] > pitches[upper]:
                out += CROSSING
        if now < 0:
            return out
        prev, melody = self.prev, self.melody
        for other, gap in self.perfect[k]:
            other_now = melody if other < 0 else pitches[other]
            if other_now < 0 or abs(now - other_now) % 12 != gap:
                continue
            move, other_move = now - prev[k + 1], other_now - prev[other + 1]
            if move and other_move and (move > 0) == (other_move > 0):
                out += PARALLEL
        if self.clash and token >= PITCH0 and abs(now - melody) % 12 in CLASH_INTERVALS:
            out += CLASH
        return out

    def fault(self, tokens: list[int], pitches: list[int]) -> float:
        """The weighted faults of a whole frame: its tokens and each voice's pitch after it."""
        return sum(self.voice_fault(k, tokens[k], pitches) for k in self.perfect)

    def mask(self, pitch_logits: np.ndarray, k: int, current: list[int]) -> None:
        """Forbid voice k's moves that make parallels with the melody or a heard voice chosen
        before it (whose pitches now are in `current`)."""
        for other, gap in self.perfect.get(k, ()):
            was, other_was = self.prev[k + 1], self.prev[other + 1]
            other_now = self.melody if other < 0 else current[other]
            if other_now < 0 or other_now == other_was:
                continue
            way = _P > was if other_now > other_was else _P < was
            pitch_logits[(np.abs(_P - other_now) % 12 == gap) & way] = -np.inf


class _Nucleus:
    """A voice's distribution at one point of a frame, ready for nucleus sampling
    (`top_p_sample`, split so that several draws share the sort)."""

    __slots__ = ("order", "sorted_p", "cum", "last")

    def __init__(self, logits: np.ndarray, top_p: float):
        top = logits.max()
        if top == -np.inf:
            # every token is forbidden (the accompanist's rules and the sampler's masks can
            # meet that way, e.g. a voice held above the melody under a cadence's hold): the
            # voice rests, which is never wrong, rather than drawing from NaN
            logits = np.full_like(logits, -np.inf)
            logits[REST] = top = 0.0
        p = np.exp(logits - top)
        self.order = order = np.argsort(-p, kind="stable")
        self.sorted_p = p[order]
        self.cum = cum = np.cumsum(self.sorted_p)
        self.last = min(int(cum.searchsorted(top_p * cum[-1])), len(cum) - 1)  # crosses top_p

    def pick(self, u: float) -> int:
        """The index in `order` of the token for draw `u` (inside the nucleus: the cumulative
        mass past `last` is never below the drawn share of the mass up to it)."""
        cum, last = self.cum, self.last
        return min(int(cum.searchsorted(u * cum[last])), last)


def _log_probability(picks: list[tuple[_Nucleus, int]]) -> float:
    """A frame's log-probability (each voice's before the nucleus cut)."""
    return sum(math.log(float(n.sorted_p[i] / n.cum[-1])) for n, i in picks)


def top_p_sample(logits: np.ndarray, top_p: float, u: float) -> int:
    """Nucleus sampling with a given uniform draw: deterministic for a seeded caller."""
    nucleus = _Nucleus(logits, top_p)
    return int(nucleus.order[nucleus.pick(u)])


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
