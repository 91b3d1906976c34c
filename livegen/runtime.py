"""The model kept warm in memory: state on its device, inputs preallocated, sampling scripted.

`Runtime` wraps a loaded model file. `accompany` runs the model's context and voice heads with
sampling (livegen.sampler) in one TorchScript call, so the critical path is one call into C++.
`advance` and `lead` run after the notes are sent.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from livegen import modelfile
from livegen.sampler import Sampler
from livegen.tokens import HUMAN_DIM, VOCAB


def pick_device(device: str) -> str:
    """`auto` takes CUDA when present; `cuda` without a GPU falls back to CPU with a note."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        return "cpu"
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device {device!r} is not one of auto, cpu, cuda")
    return device


class Runtime:
    def __init__(self, path: str | Path, device: str = "auto", warmup: int = 50):
        self.device = pick_device(device)
        if self.device == "cpu":
            torch.set_num_threads(1)  # one thread: no pool wake-ups on the hot path
        self.path = Path(path)
        t0 = time.perf_counter()
        net, self.info = modelfile.load(self.path, self.device)
        self.net = net
        self.n_voices = len(self.info.voices)
        self.sampler = torch.jit.script(Sampler(net, self.info.order, self.n_voices))
        # inputs live in CPU tensors written through numpy views; copied over on CUDA
        self._human_cpu = torch.zeros(HUMAN_DIM)
        self._human_np = self._human_cpu.numpy()
        self.human = self._human_cpu if self.device == "cpu" else self._human_cpu.to(self.device)
        self._human_set: list[int] = []
        self._bias_cpu = torch.zeros(self.n_voices, VOCAB)
        self.bias = self._bias_cpu.numpy()  # callers write the bias here, then accompany()
        self._bias_dev = self._bias_cpu if self.device == "cpu" else self._bias_cpu.to(self.device)
        self._machine_cpu = torch.zeros(self.n_voices, dtype=torch.long)
        self._machine_np = self._machine_cpu.numpy()
        self._machine = (self._machine_cpu if self.device == "cpu"
                         else self._machine_cpu.to(self.device))
        self._no_prev = [-1] * (self.n_voices + 1)
        self.reset()  # sets state, and `base`: the next step's context short of its human frame
        self._warm(warmup)
        self.load_seconds = time.perf_counter() - t0

    def reset(self, pos: int = 0) -> None:
        """Back to the state before any music; the next step is at position `pos`."""
        with torch.inference_mode():
            self.state = self.net.init_state(1)
            self.base = self.sampler.prepare(self.state, pos)
            self.base_pos = pos

    def set_human(self, onsets: tuple[int, ...] | list[int], held: tuple[int, ...] | list[int]
                  ) -> None:
        """Write a human frame into the preallocated input (only the entries that change)."""
        h = self._human_np
        h[self._human_set] = 0.0
        idx = [*onsets, *(128 + p for p in held)]
        h[idx] = 1.0
        self._human_set = idx
        if self.human is not self._human_cpu:
            self.human.copy_(self._human_cpu, non_blocking=True)

    def accompany(self, pos: int, temperature: float, top_p: float, uniforms: list[float],
                  sounding: list[int], allow_unison: bool = False, avoid_parallels: bool = False,
                  prev: list[int] | None = None, melody: int = -1) -> list[int]:
        """Tokens for every voice at this step, from the state after the previous step, the
        human frame set by `set_human`, and the bias in `self.bias` (see Sampler.forward).
        The context for `pos` was prepared by the previous `advance` (or `reset`); after a
        jump (song position) it is prepared here."""
        with torch.inference_mode():
            if pos != self.base_pos:
                self.base = self.sampler.prepare(self.state, pos)
                self.base_pos = pos
            if self._bias_dev is not self._bias_cpu:
                self._bias_dev.copy_(self._bias_cpu, non_blocking=True)
            return self.sampler(self.base, self.human, self._bias_dev,
                                1.0 / max(temperature, 1e-3), top_p, uniforms, sounding,
                                allow_unison, avoid_parallels,
                                prev if prev is not None else self._no_prev, melody)

    def lead_logits(self, pos: int) -> np.ndarray:
        with torch.inference_mode():
            return self.net.lead(self.state, pos).float().cpu().numpy()

    def advance(self, tokens: list[int], pos: int, next_pos: int) -> np.ndarray:
        """Move the state past this step, given its final human frame (`set_human`) and the
        voices' tokens; returns lead's logits for the next step (at `next_pos`)."""
        with torch.inference_mode():
            self._machine_np[:] = tokens
            if self._machine is not self._machine_cpu:
                self._machine.copy_(self._machine_cpu, non_blocking=True)
            self.state, lead, self.base = self.sampler.advance_lead(
                self.state, self.human, self._machine, pos, next_pos)
            self.base_pos = next_pos
            return lead.float().cpu().numpy()

    def _warm(self, steps: int) -> None:
        rng = np.random.default_rng(0)
        sounding = [-1] * self.n_voices
        for i in range(steps):
            self.set_human([60 + i % 12], [])
            prev = [60 + (i + 11) % 12, *(48 - 5 * k for k in range(self.n_voices))]
            tokens = self.accompany(i % 16, 1.0, 0.9, rng.random(self.n_voices).tolist(),
                                    sounding, False, True, prev, 60 + i % 12)
            self.advance(tokens, i % 16, (i + 1) % 16)
        self.set_human([], [])
        self.reset()
