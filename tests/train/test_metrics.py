"""Each figure of train/metrics.py on small scores worked out by hand, step by step.

Scores are written one token per 16th step: a number starts that MIDI pitch, '-' holds, '.'
rests; beats fall on steps 0, 4, 8, ... unless a first downbeat shifts them.
"""

import math

import numpy as np
import pytest

from livegen.model.tokens import HOLD, REST, pitch_token
from livegen.train.metrics import CHORDAL, Counts, Score, evaluate, measure, sounding

WIDE = (0, 127)


def line(text: str) -> np.ndarray:
    """Tokens from a compact score: a number starts that MIDI pitch, '-' holds, '.' rests."""
    symbols = {"-": HOLD, ".": REST}
    return np.array([symbols[w] if w in symbols else pitch_token(int(w)) for w in text.split()])


def held(*notes: tuple[int, int]) -> str:
    """(pitch, steps) notes, each held for its steps: held((60, 3)) == "60 - -"."""
    return " ".join(" ".join([str(p)] + ["-"] * (steps - 1)) for p, steps in notes)


def score(melody: str, *voices: str, ranges=None, first_downbeat: int = 0, **kw) -> Score:
    parts = np.column_stack([line(v) for v in voices])
    return Score(line(melody), parts, ranges or [WIDE] * len(voices),
                 first_downbeat=first_downbeat, **kw)


def pcs(*pitch_classes: int) -> int:
    return sum(1 << pc for pc in pitch_classes)


# ------------------------------------------------------------------------ sounding and onsets


def test_sounding_carries_holds_and_silences_holds_after_rests():
    expected = [-1, 60, 60, 60, -1, -1, 62, 64]
    np.testing.assert_array_equal(sounding(line("- 60 - - . - 62 64")), expected)


def test_sounding_works_per_column():
    tokens = np.column_stack([line("60 - . 61"), line("- 50 - -")])
    np.testing.assert_array_equal(sounding(tokens), [[60, -1], [60, 50], [-1, 50], [61, 50]])


# ------------------------------------------------------------------------ strong-beat consonance


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


def test_a_voice_holding_into_a_melody_onset_is_judged():
    # step 0: the melody is silent, nothing judged; step 4: the melody starts E over the
    # voice's held C (a third): judged although the voice starts nothing there
    counts = measure(score(". . . . 64 - - -", "60 - - - - - - -"))
    assert (counts.consonant, counts.judged) == (1, 1)
    # the same with a held tritone: judged and harsh
    counts = measure(score(". . . . 66 - - -", "60 - - - - - - -"))
    assert (counts.consonant, counts.judged) == (0, 1)


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


# ------------------------------------------------------------------------ in-key rate


def test_in_key_rate_uses_the_melodys_key():
    c_major = "60 - 62 - 64 - 65 - 67 - 69 - 71 - 72 - - -"
    counts = measure(score(c_major, "55 - 59 - 60 - 66 - 64 - . - . - . - - -"))
    assert (counts.in_key, counts.key_onsets) == (4, 5)  # F# is outside C major
    a_minor = "69 - - - 71 - 72 - 74 - 76 - - - 77 - 80 - 81 - - - - -"
    counts = measure(score(a_minor, "64 - 68 - 66 - 67 - " + ". " * 16))
    assert counts.figures()["in_key"] == 1.0  # raised 7th and 6th, natural 7th all belong


def test_the_key_weighs_the_melodys_sounding_durations():
    # D held 12 steps, A 12, F 8, then five short notes: by sounding duration the key is
    # D minor (by onsets alone it would be C major). The voice's C# and Bb belong to D minor
    # (raised 7th, natural 6th) and not to C major.
    melody = held((62, 12), (69, 12), (65, 8), (64, 1), (67, 1), (71, 1), (72, 1), (60, 1))
    voice = held((61, 4), (58, 4), (60, 29))
    counts = measure(score(melody, voice))
    assert (counts.in_key, counts.key_onsets) == (3, 3)
    assert counts.figures()["in_key"] == 1.0


def test_in_key_is_undefined_without_a_melody():
    counts = measure(score(". . . .", "60 - 62 -"))
    assert counts.key_onsets == 0
    assert math.isnan(counts.figures()["in_key"])


