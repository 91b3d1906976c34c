"""The transport a player drives: the grid waits for the first note and starts on it, a stop
ends every note, a count-in clicks before the grid starts, a learned knob starts and stops it
(simulated clock, in-process ports)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from livegen.controls import ControlMessage
from livegen.engine import CLICK, CLICK_ACCENT
from tests.fakes import engine_on_sim_clock as make
from tests.fakes import run_until
from tests.util import tiny_model

BPM = 120.0
STEP = 60.0 / BPM / 4
VOICE_CHANNELS = {1, 2, 3}  # 0-based channels of alto, tenor, bass


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    _, path = tiny_model(tmp_path_factory.mktemp("m") / "m.pt", seed=11)
    return path






def voice_ons(out) -> list[float]:
    return [t for t, ch, _ in out.note_ons() if ch in VOICE_CHANNELS]


def test_the_grid_waits_for_the_first_note_and_starts_on_it(model) -> None:
    eng, clock, inp, out = make(model, start="first_note")
    eng.transport.start(clock.t)
    first = clock.t + 1.2345  # the player starts whenever they like
    for i, pitch in enumerate([72, 74, 76, 77]):
        inp.at(first + 4 * i * STEP, [0x90, pitch, 90])
        inp.at(first + (4 * i + 3) * STEP, [0x80, pitch, 0])
    run_until(eng, clock, first - 0.01)
    assert eng.status().armed and not eng.transport.running
    assert voice_ons(out) == []  # nothing before the player
    run_until(eng, clock, first + 16 * STEP)
    assert eng.transport.clock.step_time(0) == pytest.approx(first)
    ons = voice_ons(out)
    assert ons and min(ons) - first < 0.001  # the first note is answered at once
    assert all(abs((t - first) / STEP - round((t - first) / STEP)) < 0.05 for t in ons)


def test_stop_ends_every_note_and_start_arms_again(model) -> None:
    eng, clock, inp, out = make(model, start="first_note")
    eng.transport.start(clock.t)
    t0 = clock.t + 0.1
    for i, pitch in enumerate([72, 74, 76, 77, 79, 77]):
        inp.at(t0 + 2 * i * STEP, [0x90, pitch, 90])
    run_until(eng, clock, t0 + 10 * STEP)
    assert voice_ons(out)
    eng.control(ControlMessage("transport", value="toggle"))
    run_until(eng, clock, clock.t + 0.01)
    assert out.hanging() == set() and not eng.transport.running
    stopped_at = clock.t
    run_until(eng, clock, stopped_at + 8 * STEP)
    assert [t for t in voice_ons(out) if t > stopped_at] == []  # held notes start nothing
    eng.control(ControlMessage("transport", value="start"))
    run_until(eng, clock, clock.t + 0.01)
    assert eng.transport.armed
    again = clock.t + 0.3
    inp.at(again, [0x90, 72, 90])
    run_until(eng, clock, again + 4 * STEP)
    assert eng.transport.running and [t for t in voice_ons(out) if t >= again]


def test_count_in_clicks_a_bar_then_the_grid_starts(model) -> None:
    eng, clock, inp, out = make(model, count_in=1, start="first_note")
    eng.transport.start(clock.t)
    began = clock.t
    eng.control(ControlMessage("transport", value="start"))
    run_until(eng, clock, began + 20 * STEP)
    clicks = [(t, note) for t, ch, note in out.note_ons(channel=10)]
    assert [note for _, note in clicks] == [CLICK_ACCENT, CLICK, CLICK, CLICK]
    gaps = [b - a for (a, _), (b, _) in zip(clicks, clicks[1:], strict=False)]
    assert gaps == pytest.approx([4 * STEP] * 3, abs=0.002)
    grid = eng.transport.clock.step_time(0)
    assert grid == pytest.approx(clicks[0][0] + 16 * STEP, abs=0.002)
    assert all(t >= grid - 0.001 for t in voice_ons(out))
    assert out.hanging() == set() or all(ch != 10 for ch, _ in out.hanging())


def test_a_learned_knob_starts_and_stops_the_transport(model) -> None:
    eng, clock, inp, out = make(model, start="first_note")
    eng.settings = replace(eng.settings, learn={20: "transport"})
    eng.transport.start(clock.t)
    t = clock.t + 0.1
    inp.at(t, [0xB0, 20, 127])
    inp.at(t + 0.2, [0x90, 72, 90])
    run_until(eng, clock, t + 0.2 + 4 * STEP)
    assert eng.transport.running
    inp.at(clock.t + 0.01, [0xB0, 20, 0])
    run_until(eng, clock, clock.t + 0.05)
    assert not eng.transport.running and out.hanging() == set()


def test_with_midi_clock_the_key_leaves_the_transport_to_the_clock(model) -> None:
    eng, clock, inp, out = make(model, clock="midi")
    eng.control(ControlMessage("transport", value="start"))
    run_until(eng, clock, clock.t + 0.01)
    assert not eng.transport.running
    assert "MIDI clock" in eng.messages[-1][1]


def midi_clock(inp, start: float, tick_times: list[float]) -> None:
    """Start at `start`, then a clock tick at each of `tick_times`."""
    inp.at(start, [0xFA])
    for t in tick_times:
        inp.at(t, [0xF8])


def plays(eng, clock) -> list[tuple[float, int, tuple[int, ...]]]:
    """(time, step, human onsets) of each step the engine plays, as it plays."""
    seen: list[tuple[float, int, tuple[int, ...]]] = []
    eng.on_play = lambda step, frame: seen.append((clock.t, step, frame.onsets))
    return seen


def test_midi_clock_a_lost_boundary_tick_begins_its_step_half_a_tick_late_once(model) -> None:
    """The tick that begins step 8 is lost: the step begins on the follower's prediction half a
    tick period after its time (not a whole tick late, with the next tick), with the note that
    waited in its pre-window, and the next tick, which reports it, does not play it again."""
    eng, clock, inp, out = make(model, clock="midi")
    tick = 60.0 / 150 / 24
    t0 = clock.t + 0.01
    ticks = [t0 + 0.001 + k * tick for k in range(16 * 6)]
    midi_clock(inp, t0, [t for k, t in enumerate(ticks) if k != 48])
    inp.at(ticks[48] - 0.002, [0x90, 72, 90])  # in step 8's pre-window
    inp.at(ticks[50], [0x80, 72, 0])
    played = plays(eng, clock)
    run_until(eng, clock, ticks[-1] + 0.002)
    assert [step for _, step, _ in played] == list(range(16))  # every step, once, in order
    at, _, onsets = played[8]
    assert onsets == (72,)
    assert ticks[48] <= at <= ticks[48] + 0.5 * tick + 0.002
    assert eng.transport.follower.missed_ticks == 1
    voice_on = [t for t, ch, _ in out.note_ons() if ch in VOICE_CHANNELS and t >= ticks[48]]
    assert voice_on and voice_on[0] <= ticks[48] + 0.5 * tick + 0.002


def test_midi_clock_slowing_down_at_a_boundary_plays_no_step_twice_or_skips_one(model) -> None:
    """The clock slows to a third right at step 8's boundary: its tick comes late and the step
    begins on the prediction before it; the late tick does not play step 8 again, and the
    steps after it wait for their own ticks."""
    eng, clock, inp, out = make(model, clock="midi")
    tick = 60.0 / 150 / 24
    t0 = clock.t + 0.01
    ticks = [t0 + 0.001 + k * tick for k in range(48)]
    ticks += [ticks[-1] + 2.5 * tick + k * 3 * tick for k in range(7 * 6)]
    midi_clock(inp, t0, ticks)
    played = plays(eng, clock)
    run_until(eng, clock, ticks[-1] + 0.002)
    steps = [step for _, step, _ in played]
    assert steps == list(range(len(steps))) and len(steps) == len(ticks) // 6
    times = {step: at for at, step, _ in played}
    assert times[8] < ticks[48]  # begun on the prediction: the clock had slowed
    assert all(times[s] >= ticks[6 * s] for s in range(9, len(steps)))
    assert eng.transport.follower.missed_ticks == 0


def test_midi_clock_ticks_of_two_steps_in_one_poll_play_both_steps(model) -> None:
    """A sender that bursts (a DAW's clock thread catching up) delivers step 8's first tick
    and step 9's together, so the engine reads them in one poll: step 8 still plays, at once,
    before step 9 begins; no step is lost."""
    eng, clock, inp, out = make(model, clock="midi")
    tick = 60.0 / 150 / 24
    t0 = clock.t + 0.01
    ticks = [t0 + 0.001 + k * tick for k in range(16 * 6)]
    # ticks 48..54 (step 8's first to step 9's first) all at step 8's time, in one burst
    burst = ticks[48]
    midi_clock(inp, t0, [burst if 48 <= k <= 54 else t for k, t in enumerate(ticks)])
    played = plays(eng, clock)
    run_until(eng, clock, ticks[-1] + 0.002)
    steps = [step for _, step, _ in played]
    assert steps == list(range(16)), steps
    times = {step: at for at, step, _ in played}
    assert burst <= times[8] <= burst + 0.002 and times[8] <= times[9]
