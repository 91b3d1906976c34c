"""Recording a live session to a MIDI file: the human part and every voice, with the tempo map.

Recording runs in the engine's worker, so it stays off the hot path (docs/ARCHITECTURE.md, "The
hot path"): `add` only encodes a message into its track's bytes in memory (delta time in ticks,
running per track); `maybe_flush`, called in quiet moments, writes what is new every
`flush_every` seconds, and what a flush costs does not grow with the length of the recording.

The file is a type-1 Standard MIDI File with one named track per part, after a conductor track
with the time signature and the tempo map, during the recording as after it: mido or a DAW sees
"human", each voice and "takeover" as tracks. A type-1 file keeps its tracks one after another,
each behind its length, so a track cannot simply grow at the end of the file; each track chunk
is laid out with room to spare instead, and its length never changes while it is in use:

    MTrk <length> | events so far | tail | room ..................... | End-of-Track

The tail is the note-offs that close what still sounds at the last flush, then the head of a
sequencer-specific meta event (FF 7F) whose data is the room, up to the End-of-Track written at
the end of the chunk when it was laid out. A flush writes, for each track that changed, only its
new event bytes and a new tail (tens of bytes): first what lands in the old room (inside the old
padding event's data, which no reader interprets), then one small write over the old tail. A
kill (SIGKILL included) at any moment therefore leaves a file that reads back with everything up
to the last flush, the notes sounding then closed there: it loses `flush_every` seconds at most.
Nothing is synced to the disk for a flush: a power cut may lose what the system had not written.

When a track has used half of its room, a new layout starts. A helper thread creates it beside
the recording (NAME.N.partial), with room as large as each track's events (`room` at least,
MAX_ROOM at most, which keeps every padding event under mido's 1 MB limit on a message), copies
the events encoded so far into it (they never change once encoded) and has the system write it
to the disk, while the flushes keep going to the current file. The next flush copies what came
since, writes the tails and renames the new file over the recording, which is cheap now that
the file system holds little of the new file unwritten (a rename over a file makes ext4 write
out the renamed one first); the helper then closes the old file, which frees it (milliseconds).
Tracks added with `track` get their layout the same way, as soon as `maybe_flush` runs. Only a
flush that cannot wait does that work itself: a flood filled a track's room before its new
layout was ready, or a due flush finds tracks with events that are not in the file yet (the
helper is late). The helper holds the interpreter's lock only between its system calls.

The alternative, a type-0 file (every part merged into one track, appended at the end of the
file), needs no room and no new layouts, but loses the named tracks (the parts become channels),
and each of its flushes patches the track's length and re-appends End-of-Track in two writes
that a kill can separate, leaving a file that does not read back.

`close` makes a last flush (the file is then complete) and has the helper write the final file
without room and rename it over the recording; should that fail, the complete file with its room
stays. A write that fails (a full disk, a read-only folder, a file where the folder should be)
stops the recording: `RecorderError`, with one sentence naming the file and the reason, from the
constructor, `maybe_flush`, `flush` or `close`; `failed` keeps the sentence and every later call
does nothing. The file keeps what the last flush that succeeded wrote; a kill while a layout is
built leaves its NAME.N.partial behind. `new_recording_path` picks a name that no other
recording has, in this process or another.
"""

from __future__ import annotations

import atexit
import errno
import os
import queue
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from itertools import count
from pathlib import Path

TICKS = 480  # ticks per beat
ROOM = 16 * 1024  # least room given to a track in a layout, bytes
MAX_ROOM = 512 * 1024  # most: a padding event above mido's 1 MB message limit would not read
MOVE = 128 * 1024  # bytes of events the helper copies into a new layout per write
NAME = "livegen-{stamp}.mid"

_EOT = b"\x00\xff\x2f\x00"  # End-of-Track, at delta 0
_PAD = b"\xff\x7f"  # sequencer-specific meta event: the padding that holds the room
_HEADER = 14  # bytes of the MThd chunk
_SLACK = 32  # room for a tail beyond the room proper: the padding's head, a first delta
_BINARY = getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _BINARY
_PWRITE = hasattr(os, "pwrite")
# Windows renames neither a file that is open nor over one: there the files are closed around
# the rename, on the worker
_RENAME_OPEN = os.name != "nt"


