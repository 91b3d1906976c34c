"""Shared fixtures: a private JACK dummy server for the test session and a JACK test client.

Usage in a test file:

    def test_something(jack_server, jack_client):
        port = open_input(None, api="jack")            # "livegen in" on the private server
        tester = jack_client()                         # a second JACK client, closed afterwards
        tester.connect_output("livegen in")            # its output feeds livegen's input
        tester.send(b"\\x90\\x3c\\x64")

`jack_server` (session scope) starts `jackd -n lgtest-<pid>-<hex> -d dummy` (realtime where
this process may use it: tests/jackserver.py says why), sets JACK_DEFAULT_SERVER,
JACK_NO_START_SERVER=1 and LIVEGEN_CLIENT_NAME=livegen-<pid> (so livegen's JACK clients do not
collide with another run's; livegen.midi.ports explains why) in os.environ for the whole session
(a MonkeyPatch context, which restores them), yields the server name and stops the server by its
PID at the end. Test clients are named NAME-<pid> for the same reason (`client.name` has the
full name). Every test that uses the server carries the `jack` marker, so `pytest -m "not jack"`
runs the rest without JACK. A missing jackd fails the tests that use it, unless
LIVEGEN_NO_JACK=1 is set, which skips them.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

import pytest
import rtmidi
from jackserver import NO_JACK_ENV, JackServer, JackServerError, jackd_path

from livegen.midi import ports

RtObject = TypeVar("RtObject", rtmidi.MidiIn, rtmidi.MidiOut)
# rtmidi objects of a JACK server that died or restarted: closing them could block or crash
# libjack (livegen.midi.ports), so they are kept here, never touched again
_ABANDONED: list[rtmidi.MidiIn | rtmidi.MidiOut] = []


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that uses the JACK server is in the `jack` layer (`-m "not jack"` leaves them
    out), whether or not its file says so."""
    for item in items:
        if "jack_server" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.jack)


