"""NoteLedger: no stuck notes, no stacked notes, a panic that really silences a synth."""

from __future__ import annotations

import random

import pytest

from livegen.midi.ledger import NoteLedger


def test_note_on_and_off_send_the_raw_messages():
    ledger = NoteLedger()
    assert ledger.note_on(3, 60, 90, owner=0) == [[0x92, 60, 90]]
    assert (3, 60) in ledger.sounding()
    assert ledger.note_off(3, 60) == [[0x82, 60, 64]]
    assert (3, 60) not in ledger.sounding()
    assert len(ledger) == 0


def test_note_off_for_a_silent_note_sends_nothing():
    ledger = NoteLedger()
    assert ledger.note_off(1, 60) == []
    ledger.note_on(1, 60, 80, owner="lead")
    ledger.note_off(1, 60)
    assert ledger.note_off(1, 60) == []


def test_restriking_a_sounding_pitch_sends_off_then_on():
    ledger = NoteLedger()
    ledger.note_on(2, 64, 80, owner=1)
    msgs = ledger.note_on(2, 64, 100, owner=1)
    assert msgs == [[0x81, 64, 64], [0x91, 64, 100]]
    assert ledger.sounding() == {(2, 64): (1,)}
    # however many times it is struck, one note-off silences it
    assert ledger.note_off(2, 64, owner=1) == [[0x81, 64, 64]]
    assert not ledger


def test_velocity_is_clamped_so_a_note_on_never_becomes_a_note_off():
    ledger = NoteLedger()
    assert ledger.note_on(1, 60, 0, owner=0) == [[0x90, 60, 1]]
    assert ledger.note_on(1, 61, 300, owner=0) == [[0x90, 61, 127]]


def test_bad_channel_or_pitch_is_refused():
    ledger = NoteLedger()
    with pytest.raises(ValueError):
        ledger.note_on(0, 60, 80, owner=0)
    with pytest.raises(ValueError):
        ledger.note_on(17, 60, 80, owner=0)
    with pytest.raises(ValueError):
        ledger.note_on(1, 128, 80, owner=0)
    assert not ledger


def test_one_voice_moving_away_does_not_cut_a_unison_partner():
    ledger = NoteLedger()
    ledger.note_on(2, 60, 80, owner="alto")
    assert ledger.note_on(2, 60, 80, owner="tenor") == [[0x81, 60, 64], [0x91, 60, 80]]
    assert ledger.note_off(2, 60, owner="alto") == []  # tenor still holds it
    assert "tenor" in ledger.sounding().get((2, 60), ())
    assert ledger.note_off(2, 60, owner="tenor") == [[0x81, 60, 64]]
    assert not ledger


def test_note_off_by_a_non_owner_is_ignored():
    ledger = NoteLedger()
    ledger.note_on(2, 60, 80, owner="alto")
    assert ledger.note_off(2, 60, owner="bass") == []
    assert (2, 60) in ledger.sounding()


def test_release_one_owner_leaves_the_others_sounding():
    ledger = NoteLedger()
    ledger.note_on(2, 67, 80, owner="alto")
    ledger.note_on(3, 60, 80, owner="tenor")
    ledger.note_on(4, 48, 80, owner="bass")
    assert ledger.release("tenor") == [[0x82, 60, 64]]
    assert set(ledger.sounding()) == {(2, 67), (4, 48)}
    offs = ledger.release()
    assert sorted(offs) == [[0x81, 67, 64], [0x83, 48, 64]]
    assert not ledger and ledger.sounding() == {}


def test_panic_order_note_offs_then_pedal_all_notes_off_all_sound_off_per_channel():
    ledger = NoteLedger()
    ledger.note_on(4, 48, 80, owner="bass")
    ledger.note_on(2, 67, 80, owner="alto")
    ledger.use_channel(9)  # a program change went out on 9
    msgs = ledger.panic(channels=[1])
    offs, ccs = msgs[:2], msgs[2:]
    assert sorted(offs) == [[0x81, 67, 64], [0x83, 48, 64]]
    expected = []
    for ch in (1, 2, 4, 9):
        s = 0xB0 | (ch - 1)
        expected += [[s, 64, 0], [s, 123, 0], [s, 120, 0]]
    assert ccs == expected
    assert not ledger


def test_panic_resets_channels_used_earlier_even_if_silent_now():
    ledger = NoteLedger()
    ledger.note_on(5, 60, 80, owner=0)
    ledger.note_off(5, 60)
    assert ledger.panic() == [[0xB4, 64, 0], [0xB4, 123, 0], [0xB4, 120, 0]]
    assert ledger.channels == {5}


def test_panic_with_a_bad_extra_channel_still_silences_everything():
    ledger = NoteLedger()
    ledger.note_on(1, 60, 80, owner=0)
    msgs = ledger.panic(channels=[0, 99])
    assert msgs[0] == [0x80, 60, 64]
    assert not ledger


def _replay(messages):
    """What a synth would have sounding after these messages, per (channel, pitch)."""
    on: set[tuple[int, int]] = set()
    for status, d1, d2 in messages:
        kind, ch = status & 0xF0, status & 0x0F
        if kind == 0x90 and d2:
            assert (ch, d1) not in on, "stacked note-on"
            on.add((ch, d1))
        elif kind in (0x80, 0x90):
            on.discard((ch, d1))
        elif kind == 0xB0 and d1 in (120, 123):
            on = {k for k in on if k[0] != ch}
    return on


def test_random_play_never_stacks_and_always_ends_silent():
    rng = random.Random(7)
    for trial in range(20):
        ledger = NoteLedger()
        sent = []
        for _ in range(400):
            ch, pitch, owner = rng.randint(1, 3), rng.randint(58, 64), rng.randint(0, 3)
            r = rng.random()
            if r < 0.5:
                sent += ledger.note_on(ch, pitch, rng.randint(1, 127), owner)
            elif r < 0.9:
                sent += ledger.note_off(ch, pitch, owner if r < 0.8 else None)
            else:
                sent += ledger.release(owner)
            sounding = _replay(sent)
            assert sounding == {(c - 1, p) for c, p in ledger.sounding()}
        # release alone (without the CC resets) must already silence every note
        ending = ledger.release() if trial % 2 else ledger.panic()
        sent += ending
        assert not ledger
        assert _replay([m for m in sent if m[0] & 0xF0 != 0xB0]) == set()
