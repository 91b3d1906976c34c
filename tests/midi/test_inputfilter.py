"""InputFilter: what the engine hears of the player, and what it refuses to hear."""

from __future__ import annotations

import random

import pytest

from livegen.midi.clock import CONTINUE, POSITION, START, STOP, TICK, ClockEvent
from livegen.midi.inputfilter import (
    CHORD_HOLD_S,
    LOOP_SCORE_MAX,
    STALE_UNDER,
    InputFilter,
    Onset,
)
from livegen.settings import InputSettings


def on(pitch: int, vel: int = 100, ch: int = 1) -> list[int]:
    return [0x90 | (ch - 1), pitch, vel]


def off(pitch: int, ch: int = 1) -> list[int]:
    return [0x80 | (ch - 1), pitch, 64]


def cc(num: int, value: int, ch: int = 1) -> list[int]:
    return [0xB0 | (ch - 1), num, value]


def pedal(value: int, ch: int = 1) -> list[int]:
    return cc(64, value, ch)


# -- notes, onsets and held keys ---------------------------------------------------------------


def test_note_on_is_an_onset_reported_at_once_and_per_step():
    f = InputFilter()
    ev = f.feed(on(60, 90), 1.0)
    assert ev == Onset(1.0, 1, 60, 90)
    assert f.held() == {60}
    assert f.take_onsets(before=1.1) == [60]
    assert f.take_onsets(before=1.2) == []  # taken once
    assert f.held() == {60}  # still held on the next step


def test_velocity_zero_note_on_is_a_note_off():
    f = InputFilter()
    f.feed(on(60), 0.0)
    assert f.feed([0x90, 60, 0], 0.1) is None
    assert f.held() == set()
    f.feed(on(62), 0.2)
    f.feed(off(62), 0.3)
    assert f.held() == set()


def test_onsets_after_the_cutoff_wait_for_the_next_step():
    # the pre-window: onsets from the second half of step t-1 belong to step t
    f = InputFilter()
    f.feed(on(60), 0.10)
    f.feed(on(64), 0.20)
    assert f.take_onsets(before=0.15) == [60]
    assert f.take_onsets(before=0.30) == [64]


def test_a_short_note_within_a_step_is_an_onset_but_not_held():
    f = InputFilter()
    f.feed(on(67), 0.0)
    f.feed(off(67), 0.05)
    assert f.take_onsets(0.1) == [67]
    assert f.held() == set()


def test_chord_onsets_are_sorted_without_repeats():
    f = InputFilter()
    for t, p in enumerate((67, 60, 64, 60)):
        f.feed(on(p), t * 0.001)
    assert f.take_onsets(1.0) == [60, 64, 67]
    assert f.held() == {60, 64, 67}


def test_note_off_for_a_key_never_pressed_is_harmless():
    f = InputFilter()
    assert f.feed(off(50), 0.0) is None
    assert f.held() == set()
    assert f.counters.malformed == 0


def test_pending_onsets_are_bounded_when_nobody_collects_them():
    f = InputFilter()
    for i in range(2000):
        f.feed(on(60 + i % 12), i * 0.01)
        f.feed(off(60 + i % 12), i * 0.01 + 0.005)
    assert len(f._pending) <= 256
    assert f.take_onsets(1e9)  # still the latest ones


# -- sustain pedal -----------------------------------------------------------------------------


def test_pedal_keeps_released_keys_sounding_until_it_lifts():
    f = InputFilter()
    f.feed(pedal(127), 0.0)
    f.feed(on(48), 0.1)
    f.feed(off(48), 0.2)
    f.feed(on(52), 0.3)
    f.feed(off(52), 0.4)
    assert f.held() == {48, 52}
    f.feed(on(55), 0.5)  # still held by the hand
    f.feed(pedal(0), 0.6)
    assert f.held() == {55}


