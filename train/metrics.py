"""Evaluation figures of a harmonization (README, "Figures"), kept as counts so that scores add up.

`measure(score)` gives the numerators and denominators of one score; sum the `Counts` of many
scores and call `figures()` to get the shares.  A figure whose denominator is zero (no judged
pair, no voice onset, no beat, ...) is NaN, never 0, so that "nothing to judge" cannot pass for a
perfect or a failing score.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields
from itertools import combinations

import numpy as np

from livegen.model.tokens import HOLD, PITCH0
from livegen.tonality import detect_key, scale_pitch_classes

CONSONANT = (0, 3, 4, 7, 8, 9)  # unison/octave, thirds, fifth, sixths (mod 12)
FOURTH = 5  # consonant against the melody unless the voice is the lowest one sounding
PERFECT = (0, 7)  # parallel octaves/unisons and fifths


@dataclass
class Score:
    melody: np.ndarray  # int tokens [T]: the human part's top-note tokens (REST/HOLD/pitch)
    voices: np.ndarray  # int tokens [T, V]: machine voices, ordered top to bottom
    ranges: list[tuple[int, int]]  # per voice (low, high) MIDI pitch, inclusive
    steps_per_beat: int = 4
    first_downbeat: int = 0  # step index of the first beat; steps before it are a pickup

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
        if self.steps_per_beat <= 0:
            raise ValueError(f"steps_per_beat must be positive, got {self.steps_per_beat}")

    @property
    def beats(self) -> float:
        return self.melody.shape[0] / self.steps_per_beat


@dataclass
class Counts:
    consonant: int = 0  # judged (beat step, voice) pairs that are consonant
    judged: int = 0  # all judged (beat step, voice) pairs
    in_key: int = 0  # voice onsets in the melody's key
    key_onsets: int = 0  # voice onsets of scores whose melody has a key
    parallels: int = 0  # parallel fifths and octaves
    crossing_steps: int = 0  # steps with a crossing
    multi_steps: int = 0  # steps with at least two parts sounding
    in_range: int = 0  # voice onsets inside the voice's range
    onsets: int = 0  # voice onsets, all voices
    beats: float = 0.0

    def __add__(self, other: Counts) -> Counts:
        if not isinstance(other, Counts):
            return NotImplemented
        sums = {f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)}
        return Counts(**sums)

    def figures(self) -> dict[str, float]:
        """The §8 figures; NaN where the denominator is zero."""
        return {
            "consonance": _share(self.consonant, self.judged),
            "in_key": _share(self.in_key, self.key_onsets),
            "parallels_per_100_beats": 100.0 * _share(self.parallels, self.beats),
            "crossing": _share(self.crossing_steps, self.multi_steps),
            "range": _share(self.in_range, self.onsets),
            "onsets_per_beat": _share(self.onsets, self.beats),
        }


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
    in_key, key_onsets = _key_counts(melody, score.voices)
    in_range, n_onsets = _range_counts(score.voices, score.ranges)
    consonant, judged = _consonance_counts(score, melody, voices, starts)
    crossing_steps, multi_steps = _crossing_counts(parts)
    return Counts(
        consonant=consonant,
        judged=judged,
        in_key=in_key,
        key_onsets=key_onsets,
        parallels=_parallel_count(parts, starts),
        crossing_steps=crossing_steps,
        multi_steps=multi_steps,
        in_range=in_range,
        onsets=n_onsets,
        beats=score.beats,
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


def _consonance_counts(
    score: Score, melody: np.ndarray, voices: np.ndarray, starts: np.ndarray
) -> tuple[int, int]:
    on_beat = beat_steps(melody.shape[0], score.steps_per_beat, score.first_downbeat)
    voice_sounds = voices >= 0
    judged = (on_beat & (melody >= 0))[:, None] & voice_sounds & (starts[:, :1] | starts[:, 1:])
    interval = np.abs(melody[:, None] - voices) % 12
    silent = np.iinfo(np.int64).max
    lowest_pitch = np.where(voice_sounds, voices, silent).min(axis=1, initial=silent)
    lowest = voices == lowest_pitch[:, None]
    good = np.isin(interval, CONSONANT) | ((interval == FOURTH) & ~lowest)
    return int((good & judged).sum()), int(judged.sum())


def _key_counts(melody: np.ndarray, voice_tokens: np.ndarray) -> tuple[int, int]:
    key = melody_key(melody)
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
