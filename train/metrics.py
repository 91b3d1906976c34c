"""Evaluation figures of a harmonization (README, "Figures"), kept as counts so that scores add up.

`measure(score)` gives the numerators and denominators of one score; sum the `Counts` of many
scores and call `figures()` to get the shares (pooled: the sum of the numerators over the sum of
the denominators). A figure whose denominator is zero (no judged pair, no voice onset, no beat,
no bass, ...) is NaN, never 0, so that "nothing to judge" cannot pass for a perfect or a failing
score.

The definitions, on the 16th-note grid (a part *sounds* at a step when it starts or holds a note
there; it *starts* one where its token is a pitch):

- a *beat step* is a step t with (t - first downbeat) % steps per beat == 0: the file's own bar
  grid; the *parts* are the melody (the human part's top note), then the voices top to bottom;
  the *bass* is the lowest voice part (the last column), and the *key* is the Krumhansl-Schmuckler
  key of the melody's sounding durations (minor includes the raised 6th and 7th);
- strong-beat consonance: at each beat step where the melody sounds, each voice sounding there,
  where the melody or that voice starts a note, is judged; consonant when its interval to the
  melody, mod 12, is in {0, 3, 4, 7, 8, 9}, or is 5 (the fourth) for a voice other than the
  lowest one sounding there;
- in-key rate: voice onsets whose pitch class is in the key; also over the opening, the
  onsets in the 4 beats from the melody's first onset;
- parallels: over consecutive steps where any part starts a note, every pair of parts that both
  sound at both steps, both move, in the same direction, and form the same perfect fifth or
  octave (mod 12) before and after; per 100 beats;
- voice crossing: the share of steps with at least two parts sounding where the sounding parts,
  in order, are not in descending pitch order (equal pitches are not a crossing);
- range adherence: voice onsets inside the voice's range; onsets per beat, all voices and each;
- bass agreement (only where a reference bass, Bach's, is given): the share of beat steps
  where both basses sound on which their pitch classes are equal;
- cadence: per score, 1 if the bass sounding at the step of the melody's last onset has that
  note's pitch class (0 when no bass sounds there); the share of scores with a melody;
- onsets under the final note: voice onsets at the steps after the melody's last onset while
  that note is held (the chord struck with it not counted), per beat of that note (its whole
  length, onset step included);
- leading-tone doubling: the share of beat steps with at least two parts sounding where at
  least two parts sound the pitch class tonic + 11 of the key;
- non-chord share: the share of beat steps with at least two parts sounding whose pitch-class
  set is not a subset of a major, minor, diminished or augmented triad, or a dominant, major,
  minor, half-diminished or diminished seventh chord, on any root;
- chord changes per bar: beat steps whose sounding pitch-class set is non-empty, differs from
  the previous beat step's, which is non-empty too; over the number of bars (steps / bar);
- leaps: intervals of 7 semitones or more between consecutive onsets of one voice, summed over
  the voices, per 100 beats.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from itertools import combinations

import numpy as np

from livegen.model.tokens import HOLD, PITCH0
from livegen.tonality import detect_key, scale_pitch_classes

CONSONANT = (0, 3, 4, 7, 8, 9)  # unison/octave, thirds, fifth, sixths (mod 12)
FOURTH = 5  # consonant against the melody unless the voice is the lowest one sounding
PERFECT = (0, 7)  # parallel octaves/unisons and fifths
LEADING_TONE = 11  # semitones above the tonic
LEAP = 7  # semitones: a fifth or more between consecutive onsets of a voice
OPENING_BEATS = 4
# Chords whose subsets count as chordal, as intervals above the root.
CHORDS = {
    "major": (0, 4, 7),
    "minor": (0, 3, 7),
    "diminished": (0, 3, 6),
    "augmented": (0, 4, 8),
    "dominant seventh": (0, 4, 7, 10),
    "major seventh": (0, 4, 7, 11),
    "minor seventh": (0, 3, 7, 10),
    "half-diminished seventh": (0, 3, 6, 10),
    "diminished seventh": (0, 3, 6, 9),
}


def _chordal_sets() -> np.ndarray:
    """For each of the 4,096 pitch-class sets (bit pc set), whether it is a subset of a chord
    of `CHORDS` on some root."""
    chordal = np.zeros(1 << 12, dtype=bool)
    for intervals in CHORDS.values():
        for root in range(12):
            chord = sum(1 << ((root + i) % 12) for i in intervals)
            sub = chord
            while True:  # every subset of the chord's bits
                chordal[sub] = True
                if sub == 0:
                    break
                sub = (sub - 1) & chord
    return chordal


CHORDAL = _chordal_sets()


@dataclass
class Score:
    melody: np.ndarray  # int tokens [T]: the human part's top-note tokens (REST/HOLD/pitch)
    voices: np.ndarray  # int tokens [T, V]: machine voices, ordered top to bottom
    ranges: list[tuple[int, int]]  # per voice (low, high) MIDI pitch, inclusive
    steps_per_beat: int = 4
    first_downbeat: int = 0  # step index of the first beat; steps before it are a pickup
    beats_per_bar: int = 4
    names: Sequence[str] | None = None  # per voice, for the onsets per beat of each
    reference_bass: np.ndarray | None = None  # tokens [T] of a bass to compare the last voice to

    def __post_init__(self) -> None:
        self.melody = np.asarray(self.melody, dtype=np.int64)
        self.voices = np.asarray(self.voices, dtype=np.int64)
        if self.melody.ndim != 1:
            raise ValueError(f"melody must be 1-D [T], got shape {self.melody.shape}")
        if self.voices.ndim != 2 or self.voices.shape[0] != self.melody.shape[0]:
            raise ValueError(
                f"voices must be [T, V] with T = {self.melody.shape[0]}, got {self.voices.shape}"
            )
        if len(self.ranges) != self.voices.shape[1]:
            raise ValueError(f"{len(self.ranges)} ranges for {self.voices.shape[1]} voices")
        if self.steps_per_beat <= 0 or self.beats_per_bar <= 0:
            raise ValueError(f"steps_per_beat and beats_per_bar must be positive, got "
                             f"{self.steps_per_beat} and {self.beats_per_bar}")
        if self.names is None:
            self.names = tuple(f"voice {k + 1}" for k in range(self.voices.shape[1]))
        if len(self.names) != self.voices.shape[1]:
            raise ValueError(f"{len(self.names)} names for {self.voices.shape[1]} voices")
        if self.reference_bass is not None:
            self.reference_bass = np.asarray(self.reference_bass, dtype=np.int64)
            if self.reference_bass.shape != self.melody.shape:
                raise ValueError(f"reference_bass must be [T] with T = {self.melody.shape[0]}, "
                                 f"got {self.reference_bass.shape}")

    @property
    def beats(self) -> float:
        return self.melody.shape[0] / self.steps_per_beat

    @property
    def bars(self) -> float:
        return self.beats / self.beats_per_bar


@dataclass
class Counts:
    consonant: int = 0  # judged (beat step, voice) pairs that are consonant
    judged: int = 0  # all judged (beat step, voice) pairs
    in_key: int = 0  # voice onsets in the melody's key
    key_onsets: int = 0  # voice onsets of scores whose melody has a key
    opening_in_key: int = 0  # the same, in the first beats from the melody's first onset
    opening_onsets: int = 0
    parallels: int = 0  # parallel fifths and octaves
    crossing_steps: int = 0  # steps with a crossing
    multi_steps: int = 0  # steps with at least two parts sounding
    in_range: int = 0  # voice onsets inside the voice's range
    onsets: int = 0  # voice onsets, all voices
    voice_onsets: dict[str, int] = field(default_factory=dict)  # voice onsets by voice name
    beats: float = 0.0
    bass_agree: int = 0  # beat steps where both basses sound with the same pitch class
    bass_compared: int = 0  # beat steps where both basses sound
    cadences: int = 0  # scores whose bass has the final melody note's pitch class
    cadence_scores: int = 0  # scores with a melody onset (and at least one voice)
    final_onsets: int = 0  # voice onsets under the melody's held final note
    final_beats: float = 0.0  # length of the final notes, in beats
    leading_doubled: int = 0  # beat steps with the leading tone in two parts or more
    leading_steps: int = 0  # beat steps with two parts or more sounding, in a keyed score
    non_chord: int = 0  # beat steps whose pitch-class set is not chordal
    chord_steps: int = 0  # beat steps with two parts or more sounding
    chord_changes: int = 0
    bars: float = 0.0
    leaps: int = 0

    def __add__(self, other: Counts) -> Counts:
        if not isinstance(other, Counts):
            return NotImplemented
        sums: dict[str, object] = {}
        for f in fields(self):
            a, b = getattr(self, f.name), getattr(other, f.name)
            if isinstance(a, dict):
                merged = dict(a)
                for name, count in b.items():
                    merged[name] = merged.get(name, 0) + count
                sums[f.name] = merged
            else:
                sums[f.name] = a + b
        return Counts(**sums)  # type: ignore[arg-type]

    def figures(self) -> dict[str, float]:
        """The figures (README, "Figures"); NaN where the denominator is zero."""
        out = {
            "consonance": _share(self.consonant, self.judged),
            "in_key": _share(self.in_key, self.key_onsets),
            "in_key_opening": _share(self.opening_in_key, self.opening_onsets),
            "parallels_per_100_beats": 100.0 * _share(self.parallels, self.beats),
            "crossing": _share(self.crossing_steps, self.multi_steps),
            "range": _share(self.in_range, self.onsets),
            "onsets_per_beat": _share(self.onsets, self.beats),
        }
        for name, count in self.voice_onsets.items():
            out[f"onsets_per_beat_{name}"] = _share(count, self.beats)
        out |= {
            "bass_agreement": _share(self.bass_agree, self.bass_compared),
            "cadence": _share(self.cadences, self.cadence_scores),
            "onsets_under_final": _share(self.final_onsets, self.final_beats),
            "leading_tone_doubled": _share(self.leading_doubled, self.leading_steps),
            "non_chord": _share(self.non_chord, self.chord_steps),
            "chord_changes_per_bar": _share(self.chord_changes, self.bars),
            "leaps_per_100_beats": 100.0 * _share(self.leaps, self.beats),
        }
        return out


def _share(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else float("nan")


def sounding(tokens: np.ndarray) -> np.ndarray:
    """The MIDI pitch each part sounds at each step, or -1 for silence; same shape as `tokens`
    ([T] or [T, V], time first).  HOLD carries the last token on; a HOLD after REST (or at the
    start) is silence."""
    tokens = np.asarray(tokens, dtype=np.int64)
    steps = np.arange(tokens.shape[0]).reshape((-1,) + (1,) * (tokens.ndim - 1))
    last = np.maximum.accumulate(np.where(tokens != HOLD, steps, -1), axis=0)
    source = np.take_along_axis(tokens, np.maximum(last, 0), axis=0)
    return np.where((last >= 0) & (source >= PITCH0), source - PITCH0, -1)


def onsets(tokens: np.ndarray) -> np.ndarray:
    """True where a part starts a note."""
    return np.asarray(tokens) >= PITCH0


def measure(score: Score) -> Counts:
    """The counts behind every figure for one score."""
    melody = sounding(score.melody)
    voices = sounding(score.voices)
    parts = np.column_stack([melody, voices])
    starts = np.column_stack([onsets(score.melody), onsets(score.voices)])
    on_beat = beat_steps(melody.shape[0], score.steps_per_beat, score.first_downbeat)
    key = melody_key(melody)
    in_key, key_onsets = _key_counts(key, score.voices)
    opening_in_key, opening_onsets = _key_counts(key, score.voices[_opening(score)])
    in_range, n_onsets = _range_counts(score.voices, score.ranges)
    consonant, judged = _consonance_counts(on_beat, melody, voices, starts)
    crossing_steps, multi_steps = _crossing_counts(parts)
    bass_agree, bass_compared = _bass_counts(score, on_beat, voices)
    cadences, cadence_scores = _cadence_counts(score, melody, voices)
    final_onsets, final_beats = _final_counts(score)
    leading_doubled, leading_steps = _leading_counts(key, parts, on_beat)
    non_chord, chord_steps, chord_changes = _chord_counts(parts, on_beat)
    names = score.names or ()
    return Counts(
        consonant=consonant,
        judged=judged,
        in_key=in_key,
        key_onsets=key_onsets,
        opening_in_key=opening_in_key,
        opening_onsets=opening_onsets,
        parallels=_parallel_count(parts, starts),
        crossing_steps=crossing_steps,
        multi_steps=multi_steps,
        in_range=in_range,
        onsets=n_onsets,
        voice_onsets={name: int(onsets(score.voices[:, k]).sum())
                      for k, name in enumerate(names)},
        beats=score.beats,
        bass_agree=bass_agree,
        bass_compared=bass_compared,
        cadences=cadences,
        cadence_scores=cadence_scores,
        final_onsets=final_onsets,
        final_beats=final_beats,
        leading_doubled=leading_doubled,
        leading_steps=leading_steps,
        non_chord=non_chord,
        chord_steps=chord_steps,
        chord_changes=chord_changes,
        bars=score.bars,
        leaps=_leap_count(score.voices),
    )


def evaluate(scores: Iterable[Score]) -> dict[str, float]:
    """The figures over several scores, pooled (each pair, onset or step weighs the same)."""
    return sum((measure(score) for score in scores), Counts()).figures()


def beat_steps(length: int, steps_per_beat: int, first_downbeat: int) -> np.ndarray:
    """True at the steps that fall on a beat."""
    return (np.arange(length) - first_downbeat) % steps_per_beat == 0


def melody_key(melody_pitches: np.ndarray) -> tuple[int, str] | None:
    """The K-S key of sounding melody pitches ([T], -1 for silence), weighted by duration in
    steps; None when the melody gives no evidence (silent, or all 12 classes equally long)."""
    sounded = melody_pitches[melody_pitches >= 0]
    if sounded.size == 0:
        return None
    try:
        return detect_key(np.bincount(sounded % 12, minlength=12))
    except ValueError:
        return None


def _opening(score: Score) -> slice:
    """The steps of the first `OPENING_BEATS` beats from the melody's first onset."""
    first = np.flatnonzero(onsets(score.melody))
    if first.size == 0:
        return slice(0, 0)
    start = int(first[0])
    return slice(start, start + OPENING_BEATS * score.steps_per_beat)