def test_pedal_acts_on_threshold_crossings_only():
    f = InputFilter()
    f.feed(pedal(100), 0.0)
    f.feed(on(60), 0.1)
    f.feed(off(60), 0.2)
    # a flood of values above the threshold (a half-pedalling controller) changes nothing
    for i in range(500):
        f.feed(pedal(64 + i % 64), 0.3 + i * 1e-4)
    assert f.held() == {60} and f.pedal(1)
    f.feed(pedal(63), 0.5)
    assert f.held() == set() and not f.pedal(1)
    for i in range(100):
        f.feed(pedal(i % 64), 0.6)
    assert f.held() == set()
    assert f.drain_cc() == {}  # the pedal is not a learnable control


def test_pedal_is_per_channel():
    f = InputFilter()
    f.feed(pedal(127, ch=2), 0.0)
    f.feed(on(60, ch=1), 0.1)
    f.feed(off(60, ch=1), 0.2)
    assert f.held() == set()


def test_restriking_a_sustained_key_is_a_new_onset():
    f = InputFilter()
    f.feed(pedal(127), 0.0)
    f.feed(on(60), 0.1)
    f.feed(off(60), 0.2)
    f.take_onsets(0.25)
    assert isinstance(f.feed(on(60), 0.3), Onset)
    assert f.take_onsets(0.35) == [60]
    f.feed(pedal(0), 0.4)
    assert f.held() == {60}  # the key is still down


def test_all_notes_off_from_the_controller_clears_its_channel():
    f = InputFilter()
    f.feed(pedal(127), 0.0)
    f.feed(on(60), 0.1)
    f.feed(off(60), 0.15)
    f.feed(on(64), 0.2)
    f.feed(on(67, ch=2), 0.2)
    f.feed(cc(123, 0), 0.3)
    assert f.held() == {67}
    assert not f.pedal(1)


# -- control changes ---------------------------------------------------------------------------


def test_cc_flood_coalesces_to_the_latest_value_per_drain():
    f = InputFilter()
    for v in range(128):
        f.feed(cc(74, v), v * 1e-4)
    for v in range(40):
        f.feed(cc(1, v, ch=3), 0.02)
    assert f.drain_cc() == {(1, 74): 127, (3, 1): 39}
    assert f.counters.cc_coalesced == 127 + 39
    assert f.drain_cc() == {}
    f.feed(cc(74, 5), 0.1)
    assert f.drain_cc() == {(1, 74): 5}


def test_cc_from_other_channels_still_reaches_midi_learn():
    f = InputFilter(InputSettings(channel=1))
    f.feed(cc(20, 99, ch=10), 0.0)
    assert f.drain_cc() == {(10, 20): 99}


# -- ignored and malformed ---------------------------------------------------------------------


def test_sysex_and_active_sensing_are_ignored_and_counted():
    f = InputFilter()
    assert f.feed([0xF0, 0x7E, 0x7F, 0x06, 0x01, 0xF7], 0.0) is None
    for i in range(10):
        assert f.feed([0xFE], i * 0.3) is None
    assert f.counters.sysex == 1 and f.counters.sensing == 10
    assert f.counters.malformed == 0
    assert f.held() == set()


@pytest.mark.parametrize(
    "msg",
    [
        [],
        [60],  # a lone data byte
        [60, 100],  # running status without a status byte
        [0x90, 60],  # too short
        [0x90, 60, 100, 5],  # too long
        [0x90, 200, 100],  # data byte > 127
        [0x90, 60, 128],
        [0xB0, 64],
        [0xC0, 5, 6],
        [0xF2, 1],
        [0xF2, 1, 200],
        [0xF8, 0],
        [0xF4],  # undefined status
        [0xF9],
        [0xFD],
        [0xF7],  # end of SysEx without a start
        [0x190, 60, 100],
        [-1, 60, 100],
        [0x90, -1, 100],
        None,
        [0x90, "C4", 100],
        [0x90, 60.5, 100],
    ],
)
def test_malformed_messages_are_counted_and_dropped(msg):
    f = InputFilter()
    assert f.feed(msg, 0.0) is None
    assert f.counters.malformed == 1
    assert f.held() == set() and f.take_onsets(1.0) == []