class JackTestClient:
    """A second JACK client with its own MIDI ports, connected to other ports by name substring.

    Each port is a fresh rtmidi object (python-rtmidi cannot reopen a virtual port on the same
    object); `close()` frees them all, which `del` alone would not do.

    Connections are made live before a test uses them: a message sent just after a connection
    was made is lost now and then (livegen.midi.ports), so `connect_output` and `connect_input`
    end with `sync()`, which waits, by a round trip through the server, until every graph change
    made so far (by any client) is in force. A test that had livegen connect a port itself calls
    `sync()` before sending through it.

    Like livegen.midi.ports, no port is closed within SETTLE_S of a change to the JACK graph
    (libjack's notification thread may still walk the client's port list after a change: closing
    a port then crashes now and then, more often on a busy machine; here that is after any
    change this client made, and after any change anyone made that shows in the port list), no
    client is opened while the server's socket says it is down, and the objects of a server that
    died or was restarted since they were opened are abandoned, never closed: closing them blocks
    or crashes inside libjack.
    """

    SETTLE_S = 0.2  # 50 ms sufficed on a quiet machine; a CPU hog stretches the race (see ports)
    SYNC_TIMEOUT_S = 15.0  # generous: a loaded 2-core machine (tests/helpers.py)
    QUIET_TIMEOUT_S = 5.0

    def __init__(self, name: str = "tester") -> None:
        # unique per test process: jackd2 clients of one name collide across servers while opening
        self.name = f"{name}-{os.getpid()}"
        self._out: rtmidi.MidiOut | None = None
        self._in: rtmidi.MidiIn | None = None
        self._settled_at = 0.0
        # the server (name, identity) each rtmidi object was opened on, by id()
        self._servers: dict[int, tuple[str, tuple[int, int] | None]] = {}
        self._probe_in: rtmidi.MidiIn | None = None  # where sync()'s probes arrive
        self._probe_port = ""  # its full JACK name
        self._probe_outs: list[rtmidi.MidiOut] = []  # one per sync(), closed with the client
        self._probes = 0

    # ------------------------------------------------------------------ rtmidi objects

    def _open(self, kind: type[RtObject], client: str | None = None) -> RtObject:
        """A new rtmidi object (a JACK client) on the current server; never on a dead one."""
        server = ports.jack_server_name()
        if ports.jack_server_state(server) == "down":
            raise AssertionError(f"the JACK server {server!r} is down: no client opened on it")
        rt = kind(rtmidi.API_UNIX_JACK, client or self.name)
        self._servers[id(rt)] = (server, ports.jack_server_identity(server))
        return rt

    def _free(self, rt: rtmidi.MidiIn | rtmidi.MidiOut) -> None:
        """Close and delete `rt`, or abandon it if its server died or restarted since."""
        server, identity = self._servers.pop(id(rt), (ports.jack_server_name(), None))
        if (ports.jack_server_state(server) == "down"
                or ports.jack_server_identity(server) != identity):
            _ABANDONED.append(rt)
            return
        self._wait_quiet(rt)
        rt.close_port()
        rt.delete()
        self._changed()

    def _changed(self) -> None:
        """This client just changed the JACK graph (a port opened or closed)."""
        self._settled_at = time.perf_counter() + self.SETTLE_S

    def _wait_quiet(self, rt: rtmidi.MidiIn | rtmidi.MidiOut) -> None:
        """Before closing a port: wait until the graph has not changed for SETTLE_S, by this
        client (`_settled_at`) or by anyone as far as the ports `rt` lists show (a client that
        ended, such as a killed engine's); at most QUIET_TIMEOUT_S."""
        ports.wait_graph_quiet(rt, self.SETTLE_S, self.QUIET_TIMEOUT_S, self._settled_at)

    @staticmethod
    def _index(rt: rtmidi.MidiIn | rtmidi.MidiOut, substring: str,
               timeout: float = 0.0) -> tuple[int, str]:
        """The first port containing `substring`, waiting up to `timeout` s for it to appear."""
        deadline = time.monotonic() + timeout
        while True:
            ports_now = rt.get_ports()
            for index, port in enumerate(ports_now):
                if substring.casefold() in port.casefold():
                    return index, port
            if time.monotonic() >= deadline:
                raise AssertionError(f"no JACK port contains {substring!r}; ports: {ports_now}")
            time.sleep(0.005)

    def _new_out(self) -> rtmidi.MidiOut:
        self.close_output()
        self._out = self._open(rtmidi.MidiOut)
        return self._out

    def _new_in(self) -> rtmidi.MidiIn:
        self.close_input()
        self._in = self._open(rtmidi.MidiIn)
        self._in.ignore_types(sysex=False, timing=False, active_sense=False)
        return self._in

    # ------------------------------------------------------------------ ports

    def connect_output(self, to: str, port_name: str = "tester out",
                       timeout: float = 0.0) -> str:
        """Open an output port connected to the first input port containing `to` (waiting up to
        `timeout` s for one to appear), live when this returns; its full name."""
        out = self._new_out()
        index, port = self._index(out, to, timeout)
        out.open_port(index, port_name)
        self._changed()
        self.sync()
        return port

    def connect_input(self, source: str, port_name: str = "tester in",
                      timeout: float = 0.0) -> str:
        """Open an input port fed by the first output port containing `source` (waiting up to
        `timeout` s for one to appear), live when this returns; its full name."""
        inp = self._new_in()
        index, port = self._index(inp, source, timeout)
        inp.open_port(index, port_name)
        self._changed()
        self.sync()
        return port

    def virtual_output(self, port_name: str) -> None:
        """Offer an unconnected output port (a source livegen can connect to by name)."""
        self._new_out().open_virtual_port(port_name)
        self._changed()

    def virtual_input(self, port_name: str) -> None:
        """Offer an unconnected input port (a destination livegen can connect to by name)."""
        self._new_in().open_virtual_port(port_name)
        self._changed()

    def sync(self, timeout: float | None = None) -> None:
        """Wait until every JACK graph change made so far, by any client, is in force.

        The server applies graph changes in order, each at the start of a cycle after it was
        asked for, and a message crosses a connection only from then on. So a connection made
        now, from a fresh probe output of this client to its probe input, is made after every
        earlier change; a probe (a SysEx of the non-commercial ID 0x7D) sent on it arriving
        means that cycle has come, and what is sent afterwards crosses every connection made
        before. Probes are sent again until one arrives (a loaded machine may lose one)."""
        timeout = self.SYNC_TIMEOUT_S if timeout is None else timeout
        if self._probe_in is None:
            probe_in = self._open(rtmidi.MidiIn, f"{self.name}-probe")
            probe_in.ignore_types(sysex=False, timing=True, active_sense=True)
            name = f"probe {secrets.token_hex(4)}"
            probe_in.open_virtual_port(name)
            self._probe_in, self._probe_port = probe_in, name
            self._changed()
        probe_out = self._open(rtmidi.MidiOut, f"{self.name}-probe")
        self._probe_outs.append(probe_out)
        index, _ = self._index(probe_out, f":{self._probe_port}", timeout)
        probe_out.open_port(index, "probe out")
        self._changed()
        self._probes += 1
        probe = [0xF0, 0x7D, 0x6C, 0x67, (self._probes >> 7) & 0x7F, self._probes & 0x7F, 0xF7]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            probe_out.send_message(probe)
            resend = time.monotonic() + 0.05
            while time.monotonic() < resend:
                item = self._probe_in.get_message()
                if item is None:
                    time.sleep(0.0005)
                elif item[0] == probe:
                    return
        raise AssertionError(f"no probe crossed a new JACK connection within {timeout:g} s")

    def send(self, message: bytes | Sequence[int]) -> float:
        """Send one message on the output port; time.perf_counter() just before sending."""
        assert self._out is not None, "open an output port first"
        sent_at = time.perf_counter()
        self._out.send_message(message)
        return sent_at

    def receive(self, count: int, timeout: float = 2.0) -> list[tuple[bytes, float]]:
        """Up to `count` messages from the input port as (bytes, perf_counter at pickup)."""
        assert self._in is not None, "open an input port first"
        got: list[tuple[bytes, float]] = []
        deadline = time.perf_counter() + timeout
        while len(got) < count and time.perf_counter() < deadline:
            item = self._in.get_message()
            if item is None:
                time.sleep(0.0005)
                continue
            got.append((bytes(item[0]), time.perf_counter()))
        return got

    def close_output(self) -> None:
        if self._out is not None:
            out, self._out = self._out, None
            self._free(out)

    def close_input(self) -> None:
        if self._in is not None:
            inp, self._in = self._in, None
            self._free(inp)

    def close(self) -> None:
        self.close_output()
        self.close_input()
        while self._probe_outs:
            self._free(self._probe_outs.pop())
        if self._probe_in is not None:
            probe_in, self._probe_in = self._probe_in, None
            self._free(probe_in)