class RecorderError(Exception):
    """The recording could not start, or stopped; str() is one sentence naming the file and the
    reason."""


def new_recording_path(folder: Path, now: datetime | None = None) -> Path:
    """A new, empty file `livegen-YYYYmmdd-HHMMSS.mid` in `folder` (created if missing), or
    `...-2.mid`, `...-3.mid`... when that name is taken. The file is created exclusively, so two
    recordings (of this process or another) never get the same name. Raises RecorderError."""
    folder = Path(folder)
    stamp = (now or datetime.now()).strftime("%Y%m%d-%H%M%S")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RecorderError(f"cannot record in {folder}: {_reason(exc, folder / 'x')}.") from exc
    for n in count(1):
        path = folder / NAME.format(stamp=stamp if n == 1 else f"{stamp}-{n}")
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _BINARY, 0o644)
        except FileExistsError:
            continue
        except OSError as exc:
            raise RecorderError(f"cannot record to {path}: {_reason(exc, path)}.") from exc
        os.close(fd)
        return path
    raise AssertionError("unreachable")


@dataclass(eq=False)
class Track:
    name: str
    channel: int  # 1..16; 0 for the conductor track
    program: int | None
    data: bytearray = field(default_factory=bytearray)  # the events encoded so far
    tick: int = 0  # of the last event encoded
    sounding: set[int] = field(default_factory=set)
    status: int = 0x80  # its note-off status byte (channel included)
    head: int = 0  # bytes of `data` before the first note: the track's name, its program
    # where the track lies in the file now
    start: int = 0  # file offset of its events (after MTrk and the length)
    length: int = 0  # the chunk's length: events, tail, room and End-of-Track
    room: int = 0  # the room it was given
    on_disk: int = 0  # bytes of `data` in the file
    tail: int = 0  # bytes of the tail written after them


@dataclass(eq=False)
class _Layout:
    """A new file being built: where each track goes, and how much of it is copied."""

    tmp: Path
    places: list[tuple[int, int, int]]  # (start, length, room) per track
    copied: list[int]  # bytes of each track's events to copy, then copied, by the helper
    fd: int = -1
    ready: bool = False  # the helper has copied them: the worker finishes it
    dropped: bool = False  # given up: the helper stops copying


_LIVE: weakref.WeakSet[Recorder] = weakref.WeakSet()


@atexit.register
def _wait_for_helpers() -> None:
    """At exit, let each recorder's helper finish what it was handed (a rename, the final file)."""
    for recorder in list(_LIVE):
        recorder.wait(5.0)


