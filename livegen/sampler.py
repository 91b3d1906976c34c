"""Voice-by-voice sampling around a loaded model, scripted once at load (see Runtime).

Temperature, top-p, an additive bias per voice (the key mask, ranges, leaps, density: built by
the Accompanist) and optional no-unison, with the uniform draws passed in so a seeded caller
gets the same notes on any device. This module has no `from __future__ import annotations`:
TorchScript reads its annotations.
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

    def forward(self, state: Tensor, human: Tensor, pos: int, bias: Tensor, inv_temp: float,
                top_p: float, uniforms: list[float], sounding: list[int],
                allow_unison: bool) -> list[int]:
        ctx = self.net.context(state, human, pos)
        tokens = [self.rest] * self.n_voices
        current = list(sounding)  # each voice's pitch: as chosen this step, else as it sounds
        for k in self.order:
            logits = self.net.voice_logits(ctx, k) * inv_temp + bias[k]
            if not allow_unison:
                for j in range(self.n_voices):
                    if j != k and current[j] >= 0:
                        logits[current[j] + self.pitch0] = float("-inf")
            token = _top_p(logits, top_p, uniforms[k])
            tokens[k] = token
            if token != self.hold:
                current[k] = token - self.pitch0 if token >= self.pitch0 else -1
            ctx = self.net.voice_condition(ctx, k, token)
        return tokens


@torch.jit.script
def _top_p(logits: Tensor, top_p: float, u: float) -> int:
    """Nucleus sampling with a given uniform draw: deterministic for a seeded caller."""
    probs = torch.softmax(logits, dim=0)
    sorted_p, index = torch.sort(probs, descending=True)
    cum = torch.cumsum(sorted_p, dim=0)
    keep = int((cum < top_p).sum()) + 1  # the tokens up to the one that crosses top_p
    keep = min(keep, int((sorted_p > 0).sum()))
    pick = int((cum[:keep] < u * cum[keep - 1]).sum())
    return int(index[min(pick, keep - 1)])
