"""Standard MIDI files in and out: notes with times in beats, and multi-track output.

Reading gives every note of the file (track, channel, pitch, start and end in beats) with the
first tempo and time signature; writing takes named parts, one track and channel each. Whatever
a file holds, reading it either succeeds or raises `MidiFileError` with one sentence that names
the file, and never takes more than about 150 times `MAX_FILE_BYTES` of memory.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import mido
from mido.midifiles.meta import KeySignatureError

# mido holds each event as an object of about 270 bytes, and an event can take as little as 3
# bytes of file: reading the densest possible file costs about 140 MB (and seconds) per MiB. This
# cap keeps that under 300 MB; a song's MIDI file is typically tens to a few hundred KiB.
MAX_FILE_BYTES = 2 * 1024 * 1024
# The longest bar read from a time signature, in quarter-note beats (numerator * 4 / denominator).
MAX_BAR_BEATS = 32
MAX_BEAT_UNIT = 64  # the smallest note value a time signature may count in (1/64)
_MAX_TEMPO = 0xFFFFFF  # a set_tempo holds 24 bits of microseconds per beat


class MidiFileError(Exception):
    """A MIDI file livegen cannot read or write; the message names the file."""


@dataclass(frozen=True)
class Note:
    pitch: int
    start: float  # beats
    end: float  # beats
    velocity: int = 80
    channel: int = 1  # 1..16
    track: int = 0


@dataclass
class MidiNotes:
    path: Path
    notes: list[Note]
    bpm: float = 120.0
    beats_per_bar: int = 4
    beat_unit: int = 4
    tracks: list[str] = field(default_factory=list)  # track names, by index


@dataclass
class Part:
    """One output track: a name, a channel (1..16), a General MIDI program and its notes."""

    name: str
    channel: int
    program: int | None
    notes: list[Note]


def read_notes(path: str | Path) -> MidiNotes:
    """Every note of a type 0 or 1 standard MIDI file, in beats, with its first tempo and meter.

    Raises `MidiFileError`, one sentence naming the file, for a missing path or a folder, a file
    over `MAX_FILE_BYTES`, empty or not a MIDI file, one cut short or with a malformed event, type
    2, times in SMPTE frames or 0 ticks per beat, a tempo of 0, and a time signature of 0 beats,
    a bar over `MAX_BAR_BEATS` quarter notes or a beat shorter than 1/`MAX_BEAT_UNIT`. A file with
    no notes is read (its `notes` are empty); the caller says what it needed.
    """
    path = Path(path)
    mid = _parse(path, _read_bytes(path))
    if mid.type not in (0, 1):
        if mid.type == 2:
            raise MidiFileError(
                f"{path}: MIDI file type 2 is not supported; save it as type 0 or 1.")
        raise MidiFileError(f"{path}: the header gives an unknown MIDI file type ({mid.type}); "
                            "export it again as a type 0 or 1 .mid file.")
    tpb = mid.ticks_per_beat
    if tpb < 0:  # the high bit set: SMPTE frames a second and ticks a frame, not ticks a beat
        raise MidiFileError(
            f"{path}: its times are in SMPTE frames ({-(tpb >> 8)} frames a second), not in "
            "beats; export it again with a tempo and ticks per beat (PPQ).")
    if tpb == 0:
        raise MidiFileError(f"{path}: the header gives 0 ticks per beat, so no event has a time; "
                            "export it again as a .mid file.")
    bpm: float | None = None
    meter: tuple[int, int] | None = None
    notes: list[Note] = []
    names: list[str] = []
    for index, track in enumerate(mid.tracks):
        names.append(track.name or f"track {index}")
        tick = 0
        sounding: dict[tuple[int, int], tuple[int, int]] = {}
        for msg in track:
            tick += msg.time
            if msg.type == "set_tempo" and bpm is None:
                if msg.tempo == 0:
                    raise MidiFileError(f"{path}: its tempo is 0 microseconds a beat, which no "
                                        "music has; set a real tempo and save it again.")
                bpm = mido.tempo2bpm(msg.tempo)
            elif msg.type == "time_signature" and meter is None:
                meter = (msg.numerator, msg.denominator)
                _check_meter(path, msg.numerator, msg.denominator)
            elif msg.type == "note_on" and msg.velocity > 0:
                key = (msg.channel, msg.note)
                if key in sounding:  # re-struck without a note-off: end the old one here
                    _close(notes, sounding.pop(key), key, tick, tpb, index)
                sounding[key] = (tick, msg.velocity)
            elif msg.type in ("note_off", "note_on") and (msg.channel, msg.note) in sounding:
                key = (msg.channel, msg.note)
                _close(notes, sounding.pop(key), key, tick, tpb, index)
        for key, begun in sounding.items():
            _close(notes, begun, key, tick, tpb, index)
    notes.sort(key=lambda n: (n.start, -n.pitch))
    numerator, denominator = meter or (4, 4)
    # Beats here are quarter notes; 6/8 counts as 3 quarters a bar, which is what the grid needs.
    beats_per_bar = max(1, round(numerator * 4 / denominator))
    return MidiNotes(path, notes, bpm or 120.0, beats_per_bar, denominator, names)


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, reading no more than one past `MAX_FILE_BYTES`."""
    try:
        with path.open("rb") as file:
            data = file.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise MidiFileError(f"{path}: no such MIDI file; check the path.") from None
    except IsADirectoryError:
        raise MidiFileError(f"{path}: this is a folder, not a MIDI file; give the path of a "
                            ".mid file.") from None
    except OSError as exc:
        raise MidiFileError(f"{path}: cannot read the MIDI file "
                            f"({exc.strerror or exc}).") from None
    if len(data) > MAX_FILE_BYTES:
        raise MidiFileError(
            f"{path}: the file is larger than the {MAX_FILE_BYTES // 2**20} MiB livegen reads "
            "from a MIDI file; save only the parts you need.")
    if not data:
        raise MidiFileError(f"{path}: the file is empty; export it again as a .mid file.")
    if not data.startswith(b"MThd"):
        raise MidiFileError(f"{path}: not a standard MIDI file (it does not begin with the "
                            "MThd header); export it as a .mid file.")
    return data


