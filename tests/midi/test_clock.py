"""Clocks: following a DAW's MIDI clock, and the internal grid with swing and clock out."""

from __future__ import annotations

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
    swing_delay,
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
    assert steps[0].time == pytest.approx(t + 0.001)


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
        MidiClockFollower(outlier=1.5)


# -- internal clock ----------------------------------------------------------------------------


def test_internal_grid_boundaries():
    c = InternalClock(120.0, t0=10.0)
    assert c.step_length == pytest.approx(0.125)
    assert c.step_time(0) == 10.0
    assert c.step_time(16) == pytest.approx(12.0)  # one 4/4 bar at 120 BPM is 2 s
    assert c.step_at(10.0) == 0
    assert c.step_at(10.124) == 0
    assert c.step_at(c.step_time(5)) == 5


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
    assert c.step_at(now) == 8


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


def test_swing_delays_only_the_offbeat_sixteenths():
    L = 0.125
    assert [swing_delay(n, 0.2, L) for n in range(4)] == pytest.approx([0, 0.025, 0, 0.025])
    assert swing_delay(3, 0.0, L) == 0.0
    assert swing_delay(1, 0.9, L) == pytest.approx(0.5 * L)  # never reaches the next step
    assert swing_delay(1, -0.3, L) == 0.0


def test_clock_out_ticks_at_24_per_beat_on_the_grid():
    c = InternalClock(120.0, t0=1.0)
    out = ClockOut(c, now=1.0)
    assert out.next_index == 0 and out.next_time == 1.0
    dt = tick_period(120)
    sent_at = []
    now = 1.0
    while now < 2.0:  # two beats
        for _ in range(out.due(now)):
            sent_at.append(now)
        now = out.next_time
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
        now = out.next_time
        if len(times) == 30:
            c.set_bpm(180.0, now - 0.001)
            now = out.next_time
        out.due(now)
        times.append(now)
    assert all(b > a for a, b in zip(times, times[1:], strict=False))
    assert times[-1] - times[-2] == pytest.approx(tick_period(180))


def test_clock_out_align_joins_the_grid_mid_step():
    c = InternalClock(120.0, t0=0.0)
    out = ClockOut(c)
    out.align(c.step_time(3) + 0.001)
    assert out.next_index == 19


def test_several_tempo_changes_keep_every_passed_boundary():
    c = InternalClock(100.0, t0=0.0)
    passed: dict[int, float] = {}
    now = 0.0
    for bpm in (120.0, 80.0, 150.0, 150.0, 95.0):
        now += 0.37
        for n in range(c.step_at(now) + 1):
            passed.setdefault(n, c.step_time(n))
        c.set_bpm(bpm, now)
        for n, t in passed.items():
            assert c.step_time(n) == pytest.approx(t)
        assert c.step_time(c.step_at(now) + 1) > now