def test_in_key_opening_counts_the_four_beats_from_the_melodys_first_onset():
    # C major melody from step 2; the voice plays F# (out of key) at steps 0, 17 and 18:
    # step 0 is before the melody's first onset, step 17 inside the 16 steps 2..17, step 18
    # after them; its C at steps 2 and 10 are inside and in key
    melody = ". . " + held((60, 4), (64, 4), (67, 4), (72, 4), (71, 4), (72, 4))
    voice = held((54, 2), (48, 8), (55, 7), (54, 1), (54, 2), (48, 6))
    counts = measure(score(melody, voice))
    assert (counts.opening_in_key, counts.opening_onsets) == (2, 3)
    assert counts.figures()["in_key_opening"] == pytest.approx(2 / 3)
    assert (counts.in_key, counts.key_onsets) == (3, 6)


# ------------------------------------------------------------------------ parallels


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


def test_a_fifth_moving_to_an_octave_is_not_a_parallel():
    # 67/60 (a fifth) -> 74/67 (a fifth): counted; 67/60 -> 74/62 (an octave), both rising:
    # the same direction into a perfect interval, but not the same one
    assert measure(score("67 - 74 -", "60 - 67 -")).parallels == 1
    assert measure(score("67 - 74 -", "60 - 62 -")).parallels == 0


def test_a_held_part_does_not_make_a_parallel():
    assert measure(score("67 - 69 -", "60 - - -")).parallels == 0


def test_parallels_compare_consecutive_onset_steps_of_any_part():
    # the melody moves G -> A at step 2, the voice C -> D at step 4: between the onset steps
    # 0 -> 2 only the melody moves, between 2 -> 4 only the voice: no parallel, although each
    # part's consecutive notes form fifths
    assert measure(score("67 - 69 - - -", "60 - - - 62 -")).parallels == 0


def test_parallel_between_two_voices_with_the_melody_holding():
    counts = measure(score("76 - - -", "67 - 69 -", "60 - 62 -"))
    assert counts.parallels == 1


# ------------------------------------------------------------------------ voice crossing


def test_a_voice_above_the_melody_is_a_crossing():
    counts = measure(score("60 - - -", "64 - . ."))
    assert (counts.crossing_steps, counts.multi_steps) == (2, 2)
    assert counts.figures()["crossing"] == 1.0


def test_equal_pitches_are_not_a_crossing():
    assert measure(score("60 - 64 -", "60 - 62 -")).crossing_steps == 0


def test_crossing_skips_a_resting_voice():
    counts = measure(score("72 - - -", ". . . .", "60 - 64 -", "64 - 60 -"))
    assert (counts.crossing_steps, counts.multi_steps) == (2, 4)


def test_a_held_voice_crosses_a_melody_that_falls_below_it():
    # the voice holds E; the melody falls from G to C under it at step 2
    counts = measure(score("67 - 60 -", "64 - - -"))
    assert (counts.crossing_steps, counts.multi_steps) == (2, 4)


# ------------------------------------------------------------------------ range and onsets


def test_out_of_range_onset_lowers_range():
    counts = measure(score("72 - 74 -", "60 - 40 -", ranges=[(48, 70)]))
    assert counts.figures()["range"] == 0.5


def test_onsets_per_beat_counts_every_voice_onset_and_each_voice():
    counts = measure(score("72 - - - - - - -", "60 62 - - 64 - . .", "48 - - - - - - -",
                           names=("tenor", "bass")))
    assert counts.onsets == 4
    figures = counts.figures()
    assert figures["onsets_per_beat"] == 2.0
    assert figures["onsets_per_beat_tenor"] == 1.5 and figures["onsets_per_beat_bass"] == 0.5


# ------------------------------------------------------------------------ bass agreement


def test_bass_agreement_compares_the_lowest_voice_on_beats_where_both_basses_sound():
    # beats 0, 4, 8, 12.  bass vs Bach's: 0: C3 / C2, same class; 4: G3 vs Bach's C2 held
    # (held notes sound): differ; 8: the bass rests, not compared; 12: D3 / D2, same.
    # Off the beat (step 5) Bach's E is not compared. The upper voice would agree at step 4.
    bach = "36 - - - - 40 - - 43 - - - 38 - - -"
    bass = "48 - - - 55 - - - . . . . 50 - - -"
    upper = "64 - - - 60 - - - 67 - - - 62 - - -"
    counts = measure(score("72 " + "- " * 15, upper, bass, reference_bass=line(bach)))
    assert (counts.bass_agree, counts.bass_compared) == (2, 3)
    assert counts.figures()["bass_agreement"] == pytest.approx(2 / 3)


