"""The control panel, headless (App.run_test and Pilot), against a real engine process on the
session's JACK dummy server, with a test MIDI client playing into "livegen in" and listening
to "livegen out".

One engine is shared by the tests that only steer it (each starts from the chorale preset,
nothing recording, nothing learning, after a panic); the tests that quit or kill the engine
start their own. The engine runs in a spawned child, so the user folders are redirected with
XDG_DATA_HOME / XDG_CONFIG_HOME (platformdirs honours them on Linux) before any engine starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import mido
import pytest
from conftest import JackTestClient

from livegen import paths
from livegen.controls import ControlMessage, step_value
from livegen.midi.ports import CLIENT_NAME_ENV
from livegen.midi.rescue import parse_alsa_connections, release_messages
from livegen.presets import PresetError, find_preset, load_preset
from livegen.session import LiveOptions
from livegen.settings import Settings
from livegen.status import Status, VoiceState
from livegen.tui import KEYMAP, LivegenApp
from livegen.tui.keymap import next_key_lock
from livegen.tui.poller import start_engine
from livegen.tui.screens import HelpScreen, PickScreen

OPTS = LiveOptions(input=None, output=None, midi_api="jack", seed=1)
SHARED = f"tui-shared-{os.getpid()}"  # JACK client names, so the tester finds the right engine
OWN = f"tui-own-{os.getpid()}"
MELODY = (67, 69, 71, 72, 74, 72, 71, 69)  # G A B C D C B A: the voices move under it

pytestmark = pytest.mark.timeout(120)


# --------------------------------------------------------------------------- helpers


def start_named(client: str):
    """An engine whose MIDI client is called `client` (the spawned child reads the variable)."""
    saved = os.environ.get(CLIENT_NAME_ENV)
    os.environ[CLIENT_NAME_ENV] = client
    try:
        return start_engine(OPTS)
    finally:
        if saved is None:
            os.environ.pop(CLIENT_NAME_ENV, None)
        else:
            os.environ[CLIENT_NAME_ENV] = saved


def stop_draining(engine) -> None:
    """Stop an engine while reading its snapshots (a child with a full pipe cannot exit)."""
    stopper = threading.Thread(target=engine.stop)
    stopper.start()
    while stopper.is_alive():
        engine.latest()
        stopper.join(0.02)


def connect(tester: JackTestClient, client: str) -> None:
    """The tester plays into the engine's "livegen in" and listens to its "livegen out"."""
    tester.connect_output(f"{client}:livegen in")
    tester.connect_input(client)  # the only source of that client is its "livegen out"


def jack_graph() -> str:
    """`jack_lsp -c`, for failure messages."""
    found = subprocess.run(["jack_lsp", "-c"], capture_output=True, text=True, timeout=5)
    return " | ".join(found.stdout.split("\n"))


def run(coro) -> None:
    asyncio.run(asyncio.wait_for(coro, timeout=90))