def test_random_garbage_never_raises():
    rng = random.Random(3)
    f = InputFilter()
    for i in range(20000):
        msg = [rng.randint(0, 255) for _ in range(rng.randint(0, 4))]
        f.feed(msg, i * 1e-3)
    assert f.counters.messages == 20000
    assert f.counters.malformed > 0
    # whatever is held came from well-formed note-ons
    assert all(0 <= p <= 127 for p in f.held())


def test_other_valid_messages_are_ignored():
    f = InputFilter()
    for m in ([0xC0, 5], [0xD0, 40], [0xE0, 0, 64], [0xA0, 60, 30], [0xF1, 0x10], [0xF6], [0xFF]):
        assert f.feed(m, 0.0) is None
    assert f.counters.ignored == 7 and f.counters.malformed == 0


# -- clock messages ----------------------------------------------------------------------------


def test_clock_messages_pass_through_as_clock_events():
    f = InputFilter()
    assert f.feed([0xF8], 1.0) == ClockEvent(TICK, 1.0)
    assert f.feed([0xFA], 1.1) == ClockEvent(START, 1.1)
    assert f.feed([0xFB], 1.2) == ClockEvent(CONTINUE, 1.2)
    assert f.feed([0xFC], 1.3) == ClockEvent(STOP, 1.3)
    # song position 0x2345 = lsb 0x45, msb 0x46 (7-bit each)
    value = (0x46 << 7) | 0x45
    assert f.feed([0xF2, 0x45, 0x46], 1.4) == ClockEvent(POSITION, 1.4, value)
    assert f.feed([0xF2, 32, 0], 1.5).value == 32


def test_clock_passes_whatever_the_input_channel():
    f = InputFilter(InputSettings(channel=5, mode="skyline"))
    assert f.feed([0xF8], 0.0) == ClockEvent(TICK, 0.0)


# -- channel filter and input modes ------------------------------------------------------------


def test_input_channel_filter():
    f = InputFilter(InputSettings(channel=2))
    assert f.feed(on(60, ch=1), 0.0) is None
    assert f.feed(on(64, ch=2), 0.1) == Onset(0.1, 2, 64, 100)
    assert f.held() == {64}
    assert f.take_onsets(1.0) == [64]
    assert f.counters.filtered == 1


def test_split_mode_keeps_the_right_hand_only():
    f = InputFilter(InputSettings(mode="split", split=60))
    f.feed(on(48), 0.0)  # left-hand chord
    f.feed(on(55), 0.0)
    f.feed(on(59), 0.0)
    f.feed(on(60), 0.01)  # melody from the split point up
    f.feed(on(72), 0.02)
    assert f.take_onsets(1.0) == [60, 72]
    assert f.held() == {60, 72}


def test_skyline_top_note_of_a_chord_is_the_melody():
    f = InputFilter(InputSettings(mode="skyline"))
    # a chord played bottom-up within a few ms
    f.feed(on(60), 0.000)
    f.feed(on(64), 0.002)
    f.feed(on(72), 0.004)
    assert f.take_onsets(0.1) == [72]
    assert f.held() == {72}
    # an inner voice moving under the held melody note is not the melody
    assert f.feed(on(65), 0.2) is None
    assert f.take_onsets(0.3) == []
    assert f.held() == {72}


def test_skyline_a_key_whose_note_off_was_lost_stops_blocking_the_melody():
    """A lost note-off leaves a high key down for good; the melody played under it is heard
    again once STALE_UNDER lower keys have come and gone under it, and that is counted."""
    f = InputFilter(InputSettings(mode="skyline"))
    f.feed(on(79), 0.0)  # its note-off never arrives
    f.take_onsets(0.1)
    t = 0.25
    for p in [72, 71, 69][:STALE_UNDER]:
        assert f.feed(on(p), t) is None  # blocked by the "held" G
        f.feed(off(p), t + 0.2)
        t += 0.25
    assert f.counters.stale == 1 and f.held() == set()
    assert isinstance(f.feed(on(67), t), Onset)
    assert f.take_onsets(t + 0.01) == [67]