def _consonance_counts(
    on_beat: np.ndarray, melody: np.ndarray, voices: np.ndarray, starts: np.ndarray
) -> tuple[int, int]:
    voice_sounds = voices >= 0
    judged = (on_beat & (melody >= 0))[:, None] & voice_sounds & (starts[:, :1] | starts[:, 1:])
    interval = np.abs(melody[:, None] - voices) % 12
    silent = np.iinfo(np.int64).max
    lowest_pitch = np.where(voice_sounds, voices, silent).min(axis=1, initial=silent)
    lowest = voices == lowest_pitch[:, None]
    good = np.isin(interval, CONSONANT) | ((interval == FOURTH) & ~lowest)
    return int((good & judged).sum()), int(judged.sum())


def _key_counts(key: tuple[int, str] | None, voice_tokens: np.ndarray) -> tuple[int, int]:
    if key is None:
        return 0, 0
    pitches = voice_tokens[onsets(voice_tokens)] - PITCH0
    scale = np.array(sorted(scale_pitch_classes(*key)))
    return int(np.isin(pitches % 12, scale).sum()), int(pitches.size)


def _range_counts(voice_tokens: np.ndarray, ranges: list[tuple[int, int]]) -> tuple[int, int]:
    low = np.array([r[0] for r in ranges])
    high = np.array([r[1] for r in ranges])
    starts = onsets(voice_tokens)
    pitches = voice_tokens - PITCH0
    inside = starts & (pitches >= low) & (pitches <= high)
    return int(inside.sum()), int(starts.sum())


