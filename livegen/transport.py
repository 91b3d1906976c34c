"""The step grid for the three clock sources (docs/ARCHITECTURE.md, "The hot path").

`Transport` knows which step is current, when its boundary T is, when the next step's
pre-window opens (the moment the emitted step's frame is final and the model advances), and
whether the grid is running. With the internal clock the grid is `InternalClock`'s; with MIDI
clock each step begins at the tick the `MidiClockFollower` reports (its time on the follower's
grid), or, that tick lost, on the follower's prediction half a tick period after it (`silent`).
Pure: every time is passed in, so tests drive it on a simulated clock.

With the Link clock (`livegen.link`) the grid is the Link session's: step n begins at Link
sixteenth n + origin (a sixteenth is a quarter of a Link beat), where origin is a bar line of
the session (a multiple of 4 * beats_per_bar sixteenths), so the step's place in its bar is
its place in the session's bar. `follow_link`, called on every pass of the worker, samples the
session every `LINK_REFRESH_S` (the only place the transport reads a clock itself): the
boundary of a step not yet begun moves with a peer's tempo change, the step length follows the
session's tempo, and the session's start and stop come back as "start" and "stop". A jump of
the session's timeline (joining a session, a peer forcing its beat, a new quantum) realigns
the grid on the next sixteenth, keeping step numbers rising and in the session's bar.
"""

from __future__ import annotations

import math
from typing import Literal

