"""MIDI ports over python-rtmidi: API choice, listing, virtual/named ports, supervision.

The idea is mido's (ports over interchangeable backends) but the hot path calls python-rtmidi
directly: `MidiInput.poll()` drains rtmidi's queue and `MidiOutput.send()` hands bytes straight to
`send_message`.

API choice. `resolve_api("auto")` walks `rtmidi.get_compiled_api()` in order (ALSA then JACK on
Linux) and takes the first that opens a client: ALSA needs /dev/snd/seq (checked first, so a machine
without the sequencer gets no ALSA noise on stderr), JACK a running server. `--midi-api jack|alsa|
coremidi|windows` names one. Nothing usable raises `PortError` with a sentence that says what to do.

Ports. `open_input(None)` creates the virtual input "livegen in", `open_output(None)` the virtual
output "livegen out". A string connects to the first existing port whose name contains it
(case-insensitive; an exact name wins; never by index); nothing matching raises `PortError` naming
the request and listing what exists. RtMidi on Windows has no virtual ports: asking for one there
raises `PortError` pointing to loopMIDI / Windows MIDI Services and `--input NAME --output NAME`.

Input. No Python callback is installed, so no Python ever runs in JACK's real-time thread: RtMidi's
own C++ callback queues each message (QUEUE_SIZE_LIMIT; when full RtMidi drops what arrives) and the
engine's worker drains the queue with `poll()`. Each message is stamped with `time.perf_counter()`
when the worker picks it up, so a stamp lags the arrival by up to one poll interval (on JACK, plus
up to one period: 2.7 ms at 48 kHz/128). Every API is polled, so all behave alike. SysEx and active
sensing are dropped inside RtMidi (`ignore_types(sysex=True, timing=False, active_sense=True)`), as
livegen ignores them; MIDI clock and MTC (RtMidi's "timing") pass, for following an external clock.
The engine's input filter drops SysEx and active sensing too, should they come another way.

What rtmidi 1.5.8 (with its bundled libjack) does on JACK, measured against jackd2 1.9.21 with the
dummy driver:
- Every MidiIn/MidiOut object is its own JACK client. Two objects named "livegen" become the
  clients "livegen" and "livegen-01": opening the input first gives "livegen:livegen in" and
  "livegen-01:livegen out". A virtual port is an unconnected JACK port that others connect to (a
  patchbay, or a client's `open_port(i)`: on JACK `MidiIn.open_port(i)` creates our port and
  connects the i-th source to it, `MidiOut.open_port(i)` connects it to the i-th destination).
  `MidiIn.get_ports()` lists every MIDI output port (source), `MidiOut.get_ports()` every MIDI
  input port (destination), as "client:port".
- Latency from a test client's output to a polled "livegen in": 0.6 ms min, 0.9 ms median, 1.5 ms
  max over 100 notes with the worker sleeping 0.2 ms between polls. Bursts of 500 messages in one
  period arrived complete.
- When a connected port vanishes our port stays, disconnected; JACK does not reconnect it when the
  port returns. `PortWatch` notices by name and reconnects (`close_port` then `open_port` on the
  same object works for a named port; a virtual port cannot be reopened on its object, so it gets
  a new one). A port that vanishes and returns between two checks goes unnoticed, disconnected.
- A graph change settles over a cycle or two: a message sent just as a connection was made was
  lost now and then. libjack's notification thread walks a client's port list unlocked (jack2
  JackClient::HandleLatencyCallback) while `close_port` (jack_port_unregister) edits it; closing
  right after opening segfaulted about once in 300 cycles. So a named output waits JACK_SETTLE_S
  (50 ms) after connecting, a reconnect waits 50 ms after its port returned, and no port is closed
  within 50 ms of being opened (3600 open/close cycles then ran clean). Another client changing the
  graph at the very moment livegen closes a port met that race too (rarely, on a busy machine: a
  test server restarting, a killed client's ports going), so a JACK port is closed only once the
  port list it sees has been unchanged for 50 ms (at most 0.3 s of waiting).
- jackd2 names a client's notification socket after the client alone (/dev/shm/jack_<client>_<uid>
  _0, no server name), so clients of one name opening at the same moment on two servers collide:
  1 open in 8 failed in a tight loop. `client_name` (default $LIVEGEN_CLIENT_NAME, else "livegen")
  tells them apart; the test fixture sets LIVEGEN_CLIENT_NAME to a name unique to its run.
- `del` does not close a JACK client (python-rtmidi 1.5.8 does not free the C++ object on
  deallocation): `close()` calls `close_port()` and `delete()`, so ports open and close cleanly
  any number of times.
- When the server dies, its clients keep reporting the last port list, so the server is checked
  by connecting to its socket (jackd2: /dev/shm/jack_<server>_<uid>_0), which opens no JACK client;
  the socket's inode tells a restarted server from the old one. Deleting a client of a dead server
  blocks about 0.5 s, and segfaults in libjack if a `jack_client_open` failed after the death; so
  clients of a dead server are abandoned, never touched again, and no client is opened while the
  socket says the server is down.
- A client never starts a server (RtMidi opens with JackNoStartServer); with none running, opening
  fails with "JACK server not running?". JACK_DEFAULT_SERVER picks the server by name.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Literal, Self

import rtmidi

VIRTUAL_INPUT_NAME = "livegen in"
VIRTUAL_OUTPUT_NAME = "livegen out"
DEFAULT_CLIENT_NAME = "livegen"
CLIENT_NAME_ENV = "LIVEGEN_CLIENT_NAME"
QUEUE_SIZE_LIMIT = 1024
# How long a JACK graph change made here (a port opened, a connection made) is given to settle
# before the port is used or closed; see the module docstring.
JACK_SETTLE_S = 0.05
# Before closing a JACK port: how long its client's port list must stay unchanged (anyone's
# change shows there), and the longest wait for that; see the module docstring.
JACK_QUIET_S = 0.05
JACK_QUIET_LIMIT_S = 0.3

API_NAMES: dict[str, int] = {
    "alsa": rtmidi.API_LINUX_ALSA,
    "jack": rtmidi.API_UNIX_JACK,
    "coremidi": rtmidi.API_MACOSX_CORE,
    "windows": rtmidi.API_WINDOWS_MM,
}
API_CHOICES: tuple[str, ...] = ("auto", *API_NAMES)

Direction = Literal["input", "output"]
ServerState = Literal["up", "down", "unknown"]
WatchState = Literal["present", "vanished", "error", "closed"]

WINDOWS_VIRTUAL_MESSAGE = (
    "RtMidi cannot create virtual ports on Windows, so livegen cannot offer 'livegen in' and "
    "'livegen out' itself: create loopback ports with loopMIDI (or Windows MIDI Services) and "
    "connect to them by name with --input NAME --output NAME (`livegen ports` lists the names)."
)

# rtmidi objects whose server died; deleting them could block or crash libjack (module docstring).
_ABANDONED: list[rtmidi.MidiIn | rtmidi.MidiOut] = []
# JACK servers whose socket this process has seen: a missing socket then means "down".
_JACK_SOCKETS_SEEN: set[str] = set()
_JACK_SOCKET_DIRS = ("/dev/shm", "/tmp")


class PortError(Exception):
    """A MIDI system or port problem, with a message a user can act on."""


def default_client_name() -> str:
    """The MIDI client name when none is given: $LIVEGEN_CLIENT_NAME, else "livegen"."""
    return os.environ.get(CLIENT_NAME_ENV) or DEFAULT_CLIENT_NAME


def _is_windows() -> bool:
    return sys.platform == "win32"


def api_name(api: int) -> str:
    """The --midi-api name of an rtmidi API constant ("jack", "alsa", ...)."""
    for name, value in API_NAMES.items():
        if value == api:
            return name
    return rtmidi.get_api_name(api)


def compiled_apis() -> list[str]:
    """The API names this build of python-rtmidi supports, in rtmidi's order of preference."""
    return [api_name(api) for api in rtmidi.get_compiled_api()]