class Recorder:
    """One recording, driven by the engine's worker: `track` for each part, `add` for each
    note message, `maybe_flush` in quiet moments, `close` at the end. `set_bpm` records a tempo
    change. Every method but `add` and `track` may raise RecorderError; after one, the recording
    has stopped and the methods do nothing."""

    def __init__(self, path: Path, bpm: float, beats_per_bar: int, t0: float,
                 flush_every: float = 2.0, room: int = ROOM):
        self.path = Path(path)
        self.t0 = t0
        self.beats_per_bar = beats_per_bar
        self.flush_every = flush_every
        self.last_flush = t0
        self.room = room
        self.move = MOVE
        self.failed: str | None = None
        self.closed = False
        self.events = 0  # note messages recorded
        self.layouts = 0  # new layouts taken over (the first one, with the tracks, included)
        self.tempo: list[tuple[float, float, float]] = [(0.0, bpm, 0.0)]  # (s, bpm, tick)
        self._segment = (0.0, bpm / 60.0 * TICKS, 0.0)  # the last: (s, ticks per s, tick)
        self._taking = True  # events are recorded: not closed, not failed
        self.tracks: dict[str, Track] = {}
        conductor = Track("", 0, None)
        conductor.data += b"\x00\xff\x58\x04" + bytes((beats_per_bar & 0xFF, 2, 24, 8))
        conductor.data += b"\x00" + _tempo(bpm)
        self.order: list[Track] = [conductor]
        self._stale = False  # tracks added since the file was laid out
        self._layout: _Layout | None = None
        self._tmps = count(1)
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._stopping = False
        self._io_error: OSError | None = None  # the first failure of the helper's work
        self.fd = -1
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.fd = os.open(self.path, _FLAGS, 0o644)
            places = self._places()
            self._skeleton(self.fd, places)
            for track, place in zip(self.order, places, strict=True):
                self._place(track, place, 0)
                self._append(self.fd, track, self._tail(track, track.start, track.length, 0))
        except OSError as exc:
            if self.fd >= 0:
                os.close(self.fd)
                _unlink(self.path)
            self.fd = -1
            self.failed = f"cannot record to {self.path}: {_reason(exc, self.path)}."
            raise RecorderError(self.failed) from exc
        self._helper = threading.Thread(target=self._serve, name="livegen-recorder",
                                        daemon=True)
        self._helper.start()
        _LIVE.add(self)

    @property
    def moving(self) -> bool:
        """A new layout is being built."""
        return self._layout is not None

    # ------------------------------------------------------------------ recording

    def track(self, name: str, channel: int, program: int | None = None) -> None:
        if name in self.tracks or not self._taking:
            return
        track = Track(name, channel, program, status=0x80 | (channel - 1) & 15)
        label = name.encode("latin-1", "replace")
        track.data += b"\x00\xff\x03" + _varlen(len(label)) + label
        if program is not None:
            track.data += bytes((0, 0xC0 | (channel - 1) & 15, program & 0x7F))
        track.head = len(track.data)
        self.tracks[name] = track
        self.order.append(track)
        self._stale = True

    def add(self, name: str, t: float, message: list[int] | bytes) -> None:
        """A note-on or note-off (raw bytes) of a track, at time t (seconds, engine clock).
        Encodes it in memory; nothing is written until the next flush."""
        track = self.tracks.get(name)
        if track is None or not self._taking or message[0] & 0xE0 != 0x80 or len(message) < 3:
            return
        pitch = message[1] & 0x7F
        velocity = message[2] & 0x7F
        if message[0] & 0x10 and velocity:
            track.sounding.add(pitch)
            event = (track.status | 0x10, pitch, velocity)
        elif pitch in track.sounding:
            track.sounding.discard(pitch)
            event = (track.status, pitch, 0)
        else:
            return  # an off for a note that is not on
        tick = self._ticks(t - self.t0)
        delta = tick - track.tick
        data = track.data
        if delta <= 0:  # at the same tick, or a message older than the last one: kept in order
            data.append(0)
        else:
            track.tick = tick
            if delta < 0x80:
                data.append(delta)
            else:
                data += _varlen(delta)
        data.extend(event)
        self.events += 1

    def set_bpm(self, t: float, bpm: float) -> None:
        start, last, _ = self.tempo[-1]
        if abs(last - bpm) <= 1e-6 or not self._taking:
            return
        seconds = max(t - self.t0, start)
        self.tempo.append((seconds, bpm, self._exact_ticks(seconds)))
        self._segment = (seconds, bpm / 60.0 * TICKS, self.tempo[-1][2])
        conductor = self.order[0]
        tick = max(conductor.tick, round(self.tempo[-1][2]))
        conductor.data += _varlen(tick - conductor.tick) + _tempo(bpm)
        conductor.tick = tick

    # ------------------------------------------------------------------ writing

    def maybe_flush(self, now: float) -> None:
        """Flush every `flush_every` seconds. In between, as soon as possible: start the new
        layout that added tracks need, take over one that the helper has built."""
        layout = self._layout
        if now - self.last_flush >= self.flush_every:
            self.flush(now)
        elif (self.failed is None and not self.closed
              and (self._stale or layout is not None and layout.ready)):
            self._run(now, due=False)

    def flush(self, now: float) -> Path:
        """Write what is new since the last flush; the file then holds everything recorded,
        the notes still sounding closed at `now`. Raises RecorderError when a write fails."""
        if self.failed is not None or self.closed:
            return self.path
        self.last_flush = now
        self._run(now, due=True)
        return self.path

    def _run(self, now: float, due: bool) -> None:
        try:
            self._flush(self._ticks(now - self.t0), due)
        except OSError as exc:
            self._fail(exc)

    def close(self, now: float) -> Path:
        """Stop recording: a last flush, the notes still sounding closed at `now`, then the
        final file without room, written and renamed over the recording by the helper (`wait`
        waits for it). Raises RecorderError when the last flush fails."""
        if self.failed is not None or self.closed:
            return self.path
        self.last_flush = now
        self.closed, self._taking = True, False  # no more events, and no new layout
        end = self._ticks(now - self.t0)
        try:
            self._flush(end, due=True)
            if any(track.start == 0 for track in self.order):  # not in the file yet
                self._relayout(end)
        except OSError as exc:
            self._fail(exc)
        self._abandon()
        fd, self.fd = self.fd, -1
        self._later(lambda: self._final(end, fd))
        self._stop()
        return self.path

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the helper has done what it was handed; False if `timeout` ran out."""
        helper = getattr(self, "_helper", None)
        if helper is None or not helper.is_alive():
            return True
        if self._stopping:
            helper.join(timeout)
            return not helper.is_alive()
        done = threading.Event()
        self._later(done.set)
        return done.wait(timeout)

    def _flush(self, end: int, due: bool) -> None:
        """Write what is new. `due`: the file must hold everything now, even the tracks that
        are not in it yet (a layout at once on the worker if the helper has not built one)."""
        if self._io_error is not None:  # the helper could not build or close a file
            raise self._io_error
        missing = False
        for track in self.order:
            if track.start == 0:  # not in the file yet
                missing = missing or len(track.data) > track.head
            elif track.on_disk < len(track.data) or track.sounding:  # else no change
                tail = self._tail(track, track.start, track.length, end)
                if tail is None:  # a flood filled the room before a new layout was ready
                    self._relayout(end)
                    return
                self._append(self.fd, track, tail)
        layout = self._layout
        if layout is not None and self._stale:
            self._abandon()  # a track was added while it was built: start again
            layout = None
        if layout is not None and layout.ready:
            if not self._finish(layout, end):
                self._relayout(end)
        elif missing and due:
            self._relayout(end)
        elif layout is None and not self.closed and (self._stale or any(
                t.start and t.length - t.on_disk - t.tail - len(_EOT) < t.room // 2
                for t in self.order)):
            self._begin()

    def _append(self, fd: int, track: Track, tail: bytes) -> None:
        """The new events and the new tail, ordered so that a kill between the writes leaves the
        previous flush readable: first what lands in the old room, then over the old tail."""
        blob = track.data[track.on_disk:] + tail
        at, old = track.start + track.on_disk, track.tail
        if len(blob) > old:
            _write(fd, blob[old:], at + old)
        _write(fd, blob[:old] if len(blob) > old else blob, at)
        track.on_disk, track.tail = len(track.data), len(tail)

    def _tail(self, track: Track, start: int, length: int, end: int) -> bytes | None:
        """The note-offs closing what sounds at tick `end`, then the head of the padding event
        that fills the room up to End-of-Track; None when they do not fit."""
        closing, delta = self._closing(track, end)
        pad = _pad(delta, length - len(_EOT) - len(track.data) - len(closing))
        return None if pad is None else closing + pad

    def _closing(self, track: Track, end: int) -> tuple[bytes, int]:
        """Note-offs for the sounding notes at tick `end`, and the delta left for what follows."""
        delta = max(0, end - track.tick)
        out = bytearray()
        for pitch in sorted(track.sounding):
            out += _varlen(delta) + bytes((track.status, pitch, 0))
            delta = 0
        return bytes(out), delta

    # ------------------------------------------------------------------ layouts

    def _places(self) -> list[tuple[int, int, int]]:
        """Where each track goes in a new layout: (start, length, room)."""
        places = []
        at = _HEADER
        for track in self.order:
            room = min(MAX_ROOM, max(self.room, len(track.data)))
            length = len(track.data) + room + _SLACK + 4 * len(track.sounding)
            places.append((at + 8, length, room))
            at += 8 + length
        return places

    def _place(self, track: Track, place: tuple[int, int, int], on_disk: int) -> None:
        track.start, track.length, track.room = place
        track.on_disk, track.tail = on_disk, 0

    def _skeleton(self, fd: int, places: list[tuple[int, int, int]]) -> None:
        """The header, each chunk's MTrk and length, and its End-of-Track; the rest is holes."""
        _write(fd, _header(len(places)), 0)
        for start, length, _ in places:
            _write(fd, b"MTrk" + length.to_bytes(4, "big"), start - 8)
            _write(fd, _EOT, start + length - len(_EOT))

    def _begin(self) -> None:
        """Start a new layout: the helper creates the file and copies the events so far."""
        tmp = self.path.with_name(f"{self.path.name}.{next(self._tmps)}.partial")
        layout = _Layout(tmp, self._places(), [len(t.data) for t in self.order])
        self._layout, self._stale = layout, False
        self._later(lambda: self._build(layout))

    def _build(self, layout: _Layout, sync: bool = True) -> None:
        """Create the new layout's file and copy into it the events it was given (bytes already
        encoded do not change), MOVE bytes a write. On the helper, it then has the system write
        the file to the disk, so that the rename that takes it over (which makes the file system
        write out what it still holds of the file) stays cheap. On the worker (`sync` False)
        for a layout needed at once."""
        layout.fd = os.open(layout.tmp, _FLAGS, 0o644)
        self._skeleton(layout.fd, layout.places)
        for i, track in enumerate(self.order[:len(layout.places)]):
            size, done = layout.copied[i], 0
            while done < size and not layout.dropped:
                n = min(self.move, size - done)
                _write(layout.fd, track.data[done:done + n], layout.places[i][0] + done)
                done += n
        if sync and not layout.dropped:
            getattr(os, "fdatasync", os.fsync)(layout.fd)
        layout.ready = True

    def _finish(self, layout: _Layout, end: int) -> bool:
        """Copy what was encoded since the layout began, write the tails, and rename the file
        over the recording; later flushes write to it, and the helper closes the old one. False
        (the layout given up) when a track grew past its new room meanwhile."""
        tails = []
        for track, (start, length, _) in zip(self.order, layout.places, strict=True):
            tail = self._tail(track, start, length, end)
            if tail is None:
                self._abandon()
                return False
            tails.append(tail)
        for i, (track, tail) in enumerate(zip(self.order, tails, strict=True)):
            done = layout.copied[i]
            _write(layout.fd, track.data[done:] + tail, layout.places[i][0] + done)
        if _RENAME_OPEN:
            os.replace(layout.tmp, self.path)
            fd = layout.fd
        else:
            os.close(layout.fd)
            layout.fd = -1
            os.close(self.fd)
            self.fd = -1
            os.replace(layout.tmp, self.path)
            fd = os.open(self.path, os.O_WRONLY | _BINARY)
        for track, place, tail in zip(self.order, layout.places, tails, strict=True):
            self._place(track, place, len(track.data))
            track.tail = len(tail)
        old, self.fd, self._layout = self.fd, fd, None
        if old >= 0:
            self._later(lambda: os.close(old))  # frees the old file: milliseconds
        self.layouts += 1
        return True

    def _relayout(self, end: int) -> None:
        """A new layout at once, built on the worker (a flood, or the recording closes before
        its tracks were laid out)."""
        self._abandon()
        tmp = self.path.with_name(f"{self.path.name}.{next(self._tmps)}.partial")
        layout = _Layout(tmp, self._places(), [len(t.data) for t in self.order])
        self._layout, self._stale = layout, False
        self._build(layout, sync=False)
        if not self._finish(layout, end):
            raise AssertionError("a fresh layout has room for every tail")

    def _abandon(self) -> None:
        layout, self._layout = self._layout, None
        if layout is not None:
            layout.dropped = True
            self._later(lambda: _discard(layout.fd, layout.tmp))

    def _fail(self, exc: OSError) -> None:
        """Stop recording after a failed write: the file stays as the last flush left it; raise
        one sentence."""
        self._abandon()
        fd, self.fd = self.fd, -1
        if fd >= 0:
            self._later(lambda: os.close(fd))
        self._stop()
        self._taking = False
        self.failed = f"recording stopped, could not write {self.path}: {_reason(exc, self.path)}."
        raise RecorderError(self.failed) from exc

    # ------------------------------------------------------------------ the helper thread

    def _later(self, job: Callable[[], None]) -> None:
        self._jobs.put(job)

    def _stop(self) -> None:
        self._stopping = True
        self._jobs.put(None)

    def _serve(self) -> None:
        """The helper: file-system calls that take milliseconds, in the order handed over."""
        while (job := self._jobs.get()) is not None:
            try:
                job()
            except OSError as exc:
                if self._io_error is None:
                    self._io_error = exc

    def _final(self, end: int, fd: int) -> None:
        """The final file, without room (the tracks no longer change): written beside the
        recording and renamed over it. On failure the recording keeps its room."""
        tmp = self.path.with_name(f"{self.path.name}.{next(self._tmps)}.partial")
        try:
            out = os.open(tmp, _FLAGS, 0o644)
            try:
                at = _HEADER
                _write(out, _header(len(self.order)), 0)
                for track in self.order:
                    closing, delta = self._closing(track, end)
                    tail = closing + _varlen(delta) + b"\xff\x2f\x00"
                    size = len(track.data) + len(tail)
                    _write(out, b"MTrk" + size.to_bytes(4, "big"), at)
                    _write(out, track.data, at + 8)
                    _write(out, tail, at + 8 + len(track.data))
                    at += 8 + size
            finally:
                os.close(out)
        except OSError:
            os.close(fd)
            _unlink(tmp)
            raise
        os.close(fd)
        try:
            os.replace(tmp, self.path)
        except OSError:
            _unlink(tmp)
            raise

    # ------------------------------------------------------------------ time

    def _exact_ticks(self, seconds: float) -> float:
        """Seconds from the start to ticks, through the tempo map."""
        start, bpm, at = self.tempo[0]
        for segment in reversed(self.tempo):
            if seconds >= segment[0]:
                start, bpm, at = segment
                break
        return at + (seconds - start) * bpm / 60.0 * TICKS

    def _ticks(self, seconds: float) -> int:
        start, rate, at = self._segment  # the last tempo: nearly always the one that applies
        if seconds < start:
            return max(0, round(self._exact_ticks(seconds)))
        return round(at + (seconds - start) * rate)


