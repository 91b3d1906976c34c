"""The follow window's expectation (livegen/follow.py): which late notes the engine waits for,
and how long it waits where nobody plays. The engine runs on the simulated clock with the
model's onset probability held at a chosen value (below follow_threshold), so that the player's
rhythm and timing decide."""

import pytest

from livegen.follow import POSSIBLE_FULL, TIMING_NOTES, TIMING_WARMUP, PlayerRhythm
from tests.fakes import engine_on_sim_clock, run_until
from tests.util import tiny_model

BPM = 120.0
STEP = 60.0 / BPM / 4
WINDOW = 0.030


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    _, path = tiny_model(tmp_path_factory.mktemp("m") / "m.pt", seed=11)
    return path


def rig(model, probability: float = POSSIBLE_FULL):
    """An engine whose model gives every next step the onset `probability`; records when each
    step was played and the player's onsets it was played with."""
    eng, clock, inp, out = engine_on_sim_clock(model, bpm=BPM, follow_ms=WINDOW * 1000,
                                               follow_threshold=0.5)
    advance = eng.acc.advance

    def held_probability(*args, **kwargs):
        advance(*args, **kwargs)
        eng.acc.onset_probability = probability

    eng.acc.advance = held_probability
    played: dict[int, tuple[float, tuple[int, ...]]] = {}
    eng.on_play = lambda step, frame: played.setdefault(step, (clock.t, frame.onsets))
    return eng, clock, inp, played


def melody(inp, t0: float, notes: list[tuple[int, int, float]]) -> None:
    """(step, pitch, seconds late) each, held until just before the next note."""
    for (step, pitch, late), nxt in zip(notes, notes[1:] + [(notes[-1][0] + 4, 0, 0.0)],
                                        strict=True):
        inp.at(t0 + step * STEP + late, [0x90, pitch, 90])
        inp.at(t0 + nxt[0] * STEP - 0.002, [0x80, pitch, 0])


QUARTERS = [(4 * i, 60 + i % 5, late) for i, late in
            enumerate([0.002, 0.010, 0.004, 0.008, 0.001, 0.006, 0.009, 0.003, 0.005, 0.007])]


def test_a_late_eighth_off_the_beat_after_a_note_gets_its_step_played_after_it(model):
    """A chorale's passing note: quarter notes, then a note on the beat and one an 8th later,
    8 ms late. Neither the model (0.3, below its threshold) nor the bar position expects it;
    the player's last note makes it possible, and the player has come up to 10 ms late."""
    eng, clock, inp, played = rig(model)
    t0 = eng.transport.clock.step_time(0)
    late = t0 + 42 * STEP + 0.008
    melody(inp, t0, [*QUARTERS, (40, 65, 0.004), (42, 67, 0.008)])
    run_until(eng, clock, t0 + 48 * STEP)
    at, onsets = played[42]
    assert onsets == (67,), "step 42 was played without its late note"
    assert late <= at < late + 0.001
    eng.shutdown()


def test_where_nobody_plays_the_wait_is_only_as_long_as_the_player_is_late(model):
    """The same player, whose notes came up to 10 ms late, holds the note on the beat: the
    8th off the beat waits 10 ms for a note that does not come, not the whole window, and
    half that where the model gives a note half the chance; a 16th after the note does not
    wait; a player who is never late is never waited for there."""
    for probability, waited in ((POSSIBLE_FULL, 0.010), (POSSIBLE_FULL / 2, 0.005)):
        eng, clock, inp, played = rig(model, probability)
        t0 = eng.transport.clock.step_time(0)
        melody(inp, t0, [*QUARTERS, (40, 65, 0.004), (44, 67, 0.0)])
        run_until(eng, clock, t0 + 48 * STEP)
        assert played[42][1] == ()
        assert waited <= played[42][0] - (t0 + 42 * STEP) < waited + 0.001
        assert played[41][0] - (t0 + 41 * STEP) < 0.001
        eng.shutdown()

    eng, clock, inp, played = rig(model)
    t0 = eng.transport.clock.step_time(0)
    early = [(step, pitch, -0.002) for step, pitch, _ in QUARTERS]
    melody(inp, t0, [*early, (40, 65, -0.002), (44, 67, -0.002)])
    run_until(eng, clock, t0 + 48 * STEP)
    assert played[42][0] - (t0 + 42 * STEP) < 0.001
    eng.shutdown()


def test_the_first_notes_wait_the_whole_window_for_a_late_eighth(model):
    """Before the engine has timed the player, an 8th after the first note waits the whole
    window: 25 ms late, it is still followed."""
    eng, clock, inp, played = rig(model)
    t0 = eng.transport.clock.step_time(0)
    late = t0 + 2 * STEP + 0.025
    melody(inp, t0, [(0, 60, 0.0), (2, 62, 0.025)])
    run_until(eng, clock, t0 + 6 * STEP)
    at, onsets = played[2]
    assert onsets == (62,)
    assert late <= at < late + 0.001
    eng.shutdown()


def test_a_run_goes_on_whatever_the_grid_phase():
    """16ths started a 16th after the beat (a grid started on an upbeat): the next 16th is
    possible; after a long rest no note value carries over."""
    rhythm = PlayerRhythm(16)
    for position in (1, 2, 3):
        rhythm.played(position, True)
    assert rhythm.may_play()  # position 4: the 16th value again
    rhythm.played(4, False)
    assert rhythm.may_play()  # position 5: an 8th after the note
    rhythm.played(5, False)
    assert not rhythm.may_play()  # position 6: neither an 8th after the note nor its value
    for position in range(5, 40):
        rhythm.played(position, False)
    rhythm.played(40, True)
    assert rhythm.value == 0
    rhythm.played(41, False)
    assert rhythm.may_play()  # an 8th after the note


def test_the_whole_window_where_a_note_is_expected_a_scaled_lateness_where_possible():
    rhythm = PlayerRhythm(16)
    for _ in range(TIMING_WARMUP):
        rhythm.timed(0.012)
    for position in range(4):
        rhythm.played(position, position == 0)
    assert rhythm.wait(4, WINDOW, 0.0, 0.5) == WINDOW  # a beat while the player plays
    assert rhythm.wait(4, WINDOW, 0.6, 0.5) == WINDOW  # and the model expects it
    rhythm.played(4, True)
    rhythm.played(5, False)
    assert rhythm.wait(6, WINDOW, 0.6, 0.5) == WINDOW  # the model expects it
    assert rhythm.wait(6, WINDOW, 0.45, 0.5) == pytest.approx(0.012)  # possible
    assert rhythm.wait(6, WINDOW, POSSIBLE_FULL / 4, 0.5) == pytest.approx(0.003)
    rhythm.played(6, False)
    assert rhythm.wait(7, WINDOW, 0.45, 0.5) == 0.0  # neither expected nor possible


def test_the_short_wait_is_the_latest_of_the_player_recent_notes():
    rhythm = PlayerRhythm(16)
    for _ in range(TIMING_WARMUP - 1):
        rhythm.timed(0.004)
    assert rhythm.lateness(WINDOW) == WINDOW  # not enough timed yet: the whole window
    rhythm.timed(0.012)
    assert rhythm.lateness(WINDOW) == pytest.approx(0.012)
    for _ in range(TIMING_NOTES):
        rhythm.timed(-0.002)
    assert rhythm.lateness(WINDOW) == 0.0  # the late note has left the memory
    rhythm.timed(0.050)
    assert rhythm.lateness(WINDOW) == WINDOW