def jack_server_name() -> str:
    """The JACK server a new client talks to (JACK_DEFAULT_SERVER, else "default")."""
    return os.environ.get("JACK_DEFAULT_SERVER") or "default"


def jack_server_state(server: str | None = None) -> ServerState:
    """Whether a jackd2 server is running, from its socket, without opening a JACK client.

    "unknown" means no socket was found and none was seen before in this process: the server may
    be down or a JACK implementation without this socket (PipeWire's) may be in use.
    """
    server = server or jack_server_name()
    path = _jack_socket_path(server)
    if path is None:
        return "down" if server in _JACK_SOCKETS_SEEN else "unknown"
    _JACK_SOCKETS_SEEN.add(server)
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(0.5)
    try:
        probe.connect(path)
    except OSError:
        return "down"
    finally:
        probe.close()
    return "up"


def _jack_socket_path(server: str) -> str | None:
    if not hasattr(socket, "AF_UNIX") or not hasattr(os, "getuid"):
        return None
    for folder in _JACK_SOCKET_DIRS:
        path = os.path.join(folder, f"jack_{server}_{os.getuid()}_0")
        if os.path.exists(path):
            return path
    return None


def jack_server_identity(server: str | None = None) -> tuple[int, int] | None:
    """Which run of a jackd2 server this is (its socket's inode and time), None if unknown: a
    server restarted between two looks has a new identity, and clients of the old run are dead."""
    path = _jack_socket_path(server or jack_server_name())
    if path is None:
        return None
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_ino, info.st_mtime_ns