def test_skyline_a_held_top_note_played_again_keeps_blocking_the_inner_voice():
    """A top note the player really holds, struck again now and then, is not stale: the inner
    voice moving under it stays inner."""
    f = InputFilter(InputSettings(mode="skyline"))
    t = 0.0
    for _ in range(3):
        f.feed(on(79), t)
        for p in [72, 71][:STALE_UNDER - 1]:
            t += 0.25
            assert f.feed(on(p), t) is None
            f.feed(off(p), t + 0.2)
        t += 0.25
    assert f.counters.stale == 0 and f.held() == {79}


def test_skyline_melody_released_leaves_the_top_inner_key_held_not_restruck():
    f = InputFilter(InputSettings(mode="skyline"))
    f.feed(on(60), 0.0)
    f.feed(on(67), 0.0)
    f.feed(on(76), 0.0)
    f.take_onsets(0.1)
    f.feed(off(76), 0.2)
    assert f.held() == {67}
    assert f.take_onsets(0.3) == []


def test_skyline_descending_melody_under_the_pedal_is_still_heard():
    f = InputFilter(InputSettings(mode="skyline"))
    f.feed(pedal(127), 0.0)
    melody = [72, 71, 69, 67]
    for i, p in enumerate(melody):
        t = 0.25 * i
        assert isinstance(f.feed(on(p), t), Onset)
        f.feed(off(p), t + 0.2)
        assert f.take_onsets(t + 0.24) == [p]
        assert f.held() == {p}
    f.feed(pedal(0), 1.1)
    assert f.held() == set()


def test_skyline_pedal_up_hands_the_line_to_a_key_still_down():
    f = InputFilter(InputSettings(mode="skyline"))
    f.feed(on(55), 0.0)
    f.feed(pedal(127), 0.05)
    f.feed(on(79), 0.1)
    f.feed(off(79), 0.2)
    assert f.held() == {79}
    f.feed(pedal(0), 0.3)
    assert f.held() == {55}


def test_changing_mode_applies_to_keys_already_down():
    f = InputFilter()
    for p in (48, 64, 71):
        f.feed(on(p), 0.0)
    f.configure(InputSettings(mode="skyline"))
    assert f.held() == {71}
    f.configure(InputSettings(mode="split", split=60))
    assert f.held() == {64, 71}
    f.configure(InputSettings())
    assert f.held() == {48, 64, 71}
    with pytest.raises(ValueError):
        f.configure(InputSettings(channel=17))


# -- echo rejection ----------------------------------------------------------------------------


def loop_back(f: InputFilter, message: list[int], t: float, delay: float = 0.002):
    """The engine sends ``message`` at ``t`` and a loop brings it back, byte for byte."""
    f.sent(message, t)
    return f.feed(list(message), t + delay)


def prove_loop(f: InputFilter, t: float = 0.0) -> float:
    """A few notes of ours come back 1 to 3 ms later, as through a MIDI thru; the time after."""
    for i, pitch in enumerate((48, 55, 52)):
        assert loop_back(f, [0x91, pitch, 70], t + i * 0.1, 0.001 + 0.001 * i) is None
        assert loop_back(f, [0x81, pitch, 64], t + i * 0.1 + 0.05, 0.002) is None
    assert f.loop_seen
    return t + 0.3


def test_our_own_notes_coming_back_are_ignored():
    f = InputFilter(echo_window=0.05)
    f.sent([0x91, 67, 80], 1.000)
    f.sent([0x81, 67, 64], 1.500)
    assert f.feed([0x91, 67, 80], 1.002) is None  # exact echo of our note-on
    assert f.held() == set() and f.take_onsets(2.0) == []
    assert f.feed([0x81, 67, 64], 1.503) is None  # exact echo of our note-off
    assert f.counters.echo == 2