def test_bass_agreement_is_undefined_without_a_reference():
    assert math.isnan(measure(score("72 - - -", "48 - - -")).figures()["bass_agreement"])


# ------------------------------------------------------------------------ cadence


def test_cadence_asks_for_the_bass_on_the_last_melody_onsets_pitch_class():
    # the melody's last onset is C5 at step 4 (then it rests): the bass holds C3 from step 2
    ends_on_c = measure(score("62 - - - 72 - . .", "67 - - - 64 - - -", "43 - 48 - - - - -"))
    assert (ends_on_c.cadences, ends_on_c.cadence_scores) == (1, 1)
    # the upper voice has the class, the bass (the lowest voice) has not
    upper_only = measure(score("62 - - - 72 - . .", "60 - - - - - - -", "43 - - - - - - -"))
    assert (upper_only.cadences, upper_only.cadence_scores) == (0, 1)
    # no bass sounding at the last onset: a score without a cadence
    silent = measure(score("62 - - - 72 - . .", "67 - - - - - - -", "43 - . . . . . ."))
    assert (silent.cadences, silent.cadence_scores) == (0, 1)
    assert (ends_on_c + upper_only + silent).figures()["cadence"] == pytest.approx(1 / 3)


# ------------------------------------------------------------------------ under the final note


def test_onsets_under_the_final_note_leave_out_the_chord_struck_with_it():
    # the last melody onset is C at step 8, held to step 15 (2 beats), then a rest. The
    # voice strikes A with it (not counted), B at 10 and C at 12 (counted), D at 16 after the
    # note has ended (not counted): 2 onsets in 2 beats.
    melody = held((64, 8), (60, 8), (-1, 4)).replace("-1", ".")
    voice = "48 - - - - - - - 45 - 47 - 48 - - - 50 - - -"
    counts = measure(score(melody, voice))
    assert (counts.final_onsets, counts.final_beats) == (2, 2.0)
    assert counts.figures()["onsets_under_final"] == 1.0


def test_onsets_under_the_final_note_pool_over_scores():
    a = measure(score("60 - - -", "48 - 50 -"))  # 1 onset in 1 beat
    b = measure(score("60 - - - - - - -", "48 - - - - - - -"))  # 0 onsets in 2 beats
    assert (a + b).figures()["onsets_under_final"] == pytest.approx(1 / 3)


# ------------------------------------------------------------------------ leading-tone doubling


def test_leading_tone_doubling_counts_two_parts_on_the_leading_tone_in_any_octave():
    # C major (C E G B C, by duration). Beats: 0 C/C, 4 E/G, 8 G/B (one B), 12 B over the
    # voice's B held from step 8 (two Bs), 16 the melody alone (not a step with two parts).
    melody = held((60, 4), (64, 4), (67, 4), (71, 4), (72, 4))
    voice = held((48, 4), (55, 4), (59, 8)) + " . . . ."
    counts = measure(score(melody, voice))
    assert (counts.leading_doubled, counts.leading_steps) == (1, 4)
    assert counts.figures()["leading_tone_doubled"] == 0.25


def test_leading_tone_in_minor_is_the_raised_seventh():
    # A minor by duration; G# in the melody and the voice on beat 8 is doubled, G on beat 12
    # is not the leading tone
    melody = held((69, 8), (72, 4), (68, 4), (64, 4), (67, 4), (69, 8))
    voice = held((57, 8), (57, 4), (56, 4), (52, 4), (55, 4), (45, 8))
    counts = measure(score(melody, voice))
    assert (counts.leading_doubled, counts.leading_steps) == (1, 8)


# ------------------------------------------------------------------------ non-chord share


def test_the_chord_table_knows_triads_sevenths_and_their_subsets():
    assert CHORDAL[pcs(0, 4, 7, 11)]  # C major seventh
    assert CHORDAL[pcs(0, 3, 6, 9)]  # diminished seventh
    assert CHORDAL[pcs(0, 4, 8)]  # augmented
    assert CHORDAL[pcs(0, 3, 6, 10)]  # half-diminished
    assert CHORDAL[pcs(0, 6)]  # a tritone is part of D7
    assert not CHORDAL[pcs(0, 2, 4)]  # C D E
    assert not CHORDAL[pcs(0, 3, 4)]  # minor and major third together
    assert not CHORDAL[pcs(0, 4, 7, 2)]  # an added ninth


