"""The left-hand chord zone through the engine, on a simulated clock with in-process ports: the
keys below the split point fix the harmony of the voices that sound, the keys above are the
melody (livegen/midi/inputfilter.py, livegen/accompanist.py)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from livegen.controls import ControlMessage
from livegen.frames import Frame
from livegen.settings import InputSettings
from tests.fakes import engine_on_sim_clock as make
from tests.fakes import run_until
from tests.util import tiny_model

BPM = 120.0
STEP = 60.0 / BPM / 4
C_MAJOR = (48, 52, 55)  # the left hand, below middle C
F_MAJOR = (41, 45, 48)  # F A C, F the lowest
VOICE_CHANNELS = (1, 2, 3)  # alto, tenor, bass on MIDI channels 2-4 (0-based here)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    _, path = tiny_model(tmp_path_factory.mktemp("m") / "m.pt", seed=11)
    return path


def sounding_at(sent: list[tuple[float, list[int]]], t: float) -> list[int]:
    """The voices' pitches sounding at time `t`, from what the engine sent."""
    now: dict[tuple[int, int], bool] = {}
    for when, m in sent:
        if when > t:
            break
        ch = m[0] & 15
        if ch in VOICE_CHANNELS and m[0] & 0xE0 == 0x80:
            now[(ch, m[1])] = m[0] & 0xF0 == 0x90 and m[2] > 0
    return [pitch for (_, pitch), on in now.items() if on]


def play_tune(model, zone: int | None, left_hand: bool):
    """Four bars from step 16: a melody above middle C in quarter notes, and (with
    `left_hand`) C major held for two bars, then F major for two. Returns the engine, what
    it sent, the frames it played by step, and the first step's time."""
    eng, clock, inp, out = make(model)
    if zone is not None:
        zoned = replace(eng.settings, input=InputSettings(chord_zone=zone))
        eng.control(ControlMessage("settings", value=zoned))
    t0 = eng.transport.clock.step_time(0)
    melody = [72, 76, 79, 76, 72, 74, 76, 79, 77, 81, 84, 81, 77, 76, 74, 72]
    for i, p in enumerate(melody):
        start = t0 + (16 + 4 * i) * STEP
        inp.at(start, [0x90, p, 90])
        inp.at(start + 3.5 * STEP, [0x80, p, 0])
    if left_hand:
        for p in C_MAJOR:
            inp.at(t0 + 16 * STEP - 0.010, [0x90, p, 70])
            inp.at(t0 + 48 * STEP - 0.020, [0x80, p, 0])
        for p in F_MAJOR:
            inp.at(t0 + 48 * STEP - 0.008, [0x90, p, 70])
            inp.at(t0 + 80 * STEP - 0.020, [0x80, p, 0])
    frames: dict[int, Frame] = {}
    eng.on_play = lambda step, frame: frames.setdefault(step, frame)
    run_until(eng, clock, t0 + 81 * STEP)
    eng.shutdown()
    return eng, out, frames, t0


def test_a_left_hand_chord_fixes_the_harmony_of_the_sounding_voices(model):
    eng, out, frames, t0 = play_tune(model, zone=60, left_hand=True)
    # the left hand is never melody: no onset and no held note below the split
    assert all(p >= 60 for f in frames.values() for p in (*f.onsets, *f.held))
    assert frames[16].onsets == (72,)
    assert {frames[s].chord for s in range(16, 48)} == {(0, 4, 7)}
    assert {frames[s].chord for s in range(48, 80)} == {(5, 0, 9)}  # F, then A C
    inside = voices = 0
    for step in range(16, 80, 4):  # every beat of the four bars, just after its notes went
        chord = frames[step].chord
        for pitch in sounding_at(out.sent, t0 + (step + 0.5) * STEP):
            voices += 1
            inside += pitch % 12 in chord
    assert voices >= 16, "the voices hardly played"
    assert inside / voices >= 0.95, (inside, voices)
    assert out.hanging() == set()


def test_with_the_same_seed_a_zone_with_nothing_held_plays_as_with_no_zone(model):
    _, without, frames_a, _ = play_tune(model, zone=None, left_hand=False)
    _, with_zone, frames_b, _ = play_tune(model, zone=60, left_hand=False)
    assert frames_a == frames_b and all(not f.chord for f in frames_b.values())
    assert [m for _, m in without.sent] == [m for _, m in with_zone.sent]
    # at the same times, but for the simulated clock's creep (each now() call moves it)
    assert all(abs(a - b) < 2e-4 for (a, _), (b, _) in zip(without.sent, with_zone.sent,
                                                          strict=True))


def test_with_no_zone_the_left_hand_is_melody_and_the_voices_follow_the_model(model):
    """The contrast: without a chord zone the same keys are the human part (the frames carry
    them, and no chord), so the harmony is the model's own."""
    _, out, frames, t0 = play_tune(model, zone=None, left_hand=True)
    assert 48 in frames[16].onsets and all(not f.chord for f in frames.values())