from livegen.link import LinkClock, LinkSample
from livegen.midi.clock import (
    START,
    STOP,
    TICK,
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
LINK_REFRESH_S = 0.005  # the Link session is sampled this often (tempo, phase, start/stop)
LINK_JUMP = 0.5  # sixteenths the session's beat may stray from the last sample's extrapolation


class Transport:
    def __init__(self, timing: TimingSettings, now: float, link: LinkClock | None = None
                 ) -> None:
        self.timing = timing
        self.clock = InternalClock(timing.bpm, now + LEAD_IN_S)
        self.follower = MidiClockFollower()
        self.clock_out = ClockOut(self.clock, now) if timing.clock_out else None
        self.running = self.internal and timing.start == "now"
        # waits for a first note (internal and Link clocks)
        self.armed = not self.midi and timing.start == "first_note"
        self.step = 0  # the step being emitted, or the next one
        self.emitted = False  # `step` has been emitted and waits to advance
        # T of `step`; with MIDI clock, set by the tick that starts the step (or, that tick
        # overdue, by the follower's prediction: `silent`)
        self.boundary = self.clock.step_time(0) if self.running else INF
        # With MIDI clock, when the worker learned `boundary` (the tick's pickup, or the moment
        # it predicted a lost tick): the boundary is on the follower's fitted grid, so it is
        # already past by the tick's delay on the way. -inf for clocks known ahead.
        self.known_at = -INF
        self._predicted: int | None = None  # a step begun on the prediction, until reported
        # the Link session (None unless the clock is "link"); `link` may stand in for it
        self.link: LinkClock | None = None
        self._sample: LinkSample | None = None  # the session's last sample
        self._sampled_at = -INF
        self._origin = 0  # the Link sixteenth of step 0, a bar line of the session
        self._playing = False  # the session's start/stop state, as last seen or proposed
        self._following: int | None = None  # after a realignment: the step after the emitted
        if timing.clock == "link":
            self._open_link(now, link)

    @property
    def internal(self) -> bool:
        return self.timing.clock == "internal"

    @property
    def midi(self) -> bool:
        return self.timing.clock == "midi"

    @property
    def bpm(self) -> float | None:
        if self._sample is not None:
            return self._sample.tempo
        return self.clock.bpm if self.internal else self.follower.bpm

    def start(self, now: float) -> None:
        """The engine's loop starts: the internal grid with it, or armed for a first note. With
        Link, a preset that starts "now" sets the session playing and the grid starts on its
        next bar line."""
        if self.link is not None:
            self._playing = self._read(now, force=True).playing
            if self.timing.start == "now" and not self.running:
                self._launch(now)
            return
        if self.internal and self.running:
            self.clock.restart(now + LEAD_IN_S)
            self.boundary = self.clock.step_time(self.step)

    def start_at(self, t: float) -> None:
        """The internal grid starts from step 0 at `t` (a first note, the end of a count-in).
        With Link: armed (a first note, or the key while waiting for one), the grid starts at
        once, on the session's sixteenth nearest `t`, numbered by its place in the session's
        bar; otherwise on the session's first bar line from `t` on. Either way the session is
        set playing."""
        if self.link is not None:
            if self.armed:
                sixteenth = round(4 * self._read(t, force=True).beat_at(t))
                self._begin_link(sixteenth % self._bar_steps(), sixteenth)
                self._propose_playing()
            else:
                self._launch(t)
            return
        self.clock.restart(t)
        self.step = 0
        self.boundary = t
        self.emitted = False
        self.running = True
        self.armed = False

    def count_in(self, now: float, bars: int) -> list[float]:
        """Start after `bars` bars of clicks; the times of the clicks, one per beat. With Link
        the clicks begin on the session's next bar line and the grid a bar line later still
        (at the tempo of the moment: a tempo change during the count-in moves the grid, not
        the clicks)."""
        if self.link is not None:
            sample = self._read(now, force=True)
            bar = self._bar_steps()
            first = math.ceil(4 * sample.beat_at(now + LEAD_IN_S) / bar) * bar
            self._begin_link(0, first + bars * bar)
            self._propose_playing()
            beats = bars * self.timing.beats_per_bar
            return [sample.time_at(first / 4 + k) for k in range(beats)]
        beat = self.clock.step_length * STEPS_PER_BEAT
        first = now + LEAD_IN_S
        beats = bars * self.timing.beats_per_bar
        self.start_at(first + beats * beat)
        return [first + k * beat for k in range(beats)]

    def arm(self) -> None:
        """Stopped, waiting for the player's first note to start the grid on it (with Link
        the session's start/stop is left as it is)."""
        self._halt()
        self.armed = True

    def configure(self, timing: TimingSettings, now: float) -> None:
        if timing.bpm != self.timing.bpm:
            self.clock.set_bpm(timing.bpm, now)
            if self.running and not self.emitted and self.internal:
                self.boundary = self.clock.step_time(self.step)
        old, self.timing = self.timing, timing
        if (timing.clock == "link") != (self.link is not None):
            self._switch_link(now)
        elif self.link is not None:
            if timing.bpm != old.bpm:  # livegen proposes the session's tempo
                self.link.propose_tempo(timing.bpm)
            if timing.beats_per_bar != old.beats_per_bar:
                self.link.set_quantum(timing.beats_per_bar)
            sample = self._read(now, force=True)
            if timing.beats_per_bar != old.beats_per_bar and self.running:
                self._realign()
            self._move_boundary(sample)

    # ------------------------------------------------------------------ the grid

    def step_length(self) -> float:
        if self.internal:
            return self.clock.step_length
        if self._sample is not None:
            return 15.0 / self._sample.tempo
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
        elif self._sample is not None:
            nxt = self._step_time(self._next_step())
        else:
            upcoming = self.follower.next_step()
            nxt = upcoming.time if upcoming else self.boundary + length
            if upcoming is not None and upcoming.index == self.step:  # begun on the prediction
                nxt += length
        return nxt - self.timing.prewindow * length

    def overran(self, now: float) -> bool:
        """The internal (or Link) grid passed a whole step while the step was not emitted."""
        if self._sample is not None:
            return now >= self._step_time(self.step + 1)
        return self.internal and now >= self.clock.step_time(self.step + 1)

    def next_boundary(self) -> float | None:
        """Where the step not yet begun will begin, for proposing ahead (None: unknown)."""
        if self.internal or self.link is not None:
            return self.boundary
        if self.boundary != INF:
            return None
        upcoming = self.follower.next_step()
        if upcoming is None:
            return None
        if upcoming.index == self.step:
            return upcoming.time
        if upcoming.index == self._predicted == self.step - 1:  # its tick has not come yet
            return upcoming.time + self.step_length()
        return None

    def moved_on(self) -> None:
        """The emitted step advanced: the next one is current."""
        if self.link is not None:
            self.step = self._next_step()
            self._following = None
            self.boundary = self._step_time(self.step)
            self.emitted = False
            return
        self.step += 1
        self.boundary = self.clock.step_time(self.step) if self.internal else INF
        self.emitted = False

    def stop(self) -> None:
        """The grid stops (with Link, the session too, for the peers that sync start/stop)."""
        self._halt()
        if self.link is not None and self._playing:
            self._playing = False
            self.link.propose_playing(False)

    def _halt(self) -> None:
        self.running = False
        self.armed = False
        self.emitted = False
        self.boundary = INF
        self._predicted = None

    def clock_ticks_due(self, now: float) -> int:
        """MIDI clock ticks to send now when clock out is on (from the internal clock only)."""
        if self.clock_out is None or not self.running or self.link is not None:
            return 0
        return self.clock_out.due(now)

    def close(self) -> None:
        """Leave the Link session, if the clock is Link's."""
        if self.link is not None:
            self.link.close()

    # ------------------------------------------------------------------ MIDI clock

    def on_clock(self, event: ClockEvent) -> Step | Literal["stop", "start"] | None:
        """Feed a MIDI clock message: the `Step` a tick began, "stop" (the transport stopped),
        "start" (it starts again from the top), or None. Ignored unless the clock is MIDI's."""
        if not self.midi:
            return None
        step = self.follower.feed(event)
        if event.kind == STOP:
            return "stop"
        if event.kind == START:
            self._predicted = None
            return "start"
        if event.kind != TICK:  # Continue, Song Position Pointer: the position is set anew
            self._predicted = None
        elif step is not None and self._predicted is not None:
            predicted, self._predicted = self._predicted, None
            if step.index == predicted:  # begun on the prediction already
                return None
        return step

    def begin(self, index: int, t: float, known_at: float = -INF) -> None:
        """A tick began step `index` at `t` (on the grid); it was picked up at `known_at`."""
        self.step = index
        self.running = True
        self.boundary = t
        self.known_at = known_at

    def silent(self, now: float) -> bool:
        """The MIDI clock went quiet (a pulled cable, a stopped source that sent no Stop).
        Asked on every pass while the MIDI clock drives the grid, it also begins the step
        waiting for its first tick once that tick is overdue (`MidiClockFollower.overdue`:
        half a tick period after its predicted time, the tick lost most likely), on the
        predicted time; the tick that then reports that step begins nothing again."""
        if self.follower.poll(now):
            return True
        if self.midi and self.running and not self.emitted and self.boundary == INF:
            due = self.follower.overdue(now)
            if due is not None and due.index == self.step:
                self.boundary = due.time
                self.known_at = now
                self._predicted = due.index
        return False

    # ------------------------------------------------------------------ Ableton Link

    def follow_link(self, now: float) -> Literal["stop", "start"] | None:
        """Sample the Link session (at most every LINK_REFRESH_S): "start" when
        the session started and the grid with it (on the session's bar line just passed, if
        less than half a step ago, else on the next), "stop" when the session stopped while the
        grid ran or waited for a first note; else None. A step not yet begun moves with the
        session's tempo; no boundary moves into the past. Nothing without a Link clock."""
        if self.link is None or now - self._sampled_at < LINK_REFRESH_S:
            return None
        sample = self._read(now, force=True)
        if sample.playing != self._playing:
            self._playing = sample.playing
            if not sample.playing:
                if self.running or self.armed:
                    self._halt()
                    return "stop"
            elif not (self.running or self.armed):
                if self.timing.start == "first_note":
                    self.armed = True
                    return None
                self._launch(sample.time, propose=False)
                return "start"
        self._move_boundary(sample)
        return None

    def _move_boundary(self, sample: LinkSample) -> None:
        """The boundary of a step not yet begun follows the session's tempo, never into the
        past."""
        if self.running and not self.emitted and self.boundary > sample.time:
            self.boundary = max(self._step_time(self.step), sample.time)

    def _open_link(self, now: float, link: LinkClock | None) -> None:
        self.link = link or LinkClock(self.timing.bpm, self.timing.beats_per_bar)
        self._read(now, force=True)
        self.running = False

    def _switch_link(self, now: float) -> None:
        """The clock source changed to or from Link: the grid starts again as the new source
        starts it."""
        if self.link is not None:
            self._halt()  # leaving the session leaves its start/stop to the peers
            self.link.close()
            self.link, self._sample = None, None
            if self.internal and self.timing.start == "now":
                self.start_at(now + LEAD_IN_S)
            else:
                self.armed = self.internal and self.timing.start == "first_note"
            return
        self._halt()
        self._open_link(now, None)
        self.armed = self.timing.start == "first_note"
        self.start(now)

    def _bar_steps(self) -> int:
        return self.timing.beats_per_bar * STEPS_PER_BEAT

    def _read(self, now: float, force: bool = False) -> LinkSample:
        """The session's last sample, taken again after LINK_REFRESH_S (or when `force`). A beat
        far from where the last sample's tempo put it means the timeline jumped: realign."""
        last = self._sample
        if last is not None and not force and now - self._sampled_at < LINK_REFRESH_S:
            return last
        sample = self.link.sample()
        self._sample, self._sampled_at = sample, now
        if (last is not None and self.running
                and abs(4 * (sample.beat - last.beat_at(sample.time))) > LINK_JUMP):
            self._realign()
        return sample

    def _step_time(self, step: int) -> float:
        return self._sample.time_at((step + self._origin) / 4.0)

    def _next_step(self) -> int:
        return self._following if self._following is not None else self.step + 1

    def _begin_link(self, step: int, sixteenth: int) -> None:
        """The grid runs from `step`, which begins at the session's `sixteenth`."""
        self._origin = sixteenth - step
        self._following = None
        self.step = step
        self.boundary = self._step_time(step)
        self.emitted = False
        self.running = True
        self.armed = False

    def _launch(self, t: float, propose: bool = True) -> None:
        """Step 0 on the session's first bar line from `t` on (or the one less than half a step
        before `t`); the session set playing unless it already plays."""
        bar = self._bar_steps()
        self._begin_link(0, math.ceil((4 * self._read(t).beat_at(t) - 0.5) / bar) * bar)
        if propose:
            self._propose_playing()

    def _propose_playing(self) -> None:
        if not self._playing:
            self._playing = True
            self.link.propose_playing(True)

    def _realign(self) -> None:
        """The session's timeline jumped: the step not yet begun (or the one after the emitted
        step) moves to the session's next sixteenth; its number rises to the first with that
        sixteenth's place in the bar, so step numbers keep rising and the bar stays the
        session's."""
        sample = self._sample
        bar = self._bar_steps()
        sixteenth = math.ceil(4 * sample.beat_at(sample.time))
        least = self.step + 1 if self.emitted else self.step
        step = least + (sixteenth - least) % bar
        self._origin = sixteenth - step
        if self.emitted:
            self._following = step
        else:
            self.step = step
            self.boundary = self._step_time(step)
