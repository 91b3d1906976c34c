"""The model kept warm in memory: recurrent state on its device, inputs preallocated.

`Runtime` wraps a loaded model file. `accompany` (the critical path) runs the model's heads and
the voice-by-voice sampling on the CPU in numpy (`livegen.model.heads.Heads`); `advance` runs the
recurrent update and prepares the next step (TorchScript, on the model's device: CPU here, CUDA
when asked for and present) after the notes are sent.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from livegen.model import modelfile
from livegen.model.heads import Heads, Stepper
from livegen.model.tokens import HUMAN_DIM, VOCAB


def pick_device(device: str) -> str:
    """`auto` takes CUDA when present; `cuda` without a GPU falls back to the CPU."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        return "cpu"
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device {device!r} is not one of auto, cpu, cuda")
    return device


class Runtime:
    def __init__(self, path: str | Path, device: str = "auto", warmup: int = 50,
                 staged: bool | None = None):
        """`staged`: keep device-side copies of the inputs and copy them over each step, as on
        CUDA; on by default there, and settable on the CPU so tests cover that path."""
        self.device = pick_device(device)
        if self.device == "cpu":
            torch.set_num_threads(1)  # one thread: no pool wake-ups on the hot path
        self.path = Path(path)
        t0 = time.perf_counter()
        net, self.info = modelfile.load(self.path, self.device)
        self.net = net
        self.n_voices = len(self.info.voices)
        with torch.inference_mode():
            weights = {k: v.float().cpu().numpy() for k, v in net.head_weights().items()}
        self.heads = Heads(weights, self.info.order)
        self.stepper = torch.jit.script(Stepper(net))
        staged = self.device != "cpu" if staged is None else staged
        # inputs: CPU tensors written through numpy views; with staging, copied to the device
        self._human_cpu = torch.zeros(HUMAN_DIM)
        self._human_np = self._human_cpu.numpy()
        self.human = self._human_cpu.clone().to(self.device) if staged else self._human_cpu
        self.human_idx: list[int] = []  # the active inputs of the frame, for the heads
        self.bias = np.zeros((self.n_voices, VOCAB), dtype=np.float32)  # callers write here
        self._machine_cpu = torch.zeros(self.n_voices, dtype=torch.long)
        self._machine_np = self._machine_cpu.numpy()
        self._machine = self._machine_cpu.clone().to(self.device) if staged \
            else self._machine_cpu
        self._no_prev = [-1] * (self.n_voices + 1)
        self.generation = 0  # counts state changes (advance, reset, a jump)
        self.reset()  # sets state, and `base`: the next step's context short of its human frame
        self._warm(warmup)
        self.load_seconds = time.perf_counter() - t0

    def reset(self, pos: int = 0) -> None:
        """Back to the state before any music; the next step is at position `pos`."""
        with torch.inference_mode():
            self.state = self.net.init_state(1)
            self._set_base(self.stepper.prepare(self.state, pos), pos)

    def _set_base(self, base: torch.Tensor, pos: int) -> None:
        self.base = base.float().cpu().numpy()
        self.base_pos = pos
        self.generation += 1  # what was computed from the old state is stale

    def set_human(self, onsets: tuple[int, ...] | list[int], held: tuple[int, ...] | list[int]
                  ) -> None:
        """Write a human frame into the preallocated input (only the entries that change)."""
        h = self._human_np
        h[self.human_idx] = 0.0
        idx = [*onsets, *(128 + p for p in held)]
        h[idx] = 1.0
        self.human_idx = idx
        if self.human is not self._human_cpu:
            self.human.copy_(self._human_cpu, non_blocking=True)

    def accompany(self, pos: int, temperature: float, top_p: float, uniforms: list[float],
                  sounding: list[int], allow_unison: bool = False, avoid_parallels: bool = False,
                  prev: list[int] | None = None, melody: int = -1,
                  audible: list[bool] | None = None, beat: bool = False) -> list[int]:
        """Tokens for every voice at this step, from the state after the previous step, the
        human frame set by `set_human`, and the bias in `self.bias` (see Heads.sample). The
        context base for `pos` was prepared by the previous `advance` (or `reset`); after a
        jump (song position) it is prepared here."""
        if pos != self.base_pos:
            with torch.inference_mode():
                self._set_base(self.stepper.prepare(self.state, pos), pos)
        return self.heads.sample(self.base, self.human_idx, self.bias,
                                 1.0 / max(temperature, 1e-3), top_p, uniforms, sounding,
                                 allow_unison, avoid_parallels,
                                 prev if prev is not None else self._no_prev, melody, audible,
                                 beat)

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
            self.state, lead, base = self.stepper(self.state, self.human, self._machine, pos,
                                                  next_pos)
            self._set_base(base, next_pos)
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
