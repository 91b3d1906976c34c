"""A naive rule-based "block triad" harmonizer: the floor the evaluation compares models with.

At each melody onset it picks a diatonic triad of the melody's key that contains the melody note
(preferring I, V, IV, then vi, ii, iii), puts the triad's other two tones directly below the
melody in close position (alto, tenor) and the root in the bass.  Voices hold while the melody
holds and rest while it rests.  There is deliberately no voice leading: parallels abound.
"""

from __future__ import annotations

import numpy as np

from livegen.model.tokens import HOLD, REST, pitch_token

from .metrics import melody_key, onsets, sounding

Triad = tuple[int, int, int]  # pitch classes: root, third, fifth

# Triads relative to the tonic, in order of preference.
MAJOR_TRIADS: tuple[Triad, ...] = (
    (0, 4, 7),  # I
    (7, 11, 2),  # V
    (5, 9, 0),  # IV
    (9, 0, 4),  # vi
    (2, 5, 9),  # ii
    (4, 7, 11),  # iii
)
# Minor uses the raised 7th in V; the raised 6th (melodic minor) is covered by a last-resort IV.
MINOR_TRIADS: tuple[Triad, ...] = (
    (0, 3, 7),  # i
    (7, 11, 2),  # V
    (5, 8, 0),  # iv
    (8, 0, 3),  # VI
    (2, 5, 8),  # ii°
    (3, 7, 10),  # III
    (5, 9, 0),  # IV
)
N_VOICES = 3  # alto, tenor, bass


def harmonize(
    melody: np.ndarray,
    ranges: list[tuple[int, int]],
    steps_per_beat: int = 4,
    first_downbeat: int = 0,
) -> np.ndarray:
    """Voice tokens [T, 3] (alto, tenor, bass) for a melody of tokens [T].

    `steps_per_beat` and `first_downbeat` are accepted for a uniform call signature with other
    harmonizers; block chords change only with the melody, so they do not affect the result."""
    del steps_per_beat, first_downbeat
    if len(ranges) != N_VOICES:
        raise ValueError(f"harmonize needs 3 ranges (alto, tenor, bass), got {len(ranges)}")
    melody = np.asarray(melody, dtype=np.int64)
    pitches = sounding(melody)
    starts = onsets(melody)
    key = melody_key(pitches)
    voices = np.full((melody.shape[0], N_VOICES), REST, dtype=np.int64)
    voices[(pitches >= 0) & ~starts] = HOLD
    for step in np.flatnonzero(starts):
        chord = voice_chord(int(pitches[step]), choose_triad(int(pitches[step]) % 12, key), ranges)
        voices[step] = [pitch_token(p) for p in chord]
    return voices


def choose_triad(melody_pc: int, key: tuple[int, str] | None) -> Triad:
    """The first triad of the key, in order of preference, that contains the melody's pitch
    class; for a note outside every such triad (or no key), the major triad on the note."""
    if key is not None:
        tonic, mode = key
        for relative in MAJOR_TRIADS if mode == "major" else MINOR_TRIADS:
            root, third, fifth = ((tonic + pc) % 12 for pc in relative)
            if melody_pc in (root, third, fifth):
                return root, third, fifth
    return melody_pc, (melody_pc + 4) % 12, (melody_pc + 7) % 12


def voice_chord(
    melody_pitch: int, triad: Triad, ranges: list[tuple[int, int]]
) -> tuple[int, int, int]:
    """Alto and tenor: the triad's other tones directly below the melody, moved by octaves into
    their ranges; bass: the root, the highest in its range below the tenor."""
    first, second = [pc for pc in triad if pc != melody_pitch % 12][:2]
    alto_close = max(_below(melody_pitch, first), _below(melody_pitch, second))
    tenor_pc = second if alto_close % 12 == first else first
    tenor_close = _below(alto_close, tenor_pc)
    alto = _into_range(alto_close, ranges[0])
    tenor = _into_range(tenor_close, ranges[1])
    return alto, tenor, _bass(triad[0], tenor, ranges[2])


def _below(pitch: int, pc: int) -> int:
    """The highest pitch of class `pc` strictly below `pitch`."""
    return pitch - ((pitch - pc - 1) % 12 + 1)


def _into_range(pitch: int, pitch_range: tuple[int, int]) -> int:
    """`pitch` moved by whole octaves into the range (the octave nearest the range when the
    range is narrower than an octave and lacks this pitch class)."""
    low, high = pitch_range
    while pitch > high:
        pitch -= 12
    while pitch < low:
        pitch += 12
    if pitch > high and (pitch - high) > (low - (pitch - 12)):
        return pitch - 12
    return pitch


def _bass(root_pc: int, tenor: int, pitch_range: tuple[int, int]) -> int:
    low, high = pitch_range
    roots = [p for p in range(low, high + 1) if p % 12 == root_pc]
    if not roots:
        return _into_range(low + (root_pc - low) % 12, pitch_range)
    below = [p for p in roots if p < tenor]
    return max(below) if below else roots[0]
