"""The values that travel on the hot path (docs/ARCHITECTURE.md, "The hot path").

A `Frame` is what the human part does at one step: the pitches that start there and the pitches
still held from before, and the left-hand chord (the chord zone, `InputSettings.chord_zone`):
its pitch classes, the lowest key's first (the chord as played, its bass), then the others
ascending; empty when no chord is held. The chord is part of the frame, so a proposal is cached
for the chord it was computed under. A `Proposal` is the voices' answer to one frame, computed
(maybe ahead of time) without changing what sounds; committing it gives the `NoteChange`s that
go out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

LEAD = -1  # the voice index of the takeover melody in NoteChange and the piano roll
HUMAN = -2  # the player's part in the piano roll


class Frame(NamedTuple):
    onsets: tuple[int, ...] = ()
    held: tuple[int, ...] = ()
    chord: tuple[int, ...] = ()  # left-hand chord: pitch classes, its lowest key's first

    @classmethod
    def of(cls, onsets, held, chord=()) -> Frame:
        return cls(tuple(onsets), tuple(held), tuple(chord))


class Proposal(NamedTuple):
    tokens: list[int]  # one token per model voice
    melody: int  # the human part's top pitch (-1: none), for the parallel-motion rule
    human_onset: bool  # the frame started a human note


@dataclass(frozen=True, slots=True)
class NoteChange:
    voice: int  # index into the voices, or LEAD for the takeover melody
    pitch: int
    velocity: int  # 0 = note-off
