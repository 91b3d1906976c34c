"""Clocks for the engine's 16th-note grid (DESIGN §4): following MIDI beat clock, and the
internal clock with its MIDI clock out.

Nothing here reads the system clock: every time is passed in (seconds, as from
``time.perf_counter``), so the behaviour is deterministic and testable with made-up times.

MIDI beat clock runs at 24 ticks per quarter note, so one 16th step is 6 ticks. Song Position
Pointer counts "MIDI beats", which are 16ths, so its value is a step index directly.
"""

from __future__ import annotations

import math
from collections import deque
from typing import NamedTuple

PPQN = 24  # MIDI clock ticks per quarter note
TICKS_PER_STEP = 6  # 24 PPQN / 4 steps per beat

TICK = "tick"  # 0xF8
START = "start"  # 0xFA
CONTINUE = "continue"  # 0xFB
STOP = "stop"  # 0xFC
POSITION = "position"  # 0xF2, value = song position in 16ths


class ClockEvent(NamedTuple):
    """A clock message from the input: ``kind`` is one of TICK, START, CONTINUE, STOP, POSITION;
    ``value`` is the song position (in 16th steps) for POSITION, else 0."""

    kind: str
    time: float
    value: int = 0


class Step(NamedTuple):
    """Step ``index`` of the grid begins (or is predicted to begin) at ``time``."""

    index: int
    time: float


