"""Reading and writing MIDI files: a good file gives its notes, every bad one a single sentence
(`MidiFileError`, naming the file) and never another exception. Hostile files are built here
from raw bytes, so that nothing a writer library refuses to write goes untested."""

from __future__ import annotations

import random
import struct
from collections.abc import Callable
from pathlib import Path

import pytest

from livegen.midi.midifile import (
    MAX_FILE_BYTES,
    MidiFileError,
    Note,
    Part,
    read_notes,
    write_parts,
)

EOT = b"\x00\xff\x2f\x00"  # end of track


def vlq(n: int) -> bytes:
    """A variable-length quantity, as delta times and lengths are stored."""
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    return bytes(reversed(out))


def smf(*tracks: bytes, division: int = 96, fmt: int = 0, ntracks: int | None = None) -> bytes:
    """A standard MIDI file: the header chunk, then one MTrk chunk per track."""
    count = len(tracks) if ntracks is None else ntracks
    body = b"".join(b"MTrk" + struct.pack(">L", len(t)) + t for t in tracks)
    return b"MThd" + struct.pack(">LHHH", 6, fmt, count, division & 0xFFFF) + body


def note(pitch: int = 60, ticks: int = 96, channel: int = 0) -> bytes:
    return (b"\x00" + bytes([0x90 | channel, pitch, 64]) + vlq(ticks)
            + bytes([0x80 | channel, pitch, 0]))


def tempo(microseconds: int) -> bytes:
    return b"\x00\xff\x51\x03" + microseconds.to_bytes(3, "big")


def meter(numerator: int, power: int) -> bytes:
    return b"\x00\xff\x58\x04" + bytes([numerator, power, 24, 8])


GOOD = smf(b"\x00\xff\x03\x06melody" + tempo(600_000) + meter(3, 2)
           + note(60) + note(62) + note(64, channel=1) + EOT)


def test_a_good_file_gives_its_notes_tempo_and_meter(tmp_path):
    path = tmp_path / "good.mid"
    path.write_bytes(GOOD)
    midi = read_notes(path)
    assert [(n.pitch, n.start, n.end, n.channel) for n in midi.notes] == [
        (60, 0.0, 1.0, 1), (62, 1.0, 2.0, 1), (64, 2.0, 3.0, 2)]
    assert (midi.bpm, midi.beats_per_bar, midi.beat_unit, midi.tracks) == (100.0, 3, 4, ["melody"])


def test_written_parts_read_back(tmp_path):
    notes = [Note(60, 0.0, 0.5, 90, 3), Note(67, 0.5, 2.0, 70, 3)]
    write_parts(tmp_path / "out.mid", [Part("alto", 3, 52, notes)], 90.0, 3)
    midi = read_notes(tmp_path / "out.mid")
    assert [(n.pitch, n.start, n.end, n.velocity, n.channel, n.track) for n in midi.notes] == [
        (60, 0.0, 0.5, 90, 3, 1), (67, 0.5, 2.0, 70, 3, 1)]
    assert (round(midi.bpm, 3), midi.beats_per_bar, midi.tracks) == (90.0, 3, ["track 0", "alto"])


def test_a_file_with_no_notes_reads_as_no_notes(tmp_path):
    path = tmp_path / "silent.mid"
    path.write_bytes(smf(tempo(500_000) + EOT))
    assert read_notes(path).notes == []