@pytest.fixture(scope="session")
def jack_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A private JACK dummy server for the session; yields its name (also JACK_DEFAULT_SERVER)."""
    if os.environ.get(NO_JACK_ENV) == "1":
        pytest.skip(f"{NO_JACK_ENV}=1: JACK tests skipped")
    if jackd_path() is None:
        pytest.fail(
            "jackd is not installed: install jackd2 (apt-get install jackd2), "
            f"or set {NO_JACK_ENV}=1 to skip the JACK tests"
        )
    if rtmidi.API_UNIX_JACK not in rtmidi.get_compiled_api():
        pytest.fail(f"python-rtmidi was built without JACK; set {NO_JACK_ENV}=1 to skip")
    server = JackServer(log_path=tmp_path_factory.mktemp("jack") / "jackd.log")
    try:
        server.start()
    except JackServerError as exc:
        pytest.fail(f"could not start a JACK dummy server: {exc}")
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("JACK_DEFAULT_SERVER", server.name)
            mp.setenv("JACK_NO_START_SERVER", "1")
            # jackd2 client names must be unique across servers while clients open (see
            # livegen.midi.ports)
            mp.setenv("LIVEGEN_CLIENT_NAME", f"livegen-{os.getpid()}")
            yield server.name
    finally:
        # PortAudio, once a test used it in this process (livegen doctor's audio check), holds
        # a JACK client of this server; ended after the server, its JACK host API aborts the
        # process at exit. sounddevice's documented _terminate ends it first.
        sounddevice = sys.modules.get("sounddevice")
        if sounddevice is not None:
            with contextlib.suppress(Exception):
                sounddevice._terminate()
        server.stop()


@pytest.fixture
def jack_client(jack_server: str) -> Iterator[Callable[..., JackTestClient]]:
    """A factory of JackTestClient on the session's JACK server; all are closed after the test."""
    clients: list[JackTestClient] = []

    def make(name: str = "tester") -> JackTestClient:
        client = JackTestClient(name)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()
