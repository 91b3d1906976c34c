"""Offline render: the engine's step logic on a simulated clock, from a melody file to a file.

The human part is read from the file (by default the top note of all tracks but the General MIDI
drum channel 10, or else one track or channel, 10 included), quantized to the 16th grid, and
played to the `Accompanist` one step at a time exactly as the live engine does with the follow
window on: each melody onset is in the frame of its own step when that step is emitted. The
output holds the human part and one track per voice.

A render covers the melody up to its last note-off, to the end of that bar, and refuses (one
sentence, `MidiFileError`) a melody ending past `MAX_STEPS` 16th steps (25,000 beats, over
three hours at 120 BPM) before it allocates anything per step, so that a render takes at most
about 300 MB; a human note sounding past the end of the render is cut there in the output.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from livegen.accompanist import Accompanist
from livegen.frames import Frame, NoteChange
from livegen.grid import MAX_STEPS, StepNote, human_frames, skyline, to_steps
from livegen.midi.midifile import MidiFileError, Note, Part, read_notes, write_parts
from livegen.model.tokens import STEPS_PER_BEAT, position_index


@dataclass
class Performance:
    """What the step loop produced: each voice's token per step and the timed note changes."""

    tokens: np.ndarray  # [T, V]
    changes: list[tuple[int, NoteChange]]  # (step, change), in emission order
    seconds: float  # wall time of the loop

    @property
    def steps_per_second(self) -> float:
        return len(self.tokens) / self.seconds if self.seconds > 0 else float("inf")


def positions(length: int, beats_per_bar: int, first_downbeat: int = 0) -> list[int]:
    bar = beats_per_bar * STEPS_PER_BEAT
    return [position_index((t - first_downbeat) % bar) for t in range(length)]


def perform(acc: Accompanist, onsets: list[tuple[int, ...]], held: list[tuple[int, ...]],
            pos: list[int]) -> Performance:
    """Run the step loop over given human frames; every voice is released after the last."""
    length = len(onsets)
    tokens = np.zeros((length, acc.n), dtype=np.int16)
    changes: list[tuple[int, NoteChange]] = []
    t0 = time.perf_counter()
    for t in range(length):
        frame = Frame.of(onsets[t], held[t])
        for c in acc.emit(frame, pos[t]):
            changes.append((t, c))
        tokens[t] = acc.tokens
        acc.advance(frame, pos[t], pos[t + 1] if t + 1 < length else pos[0])
    changes.extend((length, c) for c in acc.release())
    return Performance(tokens, changes, time.perf_counter() - t0)


DRUM_CHANNEL = 10  # General MIDI percussion: not a melody unless chosen with --channel 10


def human_notes(notes: list[Note], track: int | None, channel: int | None) -> list[Note]:
    """The notes of the chosen track and/or channel; with neither, all but the drum channel's."""
    if track is None and channel is None:
        return [n for n in notes if n.channel != DRUM_CHANNEL]
    return [n for n in notes if (track is None or n.track == track)
            and (channel is None or n.channel == channel)]


def select_melody(notes: list[Note], track: int | None, channel: int | None, path: Path,
                  all_notes: bool = False) -> list[StepNote]:
    chosen = human_notes(notes, track, channel)
    if not chosen:
        if track is None and channel is None and notes:
            raise MidiFileError(f"{path}: only drum notes (channel {DRUM_CHANNEL}), which are not "
                                f"taken as the melody unless you give --channel {DRUM_CHANNEL}.")
        if track is None and channel is None:
            raise MidiFileError(f"{path}: the file has no notes; choose another file.")
        where = (f"track {track}" if track is not None else "") + \
                (f" channel {channel}" if channel is not None else "")
        raise MidiFileError(f"{path}: no notes{' in ' + where.strip() if where else ''}; "
                            "choose another --track/--channel or file.")
    steps = to_steps(chosen)
    return steps if all_notes else skyline(steps)


