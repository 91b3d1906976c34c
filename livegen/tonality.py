"""Keys: Krumhansl–Schmuckler detection, a provisional key from little evidence (`likely_key`,
for the first notes of a melody), scales, names, and a decaying live key tracker.

A key is a pair ``(tonic, mode)``: the tonic's pitch class 0..11 (C = 0) and ``"major"`` or
``"minor"``.  The minor scale here is natural minor plus the raised 6th and raised 7th, so that
melodic and harmonic minor notes count as in the key.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

Key = tuple[int, str]
MODES = ("major", "minor")

# Krumhansl & Kessler (1982) probe-tone ratings, tonic first.
MAJOR_PROFILE = (6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88)
MINOR_PROFILE = (6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17)

_MAJOR_STEPS = (0, 2, 4, 5, 7, 9, 11)
_MINOR_STEPS = (0, 2, 3, 5, 7, 8, 9, 10, 11)  # natural minor + raised 6th and 7th

NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
_FLAT_NAMES = ("C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B")
# Tonics spelled with flats: F, Bb, Eb, Ab, Db major; D, G, C, F, Bb, Eb minor.
_FLAT_TONICS = {"major": frozenset({5, 10, 3, 8, 1}), "minor": frozenset({2, 7, 0, 5, 10, 3})}

_LETTERS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_ACCIDENTALS = {"": 0, "#": 1, "♯": 1, "b": -1, "♭": -1}
_MODE_WORDS = {"major": "major", "maj": "major", "minor": "minor", "min": "minor", "m": "minor"}
_KEY_RE = re.compile(r"\s*([A-Ga-g])([#♯b♭]?)\s*((?i:major|maj|minor|min)|m)?\s*")
KEY_FORM = (
    "a note letter A-G, an optional # or b, then optionally 'major'/'maj' or 'minor'/'min'/'m' "
    "(e.g. 'C major', 'F# minor', 'Bb', 'Am'); without a mode the key is major"
)


def _standardized_profiles() -> np.ndarray:
    """The 24 rotated profiles (major tonics 0..11, then minor 0..11), each centred and scaled
    to unit length, so that a dot product with a centred unit vector is Pearson's r."""
    rows = []
    for profile in (MAJOR_PROFILE, MINOR_PROFILE):
        base = np.asarray(profile, dtype=np.float64)
        for tonic in range(12):
            rows.append(np.roll(base, tonic))  # weight of pitch class pc is base[(pc - tonic) % 12]
    table = np.stack(rows)
    table -= table.mean(axis=1, keepdims=True)
    table /= np.linalg.norm(table, axis=1, keepdims=True)
    return table


_PROFILES = _standardized_profiles()


def key_correlations(pc_weights: Sequence[float]) -> np.ndarray:
    """Pearson correlation of 12 pitch-class weights with each key profile: an array of 24,
    major tonics 0..11 then minor tonics 0..11.  Raises ValueError for equal weights (no
    tonal evidence) or a length other than 12."""
    weights = np.asarray(pc_weights, dtype=np.float64)
    if weights.shape != (12,):
        raise ValueError(f"pitch-class weights must have 12 entries, got shape {weights.shape}")
    centred = weights - weights.mean()
    norm = float(np.linalg.norm(centred))
    if norm <= 1e-12 * max(1.0, float(np.abs(weights).max())):
        raise ValueError("pitch-class weights are all equal: there is no evidence for a key")
    return _PROFILES @ (centred / norm)


def detect_key(pc_weights: Sequence[float]) -> Key:
    """The Krumhansl–Schmuckler key of 12 pitch-class weights (e.g. sounding durations).

    The best-correlated of the 24 profiles wins; an exact tie goes to the major key, then the
    lower tonic.  Raises ValueError when the weights are all equal (e.g. all zero)."""
    best = int(np.argmax(key_correlations(pc_weights)))
    return best % 12, MODES[best // 12]


def scale_pitch_classes(tonic: int, mode: str) -> frozenset[int]:
    """The pitch classes of a key's scale; minor has both the natural and raised 6th and 7th."""
    steps = _MAJOR_STEPS if _check_mode(mode) == "major" else _MINOR_STEPS
    return frozenset((tonic + step) % 12 for step in steps)


def parse_key(text: str) -> Key:
    """Read a key such as "C major", "F# minor", "Bb", "eb minor" or "Am".

    The letter's case does not matter; 'b' after the letter is a flat.  A bare note is major;
    a trailing lower-case 'm' means minor (upper-case 'M' is refused as ambiguous)."""
    match = _KEY_RE.fullmatch(text)
    if match is None:
        raise ValueError(f"cannot read the key {text!r}: expected {KEY_FORM}")
    letter, accidental, mode_word = match.groups()
    tonic = (_LETTERS[letter.upper()] + _ACCIDENTALS[accidental]) % 12
    mode = _MODE_WORDS[mode_word if mode_word == "m" else (mode_word or "major").lower()]
    return tonic, mode


def key_name(tonic: int, mode: str) -> str:
    """A key's usual name, e.g. "F# minor", "Bb major", "Eb minor"."""
    mode = _check_mode(mode)
    tonic %= 12
    names = _FLAT_NAMES if tonic in _FLAT_TONICS[mode] else NOTE_NAMES
    return f"{names[tonic]} {mode}"


def _check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"mode must be 'major' or 'minor', got {mode!r}")
    return mode