def test_the_player_hitting_the_same_note_later_is_heard():
    f = InputFilter(echo_window=0.05)
    f.sent([0x90, 60, 80], 1.0)
    assert f.feed([0x90, 60, 80], 1.2) == Onset(1.2, 1, 60, 80)
    assert f.counters.echo == 0


def test_one_echo_per_sent_message():
    f = InputFilter(echo_window=0.05)
    f.sent([0x90, 60, 80], 1.0)
    assert f.feed([0x90, 60, 80], 1.003) is None
    assert isinstance(f.feed([0x90, 60, 80], 1.005), Onset)  # the player, right after


def test_echo_needs_the_same_channel_and_pitch():
    f = InputFilter(echo_window=0.05)
    f.sent([0x91, 60, 80], 1.0)
    assert isinstance(f.feed([0x90, 60, 80], 1.001), Onset)
    assert isinstance(f.feed([0x91, 61, 80], 1.001), Onset)


def test_echoed_panic_ccs_are_not_taken_as_control_moves():
    f = InputFilter()
    for m in ([0xB1, 64, 0], [0xB1, 123, 0], [0xB1, 7, 100]):
        f.sent(m, 5.0)
    for m in ([0xB1, 64, 0], [0xB1, 123, 0], [0xB1, 7, 100]):
        assert f.feed(m, 5.001) is None
    assert f.drain_cc() == {}
    assert f.counters.echo == 3


@pytest.mark.parametrize("delay", [0.010, 0.020, 0.030])
def test_a_keyboard_in_unison_with_a_voice_is_heard_without_a_loop(delay):
    f = InputFilter()
    for i in range(20):  # the voice on channel 2 plays on; the player doubles it there
        t = i * 0.25
        pitch = 60 + i % 5
        velocity = 81 + i % 40  # anything but the voice's 80
        f.sent([0x91, pitch, 80], t)
        assert f.feed([0x91, pitch, velocity], t + delay) == Onset(t + delay, 2, pitch, velocity)
        assert f.held() == {pitch}
        f.sent([0x81, pitch, 64], t + 0.2)
        assert f.feed([0x81, pitch, 64], t + 0.2 + delay) is None  # the same bytes as ours
        assert f.held() == set()  # the player's release, not an echo: the key is up
    assert f.counters.notes == 20 and f.counters.echo == 0
    assert not f.loop_seen


def test_a_unison_note_at_our_velocity_is_heard_later_than_the_loop_window():
    f = InputFilter()
    f.sent([0x91, 60, 80], 1.0)
    assert isinstance(f.feed([0x91, 60, 80], 1.02), Onset)
    assert not f.loop_seen and f.counters.echo == 0


def test_with_a_loop_echoes_are_dropped_and_real_notes_pass():
    f = InputFilter()
    t = prove_loop(f)
    echoes = f.counters.echo
    for i in range(8):  # the loop keeps bringing everything back, 1 to 3 ms later
        pitch = 60 + i
        assert loop_back(f, [0x91, pitch, 75], t, 0.001 + 0.001 * (i % 3)) is None
        assert loop_back(f, [0xB1, 7, 100 - i], t + 0.01, 0.001) is None
        # the player, on the voice's channel, a different pitch, meanwhile
        assert f.feed([0x91, pitch + 12, 75], t + 0.02) == Onset(t + 0.02, 2, pitch + 12, 75)
        assert loop_back(f, [0x81, pitch, 64], t + 0.1, 0.003) is None
        f.feed([0x81, pitch + 12, 64], t + 0.15)
        t += 0.25
    assert f.counters.echo == echoes + 8 * 3
    assert f.counters.notes == 8 and f.held() == set()
    assert f.drain_cc() == {} and f.loop_seen