def _api_unavailable_message(api: int) -> str:
    if api == rtmidi.API_UNIX_JACK:
        return (
            f"cannot reach the JACK server {jack_server_name()!r}: start JACK (for example "
            "`jackd -d alsa`, QjackCtl or Cadence) or choose another --midi-api"
        )
    if api == rtmidi.API_LINUX_ALSA:
        return (
            "cannot open the ALSA sequencer (/dev/snd/seq): load it with `sudo modprobe snd-seq`, "
            "check that you may use /dev/snd, or choose --midi-api jack"
        )
    return f"the {api_name(api)} MIDI system cannot be opened on this machine"


def _no_system_message() -> str:
    if sys.platform.startswith("linux"):
        hint = "start JACK, or load the ALSA sequencer with `sudo modprobe snd-seq`"
    elif sys.platform == "darwin":
        hint = "check that CoreMIDI is available, or start JACK"
    else:
        hint = "check that a MIDI driver is installed, or start JACK"
    tried = ", ".join(compiled_apis()) or "none"
    return f"no MIDI system found (tried: {tried}): {hint}, then try again"


def _new_rt(direction: Direction, api: int, client_name: str) -> rtmidi.MidiIn | rtmidi.MidiOut:
    """One rtmidi object (on JACK, one client) or PortError; never opens a client on a dead JACK."""
    if api == rtmidi.API_UNIX_JACK and jack_server_state() == "down":
        raise PortError(_api_unavailable_message(api))
    try:
        if direction == "input":
            rt_in = rtmidi.MidiIn(api, client_name, QUEUE_SIZE_LIMIT)
            rt_in.ignore_types(sysex=True, timing=False, active_sense=True)
            return rt_in
        return rtmidi.MidiOut(api, client_name)
    except rtmidi.RtMidiError as exc:
        raise PortError(_api_unavailable_message(api)) from exc


def _delete_rt(rt: rtmidi.MidiIn | rtmidi.MidiOut) -> None:
    rt.close_port()
    rt.delete()


def wait_graph_quiet(rt: rtmidi.MidiIn | rtmidi.MidiOut, quiet: float = JACK_QUIET_S,
                     limit: float = JACK_QUIET_LIMIT_S, settled_at: float = 0.0) -> None:
    """Before closing a JACK port: wait until the ports `rt` lists have not changed for `quiet`
    s (another client's change is walked by libjack's notification thread while the close edits
    the list) and perf_counter() has passed `settled_at` (the caller's own last change), at
    most `limit` s."""
    clock = time.perf_counter
    start = since = clock()
    try:
        seen = rt.get_ports()
        while ((clock() - since < quiet or clock() < settled_at)
               and clock() - start < limit):
            time.sleep(0.01)
            listed = rt.get_ports()
            if listed != seen:
                seen, since = listed, clock()
    except rtmidi.RtMidiError:
        return


def _api_surely_down(api: int) -> bool:
    """Cheap checks that need no MIDI client: no ALSA sequencer device, a dead JACK socket."""
    if api == rtmidi.API_LINUX_ALSA:
        return sys.platform.startswith("linux") and not os.path.exists("/dev/snd/seq")
    return api == rtmidi.API_UNIX_JACK and jack_server_state() == "down"


def _api_works(api: int) -> bool:
    if _api_surely_down(api):
        return False
    try:
        probe = _new_rt("output", api, default_client_name())
    except PortError:
        return False
    _delete_rt(probe)
    return True


