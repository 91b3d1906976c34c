"""Resolving the notes a dead engine left sounding (docs/ARCHITECTURE.md, "Processes").

When the engine process dies (it exits, is killed, or reports an error), the TUI says so in a red
banner and resolves the notes the engine left sounding, because a killed process cannot: its
MIDI client vanishes with it and so do its connections. Decision: the TUI sends the resolution
itself, from a MIDI client of its own ("livegen-rescue"), straight to where the engine's output
went. It knows the notes from the last snapshot (`Status.sounding`, (channel, pitch) pairs)
and the channels from the voices and the takeover channel; it sends a note-off for each note,
then CC64=0, CC123 and CC120 on every one of those channels, which also covers a note started
after the last snapshot. It knows where to send them because it keeps watching, every 1.5 s
while the engine runs, which ports each "livegen out" port feeds (JACK: one idle client of its
own, `JackGraph`, reads the graph; ALSA: /proc/asound/seq/clients): when the engine dies, the
"livegen out" port that vanished is the engine's, and its destinations are reached again by
name. With `--output NAME` the port the engine connected to is reached by that name too. Where
no connection can be read (CoreMIDI, Windows, or no libjack), only a named output can be
reached; the banner says what was resolved and where, or that nothing could be sent and the
synth's own panic is needed. (A TUI-side standby port was not chosen: listeners connect to
"livegen out", not to a port of the TUI, and reopening a virtual "livegen out" reaches nobody
once the connections are gone.)
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import re
import threading
import time
from pathlib import Path
from typing import Any

import rtmidi

from livegen.midi import ports
from livegen.midi.ledger import (
    CC_ALL_NOTES_OFF,
    CC_ALL_SOUND_OFF,
    CC_SUSTAIN,
    cc_message,
    note_off_message,
)
from livegen.status import Status

CONNECTIONS_S = 1.5  # how often the engine output's connections are read
RECENT_S = 3 * CONNECTIONS_S  # a port seen gone this recently may be the dead engine's
RESCUE_CLIENT = "livegen-rescue"
ALSA_CLIENTS = "/proc/asound/seq/clients"
JACK_NO_START_SERVER = 0x01  # jack_options_t
JACK_PORT_IS_OUTPUT = 0x02  # JackPortFlags


def release_messages(status: Status | None) -> tuple[list[list[int]], list[int]]:
    """What ends every note the engine may have left sounding: a note-off per note of the last
    snapshot, then CC64=0, CC123, CC120 on every channel in use (all 16 with no snapshot)."""
    if status is None:
        sounding: list[tuple[int, int]] = []
        channels = set(range(1, 17))
    else:
        sounding = list(status.sounding)
        channels = {v.channel for v in status.voices}
        channels |= {ch for ch, _ in sounding}
        channels.add(status.settings.takeover.channel)
    messages = [note_off_message(ch, p) for ch, p in sounding]
    for ch in sorted(channels):
        messages += [cc_message(ch, CC_SUSTAIN, 0), cc_message(ch, CC_ALL_NOTES_OFF, 0),
                     cc_message(ch, CC_ALL_SOUND_OFF, 0)]
    return messages, sorted(channels)


def parse_alsa_connections(text: str) -> dict[str, list[str]]:
    """/proc/asound/seq/clients → {"128:0": ["129:0", ...]} for ports named "livegen out"."""
    found: dict[str, list[str]] = {}
    client: str | None = None
    port: str | None = None
    for line in text.splitlines():
        if m := re.match(r"Client\s+(\d+)\s*:", line):
            client, port = m.group(1), None
        elif m := re.match(r"\s+Port\s+(\d+)\s*:\s*\"(.*)\"", line):
            named = client is not None and m.group(2) == ports.VIRTUAL_OUTPUT_NAME
            port = f"{client}:{m.group(1)}" if named else None
            if port is not None:
                found[port] = []
        elif port is not None and (m := re.match(r"\s+Connecting To:\s*(.*)", line)):
            found[port] += re.findall(r"(\d+:\d+)", m.group(1))
    return found


class JackGraph:
    """One JACK client of this process, opened once and never activated, that reads which
    ports each output port feeds. Reading the graph this way changes nothing in it: running
    `jack_lsp` every few seconds instead (a client opened and closed each time) made a client
    that another program opened at the same moment receive nothing now and then (jackd
    1.9.21). A client of a server that stopped or restarted is abandoned, never closed (see
    livegen.midi.ports), and a new one is opened when the server is back."""

    _instance: JackGraph | None = None
    _abandoned: list[int] = []

    def __init__(self) -> None:
        name = ctypes.util.find_library("jack") or "libjack.so.0"
        lib = ctypes.CDLL(name)
        lib.jack_client_open.restype = ctypes.c_void_p
        lib.jack_client_open.argtypes = [ctypes.c_char_p, ctypes.c_int,
                                         ctypes.POINTER(ctypes.c_int)]
        lib.jack_get_ports.restype = ctypes.POINTER(ctypes.c_char_p)
        lib.jack_get_ports.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p,
                                       ctypes.c_ulong]
        lib.jack_port_by_name.restype = ctypes.c_void_p
        lib.jack_port_by_name.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        lib.jack_port_get_all_connections.restype = ctypes.POINTER(ctypes.c_char_p)
        lib.jack_port_get_all_connections.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        lib.jack_free.argtypes = [ctypes.c_void_p]
        lib.jack_client_close.argtypes = [ctypes.c_void_p]
        self.lib = lib
        self.client: int | None = None
        self.server: str | None = None
        self.identity: tuple[int, int] | None = None
        self.lock = threading.Lock()

    @classmethod
    def shared(cls) -> JackGraph | None:
        """The process's one reader (None without libjack)."""
        if cls._instance is None:
            try:
                cls._instance = cls()
            except (OSError, AttributeError):
                return None
        return cls._instance

    def _names(self, array: Any) -> list[str]:
        names: list[str] = []
        if not array:
            return names
        i = 0
        while array[i] is not None:
            names.append(array[i].decode("utf-8", "replace"))
            i += 1
        self.lib.jack_free(ctypes.cast(array, ctypes.c_void_p))
        return names

    def outputs(self, suffix: str) -> dict[str, list[str]] | None:
        """{output port whose name ends with `suffix`: [ports it feeds]}, or None when the
        server cannot be read."""
        with self.lock:
            server = ports.jack_server_name()
            identity = ports.jack_server_identity(server)
            if self.client is not None and (server != self.server or identity != self.identity):
                JackGraph._abandoned.append(self.client)  # its server is gone: never touch it
                self.client = None
            if self.client is None:
                if identity is None:  # no jackd2 socket: not running (or not jackd2)
                    return None
                status = ctypes.c_int(0)
                client = self.lib.jack_client_open(b"livegen-watch", JACK_NO_START_SERVER,
                                                   ctypes.byref(status))
                if not client:
                    return None
                self.client, self.server, self.identity = client, server, identity
            found: dict[str, list[str]] = {}
            for port in self._names(self.lib.jack_get_ports(self.client, None, None,
                                                            JACK_PORT_IS_OUTPUT)):
                if port.endswith(suffix):
                    handle = self.lib.jack_port_by_name(self.client, port.encode())
                    found[port] = self._names(
                        self.lib.jack_port_get_all_connections(self.client, handle)
                    ) if handle else []
            return found


