"""The 16th-note grid: notes in beats to per-step frames and tokens, and back.

A note whose start falls in the second half of step t-1 belongs to step t (quantization to the
nearest 16th, the offline form of the engine's pre-window).

Frames and token arrays are at most `MAX_STEPS` long: a longer length raises `ValueError` before
anything is allocated, so that a file with one absurdly long note cannot fill the memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from livegen.midi.midifile import Note
from livegen.model.tokens import HOLD, PITCH0, REST, STEPS_PER_BEAT

MAX_STEPS = 100_000  # 25,000 beats: over three hours at 120 BPM


@dataclass(frozen=True)
class StepNote:
    pitch: int
    start: int  # step
    end: int  # step after the last one it sounds in (end > start)


def to_steps(notes: Iterable[Note], steps_per_beat: int = STEPS_PER_BEAT) -> list[StepNote]:
    out = []
    for n in notes:
        start = round(n.start * steps_per_beat)
        end = max(start + 1, round(n.end * steps_per_beat))
        out.append(StepNote(n.pitch, start, end))
    return out


def skyline(notes: Sequence[StepNote]) -> list[StepNote]:
    """The top line: a note is dropped if a higher one sounds when it starts, and cut short
    where a higher one starts over it. A covered note does not come back when the higher ends."""
    out: list[StepNote] = []
    for n in sorted(notes, key=lambda n: (n.start, -n.pitch)):
        if out and out[-1].end > n.start:
            top = out[-1]
            if top.pitch >= n.pitch and not (top.pitch == n.pitch and top.start < n.start):
                continue
            if top.start == n.start:
                out.pop()
            else:
                out[-1] = StepNote(top.pitch, top.start, n.start)
        out.append(n)
    return out


def check_length(length: int) -> None:
    """Raise `ValueError` for a piece longer than `MAX_STEPS` steps."""
    if length > MAX_STEPS:
        raise ValueError(f"{length:,} 16th steps ({length / STEPS_PER_BEAT:,.0f} beats) is longer "
                         f"than the {MAX_STEPS:,} steps ({MAX_STEPS // STEPS_PER_BEAT:,} beats) "
                         "a piece may have")


def human_frames(notes: Sequence[StepNote], length: int) -> tuple[list[tuple[int, ...]],
                                                                   list[tuple[int, ...]]]:
    """Per step: the pitches that start there, and those that sound on from an earlier step."""
    check_length(length)
    onsets: list[list[int]] = [[] for _ in range(length)]
    held: list[list[int]] = [[] for _ in range(length)]
    for n in notes:
        if n.start < length:
            onsets[n.start].append(n.pitch)
        for t in range(n.start + 1, min(n.end, length)):
            held[t].append(n.pitch)
    return [tuple(sorted(set(o))) for o in onsets], [tuple(sorted(set(h) - set(o)))
                                                    for o, h in zip(onsets, held, strict=True)]


def voice_tokens(notes: Sequence[StepNote], length: int) -> np.ndarray:
    """A monophonic line as tokens; where notes overlap, the later start wins."""
    check_length(length)
    tokens = np.full(length, REST, dtype=np.int16)
    for n in sorted(notes, key=lambda n: n.start):
        if n.start >= length:
            continue
        tokens[n.start] = PITCH0 + n.pitch
        tokens[n.start + 1:min(n.end, length)] = HOLD
    return tokens
