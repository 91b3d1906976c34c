"""When to wait for the player: the follow window's expectation (docs/ARCHITECTURE.md, "The hot
path", step 3).

At a step's boundary with no onset yet, the engine may wait up to the follow window W for the
player's note, so that a note played a little late gets its accompaniment after it, not before.
Waiting on every step would delay the voices on every step nobody plays; waiting only when the
model's `lead` head expects a note missed 17% of late notes (measured on a JACK transport with
human timing), because the model does not know this player's rhythm.

So the expectation is the larger of two: the model's onset probability, and the player's own
recent rhythm: how often, over the last bars, the player started a note at this position of the
bar (an exponential average per position, `RHYTHM_KEEP` of the old value per bar), and every
beat while the player has played within the last bar. A melody in quarter notes soon makes
every beat expected; a rest the player keeps taking off the beat soon stops the waiting there.
The engine waits when either says so (`follow_threshold` for the model, `RHYTHM_THRESHOLD` for
the rhythm). The cost, steps waited in vain, is counted in the engine's stats
(`waited_in_vain`) and measured by `bench/follow.py`.
"""

from __future__ import annotations

from livegen.model.tokens import STEPS_PER_BEAT

RHYTHM_KEEP = 0.5  # share of a position's rate kept each time the bar comes round
RHYTHM_THRESHOLD = 0.2  # wait when the player started a note here this often, recently


class PlayerRhythm:
    def __init__(self, positions: int = 16) -> None:
        self.rates = [0.0] * positions
        self.since_onset = positions  # steps since the player last started a note

    def resize(self, positions: int) -> None:
        if positions != len(self.rates):
            self.rates = [0.0] * positions

    def played(self, position: int, onset: bool) -> None:
        """The step at `position` of the bar is final: did the player start a note there?"""
        i = position % len(self.rates)
        self.rates[i] = self.rates[i] * RHYTHM_KEEP + (1.0 - RHYTHM_KEEP) * onset
        self.since_onset = 0 if onset else self.since_onset + 1

    def expects(self, position: int) -> bool:
        """A note is likely here: the player often starts one at this position lately, or this
        is a beat and the player has been playing within the last bar."""
        if self.rates[position % len(self.rates)] >= RHYTHM_THRESHOLD:
            return True
        return position % STEPS_PER_BEAT == 0 and self.since_onset < len(self.rates)

    def reset(self) -> None:
        self.rates = [0.0] * len(self.rates)
        self.since_onset = len(self.rates)
