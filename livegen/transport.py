"""The step grid for both clock sources (docs/ARCHITECTURE.md, "The hot path").

`Transport` knows which step is current, when its boundary T is, when the next step's
pre-window opens (the moment the emitted step's frame is final and the model advances), and
whether the grid is running. With the internal clock the grid is `InternalClock`'s; with MIDI
clock each step begins at the tick the `MidiClockFollower` reports. Pure: every time is passed
in, so tests drive it on a simulated clock.
"""

from __future__ import annotations

from typing import Literal

from livegen.midi.clock import (
    START,
    STOP,
    ClockEvent,
    ClockOut,
    InternalClock,
    MidiClockFollower,
    Step,
)
from livegen.model.tokens import STEPS_PER_BEAT, position_index
from livegen.settings import TimingSettings

INF = float("inf")
LEAD_IN_S = 0.05  # the internal grid's first boundary comes this long after a start


class Transport:
    def __init__(self, timing: TimingSettings, now: float) -> None:
        self.timing = timing
        self.clock = InternalClock(timing.bpm, now + LEAD_IN_S)
        self.follower = MidiClockFollower()
        self.clock_out = ClockOut(self.clock, now) if timing.clock_out else None
        self.running = self.internal and timing.start == "now"
        self.armed = self.internal and timing.start == "first_note"  # waits for a first note
        self.step = 0  # the step being emitted, or the next one
        self.emitted = False  # `step` has been emitted and waits to advance
        # T of `step`; with MIDI clock, set by the tick that starts the step
        self.boundary = self.clock.step_time(0) if self.running else INF

    @property
    def internal(self) -> bool:
        return self.timing.clock == "internal"

    @property
    def bpm(self) -> float | None:
        return self.clock.bpm if self.internal else self.follower.bpm

    def start(self, now: float) -> None:
        """The engine's loop starts: the internal grid with it, or armed for a first note."""
        if self.internal and self.running:
            self.clock.restart(now + LEAD_IN_S)
            self.boundary = self.clock.step_time(self.step)

    def start_at(self, t: float) -> None:
        """The internal grid starts from step 0 at `t` (a first note, the end of a count-in)."""
        self.clock.restart(t)
        self.step = 0
        self.boundary = t
        self.emitted = False
        self.running = True
        self.armed = False

    def count_in(self, now: float, bars: int) -> list[float]:
        """Start after `bars` bars of clicks; the times of the clicks, one per beat."""
        beat = self.clock.step_length * STEPS_PER_BEAT
        first = now + LEAD_IN_S
        beats = bars * self.timing.beats_per_bar
        self.start_at(first + beats * beat)
        return [first + k * beat for k in range(beats)]

    def arm(self) -> None:
        """Stopped, waiting for the player's first note to start the grid on it."""
        self.stop()
        self.armed = True

    def configure(self, timing: TimingSettings, now: float) -> None:
        if timing.bpm != self.timing.bpm:
            self.clock.set_bpm(timing.bpm, now)
            if self.running and not self.emitted and self.internal:
                self.boundary = self.clock.step_time(self.step)
        self.timing = timing

    # ------------------------------------------------------------------ the grid

    def step_length(self) -> float:
        if self.internal:
            return self.clock.step_length
        return self.follower.step_length or 60.0 / (self.timing.bpm * STEPS_PER_BEAT)

    def pos(self, step: int) -> int:
        """The model's position index of `step` in its bar."""
        return position_index(step % (self.timing.beats_per_bar * STEPS_PER_BEAT))

    def in_prewindow(self, t: float) -> bool:
        """Whether an onset at `t` belongs to the current step (at or after its pre-window)."""
        return t >= self.boundary - self.timing.prewindow * self.step_length()

    def advance_time(self) -> float:
        """When the emitted step's frame is final: the next step's pre-window opens."""
        length = self.step_length()
        if self.internal:
            nxt = self.clock.step_time(self.step + 1)
        else:
            upcoming = self.follower.next_step()
            nxt = upcoming.time if upcoming else self.boundary + length
        return nxt - self.timing.prewindow * length

    def overran(self, now: float) -> bool:
        """The internal grid passed a whole step while the step was not emitted."""
        return self.internal and now >= self.clock.step_time(self.step + 1)

    def next_boundary(self) -> float | None:
        """Where the step not yet begun will begin, for proposing ahead (None: unknown)."""
        if self.internal:
            return self.boundary
        if self.boundary != INF:
            return None
        upcoming = self.follower.next_step()
        return upcoming.time if upcoming is not None and upcoming.index == self.step else None

    def moved_on(self) -> None:
        """The emitted step advanced: the next one is current."""
        self.step += 1
        self.boundary = self.clock.step_time(self.step) if self.internal else INF
        self.emitted = False

    def stop(self) -> None:
        self.running = False
        self.armed = False
        self.emitted = False
        self.boundary = INF

    def clock_ticks_due(self, now: float) -> int:
        """MIDI clock ticks to send now when clock out is on."""
        if self.clock_out is None or not self.running:
            return 0
        return self.clock_out.due(now)

    # ------------------------------------------------------------------ MIDI clock

    def on_clock(self, event: ClockEvent) -> Step | Literal["stop", "start"] | None:
        """Feed a MIDI clock message: the `Step` a tick began, "stop" (the transport stopped),
        "start" (it starts again from the top), or None. Ignored with the internal clock."""
        if self.internal:
            return None
        step = self.follower.feed(event)
        if event.kind == STOP:
            return "stop"
        if event.kind == START:
            return "start"
        return step

    def begin(self, index: int, t: float) -> None:
        """A tick began step `index` at `t`."""
        self.step = index
        self.running = True
        self.boundary = t

    def silent(self, now: float) -> bool:
        """The MIDI clock went quiet (a pulled cable, a stopped source that sent no Stop)."""
        return self.follower.poll(now)