# Log-probabilities of each pitch class in each key (the profiles above read as how often a
# key's notes are heard), major tonics 0..11 then minor tonics 0..11, and the prior of each key.
_LOG_PROFILES = np.log(np.stack([np.roll(np.asarray(p) / sum(p), t)
                                 for p in (MAJOR_PROFILE, MINOR_PROFILE) for t in range(12)]))
ACCIDENTAL_COST = 0.15  # log-prior per sharp or flat in the key signature
MINOR_COST = 1.0  # log-prior of a minor key against the major key with the same signature


def accidentals(tonic: int, mode: str) -> int:
    """Sharps or flats in a key's signature (its relative major's, for a minor key)."""
    major = tonic % 12 if _check_mode(mode) == "major" else (tonic + 3) % 12
    fifths = major * 7 % 12  # steps round the circle of fifths from C
    return min(fifths, 12 - fifths)


KEEP_SHARE = 0.05  # pitch classes lighter than this share of the heaviest may be outside the key
_SCALES = np.array([[pc in scale_pitch_classes(t, m) for pc in range(12)]
                    for m in MODES for t in range(12)])
_LOG_PRIOR = -np.array([ACCIDENTAL_COST * accidentals(t, m) + (MINOR_COST if m == "minor" else 0)
                        for m in MODES for t in range(12)])


def likely_key(pc_weights: Sequence[float]) -> Key | None:
    """The most probable key of a little evidence, e.g. the first notes of a melody: among the
    keys whose scale holds every pitch class heard (each note belongs to at least 7 keys; when
    no key holds them all, among all keys; a pitch class under `KEEP_SHARE` of the heaviest one
    need not be held), each key weighs its pitch classes by its profile (as probabilities), and
    a prior favours major keys with few accidentals. So one note already gives a key: the
    major key on it, unless that has many sharps or flats (an F# alone: D major, whose third it
    is), and a major key before a minor one; with more notes the evidence outweighs the prior.
    The prior's weights (`ACCIDENTAL_COST`, `MINOR_COST`) were chosen on the chorales'
    validation split, for the accompaniment's first beats. None without any weight."""
    weights = np.asarray(pc_weights, dtype=np.float64)
    if weights.shape != (12,):
        raise ValueError(f"pitch-class weights must have 12 entries, got shape {weights.shape}")
    if not weights.sum() > 0.0:
        return None
    scores = _LOG_PROFILES @ weights + _LOG_PRIOR
    holds = _SCALES[:, weights >= KEEP_SHARE * weights.max()].all(axis=1)
    if holds.any():
        scores[~holds] = -np.inf
    best = int(np.argmax(scores))
    return best % 12, MODES[best // 12]


class KeyTracker:
    """The key of what has been played lately, for live use.

    Pitch-class weights decay exponentially with elapsed time, halving every `half_life_beats`
    beats, so the key follows a modulation within a few bars.  `key()` is None until at least
    `min_pitch_classes` distinct pitch classes carry weight.
    """

    def __init__(
        self,
        half_life_beats: float = 8.0,
        steps_per_beat: int = 4,
        min_pitch_classes: int = 2,
    ) -> None:
        if half_life_beats <= 0 or steps_per_beat <= 0:
            raise ValueError("half_life_beats and steps_per_beat must be positive")
        self._half_life_steps = half_life_beats * steps_per_beat
        self._min_pitch_classes = min_pitch_classes
        self._weights = [0.0] * 12
        self._key: Key | None = None
        self._stale = False

    def add(self, pitch: int, steps: float) -> None:
        """A note of MIDI `pitch` sounded for `steps` steps (a monophonic line): time moves on
        by `steps`, then the pitch class gains `steps` of weight."""
        self.decay(steps)
        self._weights[pitch % 12] += steps
        self._stale = True

    def add_durations(self, pc_durations: Sequence[float], elapsed_steps: float) -> None:
        """General update: `elapsed_steps` steps passed, during which pitch class pc sounded
        for `pc_durations[pc]` steps (chords may sum to more than the elapsed time)."""
        if len(pc_durations) != 12:
            raise ValueError(f"pc_durations must have 12 entries, got {len(pc_durations)}")
        self.decay(elapsed_steps)
        for pc, duration in enumerate(pc_durations):
            self._weights[pc] += duration
        self._stale = True

    def decay(self, steps: float) -> None:
        """Let `steps` steps pass with nothing new sounding."""
        if steps < 0:
            raise ValueError(f"time cannot go backwards (steps={steps})")
        factor = 0.5 ** (steps / self._half_life_steps)
        self._weights = [w * factor for w in self._weights]
        self._stale = True

    def reset(self) -> None:
        self._weights = [0.0] * 12
        self._key = None
        self._stale = False

    @property
    def weights(self) -> tuple[float, ...]:
        return tuple(self._weights)

    def key(self) -> Key | None:
        """The current key, or None while the evidence is too thin."""
        if self._stale:
            self._key = self._compute_key()
            self._stale = False
        return self._key

    def _compute_key(self) -> Key | None:
        if sum(1 for w in self._weights if w > 0.0) < self._min_pitch_classes:
            return None
        try:
            return detect_key(self._weights)
        except ValueError:  # all twelve pitch classes weighted equally
            return None


def note_label(pitch: int) -> str:
    """A MIDI pitch as a note name with its octave: 60 -> "C4"."""
    return f"{NOTE_NAMES[pitch % 12]}{pitch // 12 - 1}"