async def until(condition: Callable[[], object], timeout: float = 10.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        await asyncio.sleep(0.02)


class Listener:
    """Collects everything the test client's input receives, in a thread."""

    def __init__(self, tester: JackTestClient):
        self.tester = tester
        self.got: list[bytes] = []
        self.lock = threading.Lock()
        self.halt = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.halt.wait(0.005):  # the rtmidi queue holds what comes meanwhile
            items = self.tester.receive(1024, timeout=0.001)
            with self.lock:
                self.got += [m for m, _ in items]

    def messages(self) -> list[bytes]:
        with self.lock:
            return list(self.got)

    def stop(self) -> None:
        self.halt.set()
        self.thread.join(2)


def balance(messages: list[bytes], channels: set[int] | None = None) -> set[tuple[int, int]]:
    """(channel 1..16, pitch) left sounding, honouring CC123/CC120."""
    on: set[tuple[int, int]] = set()
    for m in messages:
        kind, ch = m[0] & 0xF0, (m[0] & 15) + 1
        if channels is not None and ch not in channels:
            continue
        if kind == 0x90 and m[2] > 0:
            on.add((ch, m[1]))
        elif kind == 0x80 or kind == 0x90:
            on.discard((ch, m[1]))
        elif kind == 0xB0 and m[1] in (120, 123):
            on = {n for n in on if n[0] != ch}
    return on


def note_ons(messages: list[bytes], channel: int) -> list[int]:
    return [m[1] for m in messages if m[0] == 0x90 | (channel - 1) and m[2] > 0]


def ccs(messages: list[bytes], cc: int) -> set[int]:
    return {(m[0] & 15) + 1 for m in messages if m[0] & 0xF0 == 0xB0 and m[1] == cc}


async def sound_voices(app: LivegenApp, tester: JackTestClient, listener: Listener,
                       hold: bool = True) -> int:
    """Play the melody until the engine has notes sounding that the listener heard; the last
    human note is still held when `hold`. Returns that note."""
    deadline = time.monotonic() + 20
    i = 0
    while True:
        pitch = MELODY[i % len(MELODY)]
        tester.send([0x90, pitch, 90])
        await asyncio.sleep(0.35)
        heard = balance(listener.messages())
        if i >= 2 and app.status and app.status.sounding and heard:
            if not hold:
                tester.send([0x80, pitch, 0])
            return pitch
        tester.send([0x80, pitch, 0])
        i += 1
        if time.monotonic() > deadline:
            sounding = app.status.sounding if app.status else None
            raise AssertionError(f"the engine never sounded a voice the listener heard: it "
                                 f"sounds {sounding}, the listener got "
                                 f"{len(listener.messages())} messages; JACK: {jack_graph()}")


@contextlib.asynccontextmanager
async def panel(factory: Callable[[], object], own: bool = False,
                size: tuple[int, int] = (80, 24)) -> AsyncIterator[tuple[LivegenApp, object]]:
    app = LivegenApp(factory, OPTS, own_engine=own)  # type: ignore[arg-type]
    async with app.run_test(size=size) as pilot:
        await until(lambda: app.status is not None or app.failure, 30, "the first snapshot")
        assert app.failure is None, app.failure
        yield app, pilot


async def pick(app: LivegenApp, pilot, name: str) -> None:
    """Open the preset list with `p` and load `name` with Enter."""
    await pilot.press("p")
    await until(lambda: isinstance(app.screen, PickScreen), what="the preset list")
    screen = app.screen
    assert isinstance(screen, PickScreen)
    index = next(i for i, (label, _) in enumerate(screen.options) if label.split()[0] == name)
    option_list = screen.query_one("OptionList")
    option_list.highlighted = index  # type: ignore[attr-defined]
    await pilot.press("enter")
    await until(lambda: not isinstance(app.screen, PickScreen), what="the list to close")


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def user_dirs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Private user folders for this process and every engine it spawns."""
    root = tmp_path_factory.mktemp("xdg")
    saved = {k: os.environ.get(k) for k in ("XDG_DATA_HOME", "XDG_CONFIG_HOME")}
    os.environ["XDG_DATA_HOME"] = str(root / "data")
    os.environ["XDG_CONFIG_HOME"] = str(root / "config")
    try:
        yield root
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="module")
def shared_engine(jack_server: str, user_dirs: Path) -> Iterator[object]:
    engine = start_named(SHARED)
    try:
        yield engine
    finally:
        stop_draining(engine)


def _settled(engine, chorale: Settings) -> bool:
    status = engine.latest()
    return bool(status and status.preset == chorale.name and status.recording is None
                and status.learning is None and status.settings == chorale)


@pytest.fixture
def engine(shared_engine) -> object:
    """The shared engine, back to the chorale preset, not recording or learning, after a panic
    (the voices may go on playing by themselves afterwards)."""
    chorale = load_preset(find_preset("chorale"))
    shared_engine.send(ControlMessage("record", value=False))
    shared_engine.send(ControlMessage("learn", None))
    shared_engine.send(ControlMessage("settings", value=chorale))
    shared_engine.send(ControlMessage("panic"))
    deadline = time.monotonic() + 10
    while not _settled(shared_engine, chorale):
        assert shared_engine.alive and time.monotonic() < deadline, "the engine did not reset"
        time.sleep(0.05)
    return shared_engine


@pytest.fixture
def tester(jack_client, request: pytest.FixtureRequest) -> JackTestClient:
    """A test client, not connected yet, named after its test (the JACK graph printed on a
    failure then says which test made which client)."""
    return jack_client(f"tui-{request.node.name[5:17]}")


@pytest.fixture
def listen(tester: JackTestClient) -> Iterator[Callable[[str], Listener]]:
    """connect the tester to an engine's client and start listening."""
    started: list[Listener] = []

    def listen(client: str) -> Listener:
        connect(tester, client)
        started.append(Listener(tester))
        return started[-1]

    yield listen
    for listening in started:
        listening.stop()


# --------------------------------------------------------------------------- pure parts


def test_steps_clamp_and_key_lock_cycles() -> None:
    settings = Settings()
    assert step_value(settings, "temperature", 1) == pytest.approx(0.85)
    assert step_value(settings, "temperature", -100) == pytest.approx(0.1)
    assert step_value(settings, "bpm", 5) == pytest.approx(105.0)
    assert step_value(settings, "follow_ms", 1000) == pytest.approx(200.0)
    assert next_key_lock("off", "G major") == "auto"
    assert next_key_lock("auto", "G major") == "G major"
    assert next_key_lock("auto", None) == "off"
    assert next_key_lock("G major", "D major") == "off"
    assert {keys for keys, _ in KEYMAP} >= {"? / F1", "q / Ctrl-C", "x", "l", "p", "r"}


def test_release_messages_end_notes_then_reset_channels() -> None:
    status = Status(time=0.0, preset="chorale", running=True, clock="internal", bpm=100.0,
                    step=0, bar=1, beat=1, key=None, takeover=False, settings=Settings(),
                    sounding=[(2, 64), (4, 48)],
                    voices=[VoiceState("alto", True, 2), VoiceState("bass", True, 4)])
    messages, channels = release_messages(status)
    assert channels == [1, 2, 4]
    assert messages[:2] == [[0x81, 64, 64], [0x83, 48, 64]]
    assert messages[2:5] == [[0xB0, 64, 0], [0xB0, 123, 0], [0xB0, 120, 0]]
    assert len(messages) == 2 + 3 * 3
    _, every = release_messages(None)
    assert every == list(range(1, 17))


def test_alsa_connection_listing_is_read() -> None:
    alsa = ('Client 128 : "livegen" [User Legacy]\n  Port   0 : "livegen in" (-We-)\n'
            "    Connected From: 20:0\n  Port   1 : \"livegen out\" (R-e-)\n"
            "    Connecting To: 129:0, 130:0[real:0]\n"
            'Client 129 : "FLUID Synth (1)" [User Legacy]\n  Port   0 : "Synth input" (-We-)\n'
            "    Connected From: 128:1\n")
    assert parse_alsa_connections(alsa) == {"128:1": ["129:0", "130:0"]}


# --------------------------------------------------------------------------- with the engine


def test_temperature_keys_reach_the_engine(engine) -> None:
    async def scenario() -> None:
        async with panel(lambda: engine) as (app, pilot):
            def temperature() -> float:
                return app.status.settings.sampling.temperature

            start = temperature()
            await pilot.press("T", "T")
            await until(lambda: abs(temperature() - (start + 0.1)) < 1e-6, what="T T")
            await pilot.press("t")
            await until(lambda: abs(temperature() - (start + 0.05)) < 1e-6, what="t")
            assert app.panel.control == "temperature"  # selected at start: → steps it too
            await pilot.press("right")
            await until(lambda: abs(temperature() - (start + 0.1)) < 1e-6, what="right")
            await pilot.press("o")  # takeover on, then voice 1 (alto) off
            await pilot.press("1")
            await until(lambda: app.status.settings.takeover.enabled
                        and not app.status.settings.voices[0].enabled, what="o and 1")

    run(scenario())


def test_panic_sends_note_offs_the_client_receives(engine, tester, listen) -> None:
    listener = listen(SHARED)

    async def scenario() -> None:
        async with panel(lambda: engine) as (app, pilot):
            await sound_voices(app, tester, listener, hold=False)
            before = len(listener.messages())
            assert balance(listener.messages()), "nothing was sounding"
            await pilot.press("x")
            await until(lambda: {1, 2, 3, 4} <= ccs(listener.messages()[before:], 120),
                        what="the panic's CC120 on every channel")
            got = listener.messages()
            first_cc = next(i for i in range(before, len(got))
                            if got[i][0] & 0xF0 == 0xB0 and got[i][1] == 64)
            assert balance(got[:first_cc]) == set(), "a note got no explicit note-off"
            assert {1, 2, 3, 4} <= ccs(got[first_cc:], 64) & ccs(got[first_cc:], 123)
            assert any(m[0] & 0xF0 == 0x80 for m in got[before:first_cc])

    run(scenario())


def test_preset_switch_mid_note_leaves_nothing_hanging(engine, tester, listen) -> None:
    listener = listen(SHARED)

    async def scenario() -> None:
        async with panel(lambda: engine) as (app, pilot):
            held = await sound_voices(app, tester, listener, hold=True)
            before = listener.messages()
            hanging = balance(before, {2, 3, 4})
            assert hanging, "no voice was sounding before the switch"
            await pick(app, pilot, "counterpoint")
            await until(lambda: app.status.preset == "counterpoint", what="the switch")
            tester.send([0x80, held, 0])
            await asyncio.sleep(0.5)
            after = listener.messages()[len(before):]
            offs = {((m[0] & 15) + 1, m[1]) for m in after
                    if m[0] & 0xF0 == 0x80 or (m[0] & 0xF0 == 0x90 and m[2] == 0)}
            assert hanging <= offs, (f"left hanging: {hanging - offs}; the engine has "
                                     f"{app.status.sounding}")
            assert balance(listener.messages(), {2, 4}) == set()  # alto and bass are off now
            assert any("counterpoint" in text for text in app.shown_messages)

    run(scenario())


def test_midi_learn_binds_a_cc_that_then_moves_the_control(engine, tester) -> None:
    connect(tester, SHARED)

    async def scenario() -> None:
        async with panel(lambda: engine) as (app, pilot):
            assert app.panel.control == "temperature"
            await pilot.press("l")
            await until(lambda: app.status.learning == "temperature", what="learning")
            tester.send([0xB0, 21, 64])
            await until(lambda: app.status.learn.get(21) == "temperature", what="the bind")
            assert app.status.learning is None
            tester.send([0xB0, 21, 0])
            await until(lambda: abs(app.status.settings.sampling.temperature - 0.1) < 1e-6,
                        what="the knob at 0")
            tester.send([0xB0, 21, 127])
            await until(lambda: abs(app.status.settings.sampling.temperature - 2.0) < 1e-6,
                        what="the knob at 127")
            await pilot.pause(0.2)
            assert "cc21" in str(app.panel.render())
            # `s` saves the settings with the learn map as a user preset
            await pilot.press("s")
            await until(lambda: app.screen.__class__.__name__ == "PromptScreen")
            app.screen.query_one("Input").value = ""  # type: ignore[attr-defined]
            await pilot.press(*"learned", "enter")
            saved = paths.user_presets() / "learned.toml"
            await until(saved.exists, what="the saved preset")
            assert load_preset(saved).learn[21] == "temperature"

    run(scenario())


def test_bad_preset_shows_its_error_and_the_old_one_stays(engine, user_dirs) -> None:
    folder = paths.user_presets()
    folder.mkdir(parents=True, exist_ok=True)
    bad = folder / "broken.toml"
    bad.write_text('name = "broken"\n[sampling]\ntemperature = 9.0\n')
    with pytest.raises(PresetError) as error:
        load_preset(bad)

    async def scenario() -> None:
        async with panel(lambda: engine) as (app, pilot):
            await pick(app, pilot, "broken")
            await until(lambda: any(str(error.value) in t for t in app.shown_messages),
                        what="the error")
            await asyncio.sleep(0.3)
            assert app.status.preset == "chorale"
            assert app.status.settings.sampling.temperature == pytest.approx(0.8)
            assert "broken.toml:3:" in str(error.value)

    try:
        run(scenario())
    finally:
        bad.unlink()


def test_recording_holds_what_the_client_received(engine, tester, listen, user_dirs) -> None:
    listener = listen(SHARED)

    async def scenario() -> None:
        async with panel(lambda: engine) as (app, pilot):
            await pilot.press("r")
            await until(lambda: app.status.recording, what="recording on")
            path = Path(app.status.recording)
            assert path.is_relative_to(user_dirs)
            start = len(listener.messages())
            sent: list[int] = []
            deadline = time.monotonic() + 20
            while len(sent) < 6 or sum(len(note_ons(listener.messages()[start:], ch))
                                       for ch in (2, 3, 4)) < 3:
                assert time.monotonic() < deadline, "the voices did not play"
                pitch = MELODY[len(sent) % len(MELODY)]
                tester.send([0x90, pitch, 90])
                sent.append(pitch)
                await asyncio.sleep(0.4)
                tester.send([0x80, pitch, 0])
            await asyncio.sleep(0.3)
            await pilot.press("r")
            await until(lambda: app.status.recording is None, what="recording off")
            await until(lambda: any("recording saved" in t for t in app.shown_messages))
            await asyncio.sleep(0.2)
            received = listener.messages()
            recorded = {track.name: [m for m in track if m.type == "note_on" and m.velocity]
                        for track in mido.MidiFile(path).tracks}
            assert [m.note for m in recorded["human"]] == sent
            total = 0
            for name, channel in (("alto", 2), ("tenor", 3), ("bass", 4)):
                got = [m.note for m in recorded[name]]
                assert all(m.channel == channel - 1 for m in recorded[name])
                heard = note_ons(received, channel)
                total += len(got)
                assert any(heard[i:i + len(got)] == got for i in range(len(heard) + 1)), (
                    f"{name}: recorded {got} is not what the client heard: {heard}")
            assert total >= 3

    run(scenario())


# ------------------------------------------------------------------ engines of their own


def test_layout_fits_80x24_and_q_stops_the_engine(jack_server, user_dirs, tester,
                                                  listen) -> None:
    async def scenario() -> None:
        async with panel(lambda: start_named(OWN + "a"), own=True) as (app, pilot):
            engine = app.engine
            hearing = listen(OWN + "a")
            await pilot.pause(0.3)
            for widget in (app.status_lines, app.roll, app.panel, app.log_view):
                region = widget.region
                assert region.width > 0 and region.height > 0
                assert region.right <= 80 and region.bottom <= 24, widget
            assert app.roll.size.height >= 8 and app.roll.size.width >= 40
            assert app.panel.size.height >= len(app.panel.controls)  # every control shows
            assert app.status_lines.size.height == 3
            text = str(app.status_lines.render())
            assert "BPM" in text and "livegen in" in text and "p99" in text
            await pilot.press("question_mark")
            await until(lambda: isinstance(app.screen, HelpScreen), what="help")
            assert app.screen.query_one("VerticalScroll").region.bottom <= 24
            await pilot.press("escape")
            await until(lambda: not isinstance(app.screen, HelpScreen), what="help to close")
            app.simulate_key("q")  # not pilot.press: it would wait on a screen that closes
            await until(lambda: not engine.alive, 15, "the engine to stop")
            await until(lambda: app.return_code is not None, 5, "the app to end")
        assert app.return_code == 0
        await until(lambda: {2, 3, 4} <= ccs(hearing.messages(), 123), 5, "the engine's CC123")

    run(scenario())


def test_engine_death_is_shown_and_its_notes_resolved(jack_server, user_dirs, tester,
                                                      listen) -> None:
    async def scenario() -> None:
        async with panel(lambda: start_named(OWN + "b"), own=True) as (app, pilot):
            engine = app.engine
            listening = listen(OWN + "b")
            await sound_voices(app, tester, listening, hold=True)
            await until(lambda: any(tester.name in d for dests in app.connections.seen.values()
                                    for d in dests), 5, "the connections to be read")
            hanging = balance(listening.messages())
            assert hanging
            os.kill(engine.proc.pid, signal.SIGKILL)
            await until(lambda: app.rescue is not None, 15, "the rescue")
            assert app.banner.display and "ENGINE STOPPED" in str(app.banner.render())
            assert "SIGKILL" in app.failure
            assert app.rescue.startswith("sent"), app.rescue
            await until(lambda: not balance(listening.messages()), 5,
                        f"every note to end after {app.rescue!r}")
            assert {2, 3, 4} <= ccs(listening.messages(), 120)
            app.simulate_key("q")
            await until(lambda: app.return_code is not None, 5, "the app to end")
        assert app.return_code == 1

    run(scenario())