class MidiClockFollower:
    """Follows an external MIDI beat clock: transport, position and tempo.

    ``tick`` returns a ``Step`` when a tick lands on a step boundary while the transport runs.
    Ticks also arrive while stopped (most hardware and many DAWs keep the clock running); they
    refine the tempo but do not move the position. After Start the next tick is step 0; after
    Song Position Pointer and Continue the next tick is the pointer's step.

    Tempo: the mean of the last ``window`` tick intervals that passed the outlier test (more than
    ``outlier`` times the median of the kept intervals away from it). A real tempo change shows
    up as a run of rejected intervals; after ``TICKS_PER_STEP`` consecutive rejects the kept
    history is replaced by them, so the follower locks onto the new tempo within about a 16th.
    """

    def __init__(self, timeout: float = 0.5, window: int = 24, outlier: float = 0.3) -> None:
        if timeout <= 0 or window < 2 or not 0 < outlier < 1:
            raise ValueError("timeout must be > 0, window >= 2 and 0 < outlier < 1")
        self.timeout = timeout
        self.outlier = outlier
        self._intervals: deque[float] = deque(maxlen=window)
        self._rejected: list[float] = []
        self._sum = 0.0  # sum of self._intervals, kept incrementally
        self._last_tick: float | None = None  # time of the last tick received
        self._last_seen: float | None = None  # time of the last clock message of any kind
        self._next_pos = 0  # tick position (from song start) of the next tick while running
        self.running = False
        self.receiving = False  # a clock message arrived within `timeout`

    # -- transport ---------------------------------------------------------------------------

    def feed(self, event: ClockEvent) -> Step | None:
        """Dispatch one clock event; returns the step that starts with it, if any."""
        kind = event.kind
        if kind == TICK:
            return self.tick(event.time)
        if kind == START:
            self.start(event.time)
        elif kind == CONTINUE:
            self.continue_(event.time)
        elif kind == STOP:
            self.stop(event.time)
        elif kind == POSITION:
            self.song_position(event.value, event.time)
        return None

    def tick(self, t: float) -> Step | None:
        self._seen(t)
        last = self._last_tick
        self._last_tick = t
        if last is not None:
            self._add_interval(t - last)
        if not self.running:
            return None
        pos = self._next_pos
        self._next_pos = pos + 1
        if pos % TICKS_PER_STEP == 0:
            return Step(pos // TICKS_PER_STEP, t)
        return None

    def start(self, t: float) -> None:
        """Start from the top: the next tick is step 0."""
        self._seen(t)
        self._next_pos = 0
        self.running = True

    def continue_(self, t: float) -> None:
        """Run again from the current position (where Stop left it, or the last pointer)."""
        self._seen(t)
        self.running = True

    def stop(self, t: float) -> None:
        self._seen(t)
        self.running = False

    def song_position(self, value: int, t: float | None = None) -> None:
        """Song Position Pointer: ``value`` 16ths from the start. Applied even while running
        (some DAWs relocate on loop without a Stop): the next tick is that step's first."""
        if t is not None:
            self._seen(t)
        self._next_pos = max(0, int(value)) * TICKS_PER_STEP

    def poll(self, now: float) -> bool:
        """Call regularly. Returns True once when the clock has been silent for ``timeout``
        while the transport was running: the transport is then stopped and the engine must
        resolve its notes. A transport stopped this way stays stopped until Start/Continue."""
        if not self.receiving or self._last_seen is None:
            return False
        if now - self._last_seen < self.timeout:
            return False
        self.receiving = False
        self._intervals.clear()
        self._rejected.clear()
        self._sum = 0.0
        self._last_tick = None
        was_running = self.running
        self.running = False
        return was_running

    def reset(self) -> None:
        """Forget everything (e.g. when the input port changes)."""
        self._intervals.clear()
        self._rejected.clear()
        self._sum = 0.0
        self._last_tick = None
        self._last_seen = None
        self._next_pos = 0
        self.running = False
        self.receiving = False

    # -- position and tempo ------------------------------------------------------------------

    @property
    def position(self) -> int:
        """Tick position (from the song start) the next tick will have while running."""
        return self._next_pos

    @property
    def step(self) -> int:
        """Index of the step the transport is in (or will start at, after Start or a pointer)."""
        if self.running:
            return max(0, self._next_pos - 1) // TICKS_PER_STEP
        return self._next_pos // TICKS_PER_STEP

    @property
    def tick_interval(self) -> float | None:
        """Seconds per tick, or None until a few intervals have been seen."""
        n = len(self._intervals)
        if n < 3:
            return None
        return self._sum / n

    @property
    def bpm(self) -> float | None:
        iv = self.tick_interval
        return None if iv is None else 60.0 / (iv * PPQN)

    @property
    def step_length(self) -> float | None:
        iv = self.tick_interval
        return None if iv is None else iv * TICKS_PER_STEP

    def next_step(self) -> Step | None:
        """The next step boundary the running transport will reach, and its predicted time
        (extrapolated from the last tick at the current tempo); None while stopped or before
        the tempo is known."""
        iv = self.tick_interval
        if not self.running or iv is None or self._last_tick is None:
            return None
        pos = self._next_pos
        boundary = -(-pos // TICKS_PER_STEP) * TICKS_PER_STEP
        ahead = boundary - pos + 1  # ticks from the last one received to the boundary
        return Step(boundary // TICKS_PER_STEP, self._last_tick + ahead * iv)

    # -- internals ---------------------------------------------------------------------------

    def _seen(self, t: float) -> None:
        self._last_seen = t
        self.receiving = True

    def _add_interval(self, dt: float) -> None:
        if dt <= 0 or dt >= self.timeout:
            # Duplicate timestamps or a gap (clock paused): not a tempo measurement.
            if dt >= self.timeout:
                self._intervals.clear()
                self._rejected.clear()
                self._sum = 0.0
            return
        ivs = self._intervals
        if len(ivs) >= 4:
            med = sorted(ivs)[len(ivs) // 2]
            if abs(dt - med) > self.outlier * med:
                rej = self._rejected
                rej.append(dt)
                if len(rej) >= TICKS_PER_STEP:
                    rmed = sorted(rej)[len(rej) // 2]
                    ivs.clear()
                    ivs.extend(x for x in rej if abs(x - rmed) <= self.outlier * rmed)
                    self._sum = sum(ivs)
                    rej.clear()
                return
        self._rejected.clear()
        if len(ivs) == ivs.maxlen:
            self._sum -= ivs[0]
        ivs.append(dt)
        self._sum += dt


class InternalClock:
    """The internal grid: step ``n`` begins at ``T_n = t0 + n * 60 / (bpm * 4)``.

    A tempo change (``set_bpm``) re-anchors at the current moment: the musical position at
    ``now`` is kept, boundaries already passed keep their times (so ``step_time`` of the current
    step is still when it really began), and only later boundaries move. No boundary jumps into
    the past, and the rest of the current step plays at the new tempo.
    """

    _MAX_SEGMENTS = 8  # tempo segments remembered for looking back at past boundaries

    def __init__(self, bpm: float, t0: float) -> None:
        self._check(bpm)
        self._bpm = float(bpm)
        self._len = 15.0 / self._bpm  # seconds per 16th
        # Piecewise-linear map between grid position and time, newest segment last:
        # (position at segment start, time at segment start, seconds per step).
        self._segments: list[tuple[float, float, float]] = [(0.0, float(t0), self._len)]

    @staticmethod
    def _check(bpm: float) -> None:
        if not (bpm > 0 and math.isfinite(bpm)):
            raise ValueError(f"tempo must be a positive number of BPM, not {bpm!r}")

    @property
    def bpm(self) -> float:
        return self._bpm

    @property
    def step_length(self) -> float:
        return self._len

    def restart(self, t0: float) -> None:
        """Step 0 begins at ``t0`` (transport start), at the current tempo."""
        self._segments = [(0.0, float(t0), self._len)]

    def set_bpm(self, bpm: float, now: float) -> None:
        self._check(bpm)
        pos = self.position(now)
        self._bpm = float(bpm)
        self._len = 15.0 / self._bpm
        segs = self._segments
        while segs and segs[-1][0] >= pos:  # segments that had not begun yet
            segs.pop()
        segs.append((pos, float(now), self._len))
        if len(segs) > self._MAX_SEGMENTS:
            del segs[0]

    def step_time(self, n: float) -> float:
        """Ideal boundary time of step ``n`` (fractional ``n`` gives times inside a step)."""
        segs = self._segments
        for i in range(len(segs) - 1, 0, -1):
            p0, t0, length = segs[i]
            if n >= p0:
                return t0 + (n - p0) * length
        p0, t0, length = segs[0]
        return t0 + (n - p0) * length

    def position(self, t: float) -> float:
        """Grid position at time ``t`` in steps (fractional)."""
        segs = self._segments
        for i in range(len(segs) - 1, 0, -1):
            p0, t0, length = segs[i]
            if t >= t0:
                return p0 + (t - t0) / length
        p0, t0, length = segs[0]
        return p0 + (t - t0) / length

    def step_at(self, t: float) -> int:
        """Index of the step that contains time ``t``."""
        return math.floor(self.position(t) + 1e-9)

    def tick_time(self, k: int) -> float:
        """Ideal time of MIDI clock tick ``k`` (24 per beat; tick 0 is step 0's boundary)."""
        return self.step_time(k / TICKS_PER_STEP)

    def next_tick(self, t: float) -> int:
        """Index of the first clock tick at or after time ``t``."""
        return math.ceil(self.position(t) * TICKS_PER_STEP - 1e-9)


class ClockOut:
    """Schedules MIDI beat clock (0xF8) from an ``InternalClock``.

    The engine asks ``next_time`` to know when to wake and calls ``due(now)`` to learn how many
    ticks to send. Ticks the engine was too late for are all reported (sent in a burst) rather
    than skipped, so a device following our clock keeps the right song position.
    """

    def __init__(self, clock: InternalClock, now: float | None = None) -> None:
        self.clock = clock
        self.next_index = 0 if now is None else clock.next_tick(now)

    def align(self, now: float) -> None:
        """Continue from the first tick at or after ``now`` (e.g. when clock out is turned on)."""
        self.next_index = self.clock.next_tick(now)

    @property
    def next_time(self) -> float:
        return self.clock.tick_time(self.next_index)

    def due(self, now: float) -> int:
        """Number of ticks whose time is at or before ``now``; they count as sent."""
        n = 0
        clock = self.clock
        k = self.next_index
        while clock.tick_time(k) <= now:
            k += 1
            n += 1
        self.next_index = k
        return n


def swing_delay(step: int, swing: float, step_length: float) -> float:
    """Delay of a machine note on ``step``: odd 16ths (the "e" and "a" of each beat) are
    late by ``swing`` of a step. ``swing`` is clamped to 0..0.5 so a note never crosses into
    the next step."""
    if step % 2 == 0:
        return 0.0
    return min(max(swing, 0.0), 0.5) * step_length