def _crossing_counts(parts: np.ndarray) -> tuple[int, int]:
    """Steps where a part sounds strictly above the nearest sounding part listed above it."""
    sounds = parts >= 0
    columns = np.arange(parts.shape[1])
    above = np.maximum.accumulate(np.where(sounds, columns, -1), axis=1)  # last sounding, <= j
    above = np.column_stack([np.full(parts.shape[0], -1), above[:, :-1]])  # last sounding, < j
    upper = np.take_along_axis(parts, np.maximum(above, 0), axis=1)
    crossed = sounds & (above >= 0) & (parts > upper)
    multi = sounds.sum(axis=1) >= 2
    return int((crossed.any(axis=1) & multi).sum()), int(multi.sum())


def _parallel_count(parts: np.ndarray, starts: np.ndarray) -> int:
    """Parallel perfect fifths and octaves between consecutive onset steps of any part."""
    onset_steps = np.flatnonzero(starts.any(axis=1))
    before, after = parts[onset_steps[:-1]], parts[onset_steps[1:]]
    count = 0
    for i, j in combinations(range(parts.shape[1]), 2):
        sound = (before[:, i] >= 0) & (before[:, j] >= 0) & (after[:, i] >= 0) & (after[:, j] >= 0)
        move_i = np.sign(after[:, i] - before[:, i])
        move_j = np.sign(after[:, j] - before[:, j])
        same_motion = (move_i != 0) & (move_i == move_j)
        interval_before = np.abs(before[:, i] - before[:, j]) % 12
        interval_after = np.abs(after[:, i] - after[:, j]) % 12
        perfect = (interval_before == interval_after) & np.isin(interval_before, PERFECT)
        count += int((sound & same_motion & perfect).sum())
    return count


