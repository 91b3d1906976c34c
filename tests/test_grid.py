import tracemalloc

import pytest

from livegen.grid import (
    MAX_STEPS,
    StepNote,
    human_frames,
    skyline,
    to_steps,
    voice_tokens,
)
from livegen.midi.midifile import Note
from livegen.model.tokens import HOLD, REST, lead_token, pitch_token


def test_onsets_quantize_to_the_nearest_sixteenth():
    # 0.13 beats is just past the middle of the first 16th: it belongs to step 1
    steps = to_steps([Note(60, 0.13, 0.5), Note(62, 0.12, 0.5), Note(64, 1.0, 1.01)])
    assert [(n.start, n.end) for n in steps] == [(1, 2), (0, 2), (4, 5)]


def test_skyline_keeps_the_top_line_of_chords():
    chord = [StepNote(60, 0, 4), StepNote(64, 0, 4), StepNote(67, 0, 2), StepNote(62, 4, 8)]
    assert skyline(chord) == [StepNote(67, 0, 2), StepNote(62, 4, 8)]


def test_skyline_cuts_a_held_note_when_a_higher_one_starts():
    line = skyline([StepNote(60, 0, 8), StepNote(72, 2, 4)])
    assert line == [StepNote(60, 0, 2), StepNote(72, 2, 4)]


def test_human_frames_split_onsets_from_held_notes():
    onsets, held = human_frames([StepNote(60, 0, 3), StepNote(64, 1, 2)], 4)
    assert onsets == [(60,), (64,), (), ()]
    assert held == [(), (60,), (60,), ()]
    assert [lead_token(o, h) for o, h in zip(onsets, held, strict=False)] == [
        pitch_token(60), pitch_token(64), HOLD, REST]


def test_voice_tokens_round_trip_to_notes():
    tokens = voice_tokens([StepNote(48, 0, 2), StepNote(50, 4, 5)], 6)
    assert list(tokens) == [pitch_token(48), HOLD, REST, REST, pitch_token(50), REST]


@pytest.mark.parametrize("make", [human_frames, voice_tokens])
def test_a_piece_longer_than_the_grid_holds_is_refused_before_allocating(make):
    """A 2^28-beat note (one 37-byte MIDI file) must not become a billion-step array."""
    huge = StepNote(60, 0, 2**30)
    at_cap = make([huge], MAX_STEPS)  # the longest piece allowed
    assert len(at_cap[0] if isinstance(at_cap, tuple) else at_cap) == MAX_STEPS
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=r"1,073,741,824 16th steps \(268,435,456 beats\) is "
                           r"longer than the 100,000 steps \(25,000 beats\) a piece may have"):
            make([huge], 2**30)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2**20