def resolve_api(choice: str | int = "auto") -> int:
    """The rtmidi API constant for a --midi-api choice. "auto" takes the first compiled API that
    opens a client; a named API only gets the cheap checks, opening a port reports the rest."""
    compiled = rtmidi.get_compiled_api()
    if isinstance(choice, int):
        api = choice
    elif choice.lower() == "auto":
        for candidate in compiled:
            if _api_works(candidate):
                return candidate
        raise PortError(_no_system_message())
    elif choice.lower() in API_NAMES:
        api = API_NAMES[choice.lower()]
    else:
        raise PortError(f"unknown MIDI API {choice!r}: choose one of {', '.join(API_CHOICES)}")
    if api not in compiled:
        raise PortError(
            f"the {api_name(api)} MIDI API is not built into this python-rtmidi "
            f"(available: {', '.join(compiled_apis()) or 'none'}); choose another --midi-api"
        )
    if _api_surely_down(api):
        raise PortError(_api_unavailable_message(api))
    return api


def find_port(query: str, names: Sequence[str]) -> int | None:
    """Index of the port matching `query`: an exact name (case-insensitive), else the first name
    containing it (case-insensitive); None when nothing matches."""
    wanted = query.casefold()
    folded = [name.casefold() for name in names]
    if wanted in folded:
        return folded.index(wanted)
    for index, name in enumerate(folded):
        if wanted in name:
            return index
    return None


def list_ports(
    api: str | int = "auto", client_name: str | None = None
) -> tuple[list[str], list[str]]:
    """(inputs, outputs): the ports livegen can read from and the ports it can send to."""
    resolved = resolve_api(api)
    client_name = client_name or default_client_name()
    names: list[list[str]] = []
    for direction in ("input", "output"):
        probe = _new_rt(direction, resolved, client_name)
        try:
            names.append(list(probe.get_ports()))
        finally:
            _delete_rt(probe)
    return names[0], names[1]


def _check_virtual_supported(api: str | int) -> None:
    if isinstance(api, str):
        api = api.lower()
    if api in ("windows", rtmidi.API_WINDOWS_MM) or (
        _is_windows() and api not in ("jack", rtmidi.API_UNIX_JACK)
    ):
        raise PortError(WINDOWS_VIRTUAL_MESSAGE)


