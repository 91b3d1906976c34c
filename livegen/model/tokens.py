"""The token vocabulary and the step grid shared by the model, the engine and the trainer.

Each machine voice emits one token per 16th-note step: ``REST``, ``HOLD`` (keep sounding the
note it already plays) or a MIDI pitch (start that note).  The human part is reduced per step to
an onset set and a held set; its top note also has a token, which ``lead`` predicts.
"""

from __future__ import annotations

from collections.abc import Iterable

REST = 0
HOLD = 1
PITCH0 = 2  # token of MIDI pitch 0
VOCAB = PITCH0 + 128

STEPS_PER_BEAT = 4
MAX_BEATS = 8  # beats in a bar the position code tells apart; longer bars fold onto the last
N_POSITIONS = STEPS_PER_BEAT * MAX_BEATS
HUMAN_DIM = 256  # onset multi-hot (128) then held multi-hot (128)


def pitch_token(pitch: int) -> int:
    return PITCH0 + pitch


def token_pitch(token: int) -> int | None:
    """The MIDI pitch a token starts, or None for REST and HOLD."""
    return token - PITCH0 if token >= PITCH0 else None


def position_index(step_in_bar: int) -> int:
    """The position code of a step: step within the beat, then beat within the bar."""
    beat, sub = divmod(step_in_bar, STEPS_PER_BEAT)
    return sub + STEPS_PER_BEAT * min(beat, MAX_BEATS - 1)


def lead_token(onsets: Iterable[int], held: Iterable[int]) -> int:
    """The human part's top-note token: its pitch if the top note starts now, HOLD if the top
    note carries on, REST if nothing sounds."""
    onsets = set(onsets)
    top = max(onsets | set(held), default=None)
    if top is None:
        return REST
    return pitch_token(top) if top in onsets else HOLD