def _varlen(n: int) -> bytes:
    """A MIDI variable-length quantity."""
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append(0x80 | n & 0x7F)
        n >>= 7
    return bytes(reversed(out))


def _pad(delta: int, space: int) -> bytes | None:
    """The head (delta, FF 7F, data length) of a padding event exactly `space` bytes long, its
    data being whatever the file holds there; None when none fits. A space that no single head
    fits (the data length would change its own size) gets an empty padding event first."""
    head = _varlen(delta) + _PAD
    for size in (1, 2, 3, 4):
        n = space - len(head) - size
        if n >= 0 and len(_varlen(n)) == size:
            return head + _varlen(n)
    empty = head + b"\x00"
    rest = _pad(0, space - len(empty)) if space - len(empty) >= 4 else None
    return None if rest is None else empty + rest


def _tempo(bpm: float) -> bytes:
    """A set-tempo meta event, without its delta."""
    us = max(1, min(0xFFFFFF, round(60_000_000 / bpm)))
    return b"\xff\x51\x03" + us.to_bytes(3, "big")


def _header(tracks: int) -> bytes:
    return (b"MThd" + (6).to_bytes(4, "big") + (1).to_bytes(2, "big")
            + tracks.to_bytes(2, "big") + TICKS.to_bytes(2, "big"))


def _write(fd: int, data: bytes | bytearray, at: int) -> None:
    view = memoryview(data)
    while view:
        if _PWRITE:
            n = os.pwrite(fd, view, at)
        else:  # Windows: each file is written by one thread only
            os.lseek(fd, at, os.SEEK_SET)
            n = os.write(fd, view)
        if n <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        view, at = view[n:], at + n


def _discard(fd: int, tmp: Path) -> None:
    if fd >= 0:
        os.close(fd)
    _unlink(tmp)


def _unlink(path: Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _reason(exc: OSError, path: Path) -> str:
    """Why a file-system call failed, in words."""
    code = exc.errno
    if code in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        return "the disk is full"
    if code == errno.EROFS:
        return "the file system is read-only"
    if code in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if code in (errno.ENOTDIR, errno.EEXIST):
        for parent in Path(path).parents:
            if parent.exists() and not parent.is_dir():
                return f"{parent} is a file, not a folder"
        return "a file is in the way of a folder"
    if code == errno.ENOENT:
        return "its folder does not exist"
    return (exc.strerror or str(exc)).rstrip(".")
