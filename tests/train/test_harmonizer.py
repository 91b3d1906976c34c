import numpy as np
import pytest

from livegen.model.tokens import HOLD, REST, pitch_token
from livegen.train.harmonizer import choose_triad, harmonize, voice_chord
from livegen.train.metrics import Score, measure, sounding

RANGES = [(53, 74), (48, 69), (36, 62)]  # alto, tenor, bass
TUNE = (
    ". . . . 60 - - - 64 - - - 67 - - - 65 - 64 - 62 - - - 64 - 65 - 67 - - - "
    "72 - - - 71 - 69 - 67 - 65 - 64 - - - 62 - - - 60 - - - - - - -"
)


def line(text: str) -> np.ndarray:
    """Tokens from a compact score: a number starts that MIDI pitch, '-' holds, '.' rests."""
    symbols = {"-": HOLD, ".": REST}
    return np.array([symbols[w] if w in symbols else pitch_token(int(w)) for w in text.split()])


def test_output_shape_and_rhythm_follow_the_melody():
    melody = line("- . 60 - - . 62 - 64")
    voices = harmonize(melody, RANGES)
    assert voices.shape == (9, 3) and voices.dtype.kind == "i"
    onset = melody >= pitch_token(0)
    assert (voices[onset] >= pitch_token(0)).all()
    expected = [REST, REST, HOLD, HOLD, REST, HOLD]
    np.testing.assert_array_equal(voices[~onset], np.repeat(np.array(expected)[:, None], 3, axis=1))


def test_voices_stay_in_range_and_below_the_melody():
    melody = line(TUNE)
    pitches = sounding(harmonize(melody, RANGES))
    for voice, (low, high) in enumerate(RANGES):
        sounded = pitches[:, voice][pitches[:, voice] >= 0]
        assert sounded.size and low <= sounded.min() and sounded.max() <= high
    assert (np.diff(np.column_stack([sounding(melody), pitches]), axis=1) <= 0).all()


def test_each_chord_is_the_preferred_triad_containing_the_melody_note():
    melody = line("60 - 62 - 65 - 64 - 67 - 71 - 72 - - -")
    bass = harmonize(melody, RANGES)[melody >= pitch_token(0), 2]
    assert [(int(t) - pitch_token(0)) % 12 for t in bass] == [0, 7, 5, 0, 0, 7, 0]


def test_choose_triad_preferences():
    c_major = (0, "major")
    assert choose_triad(0, c_major) == (0, 4, 7)  # I before IV and vi
    assert choose_triad(2, c_major) == (7, 11, 2)  # V before ii
    assert choose_triad(9, c_major) == (5, 9, 0)  # IV before vi and ii
    a_minor = (9, "minor")
    assert choose_triad(8, a_minor) == (4, 8, 11)  # V with the raised 7th
    assert choose_triad(7, a_minor) == (0, 4, 7)  # III holds the natural 7th
    assert choose_triad(6, a_minor) == (2, 6, 9)  # the raised 6th: IV of melodic minor
    assert choose_triad(1, c_major) == (1, 5, 8)  # chromatic note: major triad on it
    assert choose_triad(4, None) == (4, 8, 11)


def test_voice_chord_is_close_position_below_the_melody():
    assert voice_chord(67, (0, 4, 7), RANGES) == (64, 60, 48)
    assert voice_chord(72, (5, 9, 0), RANGES) == (69, 65, 53)
    # a low melody note pushes the alto up into its range: the floor does not mind crossing
    assert voice_chord(55, (0, 4, 7), RANGES) == (64, 48, 36)


def test_consonance_is_high_on_a_simple_diatonic_tune():
    melody = line(TUNE)
    figures = measure(Score(melody, harmonize(melody, RANGES), RANGES)).figures()
    assert figures["consonance"] >= 0.9
    assert figures["in_key"] == 1.0 and figures["range"] == 1.0 and figures["crossing"] == 0.0
    assert figures["parallels_per_100_beats"] > 0  # naive block chords move in parallel


def test_silent_melody_gives_silent_voices():
    voices = harmonize(line(". - . ."), RANGES)
    assert (voices == REST).all()


def test_needs_three_ranges():
    with pytest.raises(ValueError, match="3 ranges"):
        harmonize(line("60 -"), RANGES[:2])