def render_length(melody: list[StepNote], beats_per_bar: int, path: Path, bpm: float) -> int:
    """Steps in the render: to the end of the bar of the melody's last note-off. A length over
    `MAX_STEPS` is refused with a sentence that gives it and, when one note alone is that
    long, the note."""
    bar = beats_per_bar * STEPS_PER_BEAT
    length = -(-max(n.end for n in melody) // bar) * bar
    if length <= MAX_STEPS:
        return length
    longest = max(melody, key=lambda n: n.end - n.start)
    limit = f"the {MAX_STEPS // STEPS_PER_BEAT:,} beats ({MAX_STEPS:,} 16th steps) a render covers"
    if longest.end - longest.start > MAX_STEPS:
        raise MidiFileError(
            f"{path}: its note {longest.pitch} at beat {_beats(longest.start)} lasts "
            f"{_span(longest.end - longest.start, bpm)}, more than {limit}; end that note "
            "where it should or choose another --track/--channel.")
    raise MidiFileError(f"{path}: its melody, to the end of its last bar, lasts "
                        f"{_span(length, bpm)}, more than {limit}; render a shorter part of it.")


def _beats(steps: int) -> str:
    return f"{steps / STEPS_PER_BEAT:,.2f}".removesuffix(".00")


def _span(steps: int, bpm: float) -> str:
    return f"{_beats(steps)} beats ({steps / STEPS_PER_BEAT / bpm / 60:,.1f} hours at {bpm:g} BPM)"


@dataclass
class RenderResult:
    performance: Performance
    melody: list[StepNote]
    steps: int
    bpm: float
    parts: list[Part]  # what was written: the melody, then each voice


def render(acc: Accompanist, melody_path: str | Path, out_path: str | Path,
           bpm: float | None = None, track: int | None = None, channel: int | None = None,
           all_notes: bool = False) -> RenderResult:
    midi = read_notes(melody_path)
    melody = select_melody(midi.notes, track, channel, Path(melody_path), all_notes)
    tempo = bpm or midi.bpm
    bpb = midi.beats_per_bar
    length = render_length(melody, bpb, Path(melody_path), tempo)
    onsets, held = human_frames(melody, length)
    perf = perform(acc, onsets, held, positions(length, bpb))
    starts = {(m.start, m.pitch) for m in melody}
    last = length / STEPS_PER_BEAT
    human = [n if n.end <= last else replace(n, end=max(n.start, last))
             for n in human_notes(midi.notes, track, channel)
             if all_notes or (round(n.start * STEPS_PER_BEAT), n.pitch) in starts]
    parts = [Part("melody", acc.settings.takeover.channel, 0, human)]
    parts += _voice_parts(acc, perf, 60.0 / tempo / STEPS_PER_BEAT)
    write_parts(out_path, parts, tempo, bpb)
    return RenderResult(perf, melody, length, tempo, parts)


def _voice_parts(acc: Accompanist, perf: Performance, step_seconds: float) -> list[Part]:
    """Note changes to notes, with swing and humanize applied as the live engine would."""
    open_notes: dict[int, tuple[int, float, int]] = {}
    notes: list[list[Note]] = [[] for _ in acc.voices]
    offsets: dict[int, float] = {}
    for step, change in perf.changes:
        if step not in offsets:
            offsets[step] = acc.timing_offset(step, step_seconds) / step_seconds
        at = (step + offsets[step]) / STEPS_PER_BEAT
        v = acc.voices[change.voice]
        if change.velocity == 0:
            pitch, start, vel = open_notes.pop(change.voice)
            notes[change.voice].append(Note(pitch, start, max(at, start + 0.01), vel, v.channel))
        else:
            open_notes[change.voice] = (change.pitch, at, change.velocity)
    return [Part(v.name, v.channel, v.program, notes[k])
            for k, v in enumerate(acc.voices) if v.enabled]
