"""Clocks: following a DAW's MIDI clock, and the internal grid with its clock out.

The follower's robustness tests run it on a simulated clock (seeded, so deterministic): true
tick times, then what a transport delivers — jittered, with ticks lost, or in bursts.
"""

from __future__ import annotations

import math
import random

import pytest

from livegen.midi.clock import (
    CONTINUE,
    POSITION,
    START,
    STOP,
    TICK,
    ClockEvent,
    ClockOut,
    InternalClock,
    MidiClockFollower,
    Step,
)


def tick_period(bpm: float) -> float:
    return 60.0 / (bpm * 24)


def run_ticks(
    f: MidiClockFollower,
    t0: float,
    n: int,
    bpm: float,
    jitter: float = 0.0,
    rng: random.Random | None = None,
) -> tuple[list[Step], float]:
    """Feed n ticks from t0; returns the steps reported and the time of the next tick."""
    dt = tick_period(bpm)
    steps = []
    for i in range(n):
        t = t0 + i * dt + (rng.uniform(-jitter, jitter) if rng else 0.0)
        s = f.tick(t)
        if s is not None:
            steps.append(s)
    return steps, t0 + n * dt


# -- MIDI clock follower -----------------------------------------------------------------------


def test_start_then_every_sixth_tick_starts_a_step():
    f = MidiClockFollower()
    f.start(0.0)
    steps, _ = run_ticks(f, 0.01, 48, 120)
    dt = tick_period(120)
    assert [s.index for s in steps] == list(range(8))
    for s in steps:
        assert s.time == pytest.approx(0.01 + s.index * 6 * dt)


def test_tempo_from_the_clock():
    f = MidiClockFollower()
    assert f.bpm is None
    run_ticks(f, 0.0, 30, 133.0)
    assert f.bpm == pytest.approx(133.0, rel=1e-6)
    assert f.step_length == pytest.approx(15.0 / 133.0)


def test_tempo_ignores_a_late_tick_and_usb_jitter():
    rng = random.Random(1)
    f = MidiClockFollower()
    run_ticks(f, 0.0, 48, 120, jitter=0.0003, rng=rng)
    dt = tick_period(120)
    # one tick 8 ms late (a busy USB bus): a long interval then a short one
    f.tick(48 * dt + 0.008)
    f.tick(49 * dt)
    assert f.bpm == pytest.approx(120, rel=0.01)


def test_tempo_follows_a_real_tempo_change_within_a_sixteenth_or_two():
    f = MidiClockFollower()
    _, t = run_ticks(f, 0.0, 48, 120)
    run_ticks(f, t, 12, 90)
    assert f.bpm == pytest.approx(90, rel=0.02)


def test_stop_holds_the_position_and_continue_resumes_it():
    f = MidiClockFollower()
    f.start(0.0)
    steps, t = run_ticks(f, 0.0, 16, 120)  # steps 0, 1, 2; ticks 0..15
    assert [s.index for s in steps] == [0, 1, 2]
    f.stop(t)
    assert not f.running
    more, t = run_ticks(f, t, 12, 120)  # clock keeps running while stopped
    assert more == [] and f.next_step() is None
    f.continue_(t)
    steps, _ = run_ticks(f, t, 9, 120)  # ticks 16..24: step 3 at tick 18, step 4 at 24
    assert [s.index for s in steps] == [3, 4]


def test_song_position_pointer_relocates_in_sixteenths():
    f = MidiClockFollower()
    f.start(0.0)
    _, t = run_ticks(f, 0.0, 30, 120)
    f.stop(t)
    f.feed(ClockEvent(POSITION, t, 32))  # bar 3 in 4/4
    assert f.step == 32 and f.position == 32 * 6
    f.feed(ClockEvent(CONTINUE, t))
    steps, _ = run_ticks(f, t + 0.001, 7, 120)
    assert [s.index for s in steps] == [32, 33]
    assert steps[0].time == pytest.approx(t + 0.001, abs=0.001)  # on the clock's grid


def test_start_after_song_position_goes_back_to_the_top():
    f = MidiClockFollower()
    f.song_position(100)
    f.feed(ClockEvent(START, 0.0))
    steps, _ = run_ticks(f, 0.0, 1, 120)
    assert steps == [Step(0, 0.0)]