def _bass_counts(score: Score, on_beat: np.ndarray, voices: np.ndarray) -> tuple[int, int]:
    if score.reference_bass is None or voices.shape[1] == 0:
        return 0, 0
    ours, theirs = voices[:, -1], sounding(score.reference_bass)
    both = on_beat & (ours >= 0) & (theirs >= 0)
    return int((both & (ours % 12 == theirs % 12)).sum()), int(both.sum())


def _cadence_counts(score: Score, melody: np.ndarray, voices: np.ndarray) -> tuple[int, int]:
    starts = np.flatnonzero(onsets(score.melody))
    if starts.size == 0 or voices.shape[1] == 0:
        return 0, 0
    last = int(starts[-1])
    bass = int(voices[last, -1])
    return int(bass >= 0 and bass % 12 == melody[last] % 12), 1


def _final_counts(score: Score) -> tuple[int, float]:
    """(voice onsets after the melody's last onset while that note is held, its beats)."""
    starts = np.flatnonzero(onsets(score.melody))
    if starts.size == 0:
        return 0, 0.0
    last = int(starts[-1])
    after = score.melody[last + 1:]
    held = int(np.argmax(after != HOLD)) if (after != HOLD).any() else after.size
    under = onsets(score.voices[last + 1:last + 1 + held])
    return int(under.sum()), (held + 1) / score.steps_per_beat