def test_with_a_loop_late_or_respelled_echoes_are_dropped_too():
    f = InputFilter()
    t = prove_loop(f)
    f.sent([0x91, 67, 80], t)
    assert f.feed([0x91, 67, 81], t + 0.03) is None  # late, and a velocity curve on the way
    f.sent([0x81, 67, 64], t + 0.5)
    assert f.feed([0x91, 67, 0], t + 0.504) is None  # a note-off re-spelled by an interface
    assert f.held() == set() and f.take_onsets(t + 1) == []
    # while the loop is seen, a unison key within the window is taken for the echo ...
    f.sent([0x91, 69, 80], t + 1.0)
    assert f.feed([0x91, 69, 80], t + 1.001) is None  # (the loop's exact echo)
    assert f.feed([0x91, 69, 90], t + 1.02) == Onset(t + 1.02, 2, 69, 90)  # ... once echoed


def test_a_loop_that_goes_away_is_forgotten():
    f = InputFilter()
    t = prove_loop(f)
    for i in range(LOOP_SCORE_MAX):  # the cable is pulled: nothing comes back any more
        f.sent([0x91, 60, 80], t + i * 0.25)
        f.sent([0x81, 60, 64], t + i * 0.25 + 0.2)
    assert not f.loop_seen
    t += LOOP_SCORE_MAX * 0.25
    f.sent([0x91, 62, 80], t)
    assert f.feed([0x91, 62, 100], t + 0.015) == Onset(t + 0.015, 2, 62, 100)


def test_a_player_matching_our_velocity_now_and_then_proves_no_loop():
    f = InputFilter()
    rng = random.Random(5)
    for i in range(400):
        t = i * 0.125
        pitch = 60 + rng.randrange(12)
        f.sent([0x91, pitch, 80], t)
        lucky = i % 10 == 0  # far more often than by chance: same velocity, within 2 ms
        f.feed([0x91, pitch, 80 if lucky else 64], t + (0.002 if lucky else 0.015))
        assert not f.loop_seen
    assert f.counters.echo == 40 and f.counters.notes == 360


def test_reset_forgets_the_loop():
    f = InputFilter()
    prove_loop(f)
    f.reset()
    assert not f.loop_seen
    f.sent([0x91, 60, 80], 10.0)
    assert isinstance(f.feed([0x91, 60, 99], 10.02), Onset)


def test_echo_memory_does_not_grow_without_bound():
    f = InputFilter(echo_window=0.05)
    for i in range(10000):
        f.sent([0x90, 60, 80], i * 0.01)
    assert len(f._echo[1 << 20 | 60 << 7]) <= 6


def test_reset_forgets_keys_but_keeps_counters():
    f = InputFilter()
    f.feed(pedal(127), 0.0)
    f.feed(on(60), 0.0)
    f.feed([0xFE], 0.0)
    f.reset()
    assert f.held() == set() and f.take_onsets(1.0) == [] and not f.pedal(1)
    assert f.counters.sensing == 1


# -- the left-hand chord zone ------------------------------------------------------------------


def test_chord_zone_splits_the_keyboard_into_chord_and_melody():
    f = InputFilter(InputSettings(chord_zone=60))
    for p in (48, 52, 55):  # left hand: C major, below the split
        assert f.feed(on(p), 0.0) is None
    assert f.feed(on(72), 0.01) == Onset(0.01, 1, 72, 100)  # right hand: the melody
    assert f.take_onsets(1.0) == [72]
    assert f.held() == {72}
    assert f.chord(0.02) == (0, 4, 7)
    assert f.counters.notes == 1 and f.counters.filtered == 0
    assert f.feed(on(60), 0.03) is not None  # the split note itself is melody
    f.feed(off(72), 0.1)
    f.feed(off(60), 0.1)
    assert f.held() == set() and f.chord(0.2) == (0, 4, 7)  # the left hand still holds


def test_chord_lists_the_lowest_key_first_as_the_bass():
    f = InputFilter(InputSettings(chord_zone=60))
    for p in (52, 55, 48, 60, 43):  # E G C, middle C, then G below: C major over its fifth
        f.feed(on(p), 0.0)
    assert f.chord(0.0) == (7, 0, 4)  # G is the bass; middle C (60) is melody, not chord
    assert f.held() == {60}