def test_non_chord_share_judges_beat_steps_with_two_parts_or_more():
    # beat 0: C E G B (major seventh); 4: C D E G (not a chord); 8: the melody alone (not
    # judged); 12: Bb C E G (dominant seventh); the cluster at step 2 is off the beat
    melody = "72 - 74 - 74 - - - 72 - - - 72 - - -"
    alto = "71 - 71 - 67 - - - . . . . 70 - - -"
    tenor = "64 - 73 - 64 - - - . . . . 64 - - -"
    bass = "48 - - - 48 - - - . . . . 43 - - -"
    counts = measure(score(melody, alto, tenor, bass))
    assert (counts.non_chord, counts.chord_steps) == (1, 3)
    assert counts.figures()["non_chord"] == pytest.approx(1 / 3)


# ------------------------------------------------------------------------ chord changes


def test_chord_changes_count_differing_beats_between_sounding_ones_per_bar():
    # 2/4 (2 beats a bar), 8 beats = 4 bars. Pitch-class sets on the beats:
    # {C,E} {C,E} (same set, new voicing: no change) {D,F} (change) {} {C,E} (next to a
    # silent beat: no change) {G,B} (change) {G,B} {C,E} (change); off-beat steps ignored
    melody = "64 - 65 - 76 - - - 74 - - - . . . . 64 - - - 71 - - - 71 - - - 72 - - -"
    voice = "60 - 62 - 60 - 61 - 65 - - - . . . . 60 - - - 55 - - - 55 - - - 64 - - -"
    counts = measure(score(melody, voice, beats_per_bar=2))
    assert (counts.chord_changes, counts.bars) == (3, 4.0)
    assert counts.figures()["chord_changes_per_bar"] == 0.75


# ------------------------------------------------------------------------ leaps


def test_leaps_are_fifths_or_more_between_consecutive_onsets_of_one_voice():
    # upper voice: C -> G (7, a leap), rest, G -> C (7 across the rest: a leap), C -> F# (6),
    # F# -> C (6); lower voice: one note. Between voices nothing is a leap.
    upper = "60 - 67 - . . 60 - 66 - 60 - - - - -"
    lower = "40 - - - - - - - - - - - - - - -"
    counts = measure(score("72 " + "- " * 15, upper, lower))
    assert counts.leaps == 2
    assert counts.figures()["leaps_per_100_beats"] == 50.0


# ------------------------------------------------------------------------ pooling


def test_empty_counts_give_nan_figures():
    figures = Counts().figures()
    assert set(figures) == {
        "consonance",
        "in_key",
        "in_key_opening",
        "parallels_per_100_beats",
        "crossing",
        "range",
        "onsets_per_beat",
        "bass_agreement",
        "cadence",
        "onsets_under_final",
        "leading_tone_doubled",
        "non_chord",
        "chord_changes_per_bar",
        "leaps_per_100_beats",
    }
    assert all(math.isnan(value) for value in figures.values())


def test_counts_add_up_across_scores():
    first = score("67 - 69 -", "60 - 62 -", names=("bass",))
    second = score("66 - - - - - - -", "60 - - - - - - -", names=("bass",))
    total = measure(first) + measure(second)
    assert total.parallels == 1 and total.beats == 3.0 and total.judged == 2
    assert total.voice_onsets == {"bass": 3}
    assert total.figures() == pytest.approx(evaluate([first, second]), nan_ok=True)


def test_per_voice_onsets_add_up_across_different_voices():
    tenor = measure(score("72 - - -", "60 62 - -", names=("tenor",)))
    bass = measure(score("72 - - -", "48 - - -", names=("bass",)))
    assert (tenor + bass).voice_onsets == {"tenor": 2, "bass": 1}


def test_score_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="ranges"):
        Score(line("60 -"), np.column_stack([line("60 -")]), [WIDE, WIDE])
    with pytest.raises(ValueError, match="voices"):
        Score(line("60 - -"), np.column_stack([line("60 -")]), [WIDE])
    with pytest.raises(ValueError, match="names"):
        Score(line("60 -"), np.column_stack([line("60 -")]), [WIDE], names=("a", "b"))
    with pytest.raises(ValueError, match="reference_bass"):
        Score(line("60 -"), np.column_stack([line("60 -")]), [WIDE], reference_bass=line("60"))