def _parse(path: Path, data: bytes) -> mido.MidiFile:
    try:
        return mido.MidiFile(file=io.BytesIO(data))
    except EOFError:
        raise MidiFileError(f"{path}: the MIDI file is cut short (it ends inside an event or "
                            "before all its tracks); export it again.") from None
    except (OSError, ValueError, LookupError, TypeError, KeySignatureError) as exc:
        reason = str(exc) or type(exc).__name__
        raise MidiFileError(f"{path}: not a readable standard MIDI file ({reason}); export it "
                            "again as a .mid file.") from None


def _check_meter(path: Path, numerator: int, denominator: int) -> None:
    if numerator == 0:
        problem = "has no beats in a bar"
    elif denominator > MAX_BEAT_UNIT:
        problem = f"counts in notes shorter than 1/{MAX_BEAT_UNIT}"
    elif numerator * 4 / denominator > MAX_BAR_BEATS:
        problem = (f"makes a bar of {numerator * 4 / denominator:g} quarter notes, more than the "
                   f"{MAX_BAR_BEATS} livegen reads")
    else:
        return
    unit = denominator if denominator <= MAX_BEAT_UNIT else f"2^{denominator.bit_length() - 1}"
    raise MidiFileError(f"{path}: its time signature {numerator}/{unit} {problem}; set a real "
                        "time signature and save it again.")


def _close(notes: list[Note], begun: tuple[int, int], key: tuple[int, int], tick: int,
           tpb: int, track: int) -> None:
    start, velocity = begun
    channel, pitch = key
    notes.append(Note(pitch, start / tpb, max(tick, start) / tpb, velocity, channel + 1, track))


def write_parts(path: str | Path, parts: list[Part], bpm: float, beats_per_bar: int = 4,
                ticks_per_beat: int = 480) -> None:
    """Write a type-1 file: a tempo track, then one track per part."""
    path = Path(path)
    tempo = round(60e6 / bpm) if bpm > 0 else 0
    if not 1 <= tempo <= _MAX_TEMPO:
        raise MidiFileError(f"{path}: cannot write a tempo of {bpm:g} BPM; a MIDI file holds "
                            f"{60e6 / _MAX_TEMPO:.2f} to 60,000,000 BPM.")
    mid = mido.MidiFile(type=1, ticks_per_beat=ticks_per_beat)
    meta = mido.MidiTrack()
    meta.append(mido.MetaMessage("set_tempo", tempo=tempo, time=0))
    meta.append(mido.MetaMessage("time_signature", numerator=beats_per_bar, denominator=4, time=0))
    mid.tracks.append(meta)
    for part in parts:
        mid.tracks.append(_track(part, ticks_per_beat))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        mid.save(path)
    except OSError as exc:
        raise MidiFileError(f"{path}: cannot write the MIDI file ({exc.strerror}).") from None


def _track(part: Part, tpb: int) -> mido.MidiTrack:
    track = mido.MidiTrack()
    track.append(mido.MetaMessage("track_name", name=part.name, time=0))
    ch = part.channel - 1
    if part.program is not None:
        track.append(mido.Message("program_change", channel=ch, program=part.program, time=0))
    events: list[tuple[int, int, int, int]] = []  # (tick, order, pitch, velocity); offs first
    for note in part.notes:
        start = round(note.start * tpb)
        end = max(start + 1, round(note.end * tpb))
        events.append((start, 1, note.pitch, note.velocity))
        events.append((end, 0, note.pitch, 0))
    events.sort()
    now = 0
    for tick, is_on, pitch, velocity in events:
        kind = "note_on" if is_on else "note_off"
        track.append(mido.Message(kind, channel=ch, note=pitch, velocity=velocity,
                                  time=tick - now))
        now = tick
    return track
