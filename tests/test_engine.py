"""The engine's timing and note safety on a simulated clock with in-process ports."""

from dataclasses import replace

import pytest

from livegen.controls import ControlMessage
from livegen.settings import TakeoverSettings
from tests.fakes import engine_on_sim_clock as make
from tests.fakes import run_until
from tests.util import tiny_model

BPM = 120.0
STEP = 60.0 / BPM / 4


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    _, path = tiny_model(tmp_path_factory.mktemp("m") / "m.pt", seed=11)
    return path




def emissions(eng) -> list[tuple[int, tuple[int, ...]]]:
    """(step, human onsets of its frame) for each step the engine emits, as it emits."""
    seen: list[tuple[int, tuple[int, ...]]] = []
    eng.on_play = lambda step, frame: seen.append((step, frame.onsets))
    return seen




def test_voices_play_on_the_grid_and_stop_clean(model):
    eng, clock, inp, out = make(model)
    t0 = eng.transport.clock.step_time(0)
    for i, pitch in enumerate([72, 74, 76, 77, 79, 77, 76, 74]):
        inp.at(t0 + 4 * i * STEP, [0x90, pitch, 90])
        inp.at(t0 + (4 * i + 3.5) * STEP, [0x80, pitch, 0])
    run_until(eng, clock, t0 + 32 * STEP)
    ons = [t for t, ch, _ in out.note_ons() if ch in (1, 2, 3)]
    assert ons, "no accompaniment"
    for t in ons:  # every note-on within 1 ms of a step boundary
        k = round((t - t0) / STEP)
        assert abs(t - (t0 + k * STEP)) < 0.001
    eng.shutdown()
    assert out.hanging() == set()
    tail = [m for _, m in out.sent[-9:]]
    assert [0xB1, 64, 0] in tail and [0xB1, 123, 0] in tail and [0xB1, 120, 0] in tail


def test_pre_window_quantizes_an_early_note_to_the_next_step(model):
    eng, clock, inp, out = make(model)
    t0 = eng.transport.clock.step_time(0)
    inp.at(t0 + 3.7 * STEP, [0x90, 72, 90])  # 0.3 step early for step 4
    seen = emissions(eng)
    run_until(eng, clock, t0 + 6 * STEP)
    assert (4, (72,)) in seen and all(s[1] == () for s in seen if s[0] != 4)


def test_follow_window_waits_for_a_late_note_and_plays_right_after_it(model):
    eng, clock, inp, out = make(model, follow_ms=30.0, follow_threshold=0.0)
    t0 = eng.transport.clock.step_time(0)
    late = t0 + 8 * STEP + 0.015  # 15 ms late on the beat
    inp.at(late, [0x90, 74, 90])
    run_until(eng, clock, t0 + 10 * STEP)
    step8 = [t for t, ch, _ in out.note_ons() if t0 + 7.9 * STEP < t < t0 + 9 * STEP]
    assert step8, "nothing played on step 8"
    assert all(t >= late for t in step8)
    assert min(step8) - late < 0.001
    assert eng.stats.latency and max(eng.stats.latency) < 0.001


def test_the_worker_never_busy_waits_longer_than_a_millisecond(model):
    """Waiting out follow windows (every step here, a note 25 ms late on some) and boundaries,
    the worker sleeps between polls: a busy-wait over a 30 ms window took a core from the JACK
    clients' threads on a 2-core machine (docs/ARCHITECTURE.md, "The hot path")."""
    eng, clock, inp, out = make(model, follow_ms=30.0, follow_threshold=0.0)
    sleeps: list[tuple[float, float]] = []  # (start, end) of each real sleep

    def sleep(dt: float) -> None:
        start = clock.t
        clock.sleep(dt)
        if dt > 0:
            sleeps.append((start, clock.t))

    eng.sleep = sleep
    t0 = eng.transport.clock.step_time(0)
    for i, pitch in enumerate([72, 74, 76, 77]):
        inp.at(t0 + 8 * i * STEP + 0.025, [0x90, pitch, 90])
        inp.at(t0 + (8 * i + 6) * STEP, [0x80, pitch, 0])
    run_until(eng, clock, t0 + 32 * STEP)
    assert out.note_ons(), "no accompaniment"
    assert eng.stats.waited_in_vain > 10  # the windows were waited out
    assert len(sleeps) > 1000, "the worker hardly ever slept"
    busy = [b[0] - a[1] for a, b in zip(sleeps, sleeps[1:], strict=False)]
    # only the work between two polls (on the simulated clock: its creep per call of now())
    assert max(busy) < 0.001


