"""Standard MIDI files in and out: notes with times in beats, and multi-track output.

Reading gives every note of the file (track, channel, pitch, start and end in beats) with the
first tempo and time signature; writing takes named parts, one track and channel each.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import mido


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
    path = Path(path)
    try:
        mid = mido.MidiFile(path)
    except FileNotFoundError:
        raise MidiFileError(f"{path}: no such MIDI file; check the path.") from None
    except (OSError, EOFError, ValueError, KeyError, IndexError) as exc:
        raise MidiFileError(
            f"{path}: not a readable standard MIDI file ({exc}); export it again as a .mid file."
        ) from None
    if mid.type == 2:
        raise MidiFileError(f"{path}: MIDI file type 2 is not supported; save it as type 0 or 1.")
    tpb = mid.ticks_per_beat
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
                bpm = mido.tempo2bpm(msg.tempo)
            elif msg.type == "time_signature" and meter is None:
                meter = (msg.numerator, msg.denominator)
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


def _close(notes: list[Note], begun: tuple[int, int], key: tuple[int, int], tick: int,
           tpb: int, track: int) -> None:
    start, velocity = begun
    channel, pitch = key
    notes.append(Note(pitch, start / tpb, max(tick, start) / tpb, velocity, channel + 1, track))


def write_parts(path: str | Path, parts: list[Part], bpm: float, beats_per_bar: int = 4,
                ticks_per_beat: int = 480) -> None:
    """Write a type-1 file: a tempo track, then one track per part."""
    path = Path(path)
    mid = mido.MidiFile(type=1, ticks_per_beat=ticks_per_beat)
    meta = mido.MidiTrack()
    meta.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm), time=0))
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
