"""OSC control (livegen/osc.py): a real UDP OSC client on localhost reaches the engine through
the one entry point, `ControlMessage` -> `Engine.control`; an unknown address, a wrong value or
a bad preset is said in one sentence and nothing is applied. Then the whole path with a real
`Engine` (in-process ports, simulated clock), and the wiring in `session.run_engine`."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
from pythonosc.udp_client import SimpleUDPClient

from livegen.cli import build_parser
from livegen.controls import ControlMessage
from livegen.engine import Engine
from livegen.model.runtime import Runtime
from livegen.osc import OscError, OscServer, start_osc
from livegen.paths import model_path
from livegen.session import LiveOptions, run_engine
from livegen.settings import Settings, TimingSettings, VoiceSettings
from tests.fakes import FakeIn, FakeOut, SimTime
from tests.test_cli import imported_top_level
from tests.util import tiny_model

VOICES = ("alto", "tenor", "bass")


@dataclass
class Target:
    """Stands in for the engine: records what reaches `control`, from the server's thread."""

    received: list[ControlMessage] = field(default_factory=list)
    said: list[str] = field(default_factory=list)

    def control(self, message: ControlMessage) -> None:
        self.received.append(message)


@dataclass
class Osc:
    server: OscServer
    target: Target
    client: SimpleUDPClient

    def send(self, address: str, *values: object) -> None:
        self.client.send_message(address, list(values))

    def got(self, count: int) -> list[ControlMessage]:
        """The first `count` messages that reached the target (waits for them)."""
        wait_for(lambda: len(self.target.received) >= count)
        return self.target.received[:count]

    def said(self, count: int) -> list[str]:
        wait_for(lambda: len(self.target.said) >= count)
        return self.target.said[:count]


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.002)


@pytest.fixture
def osc() -> Iterator[Osc]:
    target = Target()
    server = OscServer(target, port=0, say=target.said.append, voices=lambda: VOICES)
    with server:
        yield Osc(server, target, SimpleUDPClient(*server.address))


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    _, path = tiny_model(tmp_path_factory.mktemp("m") / "m.pt", seed=3)
    return path


def make_engine(model) -> tuple[Engine, SimTime]:
    """A real engine on in-process ports and a simulated clock; the grid waits for the first
    note, so a tick does little but poll, apply controls and keep house."""
    settings = Settings(name="test", voices=[VoiceSettings(v, channel=2 + i)
                                             for i, v in enumerate(VOICES)],
                        timing=TimingSettings(bpm=120.0, start="first_note"))
    clock = SimTime()
    engine = Engine(settings, Runtime(model, device="cpu", warmup=2), FakeIn(clock),
                    FakeOut(clock), now=clock.now, sleep=clock.sleep, seed=1)
    return engine, clock