def test_feed_dispatches_all_kinds():
    f = MidiClockFollower()
    assert f.feed(ClockEvent(START, 0.0)) is None
    assert f.feed(ClockEvent(TICK, 0.01)) == Step(0, 0.01)
    f.feed(ClockEvent(STOP, 0.02))
    assert not f.running
    f.feed(ClockEvent(CONTINUE, 0.03))
    assert f.running


def test_next_step_prediction_matches_the_actual_boundary():
    f = MidiClockFollower()
    f.start(0.0)
    dt = tick_period(100)
    for i in range(40):
        s = f.tick(i * dt)
        if i >= 4:
            pred = f.next_step()
            boundary = (i // 6 + 1) * 6
            assert pred is not None
            assert pred.index == boundary // 6
            assert pred.time == pytest.approx(boundary * dt)
        if s is not None and i >= 6:
            # right on a boundary, the next one is a whole step away
            assert f.next_step().time == pytest.approx(s.time + f.step_length)


def test_next_step_after_start_is_step_zero_on_the_next_tick():
    f = MidiClockFollower()
    _, t = run_ticks(f, 0.0, 24, 120)  # clock running, transport stopped
    f.start(t - 0.002)
    pred = f.next_step()
    assert pred == Step(0, pytest.approx(t))


def test_clock_silence_stops_the_transport_once():
    f = MidiClockFollower(timeout=0.5)
    f.start(0.0)
    _, t = run_ticks(f, 0.0, 24, 120)
    last = t - tick_period(120)
    assert f.poll(last + 0.3) is False
    assert f.running
    assert f.poll(last + 0.5) is True  # the engine resolves its notes now
    assert not f.running and not f.receiving
    assert f.poll(last + 0.9) is False  # reported once
    # ticks coming back do not restart the transport on their own
    steps, _ = run_ticks(f, last + 1.0, 12, 120)
    assert steps == [] and not f.running


def test_silence_while_stopped_is_not_reported():
    f = MidiClockFollower(timeout=0.5)
    _, t = run_ticks(f, 0.0, 24, 120)
    assert f.poll(t + 1.0) is False


def test_a_gap_in_the_clock_is_not_taken_as_a_slow_tempo():
    f = MidiClockFollower()
    _, t = run_ticks(f, 0.0, 24, 120)
    run_ticks(f, t + 2.0, 6, 120)
    assert f.bpm == pytest.approx(120, rel=1e-6)


def test_follower_rejects_bad_parameters():
    with pytest.raises(ValueError):
        MidiClockFollower(timeout=0)
    with pytest.raises(ValueError):
        MidiClockFollower(window=2)


# -- the follower on a simulated transport ------------------------------------------------------


def true_ticks(segments: list[tuple[float, int]], t0: float = 1.0) -> list[float]:
    """Times of the clock's ticks: ``segments`` of (BPM, number of ticks)."""
    times = []
    t = t0
    for bpm, n in segments:
        for _ in range(n):
            times.append(t)
            t += tick_period(bpm)
    return times


def follow(
    f: MidiClockFollower, arrivals: list[tuple[int, float]], start_at: int = 0
) -> tuple[list[tuple[int, Step]], int]:
    """Feed (true tick index, arrival time) pairs, polling every millisecond in between, with
    Start just before tick ``start_at``. Returns the steps reported, each with the true index of
    the tick that brought it, and the number of times ``poll`` reported a stop."""
    steps = []
    stops = 0
    now = arrivals[0][1]
    for i, t in arrivals:
        while now < t:
            stops += f.poll(now)
            now += 0.001
        if i >= start_at and not f.running:
            f.start(t - 0.0005)
        s = f.tick(t)
        if s is not None:
            steps.append((i, s))
    return steps, stops


def kept_ticks(n: int, drop: float, rng: random.Random, start_at: int = 24) -> list[int]:
    """Indices of the ticks that arrive: from ``start_at`` on, a share ``drop`` is lost at
    random (not the last two, so that no loss is still unconfirmed at the end). Before it the
    clock runs clean: ticks lost while the follower learns the tempo (its first 12 ticks) are
    found by recounting, which needs steadier arrivals (tested on their own below)."""
    return [i for i in range(n) if i < start_at or i >= n - 2 or rng.random() >= drop]


def assert_on_the_true_grid(
    steps: list[tuple[int, Step]], truth: list[float], start_at: int, slack: float
) -> None:
    """Every step is reported once, in order, by its own first tick or (if that was lost) the
    next one, with a time within ``slack`` of its first tick's true time."""
    assert [s.index for _, s in steps] == list(range(len(steps)))
    for i, s in steps:
        first = start_at + s.index * 6
        assert first <= i <= first + 6
        assert s.time == pytest.approx(truth[first], abs=slack)


@pytest.mark.parametrize("bpm", [60, 120, 200])
def test_tempo_within_two_percent_under_3ms_of_jitter(bpm):
    rng = random.Random(bpm)
    truth = true_ticks([(bpm, 24 * 16)])
    f = MidiClockFollower()
    f.start(0.0)
    for k, t in enumerate(truth):
        f.tick(t + rng.uniform(-0.003, 0.003))
        if k >= 24:  # from the second beat on, at every tick
            assert f.bpm == pytest.approx(bpm, rel=0.02)


@pytest.mark.parametrize(
    ("bpm", "drop", "jitter"),
    [(60, 0.05, 0.003), (120, 0.01, 0.003), (120, 0.05, 0.002), (200, 0.03, 0.001)],
)
def test_lost_ticks_are_counted_and_do_not_shift_the_grid(bpm, drop, jitter):
    """Three minutes of clock, jittered, the transport started after a beat."""
    rng = random.Random(bpm * 1000 + int(drop * 100))
    truth = true_ticks([(bpm, 3 * bpm * 24)])
    kept = kept_ticks(len(truth), drop, rng)
    arrivals = [(i, truth[i] + rng.uniform(-jitter, jitter)) for i in kept]
    f = MidiClockFollower()
    steps, stops = follow(f, arrivals, start_at=24)
    assert stops == 0
    assert_on_the_true_grid(steps, truth, 24, slack=jitter + 0.001)
    assert len(steps) == (len(truth) - 24) // 6
    assert f.missed_ticks == len(truth) - len(arrivals)
    assert f.position == len(truth) - 24


def test_a_lost_first_tick_of_a_step_still_starts_the_step_on_time():
    f = MidiClockFollower()
    truth = true_ticks([(120, 96)])
    arrivals = [(i, t) for i, t in enumerate(truth) if i not in (54, 61, 62)]
    steps, _ = follow(f, arrivals, start_at=24)
    by_index = {s.index: (i, s.time) for i, s in steps}
    assert by_index[5] == (55, pytest.approx(truth[54]))  # reported by the next tick
    assert by_index[6] == (60, pytest.approx(truth[60]))
    assert by_index[7] == (66, pytest.approx(truth[66]))  # two lost, then back on the grid
    assert f.missed_ticks == 3
    assert f.position == 96 - 24


JACK_PERIOD = 128 / 48000  # 2.67 ms: JACK hands MIDI over once per period


def through_jack(
    truth: list[float],
    kept: list[int],
    rng: random.Random,
    jitter: float,
    late: float = 0.0,
    clean_end: int = 8,
) -> list[tuple[int, float]]:
    """(true index, arrival time) of the ``kept`` ticks: each sent up to ``jitter`` off its
    time (in order), handed over at the end of the JACK period it was sent in, and picked up by
    a reader that a share ``late`` of the times comes up to a tick period late, taking every
    tick handed over by then at once (not in the last ``clean_end`` ticks, so that no delay is
    still untold at the end)."""
    dt = truth[1] - truth[0]
    arrivals: list[tuple[int, float]] = []
    sent = reader = -math.inf
    for i in kept:
        sent = max(truth[i] + rng.uniform(-jitter, jitter), sent + 1e-5)
        handed = math.ceil(sent / JACK_PERIOD) * JACK_PERIOD
        if handed > reader:
            slow = late and i < len(truth) - clean_end and rng.random() < late
            reader = handed + (rng.uniform(0, dt) if slow else rng.uniform(0, 0.0005))
        arrivals.append((i, max(reader, arrivals[-1][1] + 2e-5) if arrivals else reader))
    return arrivals


@pytest.mark.parametrize("lost", [1, 2, 5, 9])
@pytest.mark.parametrize("bpm", [120, 150])
def test_a_tick_lost_in_the_first_half_beat_does_not_shift_the_song(bpm, lost):
    """A source that starts its clock with Start: a tick lost before the follower has judged
    the tempo by a dozen ticks is found by recounting the first arrivals from time, so the grid
    stays on the true ticks (and a tick lost later in the song too)."""
    truth = true_ticks([(bpm, 24 * 16)])
    for seed in range(5):
        rng = random.Random(seed)
        kept = [i for i in range(len(truth)) if i not in (lost, 200)]
        f = MidiClockFollower()
        steps, stops = follow(f, through_jack(truth, kept, rng, jitter=0.001), start_at=0)
        assert stops == 0
        assert f.missed_ticks == 2
        assert f.position == len(truth)
        # every step once, in order, at its first tick's true time (the tick handed over up to
        # a JACK period late): not a tick late
        assert_on_the_true_grid(steps, truth, 0, slack=JACK_PERIOD + 0.002)


@pytest.mark.parametrize("bpm", [120, 150, 200])
def test_batched_ticks_under_3ms_of_jitter_never_make_up_a_lost_tick(bpm):
    """A minute from Start at ±3 ms of jitter, through JACK's periods, the reader now and then
    late by up to a tick period (so two ticks in a row may come about a period late and then
    the rest on time: a delay, not a tick lost): no tick is found lost, the count ends right."""
    truth = true_ticks([(bpm, bpm * 24)])
    for seed in range(4):
        rng = random.Random(seed)
        arrivals = through_jack(truth, list(range(len(truth))), rng, jitter=0.003, late=0.05)
        f = MidiClockFollower()
        steps, stops = follow(f, arrivals, start_at=0)
        assert stops == 0
        assert f.missed_ticks == 0, f"seed {seed}"
        assert f.position == len(truth)
        assert [s.index for _, s in steps] == list(range(len(truth) // 6))


def test_a_delay_taken_for_a_lost_tick_is_taken_back():
    """Two ticks a period late each, then the clock on time again: the follower first takes a
    tick for lost (the second late one confirms it), then the ticks on time show the count a
    tick ahead and it takes the loss back, reporting no step twice."""
    truth = true_ticks([(150, 24 * 8)])
    dt = tick_period(150)
    arrivals = [(i, t + (0.95 * dt if i in (100, 101) else 0.0)) for i, t in enumerate(truth)]
    f = MidiClockFollower()
    steps, _ = follow(f, arrivals, start_at=0)
    assert f.missed_ticks == 0 and f.position == len(truth)
    assert [s.index for _, s in steps] == list(range(len(truth) // 6))


def test_a_lost_tick_after_a_late_one_is_counted_all_the_same():
    """The tick before a lost one came late (nearly half a period) and the one after it a
    little early: against each other they are no whole period apart, so the loss does not show
    at once; the ticks that follow all lie a period late, steadily, a jump from the grid: that
    is the loss."""
    truth = true_ticks([(150, 24 * 8)])
    dt = tick_period(150)
    off = {99: 0.45 * dt, 101: -0.1 * dt}
    arrivals = [(i, t + off.get(i, 0.0)) for i, t in enumerate(truth) if i != 100]
    f = MidiClockFollower()
    steps, _ = follow(f, arrivals, start_at=0)
    assert f.missed_ticks == 1 and f.position == len(truth)
    assert [s.index for _, s in steps] == list(range(len(truth) // 6))


def test_an_overdue_step_is_predicted_only_while_the_grid_vouches_for_it():
    f = MidiClockFollower()
    f.start(0.0)
    dt = tick_period(120)
    truth = true_ticks([(120, 60)], t0=0.0)
    for t in truth[:48]:  # steps 0-7; tick 48 (step 8's first) is lost
        f.tick(t)
    assert f.overdue(truth[48] + 0.4 * dt) is None  # not yet half a period late
    assert f.overdue(truth[48] + 0.6 * dt) == Step(8, pytest.approx(truth[48]))
    # the next tick still reports step 8, at its first tick's time
    assert f.tick(truth[49]) == Step(8, pytest.approx(truth[48]))
    # a clock that slowed down: the last tick came far off the grid, no prediction
    g = MidiClockFollower()
    g.start(0.0)
    for t in truth[:47]:
        g.tick(t)
    g.tick(truth[47] + 2.5 * dt)
    assert g.overdue(truth[47] + 4 * dt) is None


@pytest.mark.parametrize("bpm", [60, 120, 200])
def test_ticks_in_bursts_are_not_lost_ticks_and_keep_the_grid(bpm):
    """Now and then 2-4 ticks arrive at once (a busy reader, a transport period carrying
    several): all with the time the last of them was due, a fraction of a millisecond apart."""
    rng = random.Random(bpm)
    truth = true_ticks([(bpm, bpm * 24)])  # a minute
    arrivals = []
    i = 0
    while i < len(truth):
        k = rng.randint(2, 4) if rng.random() < 0.1 else 1
        group = range(i, min(i + k, len(truth)))
        at = truth[group[-1]] + rng.uniform(0, 0.0005)
        arrivals += [(j, at + n * 0.00002) for n, j in enumerate(group)]
        i += k
    f = MidiClockFollower()
    steps, stops = follow(f, arrivals, start_at=24)
    assert stops == 0 and f.missed_ticks == 0
    assert f.bpm == pytest.approx(bpm, rel=0.02)
    # each step at its first tick's due time, never the later arrival of a burst
    assert_on_the_true_grid(steps, truth, 24, slack=0.001)
    assert f.position == len(truth) - 24


@pytest.mark.parametrize(
    ("bpm", "period", "drop"),
    [(120, 0.0027, 0.02), (120, 0.0107, 0.02), (200, 0.0053, 0.02), (600, 0.0107, 0.0)],
)
def test_ticks_delivered_once_per_transport_period(bpm, period, drop):
    """JACK hands MIDI over once per period: each tick arrives at the end of the period it fell
    in, up to a period late; at 600 BPM two or three ticks at once. Ticks are lost now and then
    too, except where a period is longer than half a tick period: then a lost tick cannot be
    told from a late one."""
    rng = random.Random(bpm)
    truth = true_ticks([(bpm, 3 * bpm * 24)])
    kept = kept_ticks(len(truth), drop, rng)
    arrivals = [(i, math.ceil(truth[i] / period) * period) for i in kept]
    f = MidiClockFollower()
    steps, stops = follow(f, arrivals, start_at=24)
    assert stops == 0
    assert f.bpm == pytest.approx(bpm, rel=0.02)
    assert_on_the_true_grid(steps, truth, 24, slack=period)
    assert all(s.time >= truth[24 + s.index * 6] - 0.0005 for _, s in steps)  # never early
    assert f.missed_ticks == len(truth) - len(arrivals)
    assert f.position == len(truth) - 24


@pytest.mark.parametrize(
    ("before", "after"), [(60, 600), (600, 60), (300, 30), (30, 300), (30, 3)]
)
def test_a_tenfold_tempo_change_is_followed_within_half_a_beat_without_a_stop(before, after):
    """At 3 BPM a tick comes every 0.83 s: longer than the half second of silence that stops
    the transport at faster tempos."""
    rng = random.Random(before)
    truth = true_ticks([(before, 96), (after, 48)])
    arrivals = [(i, t + rng.uniform(-0.0003, 0.0003)) for i, t in enumerate(truth)]
    f = MidiClockFollower()
    tempos = []
    now = 0.0
    for i, t in arrivals:
        while now < t:
            assert not f.poll(now)
            now += 0.001
        if i == 24:
            f.start(t - 0.0005)
        f.tick(t)
        tempos.append(f.bpm)
    assert f.running and f.missed_ticks == 0
    assert f.position == len(truth) - 24  # no tick taken for a lost one
    assert all(bpm == pytest.approx(after, rel=0.02) for bpm in tempos[96 + 12 :])


def test_a_stop_message_stops_at_once_whatever_the_clock_does():
    f = MidiClockFollower()
    f.start(0.0)
    truth = true_ticks([(120, 40)])
    for t in truth[:33]:
        f.tick(t)
    f.tick(truth[35])  # late: held until the next tick shows what it was
    assert f.running
    f.feed(ClockEvent(STOP, truth[35] + 0.001))
    assert not f.running and f.next_step() is None
    assert [f.tick(t) for t in truth[36:]] == [None] * 4


def test_silence_stops_after_half_a_beat_or_half_a_second_whichever_is_longer():
    for bpm, timeout in ((120, 0.5), (30, 1.0)):  # 12 tick periods: 0.25 s, 1.0 s
        f = MidiClockFollower()
        f.start(0.0)
        truth = true_ticks([(bpm, 48)])
        for t in truth:
            f.tick(t)
        assert f.timeout == pytest.approx(timeout)
        assert f.poll(truth[-1] + timeout - 0.01) is False
        assert f.poll(truth[-1] + timeout + 0.001) is True
        assert not f.running


# -- internal clock ----------------------------------------------------------------------------


def test_internal_grid_boundaries():
    c = InternalClock(120.0, t0=10.0)
    assert c.step_length == pytest.approx(0.125)
    assert c.step_time(0) == 10.0
    assert c.step_time(16) == pytest.approx(12.0)  # one 4/4 bar at 120 BPM is 2 s
    assert c.position(10.0) == 0
    assert c.position(10.0625) == pytest.approx(0.5)
    assert c.position(c.step_time(5)) == pytest.approx(5)


def test_tempo_change_keeps_the_beat_continuous():
    c = InternalClock(120.0, t0=0.0)
    now = c.step_time(8) + 0.05  # in the middle of step 8
    before = [c.step_time(n) for n in range(9)]
    c.set_bpm(60.0, now)
    assert [c.step_time(n) for n in range(9)] == pytest.approx(before)
    assert c.position(now) == pytest.approx(8 + 0.05 / 0.125)
    # the rest of step 8 plays at the new tempo, then whole steps of 0.25 s
    assert c.step_time(9) == pytest.approx(now + (0.125 - 0.05) * 2)
    assert c.step_time(10) - c.step_time(9) == pytest.approx(0.25)


def test_speeding_up_never_moves_the_next_boundary_into_the_past():
    c = InternalClock(60.0, t0=0.0)
    now = c.step_time(3) + 0.24  # late in step 3 (a step is 0.25 s)
    c.set_bpm(240.0, now)
    assert c.step_time(4) > now
    assert c.step_time(4) == pytest.approx(now + 0.01 / 4)


def test_restart_puts_step_zero_at_the_new_time():
    c = InternalClock(100.0, t0=0.0)
    c.set_bpm(140.0, 3.3)
    c.restart(50.0)
    assert c.step_time(0) == 50.0
    assert c.step_time(4) == pytest.approx(50.0 + 60 / 140)


def test_internal_clock_refuses_a_silly_tempo():
    with pytest.raises(ValueError):
        InternalClock(0.0, 0.0)
    c = InternalClock(120.0, 0.0)
    with pytest.raises(ValueError):
        c.set_bpm(float("nan"), 1.0)
    assert c.bpm == 120.0


def test_clock_out_ticks_at_24_per_beat_on_the_grid():
    c = InternalClock(120.0, t0=1.0)
    out = ClockOut(c, now=1.0)
    assert out.next_index == 0
    dt = tick_period(120)
    sent_at = []
    now = 1.0
    while now < 2.0:  # two beats
        for _ in range(out.due(now)):
            sent_at.append(now)
        now = c.tick_time(out.next_index)
    assert len(sent_at) == 48
    assert sent_at == pytest.approx([1.0 + k * dt for k in range(48)])
    # every 6th tick falls on a step boundary
    assert [c.tick_time(k) for k in range(0, 48, 6)] == pytest.approx(
        [c.step_time(n) for n in range(8)]
    )


def test_clock_out_sends_missed_ticks_so_followers_keep_position():
    c = InternalClock(120.0, t0=0.0)
    out = ClockOut(c, now=0.0)
    assert out.due(3 * tick_period(120) + 1e-6) == 4  # ticks 0, 1, 2, 3
    assert out.due(3 * tick_period(120) + 2e-6) == 0


def test_clock_out_stays_in_order_across_a_tempo_change():
    c = InternalClock(60.0, t0=0.0)
    out = ClockOut(c, now=0.0)
    times = []
    now = 0.0
    for _ in range(60):
        now = c.tick_time(out.next_index)
        if len(times) == 30:
            c.set_bpm(180.0, now - 0.001)
            now = c.tick_time(out.next_index)
        out.due(now)
        times.append(now)
    assert all(b > a for a, b in zip(times, times[1:], strict=False))
    assert times[-1] - times[-2] == pytest.approx(tick_period(180))


def test_clock_out_made_mid_step_starts_at_the_next_tick():
    c = InternalClock(120.0, t0=0.0)
    out = ClockOut(c, now=c.step_time(3) + 0.001)
    assert out.next_index == 19


def test_several_tempo_changes_keep_every_passed_boundary():
    c = InternalClock(100.0, t0=0.0)
    passed: dict[int, float] = {}
    now = 0.0
    for bpm in (120.0, 80.0, 150.0, 150.0, 95.0):
        now += 0.37
        current = math.floor(c.position(now))
        for n in range(current + 1):
            passed.setdefault(n, c.step_time(n))
        c.set_bpm(bpm, now)
        for n, t in passed.items():
            assert c.step_time(n) == pytest.approx(t)
        assert c.step_time(current + 1) > now
