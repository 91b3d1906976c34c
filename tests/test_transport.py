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