def tick_until(engine: Engine, condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        engine.tick()
        time.sleep(0.001)  # real time for the datagram to come


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------- the address space


def test_listens_on_localhost_by_default(osc: Osc) -> None:
    assert osc.server.address[0] == "127.0.0.1" and osc.server.address[1] > 0
    assert LiveOptions().osc_host == "127.0.0.1" and LiveOptions().osc_port is None
    args = build_parser().parse_args(["run"])
    assert (args.osc_host, args.osc_port) == ("127.0.0.1", None)


def test_number_controls_are_set_and_clamped(osc: Osc) -> None:
    osc.send("/livegen/temperature", 0.9)  # a 32-bit float: the value the sender meant
    osc.send("/livegen/bpm", 96)
    osc.send("/livegen/bpm", 1000)
    osc.send("/livegen/swing", -1.0)
    assert osc.got(4) == [ControlMessage("set", "temperature", 0.9),
                          ControlMessage("set", "bpm", 96.0),
                          ControlMessage("set", "bpm", 300.0),
                          ControlMessage("set", "swing", 0.0)]
    assert osc.target.said == []


def test_key_lock_takeover_and_voice_toggles(osc: Osc) -> None:
    osc.send("/livegen/key_lock", "g major")
    osc.send("/livegen/takeover", 1)
    osc.send("/livegen/voice/bass", 0)
    osc.send("/livegen/voice/alto", True)
    assert osc.got(4) == [ControlMessage("set", "key_lock", "G major"),
                          ControlMessage("set", "takeover", True),
                          ControlMessage("set", "voice.bass", False),
                          ControlMessage("set", "voice.alto", True)]


def test_transport_panic_record_and_learn(osc: Osc) -> None:
    for value in ("start", "stop", "toggle", 1, 0):
        osc.send("/livegen/transport", value)
    osc.send("/livegen/transport")
    osc.send("/livegen/panic")
    osc.send("/livegen/panic", 0)  # a push button's release: nothing
    osc.send("/livegen/record", 1)
    osc.send("/livegen/learn", "temperature")
    osc.send("/livegen/learn")
    assert osc.got(10) == [
        ControlMessage("transport", value="start"), ControlMessage("transport", value="stop"),
        ControlMessage("transport", value="toggle"), ControlMessage("transport", value="start"),
        ControlMessage("transport", value="stop"), ControlMessage("transport", value="toggle"),
        ControlMessage("panic"), ControlMessage("record", value=True),
        ControlMessage("learn", name="temperature"), ControlMessage("learn", name=None)]


@pytest.mark.parametrize(("address", "values", "said"), [
    ("/livegen/temprature", [0.9], "livegen has no control 'temprature'"),
    ("/livegen/temperature", ["hot"], "the text 'hot' is not a number"),
    ("/livegen/temperature", [], "needs a value"),
    ("/livegen/bpm", [90, 100], "takes one value, not 2"),
    ("/livegen/key_lock", ["H major"], "is not a key"),
    ("/livegen/voice/soprano", [1], "the model has no voice 'soprano'"),
    ("/livegen/transport", ["pause"], "is not start, stop or toggle"),
    ("/livegen/learn", ["volume"], "'volume' cannot be learned"),
    ("/other/fader1", [0.5], "not a livegen address"),
])
def test_a_bad_message_is_said_and_nothing_applied(osc: Osc, address, values, said) -> None:
    osc.send(address, *values)
    osc.send("/livegen/density", 0.5)  # the next good message still arrives
    assert osc.got(1) == [ControlMessage("set", "density", 0.5)]
    [sentence] = osc.said(1)
    assert sentence.startswith(f"OSC {address}: ") and said in sentence
    assert sentence.endswith("; ignored") and "\n" not in sentence


def test_the_same_refusal_is_said_once_in_a_while(osc: Osc) -> None:
    for _ in range(5):  # a fader sending a bad value
        osc.send("/livegen/swing", "lots")
    osc.send("/livegen/swing", "more")
    osc.send("/livegen/swing", 0.1)
    osc.got(1)
    assert [s.split(": ")[1] for s in osc.target.said] == [
        "the text 'lots' is not a number; ignored", "the text 'more' is not a number; ignored"]


def test_a_preset_by_name(osc: Osc) -> None:
    osc.send("/livegen/preset", "jam")
    [message] = osc.got(1)
    assert message.kind == "settings" and message.value.name == "jam"
    assert osc.target.said == []


def test_a_preset_naming_another_model_switches_it(tmp_path) -> None:
    target = Target()
    loaded = tmp_path / "other.pt"
    with OscServer(target, say=target.said.append, model=lambda: loaded) as server:
        SimpleUDPClient(*server.address).send_message("/livegen/preset", "jam")
        wait_for(lambda: len(target.received) >= 2)
    settings, switch = target.received
    assert settings.kind == "settings" and settings.value.name == "jam"
    assert switch == ControlMessage("model", value=str(model_path("chorale")))
    # the model the preset names is the one loaded: no switch
    target = Target()
    with OscServer(target, say=target.said.append,
                   model=lambda: model_path("chorale")) as server:
        client = SimpleUDPClient(*server.address)
        client.send_message("/livegen/preset", "jam")
        client.send_message("/livegen/panic", [])
        wait_for(lambda: len(target.received) >= 2)
    assert [m.kind for m in target.received] == ["settings", "panic"]


def test_a_bad_preset_is_said_and_the_running_one_stays(osc: Osc, tmp_path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("[sampling]\ntemperature = 'hot'\n")
    osc.send("/livegen/preset", "nosuchpreset")
    osc.send("/livegen/preset", str(broken))
    osc.send("/livegen/panic")
    assert osc.got(1) == [ControlMessage("panic")]
    missing, bad = osc.said(2)
    assert missing.startswith("OSC /livegen/preset: nosuchpreset: no such preset or file")
    assert missing.endswith("; the running preset stays")
    assert bad.startswith(f"OSC /livegen/preset: {broken}:2:") and "temperature" in bad
    assert bad.endswith("; the running preset stays")
    assert len(osc.target.received) == 1


# ------------------------------------------------------------------------------- opening, stop


def test_a_port_in_use_is_one_sentence() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        with pytest.raises(OscError) as error:
            OscServer(Target(), port=port, say=print).start()
    assert str(error.value) == (f"OSC off: UDP port {port} on 127.0.0.1 is in use by another "
                                "program; choose another port with --osc-port")


def test_an_address_not_of_this_machine_is_one_sentence() -> None:
    with pytest.raises(OscError, match="^OSC off: 192.0.2.1 is not an address of this machine"):
        OscServer(Target(), host="192.0.2.1", say=print).start()  # TEST-NET-1


def test_stop_closes_the_port_at_once(osc: Osc) -> None:
    host, port = osc.server.address
    started = time.monotonic()
    osc.server.stop()
    assert time.monotonic() - started < 0.5
    assert not any(t.name == "livegen-osc" for t in threading.enumerate())
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as again:
        again.bind((host, port))  # free again


# --------------------------------------------------------------------- with the real engine


def test_the_whole_path_to_the_engine(model) -> None:
    engine, _ = make_engine(model)
    server = start_osc(engine, port=0)
    assert server is not None
    try:
        host, port = server.address
        assert host == "127.0.0.1"
        assert f"OSC control on UDP 127.0.0.1:{port}" in engine.messages[-1][1]
        client = SimpleUDPClient(host, port)
        client.send_message("/livegen/temperature", 1.5)
        client.send_message("/livegen/voice/tenor", 0)
        tick_until(engine, lambda: engine.settings.sampling.temperature == 1.5
                   and not engine.settings.voice("tenor").enabled)
        # a refusal reaches the engine's messages through the worker
        client.send_message("/livegen/temperature", "hot")
        tick_until(engine, lambda: "is not a number" in engine.messages[-1][1])
        assert engine.settings.sampling.temperature == 1.5
        client.send_message("/livegen/preset", "nosuchpreset")
        tick_until(engine, lambda: "no such preset" in engine.messages[-1][1])
        assert engine.settings.name == "test"
    finally:
        server.stop()


def test_a_port_in_use_leaves_the_engine_playing(model) -> None:
    engine, _ = make_engine(model)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        assert start_osc(engine, port=taken.getsockname()[1]) is None
    assert engine.messages[-1][1].startswith("OSC off: UDP port")
    assert engine.on_status is None  # nothing of OSC stays behind
    engine.control(ControlMessage("set", "temperature", 1.2))
    engine.tick()
    assert engine.settings.sampling.temperature == 1.2


def test_run_engine_serves_osc_while_the_engine_runs(model) -> None:
    engine, _ = make_engine(model)
    port = free_port()
    client = SimpleUDPClient("127.0.0.1", port)
    started = time.monotonic()

    def should_stop() -> bool:
        assert time.monotonic() - started < 10, "timed out"
        client.send_message("/livegen/temperature", 0.3)
        time.sleep(0.002)
        return engine.settings.sampling.temperature == pytest.approx(0.3)

    run_engine(engine, [], LiveOptions(osc_port=port), should_stop)
    assert engine.settings.sampling.temperature == pytest.approx(0.3)
    assert not any(t.name == "livegen-osc" for t in threading.enumerate())
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as again:
        again.bind(("127.0.0.1", port))  # closed with the engine


# ------------------------------------------------------------------------------- command line


def test_run_flags() -> None:
    args = build_parser().parse_args(["run", "--osc-port", "9000", "--osc-host", "0.0.0.0"])
    assert LiveOptions.from_args(args) == LiveOptions(osc_port=9000, osc_host="0.0.0.0")


@pytest.mark.parametrize("port", ["0", "65536", "nine"])
def test_a_bad_osc_port_is_refused(capsys, port) -> None:
    with pytest.raises(SystemExit) as stop:
        build_parser().parse_args(["run", "--osc-port", port])
    assert stop.value.code == 2
    assert "is not a UDP port: give 1 to 65535" in capsys.readouterr().err


def test_run_help_imports_no_osc_library() -> None:
    out, names = imported_top_level(["run", "--help"])
    assert out.returncode == 0 and "0.0.0.0 exposes it" in " ".join(out.stdout.split())
    assert "pythonosc" not in names
