"""When to wait for the player: the follow window's expectation (docs/ARCHITECTURE.md, "The hot
path", step 3).

At a step's boundary with no onset yet, the engine may wait up to the follow window W for the
player's note, so that a note played a little late gets its accompaniment after it, not before.
Waiting on every step would delay the voices on every step nobody plays; waiting only when the
model's `lead` head expects a note missed 17% of late notes (measured on a JACK transport with
human timing), because the model does not know this player's rhythm.

So the engine waits the whole window when the model's onset probability reaches
`follow_threshold`, or when the player's recent rhythm expects a note here (`expects`): how
often, over the last bars, the player started a note at this position of the bar (an
exponential average per position, `RHYTHM_KEEP` of the old value per bar, waiting from
`RHYTHM_THRESHOLD`), and every beat while the player has played within the last bar. A melody in
quarter notes soon makes every beat expected; a rest the player keeps taking off the beat soon
stops the waiting there.

That still played one late note in seventeen before it on the chorale test split (94.1%
followed, `bench/follow.py`), nearly all of them an 8th off the beat after a note on the beat:
a chorale's passing notes, to which the model gives 0.1-0.2 and the bar positions nothing. Such
a note is possible rather than likely (`may_play`): the next step is an 8th after the player's
last note, or the player's last note value over again (a run goes on, whatever the grid's
phase: a grid started on an upbeat puts a folk tune's 8ths off its beats). There the engine
waits only as long as the player has lately been late (`lateness`: the latest of the player's
last `TIMING_NOTES` onsets after their boundaries, nothing for a player who is never late, the
whole window until `TIMING_WARMUP` are timed), scaled by the model's probability up to
`POSSIBLE_FULL` (`wait`). Measured on the 36 chorales, 3 seeds: 96.5% followed (94.3% before);
the voices that moved on steps nobody played went out 12.6 ms late on average (8.7 ms before).
Waiting the whole lateness at every possible note followed 98% at over twice that extra cost
(17.7 ms); a few milliseconds' wait on every step followed fewer when the first note (which
starts the grid) was on time; a release cue (a key let go just before the boundary) caught every
late note of detached playing, none of legato, and waited in vain after every staccato note.
The cost, steps waited in vain, is counted in the engine's stats (`waited_in_vain`) and
measured, with how late those steps' voices went out, by `bench/follow.py`.
"""

from __future__ import annotations

from collections import deque

from livegen.model.tokens import STEPS_PER_BEAT

RHYTHM_KEEP = 0.5  # share of a position's rate kept each time the bar comes round
RHYTHM_THRESHOLD = 0.2  # wait when the player started a note here this often, recently
TIMING_NOTES = 16  # the player's latest onsets whose timing sets the short wait
TIMING_WARMUP = 8  # onsets timed before the short wait trusts them (the whole window until then)
POSSIBLE_FULL = 0.3  # the model's probability from which a possible note gets the whole lateness
EIGHTH = STEPS_PER_BEAT // 2


class PlayerRhythm:
    def __init__(self, positions: int = 16) -> None:
        self.rates = [0.0] * positions
        self.since_onset = positions  # steps since the player last started a note
        self.value = 0  # steps between the player's last two onsets (0: none yet)
        self.offsets: deque[float] = deque(maxlen=TIMING_NOTES)  # onset - boundary, seconds

    def resize(self, positions: int) -> None:
        if positions != len(self.rates):
            self.rates = [0.0] * positions

    def played(self, position: int, onset: bool) -> None:
        """The step at `position` of the bar is final: did the player start a note there?"""
        i = position % len(self.rates)
        self.rates[i] = self.rates[i] * RHYTHM_KEEP + (1.0 - RHYTHM_KEEP) * onset
        if onset:
            gap = self.since_onset + 1
            self.value = gap if gap <= len(self.rates) else 0
        self.since_onset = 0 if onset else self.since_onset + 1

    def timed(self, offset: float) -> None:
        """A step played by the player's onset, which came `offset` seconds after the step's
        boundary (negative: early, in the pre-window)."""
        self.offsets.append(offset)

    def expects(self, position: int) -> bool:
        """A note is likely here: the player often starts one at this position lately, or this
        is a beat and the player has been playing within the last bar."""
        if self.rates[position % len(self.rates)] >= RHYTHM_THRESHOLD:
            return True
        return position % STEPS_PER_BEAT == 0 and self.since_onset < len(self.rates)

    def may_play(self) -> bool:
        """A note is possible at the next step: it is an 8th after the player's last note, or
        the player's last note value ends here again."""
        steps = self.since_onset + 1  # from the last onset to the step being decided
        return steps == EIGHTH or steps == self.value

    def lateness(self, window: float) -> float:
        """How long to wait for a possible note: as late as the player's recent notes came
        (none if never late), at most `window`; the whole window until enough are timed."""
        if len(self.offsets) < TIMING_WARMUP:
            return window
        return min(window, max(0.0, max(self.offsets)))

    def wait(self, position: int, window: float, probability: float, threshold: float
             ) -> float:
        """Seconds to wait after the boundary of the step at `position` for the player's note,
        given the model's onset probability and the engine's `follow_threshold`: the whole
        window when a note is expected; when one is possible, the player's lateness, scaled by
        the model's probability up to `POSSIBLE_FULL`; else none."""
        if probability >= threshold or self.expects(position):
            return window
        if self.may_play():
            return self.lateness(window) * min(1.0, probability / POSSIBLE_FULL)
        return 0.0

    def reset(self) -> None:
        self.rates = [0.0] * len(self.rates)
        self.since_onset = len(self.rates)
        self.value = 0
        self.offsets.clear()