def test_chord_zone_off_keeps_every_key_in_the_melody():
    f = InputFilter(InputSettings())
    f.feed(on(48), 0.0)
    f.feed(on(72), 0.0)
    assert f.take_onsets(1.0) == [48, 72] and f.chord(0.0) == ()


def test_chord_zone_in_skyline_mode_never_carries_the_line():
    f = InputFilter(InputSettings(mode="skyline", chord_zone=60))
    for p in (48, 52, 55):
        assert f.feed(on(p), 0.0) is None
    assert f.held() == set() and f.take_onsets(1.0) == []  # the left hand alone is no melody
    assert isinstance(f.feed(on(67), 0.1), Onset)
    f.feed(off(67), 0.2)
    assert f.held() == set()  # the line is not handed down to a chord key
    assert f.chord(0.3) == (0, 4, 7)


def test_chord_zone_keys_on_another_channel_are_neither_chord_nor_melody():
    f = InputFilter(InputSettings(channel=1, chord_zone=60))
    f.feed(on(48, ch=2), 0.0)
    f.feed(on(53, ch=1), 0.0)
    assert f.chord(0.0) == (5,)
    assert f.held() == set() and f.counters.filtered == 1


def test_chord_is_kept_under_the_pedal_and_briefly_after_the_hand_lifts():
    f = InputFilter(InputSettings(chord_zone=60))
    f.feed(pedal(127), 0.0)
    for p in (45, 48, 52):
        f.feed(on(p), 0.0)
    for p in (45, 48, 52):
        f.feed(off(p), 0.1)
    assert f.chord(5.0) == (9, 0, 4)  # A minor, held by the pedal however long
    f.feed(pedal(0), 6.0)
    assert f.chord(6.0 + CHORD_HOLD_S / 2) == (9, 0, 4)  # kept for a moment...
    assert f.chord(6.0 + CHORD_HOLD_S + 0.01) == ()  # ...then gone
    assert f.chord(6.0 + CHORD_HOLD_S / 2) == ()  # and not back


def test_a_staggered_release_keeps_the_whole_chord_and_a_new_key_replaces_it_at_once():
    f = InputFilter(InputSettings(chord_zone=60))
    for p in (43, 47, 50, 53):  # G7
        f.feed(on(p), 0.0)
    for i, p in enumerate((53, 50, 47, 43)):  # the fingers lift one after another
        f.feed(off(p), 1.0 + 0.02 * i)
    assert f.chord(1.1) == (7, 2, 5, 11)
    f.feed(on(48), 1.15)  # the next chord starts: nothing of G7 is kept
    assert f.chord(1.15) == (0,)
    f.feed(on(52), 1.16)
    assert f.chord(1.2) == (0, 4)


def test_a_legato_chord_change_keeps_only_the_new_chord():
    f = InputFilter(InputSettings(chord_zone=60))
    for p in (48, 52, 55):  # C major
        f.feed(on(p), 0.0)
    for p in (48, 53, 57):  # F major over C, pressed before C major is let go
        f.feed(on(p), 1.0)
    for p in (52, 55):
        f.feed(off(p), 1.05)
    assert f.chord(1.1) == (0, 5, 9)
    for p in (48, 53, 57):
        f.feed(off(p), 2.0)
    assert f.chord(2.1) == (0, 5, 9)  # C major was let go long before: not part of it


def test_all_notes_off_drops_the_chord_at_once_and_configure_applies_to_held_keys():
    f = InputFilter(InputSettings())
    for p in (48, 52, 55, 72):
        f.feed(on(p), 0.0)
    assert f.chord(0.0) == () and f.held() == {48, 52, 55, 72}
    f.configure(InputSettings(chord_zone=60))
    assert f.chord(0.0) == (0, 4, 7) and f.held() == {72}
    f.feed(cc(123, 0), 0.5)
    assert f.chord(0.5) == () and f.held() == set()
    with pytest.raises(ValueError):
        f.configure(InputSettings(chord_zone=0))