class _Port:
    """An open port: virtual (query None) or connected by name to an existing port."""

    direction: ClassVar[Direction]
    virtual_name: ClassVar[str]

    def __init__(self, query: str | None, api: int, client_name: str) -> None:
        self.query = query
        self.api = api
        self.client_name = client_name
        self.name = query if query is not None else self.virtual_name
        self.jack_server = jack_server_name() if api == rtmidi.API_UNIX_JACK else None
        self._lock = threading.Lock()
        self._rt: rtmidi.MidiIn | rtmidi.MidiOut | None = None
        self._attached = False
        self._closed = False
        self._settled_at = 0.0  # perf_counter time after which closing the port is safe
        self._server_identity: tuple[int, int] | None = None
        with self._lock:
            self._create_rt()
            try:
                self._attach()
            except BaseException:
                self._drop_rt()
                raise

    @property
    def virtual(self) -> bool:
        return self.query is None

    @property
    def is_open(self) -> bool:
        """True while the port exists and, for a named port, is connected."""
        return self._attached

    @property
    def closed(self) -> bool:
        return self._closed

    def __repr__(self) -> str:
        kind = "virtual" if self.virtual else "connected"
        state = "closed" if self._closed else ("open" if self._attached else "detached")
        return f"<{type(self).__name__} {kind} {self.name!r} ({api_name(self.api)}) {state}>"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _attach(self) -> None:
        """Open our port on self._rt: virtual, or connected to the port matching the query."""
        rt = self._rt
        assert rt is not None
        if self.query is None:
            rt.open_virtual_port(self.virtual_name)
        else:
            names = list(rt.get_ports())
            index = find_port(self.query, names)
            if index is None:
                raise PortError(self._no_match_message(names))
            rt.open_port(index, self.virtual_name)
            self.name = names[index]
        self._attached = True
        if self.jack_server is not None:
            self._settled_at = time.perf_counter() + JACK_SETTLE_S
            if not self.virtual and self.direction == "output":
                self._wait_settled()  # what is sent before the connection settled may be lost

    def _create_rt(self) -> None:
        self._rt = _new_rt(self.direction, self.api, self.client_name)
        if self.jack_server is not None:
            self._server_identity = jack_server_identity(self.jack_server)

    def _wait_settled(self) -> None:
        delay = self._settled_at - time.perf_counter()
        if delay > 0:
            time.sleep(delay)

    def _no_match_message(self, names: Sequence[str]) -> str:
        listed = ", ".join(repr(name) for name in names) or "none"
        return (
            f"no MIDI {self.direction} port matches {self.query!r} ({api_name(self.api)}); "
            f"available {self.direction}s: {listed} (`livegen ports` lists them)"
        )

    def _drop_rt(self) -> None:
        """Close and free our rtmidi object; abandon it instead if its JACK server died."""
        rt, self._rt, self._attached = self._rt, None, False
        if rt is None:
            return
        if not self._rt_server_alive(probe=False):
            _ABANDONED.append(rt)
            return
        self._wait_settled()
        if self.jack_server is not None:
            wait_graph_quiet(rt)
        _delete_rt(rt)

    def _abandon(self) -> None:
        if self._rt is not None:
            _ABANDONED.append(self._rt)
        self._rt, self._attached = None, False

    def server_alive(self) -> bool:
        """Whether the MIDI system under this port is running, and is the same run of it that
        the port was opened on (a JACK server restarted in between leaves the port dead)."""
        return self._rt_server_alive(probe=True)

    def _rt_server_alive(self, probe: bool) -> bool:
        if self.jack_server is None:
            return True
        state = jack_server_state(self.jack_server)
        if state == "down":
            return False
        if state == "up":
            if self._rt is None or self._server_identity is None:
                return True
            return jack_server_identity(self.jack_server) == self._server_identity
        if not probe:
            return True
        try:
            probe = rtmidi.MidiOut(self.api, self.client_name)
        except rtmidi.RtMidiError:
            return False
        _delete_rt(probe)
        return True

    def available(self) -> list[str]:
        """The ports this one could connect to now (sources for an input, sinks for an output)."""
        with self._lock:
            if self._rt is None:
                return []
            return list(self._rt.get_ports())

    def connected_port_present(self) -> bool:
        """For a named port: whether the port it connected to is still listed."""
        return self.name in self.available()

    def reopen(self) -> None:
        """Reopen by name: reconnect a named port to the port now matching its query (a new JACK
        client if the server restarted); recreate a virtual port with a new rtmidi object."""
        with self._lock:
            if self._closed:
                raise PortError(f"MIDI {self.direction} port {self.name!r} was closed")
            if self._rt is not None and not self.server_alive():
                self._abandon()
            if self._rt is not None and self.virtual:
                self._drop_rt()
            if self._rt is None:
                self._create_rt()
            else:
                if self.jack_server is not None:  # the port that returned changed the graph
                    self._settled_at = time.perf_counter() + JACK_SETTLE_S
                    self._wait_settled()
                self._rt.close_port()
                self._attached = False
            self._attach()

    def close(self) -> None:
        """Close the port and free its rtmidi object (its JACK client); safe to call twice."""
        with self._lock:
            self._closed = True
            self._drop_rt()


class MidiInput(_Port):
    """A MIDI input the engine's worker polls; see the module docstring for timing."""

    direction = "input"
    virtual_name = VIRTUAL_INPUT_NAME

    def __init__(self, query: str | None, api: int, client_name: str) -> None:
        self.received = 0
        super().__init__(query, api, client_name)

    def poll(self, limit: int = 512) -> list[tuple[bytes, float]]:
        """Drain up to `limit` queued messages as (bytes, time.perf_counter() at pickup), oldest
        first. Returns an empty list while the port is closed or its MIDI system is gone."""
        out: list[tuple[bytes, float]] = []
        with self._lock:
            rt = self._rt
            if rt is None:
                return out
            get_message = rt.get_message
            clock = time.perf_counter
            for _ in range(limit):
                item = get_message()
                if item is None:
                    break
                out.append((bytes(item[0]), clock()))
        self.received += len(out)
        return out


class MidiOutput(_Port):
    """A MIDI output; `send` never blocks on a vanished port, it counts the message as dropped."""

    direction = "output"
    virtual_name = VIRTUAL_OUTPUT_NAME

    def __init__(self, query: str | None, api: int, client_name: str) -> None:
        self.sent = 0
        self.dropped = 0
        super().__init__(query, api, client_name)

    def send(self, message: bytes | bytearray | Sequence[int]) -> bool:
        """Send one complete MIDI message; False (and counted in `dropped`) if the port is down."""
        with self._lock:
            rt = self._rt
            if rt is None or not self._attached:
                self.dropped += 1
                return False
            rt.send_message(message)
        self.sent += 1
        return True


