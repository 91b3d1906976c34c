"""Ableton Link as a clock source (docs/ARCHITECTURE.md, "How a change flows": add a clock
source): the tempo, beat phase and start/stop of a Link session, shared with the Link peers on
this machine and the local network, read the way `Transport` reads the internal clock.

The session. `LinkClock` joins (or opens) a Link session through `aalink`, with the quantum set
to the preset's beats per bar, so a bar of livegen is a bar of every peer using that quantum,
and with start/stop sync on. When two sessions meet, Link keeps the one founded earlier (two
founded within half a second of each other: the one with the lower id), so livegen joining a
session that runs takes its tempo and phase; the preset's tempo is the tempo of a session
livegen founds. A peer left alone founds a new session, keeping its tempo.

Tempo: livegen proposes. Changing livegen's tempo control sets the session's tempo (Link keeps
the beat continuous at that moment); a peer's tempo change moves livegen's grid. There is one
session tempo, and the last peer to set it wins.

Start/stop: livegen follows the session's start/stop state and proposes it. The transport key
and a start at launch set the session playing, a stop sets it stopped, for every peer that
syncs start/stop as well; a peer's start or stop starts or stops livegen's grid. Leaving the
session (livegen quits, or a preset picks another clock) leaves its start/stop to the peers.

Time. Link keeps its own clock (microseconds; on Linux CLOCK_MONOTONIC_RAW), the engine's time
base is `time.perf_counter` (CLOCK_MONOTONIC). aalink gives the session's beat only at the moment
it is read, so `sample` reads `perf_counter` just before and just after reading the beat, keeps
the tightest of `SAMPLE_TRIES` tries and stamps the beat with the midpoint: a `LinkSample`
(time, beat, tempo) maps the Link timeline onto `perf_counter` as
``beat(t) = beat + (t - time) * tempo / 60`` until the tempo changes. The stamp is good to about
a microsecond (a read takes about half of one). The two clocks drift apart (NTP slews
CLOCK_MONOTONIC, not the raw clock: up to 0.5 ms a second), so the transport samples again every
few milliseconds and the mapping never runs long enough to drift.

Threads. aalink wants an asyncio loop to exist when a `Link` is made (it delivers its
callbacks and `sync` futures there); `LinkClock` owns a small daemon thread that runs one and
makes the `Link` in it. livegen uses neither callbacks nor `sync`: the worker only reads
properties, which take Link's session lock for a microsecond and never wait on the loop.
"""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, NamedTuple

SAMPLE_TRIES = 3  # reads of the beat per sample; the tightest bracket wins
OPEN_TIMEOUT_S = 5.0  # longest wait for aalink to make the Link session


class LinkError(RuntimeError):
    """The Link session cannot be opened (aalink missing, or its thread would not start)."""


class LinkSample(NamedTuple):
    """The session at one moment: its beat at `time` (seconds of `time.perf_counter`), its tempo
    (BPM) and whether it plays. The beat is the session's for the clock's quantum, so beats
    that are multiples of the quantum are bar lines shared with the peers."""

    time: float
    beat: float
    tempo: float
    playing: bool

    def beat_at(self, t: float) -> float:
        """The session's beat at `t`, at this sample's tempo."""
        return self.beat + (t - self.time) * self.tempo / 60.0

    def time_at(self, beat: float) -> float:
        """When the session reaches `beat`, at this sample's tempo."""
        return self.time + (beat - self.beat) * 60.0 / self.tempo


class LinkClock:
    """One Link session for the engine: enabled from creation until `close`."""

    def __init__(self, bpm: float, quantum: int) -> None:
        try:
            import aalink
        except ImportError as exc:
            raise LinkError("the Link clock needs the aalink package (GPL): "
                            "pip install 'livegen[link]'") from exc
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="livegen-link",
                                        daemon=True)
        self._thread.start()

        async def open_link() -> Any:
            link = aalink.Link(float(bpm))  # made where a loop runs, as aalink asks
            link.quantum = float(quantum)
            link.start_stop_sync_enabled = True
            link.enabled = True
            return link

        try:
            self._link = asyncio.run_coroutine_threadsafe(open_link(), self._loop).result(
                OPEN_TIMEOUT_S)
        except (FutureTimeout, RuntimeError, OSError) as exc:
            self._stop_loop()
            raise LinkError(f"could not open the Link session: {exc}") from exc

    def sample(self) -> LinkSample:
        """The session now, its beat stamped with `perf_counter` (see the module's "Time")."""
        link = self._link
        clock = time.perf_counter
        best_width, stamp, beat = float("inf"), 0.0, 0.0
        for _ in range(SAMPLE_TRIES):
            before = clock()
            b = link.beat
            after = clock()
            if after - before < best_width:
                best_width, stamp, beat = after - before, (before + after) / 2.0, b
        return LinkSample(stamp, beat, float(link.tempo), bool(link.playing))

    @property
    def peers(self) -> int:
        """Other Link peers in the session."""
        return int(self._link.num_peers)

    def propose_tempo(self, bpm: float) -> None:
        """Set the session's tempo, for every peer."""
        self._link.tempo = float(bpm)

    def propose_playing(self, playing: bool) -> None:
        """Start or stop the session, for every peer that syncs start/stop."""
        self._link.playing = bool(playing)

    def set_quantum(self, quantum: int) -> None:
        """Beats per bar: which beats are bar lines."""
        self._link.quantum = float(quantum)

    def close(self) -> None:
        """Leave the session (the peers see it at once) and end the loop's thread."""
        link = getattr(self, "_link", None)
        if link is not None:
            link.enabled = False
            self._link = None
        self._stop_loop()

    def _stop_loop(self) -> None:
        if self._loop.is_closed():
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(OPEN_TIMEOUT_S)
        if not self._thread.is_alive():
            self._loop.close()