HOSTILE: dict[str, tuple[Callable[[Path], None], str]] = {
    "tempo 0": (lambda p: p.write_bytes(smf(tempo(0) + note() + EOT)),
                "tempo is 0 microseconds a beat"),
    "division 0": (lambda p: p.write_bytes(smf(note() + EOT, division=0)),
                   "0 ticks per beat"),
    "SMPTE division": (lambda p: p.write_bytes(smf(note() + EOT, division=0xE728)),
                       "SMPTE frames (25 frames a second)"),
    "high-bit division": (lambda p: p.write_bytes(smf(note() + EOT, division=0x8000)),
                          "SMPTE frames"),
    "numerator 255": (lambda p: p.write_bytes(smf(meter(255, 2) + note() + EOT)),
                      "time signature 255/4 makes a bar of 255 quarter notes"),
    "numerator 255 over 1": (lambda p: p.write_bytes(smf(meter(255, 0) + note() + EOT)),
                             "time signature 255/1 makes a bar of 1020 quarter notes"),
    "numerator 0": (lambda p: p.write_bytes(smf(meter(0, 2) + note() + EOT)),
                    "time signature 0/4 has no beats in a bar"),
    "denominator 2^255": (lambda p: p.write_bytes(smf(meter(4, 255) + note() + EOT)),
                          "time signature 4/2^255 counts in notes shorter than 1/64"),
    "truncated": (lambda p: p.write_bytes(GOOD[:-7]), "cut short"),
    "truncated header": (lambda p: p.write_bytes(GOOD[:10]), "cut short"),
    "missing tracks": (lambda p: p.write_bytes(smf(note() + EOT, ntracks=40)), "cut short"),
    "not MIDI": (lambda p: p.write_text("title,artist\nOde to Joy,Beethoven\n"),
                 "not a standard MIDI file"),
    "empty": (lambda p: p.write_bytes(b""), "the file is empty"),
    "type 2": (lambda p: p.write_bytes(smf(note() + EOT, fmt=2)), "type 2 is not supported"),
    "type 7": (lambda p: p.write_bytes(smf(note() + EOT, fmt=7)), "unknown MIDI file type (7)"),
    "bad key signature": (lambda p: p.write_bytes(smf(b"\x00\xff\x59\x02\x20\x00" + note()
                                                      + EOT)),
                          "Could not decode key with 32 sharps"),
    "data byte over 127": (lambda p: p.write_bytes(smf(b"\x00\x90\xbc\x40" + EOT)),
                           "not a readable standard MIDI file"),
    "short set_tempo": (lambda p: p.write_bytes(smf(b"\x00\xff\x51\x00" + note() + EOT)),
                        "not a readable standard MIDI file"),
    "too large": (lambda p: p.write_bytes(GOOD + bytes(MAX_FILE_BYTES)),
                  "larger than the 2 MiB"),
    "a folder": (lambda p: p.mkdir(), "this is a folder, not a MIDI file"),
    "missing": (lambda p: None, "no such MIDI file"),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_a_bad_file_gives_one_sentence_naming_it(tmp_path, case):
    make, expected = HOSTILE[case]
    path = tmp_path / "bad.mid"
    make(path)
    with pytest.raises(MidiFileError) as info:
        read_notes(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    assert expected in message
    assert "\n" not in message and message.endswith(".")
    error = info.value  # no library exception shown above the sentence
    assert error.__cause__ is None and (error.__context__ is None or error.__suppress_context__)


def test_damaged_files_never_raise_anything_else(tmp_path):
    """Random byte damage to a multi-track file full of meta events: each copy reads or gives
    a MidiFileError (a fixed seed, so a failure here is reproducible)."""
    events = (b"\x00\xff\x03\x05hello" + tempo(500_000) + meter(3, 2)
              + b"\x00\xff\x59\x02\x01\x00" + b"\x00\xf0\x03\x7e\x7f\xf7" + b"\x00\xb0\x07\x64"
              + b"\x00\xc0\x05" + b"".join(note(60 + i) for i in range(8))
              + b"\x00\xe0\x00\x40" + b"\x00\xff\x54\x05\x60\x00\x00\x00\x00" + EOT)
    good = smf(events, events, fmt=1)
    rng = random.Random(10)
    path = tmp_path / "damaged.mid"
    outcomes = {"read": 0, "refused": 0}
    for _ in range(400):
        data = bytearray(good)
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        if rng.random() < 0.1:
            data = data[:rng.randrange(len(data))]
        path.write_bytes(bytes(data))
        try:
            read_notes(path)
        except MidiFileError as exc:
            assert str(exc).startswith(f"{path}: ")
            outcomes["refused"] += 1
        else:
            outcomes["read"] += 1
    assert outcomes["read"] and outcomes["refused"]


@pytest.mark.parametrize("bpm", [0.0, -120.0, 1.0, 1e9])
def test_a_tempo_a_file_cannot_hold_is_refused_when_writing(tmp_path, bpm):
    with pytest.raises(MidiFileError, match="cannot write a tempo of .* BPM; a MIDI file holds"):
        write_parts(tmp_path / "out.mid", [], bpm)
