"""Recording a live session to a MIDI file: the human part and every voice, with the tempo map.

The file is rewritten whole (to a temporary name, then renamed over the old one) every couple
of seconds and when recording stops, so a crash, a quit or SIGTERM leaves a valid file with
everything played up to the last write; notes still sounding at a write are closed there.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import mido

TICKS = 480


@dataclass
class Track:
    name: str
    channel: int  # 1..16
    program: int | None
    events: list[tuple[float, list[int]]] = field(default_factory=list)


class Recorder:
    def __init__(self, path: Path, bpm: float, beats_per_bar: int, t0: float,
                 flush_every: float = 2.0):
        self.path = Path(path)
        self.t0 = t0
        self.beats_per_bar = beats_per_bar
        self.tempo: list[tuple[float, float]] = [(0.0, bpm)]  # (seconds from t0, bpm)
        self.tracks: dict[str, Track] = {}
        self.flush_every = flush_every
        self.last_flush = t0

    def track(self, name: str, channel: int, program: int | None = None) -> None:
        if name not in self.tracks:
            self.tracks[name] = Track(name, channel, program)

    def add(self, name: str, t: float, message: list[int]) -> None:
        """A note-on or note-off (raw bytes) of a track, at time t (seconds, engine clock)."""
        track = self.tracks.get(name)
        if track is not None and message and message[0] & 0xE0 == 0x80:
            track.events.append((t - self.t0, list(message)))

    def set_bpm(self, t: float, bpm: float) -> None:
        if abs(self.tempo[-1][1] - bpm) > 1e-6:
            self.tempo.append((t - self.t0, bpm))

    def maybe_flush(self, now: float) -> None:
        if now - self.last_flush >= self.flush_every:
            self.flush(now)

    def flush(self, now: float) -> Path:
        self.last_flush = now
        end = now - self.t0
        mid = mido.MidiFile(type=1, ticks_per_beat=TICKS)
        meta = mido.MidiTrack()
        meta.append(mido.MetaMessage("time_signature", numerator=self.beats_per_bar,
                                     denominator=4, time=0))
        last = 0
        for t, bpm in self.tempo:
            tick = self._ticks(t)
            meta.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm),
                                         time=tick - last))
            last = tick
        mid.tracks.append(meta)
        for track in self.tracks.values():
            mid.tracks.append(self._track(track, end))
        tmp = self.path.with_name(self.path.name + ".partial")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        mid.save(tmp)
        os.replace(tmp, self.path)
        return self.path

    def _track(self, track: Track, end: float) -> mido.MidiTrack:
        out = mido.MidiTrack()
        out.append(mido.MetaMessage("track_name", name=track.name, time=0))
        ch = track.channel - 1
        if track.program is not None:
            out.append(mido.Message("program_change", channel=ch, program=track.program))
        sounding: set[int] = set()
        last = 0
        timed = [(self._ticks(t), m) for t, m in track.events] + [(self._ticks(end), None)]
        for tick, m in timed:
            if m is None:  # close what still sounds at the end of the recording
                for pitch in sorted(sounding):
                    out.append(mido.Message("note_off", channel=ch, note=pitch,
                                            time=tick - last))
                    last = tick
                break
            on = m[0] & 0xF0 == 0x90 and m[2] > 0
            if on == (m[1] in sounding) and not on:
                continue  # an off for a note that is not on
            kind = "note_on" if on else "note_off"
            out.append(mido.Message(kind, channel=ch, note=m[1], velocity=m[2] if on else 0,
                                    time=tick - last))
            last = tick
            (sounding.add if on else sounding.discard)(m[1])
        return out

    def _ticks(self, seconds: float) -> int:
        """Seconds from the start to ticks, through the tempo map."""
        ticks, prev_t, prev_bpm = 0.0, 0.0, self.tempo[0][1]
        for t, bpm in self.tempo[1:]:
            if t >= seconds:
                break
            ticks += (t - prev_t) * prev_bpm / 60.0 * TICKS
            prev_t, prev_bpm = t, bpm
        return max(0, round(ticks + (seconds - prev_t) * prev_bpm / 60.0 * TICKS))
