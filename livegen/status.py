"""What the engine reports: the snapshot every UI reads (the panel, the headless status line, the
tests), typed (docs/ARCHITECTURE.md, "Processes").

The engine builds a `Status` in a quiet moment of its loop and hands it to its `on_status`
callback; in the panel's setup it crosses the process boundary pickled through a queue. Building
or reading a status changes nothing: `recent` holds the newest piano-roll events, each with a
serial number, and a reader keeps the serial of the last event it took (`new_events`), so a
dropped snapshot loses no event as long as fewer than `ROLL_KEPT` came in between.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from livegen.settings import Settings


class RollEvent(NamedTuple):
    serial: int  # counts up from 1: a reader takes the events newer than the last it saw
    step: int
    voice: int  # a voice index, livegen.frames.LEAD (takeover) or HUMAN (the player)
    pitch: int


class VoiceState(NamedTuple):
    name: str
    enabled: bool
    channel: int


ROLL_KEPT = 512  # piano-roll events a status carries


def new_events(recent: list[RollEvent], after: int) -> list[RollEvent]:
    """The events of `recent` with a serial above `after`."""
    return [e for e in recent if e.serial > after]


@dataclass(frozen=True)
class Drops:
    """Input the engine did not use, and steps it could not play, by reason."""

    queue: int = 0  # input beyond what one poll takes
    malformed: int = 0
    sysex: int = 0
    sensing: int = 0  # active sensing
    echo: int = 0  # our own output coming back
    skipped_steps: int = 0  # the machine stalled past a whole step
    missed_ticks: int = 0  # MIDI clock ticks that never arrived
    stale_keys: int = 0  # held keys taken as up: their note-off seems lost (input filter)

    def total(self) -> int:
        return (self.queue + self.malformed + self.sysex + self.sensing + self.echo
                + self.skipped_steps)


@dataclass(frozen=True)
class Status:
    time: float
    preset: str
    running: bool
    clock: str  # "internal", "midi" or "link"
    bpm: float | None
    step: int
    bar: int
    beat: int
    key: str | None
    takeover: bool
    settings: Settings
    armed: bool = False  # waiting for the player's first note, or counting in
    sounding: list[tuple[int, int]] = field(default_factory=list)  # (channel, pitch)
    latency_p50_ms: float | None = None
    latency_p99_ms: float | None = None
    emission_p99_ms: float | None = None
    drops: Drops = field(default_factory=Drops)
    ports: dict[str, str] = field(default_factory=dict)  # "in"/"out" -> open/missing/error
    messages: list[tuple[int, str]] = field(default_factory=list)  # (serial, text)
    recent: list[RollEvent] = field(default_factory=list)
    voices: list[VoiceState] = field(default_factory=list)
    recording: str | None = None
    learning: str | None = None
    learn: dict[int, str] = field(default_factory=dict)
    # what is coming: the voices proposed for the next step, (voice, pitch), and the melody
    # note the model expects the player to start there (None: it expects no new note)
    plan: list[tuple[int, int]] = field(default_factory=list)
    expected: int | None = None