def play_line_and_chord(model, plan: bool):
    """A melody, some notes late into the follow window, some legato, then a chord."""
    eng, clock, inp, out = make(model, follow_ms=30.0, follow_threshold=0.0)
    if not plan:
        eng.plan_ahead = False  # propose nothing ahead but the frame as it stands
    t0 = eng.transport.clock.step_time(0)
    line = [(0, 72, 0.0), (2, 74, 0.004), (4, 76, 0.012), (6, 74, -0.002), (8, 71, 0.020),
            (10, 72, 0.0)]
    for i, (step, pitch, late) in enumerate(line):
        inp.at(t0 + step * STEP + late, [0x90, pitch, 90])
        if i % 2:  # detached: off before the next note; otherwise legato, off just after it
            inp.at(t0 + (step + 1.5) * STEP, [0x80, pitch, 0])
        else:
            inp.at(t0 + (step + 2) * STEP + late + 0.003, [0x80, pitch, 0])
    chord = t0 + 12 * STEP + 0.005
    for pitch in (67, 71, 74):
        inp.at(chord, [0x90, pitch, 90])
    run_until(eng, clock, t0 + 16 * STEP)
    eng.shutdown()
    return eng, out


def test_melody_onsets_find_their_voices_proposed_ahead_and_play_the_same(model):
    eng, out = play_line_and_chord(model, plan=True)
    assert eng.stats.ready >= 5  # the line's notes (the first may fall outside the plan)
    assert eng.stats.computed <= 2  # the chord, and perhaps the first note
    assert out.hanging() == set()
    # proposing ahead only moves the work earlier: the same notes, at the same times within
    # the simulated clock's polling granularity
    plain, plain_out = play_line_and_chord(model, plan=False)
    assert plain.stats.computed >= 5  # only the early note was known before it came
    assert [m for _, m in out.sent] == [m for _, m in plain_out.sent]
    assert all(abs(a - b) < 0.001 for (a, _), (b, _) in zip(out.sent, plain_out.sent,
                                                            strict=True))


def test_takeover_after_silent_bars_and_hand_back(model):
    eng, clock, inp, out = make(model)
    eng.settings = replace(eng.settings, takeover=TakeoverSettings(enabled=True, bars=1,
                                                                   channel=1))
    eng.acc.configure(eng.settings)
    t0 = eng.transport.clock.step_time(0)
    inp.at(t0, [0x90, 72, 90])
    inp.at(t0 + 2 * STEP, [0x80, 72, 0])
    run_until(eng, clock, t0 + 40 * STEP)
    assert eng.takeover
    lead = [t for t, ch, _ in out.note_ons(channel=1)]
    assert lead and min(lead) >= t0 + 16 * STEP
    back = t0 + 41.2 * STEP
    inp.at(back, [0x90, 76, 90])
    run_until(eng, clock, back + 0.002)
    assert not eng.takeover
    assert not any(ch == 1 for ch, _ in out.hanging())
    run_until(eng, clock, t0 + 48 * STEP)
    assert all(t < back for t, ch, _ in out.note_ons(channel=1))


def test_midi_clock_start_stop_continue_and_song_position(model):
    eng, clock, inp, out = make(model, clock="midi")
    tick = 60.0 / 100 / 24  # 100 BPM
    t = clock.t + 0.01
    inp.at(t, [0xFA])
    for k in range(6 * 16):  # one bar
        inp.at(t + 0.001 + k * tick, [0xF8])
    inp.at(t + 0.002, [0x90, 72, 90])
    run_until(eng, clock, t + 6 * 16 * tick)
    boundaries = [t + 0.001 + k * tick for k in range(0, 96, 6)]
    ons = [x for x, ch, _ in out.note_ons() if ch in (1, 2, 3)]
    assert ons
    assert all(min(abs(x - b) for b in boundaries) < 0.002 for x in ons)
    assert eng.transport.follower.bpm == pytest.approx(100, rel=0.01)
    stop = t + 96 * tick + 0.001
    inp.at(stop, [0xFC])
    run_until(eng, clock, stop + 0.01)
    assert out.hanging() == set() and not eng.transport.running
    # song position: 16th note 32 (bar 3), then continue
    inp.at(stop + 0.02, [0xF2, 32, 0])
    inp.at(stop + 0.03, [0xFB])
    for k in range(12):
        inp.at(stop + 0.031 + k * tick, [0xF8])
    emitted = emissions(eng)
    run_until(eng, clock, stop + 0.031 + 12 * tick)
    assert [s for s, _ in emitted] == [32, 33]  # bar 3, beat 1: its first two 16ths


def test_clock_silence_stops_and_resolves_notes(model):
    eng, clock, inp, out = make(model, clock="midi")
    tick = 60.0 / 120 / 24
    t = clock.t + 0.01
    inp.at(t, [0xFA])
    for k in range(48):
        inp.at(t + 0.001 + k * tick, [0xF8])
    inp.at(t + 0.002, [0x90, 72, 90])
    run_until(eng, clock, t + 48 * tick + 0.7)
    assert not eng.transport.running and out.hanging() == set()


def test_preset_switch_mid_note_leaves_nothing_hanging(model):
    eng, clock, inp, out = make(model)
    t0 = eng.transport.clock.step_time(0)
    inp.at(t0, [0x90, 72, 90])
    run_until(eng, clock, t0 + 2.5 * STEP)
    voices = [replace(v, channel=v.channel + 5) for v in eng.settings.voices]
    eng.control(ControlMessage("settings", value=replace(eng.settings, voices=voices)))
    run_until(eng, clock, t0 + 3 * STEP)
    old_channels = {2, 3, 4}
    assert not any(ch in old_channels for ch, _ in out.hanging())