def _leading_counts(key: tuple[int, str] | None, parts: np.ndarray, on_beat: np.ndarray
                    ) -> tuple[int, int]:
    if key is None:
        return 0, 0
    multi = on_beat & ((parts >= 0).sum(axis=1) >= 2)
    leading = (key[0] + LEADING_TONE) % 12
    doubled = ((parts >= 0) & (parts % 12 == leading)).sum(axis=1) >= 2
    return int((doubled & multi).sum()), int(multi.sum())


def _pitch_class_sets(parts: np.ndarray) -> np.ndarray:
    """Each step's sounding pitch classes as 12-bit sets (bit pc)."""
    bits = np.where(parts >= 0, 1 << (np.maximum(parts, 0) % 12), 0)
    return np.bitwise_or.reduce(bits, axis=1)


def _chord_counts(parts: np.ndarray, on_beat: np.ndarray) -> tuple[int, int, int]:
    """(non-chordal beat steps, beat steps with two parts or more, chord changes)."""
    sets = _pitch_class_sets(parts)
    multi = on_beat & ((parts >= 0).sum(axis=1) >= 2)
    non_chord = multi & ~CHORDAL[sets]
    beats = sets[on_beat]
    changes = (beats[1:] != 0) & (beats[:-1] != 0) & (beats[1:] != beats[:-1])
    return int(non_chord.sum()), int(multi.sum()), int(changes.sum())


def _leap_count(voice_tokens: np.ndarray) -> int:
    count = 0
    for k in range(voice_tokens.shape[1]):
        column = voice_tokens[:, k]
        pitches = column[onsets(column)] - PITCH0
        count += int((np.abs(np.diff(pitches)) >= LEAP).sum())
    return count