def open_input(
    name: str | None = None, api: str | int = "auto", client_name: str | None = None
) -> MidiInput:
    """The virtual input "livegen in" (name None) or a connection from the first port whose name
    contains `name`."""
    if name is None:
        _check_virtual_supported(api)
    return MidiInput(name, resolve_api(api), client_name or default_client_name())


def open_output(
    name: str | None = None, api: str | int = "auto", client_name: str | None = None
) -> MidiOutput:
    """The virtual output "livegen out" (name None) or a connection to the first port whose name
    contains `name`."""
    if name is None:
        _check_virtual_supported(api)
    return MidiOutput(name, resolve_api(api), client_name or default_client_name())


@dataclass(frozen=True)
class PortEvent:
    """A change PortWatch saw: "vanished", "returned" (reconnected) or "error" (system gone)."""

    kind: Literal["vanished", "returned", "error"]
    port: str
    direction: Direction
    message: str


class PortWatch:
    """Supervises one port; the engine calls `check()` about once a second (`due()` says when).

    `check()` costs one socket connect on JACK and a port listing for a named port; reconnecting
    blocks about 50 ms (JACK_SETTLE_S, 100 ms for an output) and holds the port's lock meanwhile.

    A named port "vanished" when the port it connected to is no longer listed and "returned" when
    a port matching its query is listed again; with `reconnect` it is reconnected before
    "returned" is reported, without it the owner calls `port.reopen()`. A virtual port cannot
    vanish: its MIDI system stopping (the JACK server dying) is an "error", and when the system is
    back the port is recreated ("returned"; without `reconnect`, once the owner reopened it).
    """

    def __init__(
        self, port: MidiInput | MidiOutput, reconnect: bool = True, interval: float = 1.0
    ) -> None:
        self.port = port
        self.reconnect = reconnect
        self.interval = interval
        self.state: WatchState = "closed" if port.closed else "present"
        self.last_check = float("-inf")
        self.last_error: str | None = None

    def due(self, now: float | None = None) -> bool:
        """Time for a look: every `interval`, four times as often while the port is away, so
        that it is back within a fraction of a second of its return."""
        now = time.perf_counter() if now is None else now
        interval = self.interval if self.state in ("present", "closed") else self.interval / 4
        return now - self.last_check >= interval

    def _event(self, kind: Literal["vanished", "returned", "error"], message: str) -> PortEvent:
        return PortEvent(kind, self.port.name, self.port.direction, message)

    def check(self, now: float | None = None) -> PortEvent | None:
        """Look at the port once; the event for a change of state, or None."""
        self.last_check = time.perf_counter() if now is None else now
        port = self.port
        if port.closed:
            self.state = "closed"
            return None
        if not port.server_alive():
            if self.state == "error":
                return None
            with port._lock:
                port._abandon()
            self.state = "error"
            return self._event(
                "error",
                f"the {api_name(port.api)} MIDI system stopped and took the {port.direction} "
                f"port {port.name!r} with it; livegen reopens it when the system is back",
            )
        if self.state == "error":
            return self._recover()
        if self.state == "present":
            if port.virtual or port.connected_port_present():
                return None
            self.state = "vanished"
            with port._lock:
                port._attached = False
            return self._event(
                "vanished",
                f"MIDI {port.direction} port {port.name!r} vanished; "
                + ("livegen reconnects when it returns" if self.reconnect else "waiting for it"),
            )
        # vanished: wait for a port matching the query
        if port.query is None or find_port(port.query, port.available()) is None:
            return None
        return self._reconnect()

    def _recover(self) -> PortEvent | None:
        """The MIDI system is back after an error: recreate the rtmidi object and the port."""
        port = self.port
        if not self.reconnect:  # the owner reopens the port itself
            return self._returned() if port.is_open else None
        try:
            port.reopen()
        except PortError as exc:
            self.last_error = str(exc)
            if port._rt is not None:  # the system is back but the named port is not (yet)
                self.state = "vanished"
            return None
        return self._returned()

    def _reconnect(self) -> PortEvent | None:
        if self.reconnect:
            try:
                self.port.reopen()
            except PortError as exc:
                self.last_error = str(exc)
                return None
        return self._returned()

    def _returned(self) -> PortEvent:
        port = self.port
        self.state = "present"
        self.last_error = None
        done = "reconnected" if self.reconnect else "not reconnected (reconnect is off)"
        return self._event(
            "returned", f"MIDI {port.direction} port {port.name!r} is back and {done}"
        )
