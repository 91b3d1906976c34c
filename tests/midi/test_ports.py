"""livegen.midi.ports over a real JACK dummy server (see conftest.py for the fixtures)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import rtmidi
from conftest import JackTestClient
from jackserver import JackServer

from livegen.midi import ports
from livegen.midi.ports import (
    MidiInput,
    MidiOutput,
    PortError,
    PortWatch,
    find_port,
    list_ports,
    open_input,
    open_output,
    resolve_api,
)

MakeClient = Callable[..., JackTestClient]


def port_present(name: str, api: str, direction: str = "any") -> bool:
    """Whether a port matching `name` (as open_input/open_output match) exists now."""
    inputs, outputs = list_ports(api)
    candidates = {"input": inputs, "output": outputs, "any": inputs + outputs}[direction]
    return find_port(name, candidates) is not None


@pytest.fixture
def opened() -> Iterator[list[MidiInput | MidiOutput]]:
    """Ports a test opens through livegen.midi.ports; all are closed after it."""
    ports_opened: list[MidiInput | MidiOutput] = []
    yield ports_opened
    for port in ports_opened:
        port.close()


def _poll_until(port: MidiInput, count: int, timeout: float = 5.0,
                until: bytes | None = None) -> list[tuple[bytes, float]]:
    """What `port` received, polled until `count` messages (or, with `until`, that message)
    are in or `timeout` s passed."""
    got: list[tuple[bytes, float]] = []
    deadline = time.perf_counter() + timeout

    def done() -> bool:
        return any(m == until for m, _ in got) if until is not None else len(got) >= count

    while not done() and time.perf_counter() < deadline:
        got.extend(port.poll())
        time.sleep(0.0005)
    return got


def test_auto_picks_a_working_api(jack_server: str) -> None:
    api = resolve_api("auto")
    if not os.path.exists("/dev/snd/seq"):
        assert api == rtmidi.API_UNIX_JACK
    assert api in rtmidi.get_compiled_api()
    assert resolve_api("JACK") == rtmidi.API_UNIX_JACK


def test_unknown_or_missing_api_names_the_choices(jack_server: str) -> None:
    with pytest.raises(PortError, match="choose one of auto, alsa, jack, coremidi, windows"):
        resolve_api("oss")
    if rtmidi.API_MACOSX_CORE not in rtmidi.get_compiled_api():
        with pytest.raises(PortError, match="coremidi MIDI API is not built into"):
            resolve_api("coremidi")


def test_no_midi_system_is_one_clear_sentence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rtmidi, "get_compiled_api", lambda: [rtmidi.API_UNIX_JACK])
    monkeypatch.setattr(ports, "jack_server_state", lambda server=None: "down")
    with pytest.raises(PortError, match=r"^no MIDI system found \(tried: jack\): start JACK"):
        resolve_api("auto")
    with pytest.raises(PortError, match="cannot reach the JACK server"):
        open_input(None, api="jack")


def test_virtual_ports_are_listed_and_go_away(jack_server: str) -> None:
    inp = open_input(None, api="jack")
    out = open_output(None, api="jack")
    assert inp.virtual and inp.is_open and inp.name == "livegen in"
    inputs, outputs = list_ports("jack")
    # livegen's own input is a port others send to, its output one others read from
    assert any(name.endswith(":livegen in") for name in outputs)
    assert any(name.endswith(":livegen out") for name in inputs)
    assert port_present("livegen in", "jack", "output")
    assert not port_present("livegen in", "jack", "input")
    inp.close()
    out.close()
    inp.close()  # twice is harmless
    assert inp.closed and not inp.is_open
    inputs, outputs = list_ports("jack")
    assert not any("livegen" in name for name in inputs + outputs)


def test_virtual_input_delivers_in_order_with_rising_timestamps(
    jack_client: MakeClient, opened: list[MidiInput | MidiOutput]
) -> None:
    inp = open_input(None, api="jack")
    opened.append(inp)
    tester = jack_client()
    assert tester.connect_output("livegen in").endswith(":livegen in")
    sent = [bytes([0x90, 60 + i, 100]) for i in range(12)]
    start = time.perf_counter()
    for message in sent:
        tester.send(message)
        time.sleep(0.003)
    got = _poll_until(inp, len(sent))
    assert [message for message, _ in got] == sent
    stamps = [stamp for _, stamp in got]
    assert stamps == sorted(stamps)
    assert start < stamps[0] and stamps[-1] > stamps[0]
    assert stamps[-1] - start < 1.0
    assert inp.received == len(sent)


def test_sysex_and_active_sensing_are_dropped_clock_passes(
    jack_client: MakeClient, opened: list[MidiInput | MidiOutput]
) -> None:
    inp = open_input(None, api="jack")
    opened.append(inp)
    tester = jack_client()
    tester.connect_output("livegen in")
    for message in ([0xF0, 0x7E, 0x01, 0xF7], [0xFE], [0xF8], [0xFA], [0x80, 60, 0]):
        tester.send(message)
    # the note-off was sent last: once it is in, all that came before it is (JACK keeps order)
    got = _poll_until(inp, 1, until=b"\x80\x3c\x00")
    assert [message for message, _ in got] == [b"\xf8", b"\xfa", b"\x80\x3c\x00"]


def test_virtual_output_reaches_a_client(
    jack_client: MakeClient, opened: list[MidiInput | MidiOutput]
) -> None:
    out = open_output(None, api="jack")
    opened.append(out)
    tester = jack_client()
    assert tester.connect_input("livegen out").endswith(":livegen out")
    sent = [b"\x91\x40\x50", bytearray(b"\xb1\x40\x7f"), [0x81, 0x40, 0x00]]
    for message in sent:
        assert out.send(message)
    got = tester.receive(len(sent))
    assert [message for message, _ in got] == [bytes(message) for message in sent]
    assert out.sent == 3 and out.dropped == 0


def test_connect_by_case_insensitive_substring(
    jack_client: MakeClient, opened: list[MidiInput | MidiOutput]
) -> None:
    keys = jack_client("kbd")
    keys.virtual_output("Stage Keys")
    synth = jack_client("synth")
    synth.virtual_input("Piano Synth")
    inp = open_input("stage keys", api="jack")
    out = open_output("PIANO", api="jack")
    opened += [inp, out]
    assert not inp.virtual and inp.name == f"{keys.name}:Stage Keys"
    assert out.name == f"{synth.name}:Piano Synth"
    keys.sync()  # livegen's input connection to "Stage Keys" is in force
    keys.send([0x90, 64, 90])
    assert [message for message, _ in _poll_until(inp, 1)] == [b"\x90\x40\x5a"]
    out.send([0x90, 67, 70])
    assert [message for message, _ in synth.receive(1)] == [b"\x90\x43\x46"]


def test_exact_name_wins_over_an_earlier_substring_match() -> None:
    names = ["a:Synth 2", "b:synth"]
    assert ports.find_port("B:SYNTH", names) == 1
    assert ports.find_port("synth", names) == 0
    assert ports.find_port("organ", names) is None


def test_missing_port_names_the_request_and_lists_what_exists(jack_client: MakeClient) -> None:
    tester = jack_client("tester")
    tester.virtual_output("Drum Pads")
    tester.virtual_input("Sampler")
    with pytest.raises(PortError) as caught:
        open_input("no such port", api="jack")
    message = str(caught.value)
    assert "no MIDI input port matches 'no such port'" in message
    assert f"'{tester.name}:Drum Pads'" in message and "livegen ports" in message
    # a second rtmidi object of one client name becomes NAME-01 on JACK
    with pytest.raises(PortError, match=rf"available outputs: .*'{tester.name}(-01)?:Sampler'"):
        open_output("nothing like it", api="jack")


def test_windows_has_no_virtual_ports(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ports, "_is_windows", lambda: True)
    for opener in (open_input, open_output):
        with pytest.raises(PortError) as caught:
            opener(None)
        message = str(caught.value)
        assert "virtual ports on Windows" in message
        assert "loopMIDI" in message and "Windows MIDI Services" in message
        assert "--input NAME --output NAME" in message
    with pytest.raises(PortError, match="loopMIDI"):
        open_input(None, api="windows")


@pytest.mark.parametrize("direction", ["input", "output"])
def test_portwatch_reports_vanish_and_return_and_reconnects(
    direction: str, jack_client: MakeClient, opened: list[MidiInput | MidiOutput]
) -> None:
    device = jack_client("device")
    if direction == "input":
        device.virtual_output("Watch Me")
        port: MidiInput | MidiOutput = open_input("watch me", api="jack")
    else:
        device.virtual_input("Watch Me")
        port = open_output("watch me", api="jack")
    opened.append(port)
    watch = PortWatch(port)
    assert watch.check() is None and watch.state == "present"

    if direction == "input":
        device.close_output()
    else:
        device.close_input()
    event = watch.check()
    assert event is not None and event.kind == "vanished"
    assert event.port == f"{device.name}:Watch Me"
    assert event.direction == direction and "vanished" in event.message
    assert watch.check() is None and watch.state == "vanished" and not port.is_open
    assert not port_present("watch me", "jack")

    if direction == "input":
        device.virtual_output("Watch Me")
    else:
        device.virtual_input("Watch Me")
    event = watch.check()
    assert event is not None and event.kind == "returned" and "reconnected" in event.message
    assert watch.state == "present" and port.is_open
    assert watch.check() is None

    if isinstance(port, MidiInput):
        device.sync()  # livegen's new connection from "Watch Me" is in force
        device.send([0x90, 50, 60])
        assert [message for message, _ in _poll_until(port, 1)] == [b"\x90\x32\x3c"]
    else:
        assert port.send([0x90, 50, 60])
        assert [message for message, _ in device.receive(1)] == [b"\x90\x32\x3c"]


def test_portwatch_without_reconnect_leaves_reopening_to_the_owner(
    jack_client: MakeClient, opened: list[MidiInput | MidiOutput]
) -> None:
    device = jack_client("device")
    device.virtual_output("Manual")
    inp = open_input("manual", api="jack")
    opened.append(inp)
    watch = PortWatch(inp, reconnect=False)
    device.close_output()
    event = watch.check()
    assert event is not None and event.kind == "vanished"
    device.virtual_output("Manual")
    event = watch.check()
    assert event is not None and event.kind == "returned" and "not reconnected" in event.message
    inp.reopen()
    assert inp.is_open and watch.check() is None
    device.sync()  # the connection reopen() made is in force
    device.send([0x90, 48, 30])
    assert [message for message, _ in _poll_until(inp, 1)] == [b"\x90\x30\x1e"]


def test_output_counts_sends_while_its_port_is_gone(
    jack_client: MakeClient, opened: list[MidiInput | MidiOutput]
) -> None:
    device = jack_client("device")
    device.virtual_input("Gone Soon")
    out = open_output("gone soon", api="jack")
    opened.append(out)
    watch = PortWatch(out)
    device.close_input()
    assert watch.check() is not None
    assert not out.send([0x90, 60, 1]) and out.dropped == 1


def test_portwatch_due_follows_its_interval(jack_server: str) -> None:
    with open_input(None, api="jack") as inp:
        watch = PortWatch(inp, interval=1.0)
        assert watch.due(100.0)
        assert watch.check(now=100.0) is None
        assert not watch.due(100.5) and watch.due(101.0)
        inp.close()
        assert watch.check() is None and watch.state == "closed"


def test_many_open_close_cycles_leave_no_clients(jack_server: str) -> None:
    start = time.perf_counter()
    for _ in range(8):
        open_input(None, api="jack").close()
        open_output(None, api="jack").close()
    assert time.perf_counter() - start < 5.0
    # jackd2 keeps one semaphore per live client under /dev/shm: none of livegen's may remain
    if os.path.isdir("/dev/shm"):
        prefix = f"jack_sem.{os.getuid()}_{jack_server}_livegen"
        assert [name for name in os.listdir("/dev/shm") if name.startswith(prefix)] == []
    assert not any("livegen" in name for pair in list_ports("jack") for name in pair)


def test_server_death_is_an_error_and_the_ports_come_back(
    jack_server: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    server = JackServer(log_path=tmp_path / "jackd.log")
    server.start()
    monkeypatch.setenv("JACK_DEFAULT_SERVER", server.name)
    tester = JackTestClient("survivor")
    try:
        inp = open_input(None, api="jack")
        out = open_output(None, api="jack")
        watches = [PortWatch(inp), PortWatch(out)]
        assert [watch.check() for watch in watches] == [None, None]

        server.kill()
        events = [watch.check() for watch in watches]
        assert [event.kind if event else None for event in events] == ["error", "error"]
        assert events[0] is not None and "stopped" in events[0].message
        assert [watch.check() for watch in watches] == [None, None]
        assert inp.poll() == [] and not out.send([0x90, 1, 1])
        # no JACK client is opened while the socket says the server is down
        with pytest.raises(PortError, match="cannot reach the JACK server"):
            resolve_api("jack")

        server.start()
        events = [watch.check() for watch in watches]
        assert [event.kind if event else None for event in events] == ["returned", "returned"]
        tester.connect_output("livegen in")
        tester.connect_input("livegen out")
        tester.send([0x90, 70, 80])
        assert [message for message, _ in _poll_until(inp, 1)] == [b"\x90\x46\x50"]
        assert out.send([0x80, 70, 0])
        assert [message for message, _ in tester.receive(1)] == [b"\x80\x46\x00"]
        inp.close()
        out.close()
    finally:
        tester.close()
        server.stop()


def test_a_server_restart_between_two_checks_is_noticed(
    jack_server: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    server = JackServer(log_path=tmp_path / "jackd.log")
    server.start()
    monkeypatch.setenv("JACK_DEFAULT_SERVER", server.name)
    try:
        inp = open_input(None, api="jack")
        watch = PortWatch(inp)
        server.kill()
        server.start()  # back before the watch looked: the port's JACK client is still dead
        assert not port_present("livegen in", "jack")
        event = watch.check()
        assert event is not None and event.kind == "error"
        event = watch.check()
        assert event is not None and event.kind == "returned"
        assert port_present("livegen in", "jack", "output")
        inp.close()
    finally:
        server.stop()