class OutputConnections:
    """Which ports every "livegen out" port feeds, read every `interval` s in a thread, so that
    after the engine died the TUI still knows where its notes went (module docstring)."""

    def __init__(self, api: int, interval: float = CONNECTIONS_S):
        self.api = api
        self.interval = interval
        self.seen: dict[str, list[str]] = {}  # port -> destinations, at the last reading
        # ports that were gone at a later reading: (their last destinations, when seen gone).
        # A reading between the engine's death and the rescue must not forget where it played.
        self.vanished: dict[str, tuple[list[str], float]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def readable(self) -> bool:
        if self.api == rtmidi.API_UNIX_JACK:
            return JackGraph.shared() is not None
        if self.api == rtmidi.API_LINUX_ALSA:
            return os.path.exists(ALSA_CLIENTS)
        return False

    def scan(self) -> dict[str, list[str]] | None:
        """The current connections, or None when they cannot be read."""
        try:
            if self.api == rtmidi.API_UNIX_JACK:
                graph = JackGraph.shared()
                return graph.outputs(":" + ports.VIRTUAL_OUTPUT_NAME) if graph else None
            if self.api == rtmidi.API_LINUX_ALSA:
                return parse_alsa_connections(Path(ALSA_CLIENTS).read_text())
        except OSError:
            return None
        return None

    def start(self) -> None:
        if self.readable and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="livegen-connections",
                                            daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            found = self.scan()
            if found is not None:
                self.record(found, time.monotonic())
            self._stop.wait(self.interval)

    def record(self, found: dict[str, list[str]], now: float) -> None:
        """A reading: ports listed before and missing now are kept as vanished."""
        with self._lock:
            for port, destinations in self.seen.items():
                if port not in found:
                    self.vanished[port] = (destinations, now)
            for port in found:
                self.vanished.pop(port, None)
            self.seen = found

    def stop(self) -> None:
        self._stop.set()

    def lost_destinations(self, timeout: float = 2.0) -> list[str]:
        """After the engine died: the destinations of the "livegen out" port(s) that vanished
        since the last reading, as names `ports.open_output` finds."""
        self.stop()
        start = time.monotonic()
        with self._lock:
            before = dict(self.seen)
            # gone at a reading just before this call (the engine died between two readings)
            recent = {port: destinations for port, (destinations, at) in self.vanished.items()
                      if start - at <= RECENT_S}
        if not before and not recent:
            return []
        deadline = start + timeout
        gone: list[str] = list(recent)
        before.update(recent)
        while True:
            now = self.scan()
            if now is not None:
                gone = [port for port in before if port not in now]
            if gone or time.monotonic() >= deadline:
                break
            time.sleep(0.1)
        destinations = [d for port in gone for d in before[port]]
        if self.api == rtmidi.API_LINUX_ALSA and destinations:
            try:
                _, outputs = ports.list_ports(self.api)
            except ports.PortError:
                return []
            destinations = [name for d in destinations for name in outputs
                            if name.endswith(" " + d)]
        return list(dict.fromkeys(destinations))


def resolve_orphaned_notes(status: Status | None, api: int, destinations: list[str]) -> str:
    """Send the note-offs and CC64/123/120 of `release_messages` to each destination (port
    names or name substrings); one sentence saying what was done."""
    messages, channels = release_messages(status)
    notes = sum(1 for m in messages if m[0] & 0xF0 == 0x80)
    if not destinations:
        return ("no connection of the engine's output could be found, so no note-off was sent; "
                "use your synth's panic if a note hangs")
    if api == rtmidi.API_UNIX_JACK and ports.jack_server_state() == "down":
        return "the JACK server is down, so no note-off could be sent"
    reached: list[str] = []
    failed: list[str] = []
    for destination in destinations:
        try:
            port = ports.open_output(destination, api, client_name=RESCUE_CLIENT)
        except (ports.PortError, rtmidi.RtMidiError) as exc:
            failed.append(f"{destination} ({exc})")
            continue
        try:
            if port.name not in reached:
                for message in messages:
                    port.send(message)
                reached.append(port.name)
        finally:
            port.close()
    span = ",".join(map(str, channels)) if len(channels) < 16 else "1-16"
    text = ""
    if reached:
        text = (f"sent {notes} note-off{'s' * (notes != 1)} and CC64/123/120 on channel"
                f"{'s' * (len(channels) != 1)} {span} to {', '.join(reached)}")
    if failed:
        text += ("; " if text else "") + f"could not reach {', '.join(failed)}"
    return text


# --------------------------------------------------------------------------------- messages

