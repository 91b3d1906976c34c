"""Clocks for the engine's 16th-note grid: following MIDI beat clock, and the internal clock
with its MIDI clock out.

Nothing here reads the system clock: every time is passed in (seconds, as from
``time.perf_counter``), so the behaviour is deterministic and testable with made-up times.

MIDI beat clock runs at 24 ticks per quarter note, so one 16th step is 6 ticks. Song Position
Pointer counts "MIDI beats", which are 16ths, so its value is a step index directly.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from typing import NamedTuple

PPQN = 24  # MIDI clock ticks per quarter note
TICKS_PER_STEP = 6  # 24 PPQN / 4 steps per beat

TICK = "tick"  # 0xF8
START = "start"  # 0xFA
CONTINUE = "continue"  # 0xFB
STOP = "stop"  # 0xFC
POSITION = "position"  # 0xF2, value = song position in 16ths

# Following an external clock (MidiClockFollower):
FIT_TICKS = 48  # the grid is fitted over the last two beats of ticks
FIT_MIN_TICKS = 3  # ticks for a first tempo
JUDGE_TICKS = 12  # a tempo fitted over fewer ticks is too rough to judge ticks by
TEMPO_CHANGE_TICKS = 3  # ticks off the grid in a row (and no loss) that mean a new tempo
MAX_LOSS_CHAIN = 6  # ticks in a row, each later by whole periods, still taken as losses
LOSS_TOLERANCE = 0.4  # tick periods: how near a whole number of periods late a lost tick's is
SILENT_TICKS = 12  # tick periods of silence (half a beat; at least min_timeout) mean stopped
MIN_TICK_PERIOD = 60.0 / (1000 * PPQN)  # 2.5 ms: faster is no tempo but a burst of ticks
# A young tempo (fewer than JUDGE_TICKS) is recounted from time instead:
RECOUNT_TICKS = 6  # arrivals (the last one's included) before the first recount
RECOUNT_FIT = 0.3  # tick periods: the farthest a recounted arrival may lie from its grid
RECOUNT_GAIN = 4.0  # how many times closer the recounted arrivals must lie (mean square)
RECOUNT_FLOOR = 0.05  # tick periods: scatter the recounted grid is granted (exact arrivals)
RECOUNT_JITTER = 0.15  # tick periods: the most the other intervals may scatter (RMS)
# Ticks off the grid by the same whole number of periods, with no trend, are a slip of the
# count (ticks lost unseen, or a delay taken for lost ticks), not a new tempo:
SLIP_TICKS = 4  # ticks off the grid that may show a slip (all but one near the same whole m)
SLIP_MAX_TICKS = 6  # ticks off the grid after which it is a new tempo whatever they show
SLIP_TOLERANCE = 0.3  # tick periods from the whole number
SLIP_CENTRE = 0.2  # tick periods: how near the whole number their median lies
SLIP_TREND = 0.06  # tick periods per tick: a steadier drift is a new tempo
OVERDUE = 0.5  # tick periods after its time a step whose first tick did not come is due


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

    ``tick`` returns a ``Step`` when a tick starts a step while the transport runs. Ticks also
    arrive while stopped (most hardware and many DAWs keep the clock running); they refine the
    tempo but do not move the position. After Start the next tick is step 0; after Song Position
    Pointer and Continue the next tick is the pointer's step.

    The grid: a least-squares line of arrival time against tick count over the last ``window``
    ticks placed on it; its slope is the tempo. Steps are reported with the line's time of
    their first tick, not the arrival time, so jitter and late deliveries do not move them.
    Each tick is measured against the line, in tick periods:

    - within half a period: on the grid; it joins the fit.
    - later, and the next tick less than half a period after it: it came late, in a burst with
      the next (a busy reader, a transport period carrying several ticks). It moves the
      position like any tick, but neither tempo nor grid learn from it.
    - late by ``m`` whole periods (within ``LOSS_TOLERANCE``), coming ``m + 1`` periods after
      a tick on the grid, and the next tick ``m`` late as well: ``m`` ticks were lost. The
      position moves on by ``m`` at that next tick and ``missed_ticks`` counts them; a step
      whose first tick was lost is reported then, with the lost tick's time. Losses close
      together chain (up to ``MAX_LOSS_CHAIN`` ticks); a slowdown never comes back to the grid.
    - anything else is off the grid. Ticks off the grid in a row that all lie the same whole
      number of periods off it, steadily, are a slip of the count (``_slip``): ticks lost
      unseen (the tick after them came late too), counted then; or, early by whole periods,
      ticks found lost lately that were a delay (two ticks each a period late), taken back
      (the position with them; no step is reported twice). Otherwise ``TEMPO_CHANGE_TICKS``
      in a row mean the tempo changed, and the fit starts again from them.

    A tempo from fewer than ``JUDGE_TICKS`` ticks (the first ticks heard, or just after a tempo
    change) is too rough to judge single ticks by: every tick not in a burst joins the fit, and
    the arrivals are recounted from time instead (``_recount``): a gap a whole period wider
    than the other intervals, which a grid so recounted fits far better, held a lost tick, so a
    tick lost in the first half-beat after Start is counted (retroactively: the position moves
    on) once two arrivals follow it, from the sixth arrival on; intervals that scatter more
    than ``RECOUNT_JITTER`` of a period (RMS; ±3 ms of jitter at 150 BPM is about that) are
    not recounted, so that jitter never passes for a lost tick. Telling a lost tick from jitter
    needs arrivals within about a fifth of a period of the grid (±2.5 ms at 200 BPM); a
    transport period over half a tick period defeats it; and under a few milliseconds of
    jitter a sudden 1.1-1.7x slowdown can pass for a lost tick. Start, Continue and Song
    Position Pointer keep the grid (the clock runs on) but set the next tick's position, so no
    loss is counted (or taken back) across them; a gap over ``timeout`` drops the grid's phase.

    ``overdue`` predicts a step whose first tick has not come half a period after its time, so
    that the transport may begin it then (``Transport.silent``) rather than a tick late.

    Silence while running for ``timeout`` (``SILENT_TICKS`` tick periods, at least
    ``min_timeout`` seconds) stops the transport, so even a tenfold slowdown is no silence; a
    Stop message stops it at once.
    """

    def __init__(self, timeout: float = 0.5, window: int = FIT_TICKS) -> None:
        if timeout <= 0 or window < JUDGE_TICKS:
            raise ValueError(f"timeout must be > 0 and window >= {JUDGE_TICKS}")
        self.min_timeout = timeout
        self._fit: deque[tuple[int, float]] = deque(maxlen=window)  # (count, time) on the grid
        self._origin = (0.0, 0.0)  # mean count and time of self._fit
        self._period: float | None = None  # seconds per tick: the fit's slope
        self._period_ticks = 0  # how many ticks self._period was fitted over
        self._run: list[tuple[int, float]] = []  # consecutive ticks off the grid
        self._held: tuple[int, float] | None = None  # a late tick, until the next one comes
        # Ticks found lost lately, until a slip shows them a delay: (the first count they
        # moved, how many)
        self._found: deque[tuple[int, int]] = deque()
        # Ticks late by a whole number of periods (lag) after a tick on the grid, each later
        # than the one before: lost ticks unless the tempo fell. (count, time, lag)
        self._chain: list[tuple[int, float, int]] = []
        # (residual, lag) of the last tick placed, if it is on the grid or in the chain
        self._prev: tuple[float, int] | None = None
        # residuals of the last few ticks placed on the grid (as placed, not after a slip)
        self._on: deque[float] = deque(maxlen=3)
        self._count = 0  # tick count of the last tick: arrivals plus the ticks found missing
        self._last_tick: float | None = None  # time of the last tick received
        self._last_seen: float | None = None  # time of the last clock message of any kind
        self._next_pos = 0  # tick position (from song start) of the next tick while running
        self._reported: int | None = None  # the last step reported since Start/SPP/Continue
        self.running = False
        self.receiving = False  # a clock message arrived within `timeout`
        self.missed_ticks = 0  # ticks found missing since the follower was made or reset

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
        """A clock tick arrived at ``t``; returns the step it starts (with its time on the
        grid), if any."""
        if self._last_tick is not None and t - self._last_tick > self.timeout:
            self._forget_grid()  # the clock paused: its phase is new
        self._seen(t)
        previous, self._last_tick = self._last_tick, t
        lost = self._place(t, previous)
        if not self.running:
            return None
        pos = self._next_pos + lost  # lost < 0: ticks found lost earlier were a delay
        self._next_pos = pos + 1
        into = pos % TICKS_PER_STEP
        if into > lost:  # no step began at this tick or at the lost ones before it
            return None
        index = pos // TICKS_PER_STEP
        if self._reported is not None and index <= self._reported:
            return None  # reported already, by a count a delay had put ahead
        self._reported = index
        return Step(index, self._tick_time(self._count - into, t))

    def start(self, t: float) -> None:
        """Start from the top: the next tick is step 0."""
        self._seen(t)
        self._relocated()
        self._next_pos = 0
        self.running = True

    def continue_(self, t: float) -> None:
        """Run again from the current position (where Stop left it, or the last pointer)."""
        self._seen(t)
        self._relocated()
        self.running = True

    def stop(self, t: float) -> None:
        """Stop at once; the position stays for Continue."""
        self._seen(t)
        self.running = False

    def song_position(self, value: int, t: float | None = None) -> None:
        """Song Position Pointer: ``value`` 16ths from the start. Applied even while running
        (some DAWs relocate on loop without a Stop): the next tick is that step's first."""
        if t is not None:
            self._seen(t)
        self._relocated()
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
        self._forget_grid()
        was_running = self.running
        self.running = False
        return was_running

    def reset(self) -> None:
        """Forget everything (e.g. when the input port changes)."""
        self._forget_grid()
        self._period = None
        self._period_ticks = 0
        self._count = 0
        self._last_tick = None
        self._last_seen = None
        self._next_pos = 0
        self.running = False
        self.receiving = False
        self.missed_ticks = 0

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
        """Seconds per tick, or None until a few ticks have been seen."""
        return self._period

    @property
    def bpm(self) -> float | None:
        iv = self._period
        return None if iv is None else 60.0 / (iv * PPQN)

    @property
    def step_length(self) -> float | None:
        iv = self._period
        return None if iv is None else iv * TICKS_PER_STEP

    @property
    def timeout(self) -> float:
        """Seconds of silence that mean the clock stopped: ``SILENT_TICKS`` tick periods, at
        least ``min_timeout``; so a tempo falling up to that many times still never is one."""
        iv = self._period
        return self.min_timeout if iv is None else max(self.min_timeout, SILENT_TICKS * iv)

    def next_step(self) -> Step | None:
        """The next step boundary the running transport will reach, and its predicted time on
        the grid; None while stopped or before the tempo is known."""
        if not self.running or self._period is None or self._last_tick is None:
            return None
        pos = self._next_pos
        boundary = -(-pos // TICKS_PER_STEP) * TICKS_PER_STEP
        ahead = boundary - pos + 1  # ticks from the last one received to the boundary
        last = self._last_tick + ahead * self._period
        return Step(boundary // TICKS_PER_STEP, self._tick_time(self._count + ahead, last))

    def overdue(self, now: float) -> Step | None:
        """The next step once its first tick is ``OVERDUE`` of a period late at ``now``: lost,
        most likely, so the step may begin on its predicted time rather than wait for the next
        tick to show the loss. Only while the grid vouches for the prediction: the step's
        first tick is the next one to come (or the one after, the last tick received being on
        the grid), and the last tick came on the grid or a whole tick late (a tick lost before
        it). The tick that comes next still reports the step (``tick``); a clock that stopped
        or slowed down at once makes the prediction early. None otherwise."""
        upcoming = self.next_step()
        if upcoming is None or self._last_tick is None or now < upcoming.time:
            return None
        period = self._period or 0.0
        ahead = upcoming.index * TICKS_PER_STEP - self._next_pos + 1
        r = self._late(self._count, self._last_tick)
        if ahead > 2 or not -0.5 <= r <= (0.5 if ahead == 2 else 1 + LOSS_TOLERANCE):
            return None
        return upcoming if now >= upcoming.time + OVERDUE * period else None

    # -- the grid ----------------------------------------------------------------------------

    def _seen(self, t: float) -> None:
        self._last_seen = t
        self.receiving = True

    def _relocated(self) -> None:
        """The next tick's position is set: no tick lost before it may move it."""
        self._chain.clear()
        self._run.clear()
        self._found.clear()
        self._prev = None
        self._reported = None

    def _forget_grid(self) -> None:
        """Drop the grid's phase, keeping the tempo (the clock paused or went silent)."""
        self._fit.clear()
        self._run.clear()
        self._held = None
        self._relocated()

    def _grid(self, count: int) -> float | None:
        if not self._fit or self._period is None:
            return None
        c0, t0 = self._origin
        return t0 + (count - c0) * self._period

    def _tick_time(self, count: int, default: float) -> float:
        grid = self._grid(count)
        return default if grid is None else grid

    def _late(self, count: int, t: float) -> float:
        """How late ``t`` is for tick ``count`` on the grid, in tick periods."""
        return (t - self._tick_time(count, t)) / (self._period or 1.0)

    def _place(self, t: float, previous: float | None) -> int:
        """Count the tick arriving at ``t`` and place it on the grid, or hold it if it came
        late. Returns the number of ticks found lost before it (less than 0: ticks found lost
        before were a delay)."""
        self._count += 1
        held, self._held = self._held, None
        p = self._period
        fit = self._fit
        # Less than half a period after the last tick: those two came in one burst.
        burst = previous is not None and t - previous < (p / 2 if p else MIN_TICK_PERIOD)
        if burst and fit and fit[-1][1] == previous:
            fit.pop()  # it came in a burst with this one: only a burst's last tick is on time
            if fit:
                self._refit()
        if p is None or not fit:
            self._join(self._count, t)
            self._prev = (0.0, 0)
            self._on.append(0.0)
            return 0
        lost = 0
        if held is not None and not burst:
            lost = self._settle(*held)
        if self._young:
            lost += self._recount(t)
        lag = self._chain[-1][2] if self._chain else 0
        if self._late(self._count, t) - lag > 0.5:
            self._held = (self._count, t)  # late: a burst's first, or after lost ticks
            return lost
        return lost + self._settle(self._count, t)

    def _settle(self, count: int, t: float) -> int:
        """Place a tick that was not delivered in a burst; returns the ticks it shows lost."""
        r = self._late(count, t)
        chain = self._chain
        if not chain and abs(r) <= 0.5:
            self._join(count, t)
            self._prev = (r, 0)
            self._on.append(r)
            return 0
        m = round(r)
        prev = self._prev
        if (prev is not None and m >= prev[1] and abs(r - m) <= LOSS_TOLERANCE
                and abs(r - prev[0] - (m - prev[1])) < 0.5 and not self._young):
            if m == prev[1]:  # on the grid again, m ticks further on: they were lost
                since = chain[0][0] + chain[0][2] if chain else count + m
                for c, at, lag in chain:
                    self._join(c + lag, at)
                chain.clear()
                self._join(count + m, t)
                self._prev = (r - m, 0)
                self._on.append(r - m)
                self._found_lost(m, since)
                return m
            if len(chain) < MAX_LOSS_CHAIN:
                chain.append((count, t, m))
                self._prev = (r, m)
                return 0
        shift = 0  # a slip found among these ticks moves the count of the later ones
        for c, at, _ in chain:
            shift += self._off_grid(c + shift, at)
        chain.clear()
        shift += self._off_grid(count + shift, t)
        self._prev = None
        return shift

    @property
    def _young(self) -> bool:
        """The tempo comes from too few ticks to judge ticks by: all join the fit, and lost
        ticks are found by recounting them from time (``_recount``)."""
        return self._period_ticks < JUDGE_TICKS

    def _join(self, count: int, t: float) -> None:
        self._fit.append((count, t))
        self._run.clear()
        self._refit()

    def _found_lost(self, m: int, since: int) -> None:
        """``m`` ticks were lost before the tick counted ``since`` (less than 0: ticks found
        lost lately were not, and the ticks placed by their count leave the fit)."""
        self._count += m
        self.missed_ticks += m
        found = self._found
        if m > 0:
            found.append((since, m))
        fit = self._fit
        while m < 0 and found:  # taken back, the latest first
            c, n = found.pop()
            if n + m > 0:
                found.append((c, n + m))
            while fit and fit[-1][0] >= c:
                fit.pop()
            m += n
        if fit:
            self._refit()
        while found and found[0][0] < self._count - FIT_TICKS:
            found.popleft()  # long on the grid since: no delay takes them back

    def _recount(self, t: float) -> int:
        """While the tempo is young, count the arrivals again from time, the tick arriving at
        ``t`` the last (from ``RECOUNT_TICKS`` arrivals on): the widest gap against the median
        interval per tick that two arrivals follow, if a whole number of periods (one or two)
        wider than its ticks, held lost ticks when the grid so recounted fits every arrival
        (within ``RECOUNT_FIT``) and far better than the grid as counted (``RECOUNT_GAIN``),
        and the other intervals scatter little (``RECOUNT_JITTER``). Never across bursts: a
        transport's periods then set the times. Returns the ticks found lost."""
        points = [*self._fit, (self._count, t)]
        n = len(points)
        if n < RECOUNT_TICKS:
            return 0
        spans = [(t1 - t0, c1 - c0) for (c0, t0), (c1, t1) in zip(points, points[1:], strict=False)]
        if 4 * sum(dc > 1 for _, dc in spans) > len(spans):
            return 0  # ticks mostly in bursts: their times are the transport's, not the clock's
        per_tick = sorted(dt / dc for dt, dc in spans)
        p = per_tick[len(per_tick) // 2]
        if p < MIN_TICK_PERIOD:
            return 0
        j = max(range(n - 2), key=lambda i: spans[i][0] / p - spans[i][1])
        m = round(spans[j][0] / p - spans[j][1])
        if spans[j][1] > 1 or not 1 <= m <= 2:
            return 0
        moved = points[: j + 1] + [(c + m, at) for c, at in points[j + 1 :]]
        p = _line(moved)[2] or p  # the period of the grid so recounted
        extra = spans[j][0] / p - spans[j][1]
        if abs(extra - m) > LOSS_TOLERANCE:
            return 0
        rest = [dt / dc - p for i, (dt, dc) in enumerate(spans) if i != j]
        if sum(d * d for d in rest) / len(rest) > (RECOUNT_JITTER * p) ** 2:
            return 0  # the intervals scatter too much to tell a lost tick by
        as_counted, _ = _scatter(points)
        recounted, worst = _scatter(moved)
        if worst > RECOUNT_FIT or as_counted < RECOUNT_GAIN * recounted + RECOUNT_FLOOR**2:
            return 0
        self._fit.clear()
        self._fit.extend(moved[:-1])
        self._found_lost(m, moved[j + 1][0])
        return m

    def _off_grid(self, count: int, t: float) -> int:
        """A tick off the grid, not lost ticks' sign. Ticks off the grid in a row are a slip of
        the count (returned: the ticks it moves the count by) or a new tempo."""
        if self._young:
            self._join(count, t)
            return 0
        run = self._run
        run.append((count, t))
        if len(run) < TEMPO_CHANGE_TICKS:
            return 0
        slip = self._slip()
        if slip is None:
            return 0  # a slip perhaps: the next tick tells
        if slip:
            on = [(c + slip, at) for c, at in run
                  if abs(self._late(c, at) - slip) <= LOSS_TOLERANCE]
            since = run[0][0] + slip
            run.clear()
            self._found_lost(slip, since)
            for point in on:
                self._join(*point)
            return slip
        c0, t0, slope = _line(run)
        if slope is not None:  # the tempo changed: the fit starts again from these ticks
            self._fit.clear()
            self._fit.extend(run)
            self._origin = (c0, t0)
            self._period = slope
            self._period_ticks = len(run)
        run.clear()
        return 0

    def _slip(self) -> int | None:
        """The ticks off the grid in a row (``_run``) that all but one lie late by the same
        whole number of periods ``m`` are a slip of the count by ``m``: either ``m`` ticks lost
        unseen (the tick after them came late as well): they show as a jump of ``m`` from the
        last tick on the grid, then no trend (``SLIP_TREND``), where a slowdown comes up by
        degrees; or (``m`` < 0) ticks found lost lately that were a delay instead, all late by
        about a period: the ticks after them come ``-m`` periods early, which a speed-up just
        then would hardly do. Returns ``m``; 0: a new tempo; None: not told yet."""
        run = self._run
        late = [self._late(c, t) for c, t in run]
        m = round(sorted(late)[len(late) // 2])
        if m == 0 or not -sum(n for _, n in self._found) <= m <= MAX_LOSS_CHAIN:
            return 0
        # a takeback is judged looser: the ticks that passed for lost joined the fit
        tolerance, centre = (LOSS_TOLERANCE, LOSS_TOLERANCE) if m < 0 else (SLIP_TOLERANCE,
                                                                            SLIP_CENTRE)
        on = [(point, r) for point, r in zip(run, late, strict=True) if abs(r - m) <= tolerance]
        if len(on) < 2:
            return 0
        if len(run) >= SLIP_TICKS and len(on) >= len(run) - 1:
            middle = sorted(r for _, r in on)[len(on) // 2]
            before = sorted(self._on)[len(self._on) // 2] if self._on else 0.0
            if abs(middle - m) <= centre and (m < 0 or (
                    abs(middle - before - m) <= SLIP_TOLERANCE
                    and late[0] - before >= m - SLIP_TOLERANCE
                    and abs(_trend(on)) <= SLIP_TREND)):
                return m
        return None if len(run) < SLIP_MAX_TICKS else 0

    def _refit(self) -> None:
        """The fit's mean point, and its slope as the tempo unless the tempo came from more
        ticks than the fit has (after a pause the fit begins again, the tempo stays)."""
        n = len(self._fit)
        c0, t0, slope = _line(self._fit)
        self._origin = (c0, t0)
        if slope is not None and n >= min(self._period_ticks, JUDGE_TICKS):
            self._period = slope
            self._period_ticks = n


def _scatter(points: Sequence[tuple[int, float]]) -> tuple[float, float]:
    """How far the points lie from their least-squares line, in its periods: the mean square
    and the largest distance (infinite if they give no tempo)."""
    c0, t0, slope = _line(points)
    if slope is None:
        return math.inf, math.inf
    off = [(t - t0 - (c - c0) * slope) / slope for c, t in points]
    return sum(d * d for d in off) / len(off), max(abs(d) for d in off)


def _trend(late: Sequence[tuple[tuple[int, float], float]]) -> float:
    """Theil-Sen slope of lateness against count, for (tick, lateness) pairs: the median of the
    slopes between every two, so that one tick delayed more than the rest makes no trend."""
    slopes = sorted((r1 - r0) / (c1 - c0) for i, ((c0, _), r0) in enumerate(late)
                    for (c1, _), r1 in late[i + 1 :])
    return 0.5 * (slopes[(len(slopes) - 1) // 2] + slopes[len(slopes) // 2])


def _line(points: Sequence[tuple[int, float]]) -> tuple[float, float, float | None]:
    """Least-squares line of time against count: its mean point and its slope (None for fewer
    than ``FIT_MIN_TICKS`` points, or when it is no clock tempo, as from ticks all at once).
    Sums are taken from the first point, which keeps them small and exact enough."""
    n = len(points)
    c_first, t_first = points[0]
    sc = st = scc = sct = 0.0
    for c, t in points:
        c -= c_first
        t -= t_first
        sc += c
        st += t
        scc += c * c
        sct += c * t
    c0, t0 = sc / n, st / n
    mean = (c_first + c0, t_first + t0)
    if n < FIT_MIN_TICKS:
        return (*mean, None)
    slope = (sct - sc * t0) / (scc - sc * c0)
    return (*mean, slope if slope >= MIN_TICK_PERIOD else None)


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

    def tick_time(self, k: int) -> float:
        """Ideal time of MIDI clock tick ``k`` (24 per beat; tick 0 is step 0's boundary)."""
        return self.step_time(k / TICKS_PER_STEP)

    def next_tick(self, t: float) -> int:
        """Index of the first clock tick at or after time ``t``."""
        return math.ceil(self.position(t) * TICKS_PER_STEP - 1e-9)


class ClockOut:
    """Schedules MIDI beat clock (0xF8) from an ``InternalClock``.

    The engine calls ``due(now)`` to learn how many ticks to send. Ticks the engine was too late
    for are all reported (sent in a burst) rather than skipped, so a device following our clock
    keeps the right song position.
    """

    def __init__(self, clock: InternalClock, now: float | None = None) -> None:
        self.clock = clock
        self.next_index = 0 if now is None else clock.next_tick(now)

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

