"""Shared fixtures: a private JACK dummy server for the test session and a JACK test client.

Usage in a test file:

    def test_something(jack_server, jack_client):
        port = open_input(None, api="jack")            # "livegen in" on the private server
        tester = jack_client()                         # a second JACK client, closed afterwards
        tester.connect_output("livegen in")            # its output feeds livegen's input
        tester.send(b"\\x90\\x3c\\x64")

`jack_server` (session scope) starts `jackd --no-realtime -n lgtest-<pid>-<hex> -d dummy`,
sets JACK_DEFAULT_SERVER, JACK_NO_START_SERVER=1 and LIVEGEN_CLIENT_NAME=livegen-<pid> (so
livegen's JACK clients do not collide with another run's; livegen.midi.ports explains why) in
os.environ for the whole session (a MonkeyPatch context, which restores them), yields the server
name and stops the server by its PID at the end. Test clients are named NAME-<pid> for the same
reason (`client.name` has the full name). Every test that uses the server carries the `jack`
marker, so `pytest -m "not jack"` runs the rest without JACK. A missing jackd fails the tests
that use it, unless LIVEGEN_NO_JACK=1 is set, which skips them.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence

import pytest
import rtmidi
from jackserver import NO_JACK_ENV, JackServer, JackServerError, jackd_path


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that uses the JACK server is in the `jack` layer (`-m "not jack"` leaves them
    out), whether or not its file says so."""
    for item in items:
        if "jack_server" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.jack)


class JackTestClient:
    """A second JACK client with its own MIDI ports, connected to other ports by name substring.

    Each port is a fresh rtmidi object (python-rtmidi cannot reopen a virtual port on the same
    object); `close()` frees them all, which `del` alone would not do. Like livegen.midi.ports it
    lets a JACK graph change settle (SETTLE_S) before sending on a new connection or closing a port.
    """

    SETTLE_S = 0.2  # 50 ms sufficed on a quiet machine; a CPU hog stretches the race (see ports)

    def __init__(self, name: str = "tester") -> None:
        # unique per test process: jackd2 clients of one name collide across servers while opening
        self.name = f"{name}-{os.getpid()}"
        self._out: rtmidi.MidiOut | None = None
        self._in: rtmidi.MidiIn | None = None
        self._settled_at = 0.0

    def _opened(self, wait: bool) -> None:
        self._settled_at = time.perf_counter() + self.SETTLE_S
        if wait:
            self._wait_settled()

    def _wait_settled(self) -> None:
        delay = self._settled_at - time.perf_counter()
        if delay > 0:
            time.sleep(delay)

    @staticmethod
    def _index(rt: rtmidi.MidiIn | rtmidi.MidiOut, substring: str) -> tuple[int, str]:
        ports = rt.get_ports()
        for index, port in enumerate(ports):
            if substring.casefold() in port.casefold():
                return index, port
        raise AssertionError(f"no JACK port contains {substring!r}; ports: {ports}")

    def _new_out(self) -> rtmidi.MidiOut:
        self.close_output()
        self._out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, self.name)
        return self._out

    def _new_in(self) -> rtmidi.MidiIn:
        self.close_input()
        self._in = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, self.name)
        self._in.ignore_types(sysex=False, timing=False, active_sense=False)
        return self._in

    def connect_output(self, to: str, port_name: str = "tester out") -> str:
        """Open an output port connected to the first input port containing `to`; its full name."""
        out = self._new_out()
        index, port = self._index(out, to)
        out.open_port(index, port_name)
        self._opened(wait=True)
        return port

    def connect_input(self, source: str, port_name: str = "tester in") -> str:
        """Open an input port fed by the first output port containing `source`; its full name."""
        inp = self._new_in()
        index, port = self._index(inp, source)
        inp.open_port(index, port_name)
        self._opened(wait=True)
        return port

    def virtual_output(self, port_name: str) -> None:
        """Offer an unconnected output port (a source livegen can connect to by name)."""
        self._new_out().open_virtual_port(port_name)
        self._opened(wait=False)

    def virtual_input(self, port_name: str) -> None:
        """Offer an unconnected input port (a destination livegen can connect to by name)."""
        self._new_in().open_virtual_port(port_name)
        self._opened(wait=False)

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
            self._wait_settled()
            self._out.close_port()
            self._out.delete()
            self._out = None

    def close_input(self) -> None:
        if self._in is not None:
            self._wait_settled()
            self._in.close_port()
            self._in.delete()
            self._in = None

    def close(self) -> None:
        self.close_output()
        self.close_input()


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
