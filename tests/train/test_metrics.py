import math

import numpy as np
import pytest

from livegen.model.tokens import HOLD, REST, pitch_token
from livegen.train.metrics import Counts, Score, evaluate, measure, sounding

WIDE = (0, 127)


def line(text: str) -> np.ndarray:
    """Tokens from a compact score: a number starts that MIDI pitch, '-' holds, '.' rests."""
    symbols = {"-": HOLD, ".": REST}
    return np.array([symbols[w] if w in symbols else pitch_token(int(w)) for w in text.split()])


def score(melody: str, *voices: str, ranges=None, first_downbeat: int = 0) -> Score:
    parts = np.column_stack([line(v) for v in voices])
    return Score(line(melody), parts, ranges or [WIDE] * len(voices), first_downbeat=first_downbeat)


def test_sounding_carries_holds_and_silences_holds_after_rests():
    expected = [-1, 60, 60, 60, -1, -1, 62, 64]
    np.testing.assert_array_equal(sounding(line("- 60 - - . - 62 64")), expected)


def test_sounding_works_per_column():
    tokens = np.column_stack([line("60 - . 61"), line("- 50 - -")])
    np.testing.assert_array_equal(sounding(tokens), [[60, -1], [60, 50], [-1, 50], [61, 50]])


def test_parallel_fifth_between_melody_and_bass_is_counted_once():
    counts = measure(score("67 - 69 - 71 - - -", "60 - 62 - . - - -"))
    assert counts.parallels == 1
    assert counts.figures()["parallels_per_100_beats"] == pytest.approx(50.0)  # 1 in 2 beats


def test_parallel_octave_and_unison_are_counted():
    assert measure(score("72 - 74 -", "60 - 62 -")).parallels == 1
    assert measure(score("60 - 62 -", "60 - 62 -")).parallels == 1


def test_contrary_motion_between_fifths_is_not_a_parallel():
    # 67/60 is a fifth, 69/50 a compound fifth, but the parts move in opposite directions
    assert measure(score("67 - 69 -", "60 - 50 -")).parallels == 0


def test_a_held_part_does_not_make_a_parallel():
    assert measure(score("67 - 69 -", "60 - - -")).parallels == 0


def test_parallel_between_two_voices_with_the_melody_holding():
    counts = measure(score("76 - - -", "67 - 69 -", "60 - 62 -"))
    assert counts.parallels == 1


def test_a_voice_above_the_melody_is_a_crossing():
    counts = measure(score("60 - - -", "64 - . ."))
    assert (counts.crossing_steps, counts.multi_steps) == (2, 2)
    assert counts.figures()["crossing"] == 1.0


def test_equal_pitches_are_not_a_crossing():
    assert measure(score("60 - 64 -", "60 - 62 -")).crossing_steps == 0


def test_crossing_skips_a_resting_voice():
    counts = measure(score("72 - - -", ". . . .", "60 - 64 -", "64 - 60 -"))
    assert (counts.crossing_steps, counts.multi_steps) == (2, 4)


def test_tritone_on_a_beat_with_an_onset_is_dissonant():
    counts = measure(score("66 - - -", "60 - - -"))
    assert (counts.consonant, counts.judged) == (0, 1)
    assert counts.figures()["consonance"] == 0.0


def test_fourth_counts_against_an_upper_voice_but_not_against_the_lowest():
    upper = measure(score("65 - - -", "60 - - -", "53 - - -"))
    assert (upper.consonant, upper.judged) == (2, 2)
    lowest = measure(score("65 - - -", "60 - - -"))
    assert (lowest.consonant, lowest.judged) == (0, 1)


def test_the_lowest_voice_is_the_lowest_sounding_one():
    # the bass rests, so the tenor is the lowest and its fourth below the melody is judged harsh
    counts = measure(score("65 - - -", "62 - - -", "60 - - -", ". . . ."))
    assert (counts.consonant, counts.judged) == (1, 2)


def test_off_beat_notes_are_not_judged():
    counts = measure(score("60 66 - - 64", "60 - 60 - -"))
    # step 0: octave, judged; steps 1-3 off the beat; step 4 on the beat, melody starts: third
    assert (counts.consonant, counts.judged) == (2, 2)


def test_beat_without_any_onset_is_not_judged():
    counts = measure(score("60 - - - - - - -", "54 - - - - - - -"))
    assert counts.judged == 1


def test_first_downbeat_shifts_the_beats():
    counts = measure(score(". 66 - - - 65", ". 60 - - - -", first_downbeat=1))
    # step 1 (a beat): tritone, both start; step 5 (a beat): melody starts a fourth over the bass
    assert (counts.consonant, counts.judged) == (0, 2)
    assert measure(score(". 66 - - - 65", ". 60 - - - -")).judged == 0  # beats 0 and 4 instead


def test_out_of_range_onset_lowers_range():
    counts = measure(score("72 - 74 -", "60 - 40 -", ranges=[(48, 70)]))
    assert counts.figures()["range"] == 0.5


def test_onsets_per_beat_counts_every_voice_onset():
    counts = measure(score("72 - - - - - - -", "60 62 - - 64 - . .", "48 - - - - - - -"))
    assert counts.onsets == 4
    assert counts.figures()["onsets_per_beat"] == 2.0


def test_in_key_rate_uses_the_melodys_key():
    c_major = "60 - 62 - 64 - 65 - 67 - 69 - 71 - 72 - - -"
    counts = measure(score(c_major, "55 - 59 - 60 - 66 - 64 - . - . - . - - -"))
    assert (counts.in_key, counts.key_onsets) == (4, 5)  # F# is outside C major
    a_minor = "69 - - - 71 - 72 - 74 - 76 - - - 77 - 80 - 81 - - - - -"
    counts = measure(score(a_minor, "64 - 68 - 66 - 67 - " + ". " * 16))
    assert counts.figures()["in_key"] == 1.0  # raised 7th and 6th, natural 7th all belong


def test_in_key_is_undefined_without_a_melody():
    counts = measure(score(". . . .", "60 - 62 -"))
    assert counts.key_onsets == 0
    assert math.isnan(counts.figures()["in_key"])


def test_empty_counts_give_nan_figures():
    figures = Counts().figures()
    assert set(figures) == {
        "consonance",
        "in_key",
        "parallels_per_100_beats",
        "crossing",
        "range",
        "onsets_per_beat",
    }
    assert all(math.isnan(value) for value in figures.values())


def test_counts_add_up_across_scores():
    first = score("67 - 69 -", "60 - 62 -")
    second = score("66 - - - - - - -", "60 - - - - - - -")
    total = measure(first) + measure(second)
    assert total.parallels == 1 and total.beats == 3.0 and total.judged == 2
    assert evaluate([first, second]) == total.figures()


def test_score_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="ranges"):
        Score(line("60 -"), np.column_stack([line("60 -")]), [WIDE, WIDE])
    with pytest.raises(ValueError, match="voices"):
        Score(line("60 - -"), np.column_stack([line("60 -")]), [WIDE])
