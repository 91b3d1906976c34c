"""The control panel against a real engine process on the session's JACK dummy server, with a
test MIDI client playing into "livegen in" and listening to "livegen out": only what needs the
real engine and what a listener hears (panic, a preset switch mid-note, recording, MIDI learn
through a real CC, quitting, and the rescue of a killed engine's notes). The panel's own logic
is tested against a fake engine in test_panel.py.

One engine is shared by the tests that only steer it (each starts from the chorale preset,
nothing recording, nothing learning, after a panic); the tests that quit or kill the engine
start their own. The engine runs in a spawned child, which reads its MIDI client name
(LIVEGEN_CLIENT_NAME) and the user folders (XDG_DATA_HOME / XDG_CONFIG_HOME, which platformdirs
honours on Linux) from the environment it is spawned with.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import mido
import pytest
from conftest import JackTestClient
from textual.pilot import Pilot

from livegen.controls import ControlMessage
from livegen.frames import HUMAN
from livegen.midi.ports import CLIENT_NAME_ENV
from livegen.presets import find_preset, load_preset
from livegen.process import EngineProcess
from livegen.session import LiveOptions
from livegen.settings import Settings
from livegen.tui import LivegenApp
from livegen.tui.poller import EngineHandle, start_engine
from tests.helpers import channels_with_cc, left_sounding, pick, until, wait_for

OPTS = LiveOptions(input=None, output=None, midi_api="jack", seed=1)
SHARED = f"tui-shared-{os.getpid()}"  # JACK client names, so the tester finds the right engine
OWN = f"tui-own-{os.getpid()}"
MELODY = (67, 69, 71, 72, 74, 72, 71, 69)  # G A B C D C B A: the voices move under it
VOICE_CHANNELS = (2, 3, 4)  # alto, tenor, bass in the chorale preset

# the thread method: a test blocked in a C call (a pipe read, libjack) is still ended
pytestmark = [pytest.mark.jack, pytest.mark.timeout(150, method="thread")]


# --------------------------------------------------------------------------- helpers


def stop_draining(engine: EngineHandle) -> None:
    """Stop an engine while reading its snapshots (a child with a full pipe cannot exit). The
    reading is done by a daemon thread: `EngineProcess.latest` blocks for good on a snapshot
    that a child killed while writing it left half written in the pipe."""
    done = threading.Event()

    def drain() -> None:
        while not done.wait(0.02):
            engine.latest()

    threading.Thread(target=drain, name="drain", daemon=True).start()
    try:
        engine.stop()
    finally:
        done.set()


def connect(tester: JackTestClient, client: str) -> None:
    """The tester plays into the engine's "livegen in" and listens to its "livegen out"."""
    tester.connect_output(f"{client}:livegen in")
    tester.connect_input(client)  # the only source of that client is its "livegen out"


def jack_graph() -> str:
    """`jack_lsp -c`, for failure messages."""
    found = subprocess.run(["jack_lsp", "-c"], capture_output=True, text=True, timeout=5)
    return " | ".join(found.stdout.split("\n"))


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(asyncio.wait_for(coro, timeout=120))


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


def is_subsequence(part: list[int], whole: list[int]) -> bool:
    rest = iter(whole)
    return all(any(x == y for y in rest) for x in part)


def note_ons(messages: list[bytes], channel: int) -> list[int]:
    return [m[1] for m in messages if m[0] == 0x90 | (channel - 1) and m[2] > 0]


async def sound_voices(app: LivegenApp, tester: JackTestClient, listener: Listener,
                       hold: bool = True) -> int:
    """Play the melody until the engine has notes sounding that the listener heard; the last
    human note is still held when `hold`. Returns that note."""
    deadline = time.monotonic() + 30
    i = 0
    while True:
        pitch = MELODY[i % len(MELODY)]
        tester.send([0x90, pitch, 90])
        await asyncio.sleep(0.35)  # paces the melody
        heard = left_sounding(listener.messages())
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
async def panel(factory: Callable[[], EngineHandle], own: bool = False,
                size: tuple[int, int] = (80, 24)
                ) -> AsyncIterator[tuple[LivegenApp, Pilot[int]]]:
    app = LivegenApp(factory, OPTS, own_engine=own)
    async with app.run_test(size=size) as pilot:
        await until(lambda: app.status is not None or app.failure, 60, "the first snapshot")
        assert app.failure is None, app.failure
        yield app, pilot


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def user_dirs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Private user folders for this process and every engine it spawns."""
    root = tmp_path_factory.mktemp("xdg")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_DATA_HOME", str(root / "data"))
        mp.setenv("XDG_CONFIG_HOME", str(root / "config"))
        yield root


@pytest.fixture(scope="module")
def shared_engine(jack_server: str, user_dirs: Path) -> Iterator[EngineHandle]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(CLIENT_NAME_ENV, SHARED)  # read by the child when it is spawned
        engine = start_engine(OPTS)
    try:
        yield engine
    finally:
        stop_draining(engine)


@pytest.fixture
def own_engine(jack_server: str, user_dirs: Path, monkeypatch: pytest.MonkeyPatch,
               request: pytest.FixtureRequest) -> str:
    """The JACK client name of an engine the test's panel starts and ends itself."""
    name = f"{OWN}-{request.node.name[5:15]}"
    monkeypatch.setenv(CLIENT_NAME_ENV, name)
    return name


def _settled(engine: EngineHandle, chorale: Settings) -> bool:
    status = engine.latest()
    return bool(status and status.preset == chorale.name and status.recording is None
                and status.learning is None and status.settings == chorale)


@pytest.fixture
def engine(shared_engine: EngineHandle) -> EngineHandle:
    """The shared engine, back to the chorale preset, not recording or learning, after a panic
    (the voices may go on playing by themselves afterwards)."""
    chorale = load_preset(find_preset("chorale"))
    shared_engine.send(ControlMessage("record", value=False))
    shared_engine.send(ControlMessage("learn", None))
    shared_engine.send(ControlMessage("settings", value=chorale))
    shared_engine.send(ControlMessage("panic"))
    wait_for(lambda: _settled(shared_engine, chorale) or not shared_engine.alive, 20,
             "the shared engine to reset")
    assert shared_engine.alive, "the shared engine died"
    return shared_engine


@pytest.fixture
def tester(jack_client: Callable[[str], JackTestClient],
           request: pytest.FixtureRequest) -> JackTestClient:
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


# --------------------------------------------------------------------------- the shared engine


def test_panic_sends_note_offs_the_client_receives(engine: EngineHandle, tester: JackTestClient,
                                                   listen: Callable[[str], Listener]) -> None:
    listener = listen(SHARED)

    async def scenario() -> None:
        async with panel(lambda: engine) as (app, pilot):
            await sound_voices(app, tester, listener, hold=False)
            before = len(listener.messages())
            assert left_sounding(listener.messages()), "nothing was sounding"
            await pilot.press("x")
            await until(lambda: {1, 2, 3, 4} <= channels_with_cc(listener.messages()[before:],
                                                                  120),
                        what="the panic's CC120 on every channel")
            got = listener.messages()
            first_cc = next(i for i in range(before, len(got))
                            if got[i][0] & 0xF0 == 0xB0 and got[i][1] == 64)
            assert left_sounding(got[:first_cc]) == set(), "a note got no explicit note-off"
            after = got[first_cc:]
            assert {1, 2, 3, 4} <= channels_with_cc(after, 64) & channels_with_cc(after, 123)
            assert any(m[0] & 0xF0 == 0x80 for m in got[before:first_cc])

    run(scenario())


def test_preset_switch_mid_note_leaves_nothing_hanging(engine: EngineHandle,
                                                       tester: JackTestClient,
                                                       listen: Callable[[str], Listener]
                                                       ) -> None:
    listener = listen(SHARED)

    def ended(messages: list[bytes]) -> set[tuple[int, int]]:
        return {((m[0] & 15) + 1, m[1]) for m in messages
                if m[0] & 0xF0 == 0x80 or (m[0] & 0xF0 == 0x90 and m[2] == 0)}

    async def scenario() -> None:
        async with panel(lambda: engine) as (app, pilot):
            held = await sound_voices(app, tester, listener, hold=True)
            before = listener.messages()
            hanging = left_sounding(before, VOICE_CHANNELS)
            assert hanging, "no voice was sounding before the switch"
            await pick(app, pilot, "counterpoint")
            await until(lambda: app.status.preset == "counterpoint", what="the switch")
            tester.send([0x80, held, 0])
            await until(lambda: hanging <= ended(listener.messages()[len(before):]), 10,
                        f"note-offs for {hanging}; the engine has {app.status.sounding}")
            await until(lambda: left_sounding(listener.messages(), {2, 4}) == set(), 10,
                        "alto and bass to be off")
            assert any("counterpoint" in text for text in app.shown_messages)

    run(scenario())


def test_midi_learn_binds_a_real_cc_that_then_moves_the_control(engine: EngineHandle,
                                                                tester: JackTestClient) -> None:
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
            await until(lambda: "cc21" in str(app.panel.render()), what="cc21 in the panel")

    run(scenario())


def test_recording_holds_what_the_client_received(engine: EngineHandle, tester: JackTestClient,
                                                  listen: Callable[[str], Listener],
                                                  user_dirs: Path) -> None:
    listener = listen(SHARED)

    async def scenario() -> None:
        async with panel(lambda: engine) as (app, pilot):
            await pilot.press("r")
            await until(lambda: app.status.recording, what="recording on")
            path = Path(app.status.recording)
            assert path.is_relative_to(user_dirs)
            start = len(listener.messages())
            seen = max((e.serial for e in app.status.recent), default=0)
            sent: list[int] = []
            deadline = time.monotonic() + 30
            while len(sent) < 6 or sum(len(note_ons(listener.messages()[start:], ch))
                                       for ch in VOICE_CHANNELS) < 3:
                assert time.monotonic() < deadline, "the voices did not play"
                pitch = MELODY[len(sent) % len(MELODY)]
                tester.send([0x90, pitch, 90])
                sent.append(pitch)
                await asyncio.sleep(0.4)  # paces the melody
                tester.send([0x80, pitch, 0])
            await pilot.press("r")
            await until(lambda: app.status.recording is None, what="recording off")
            await until(lambda: any("recording saved" in t for t in app.shown_messages),
                        what="the recording saved")
            recorded = {track.name: [m for m in track if m.type == "note_on" and m.velocity]
                        for track in mido.MidiFile(path).tracks}
            # the human part holds every note the engine took (its piano roll says which: on a
            # loaded machine JACK may lose a note of a client that missed its cycle)
            took = [e.pitch for e in app.status.recent if e.voice == HUMAN and e.serial > seen]
            assert [m.note for m in recorded["human"]] == took, (
                f"sent {sent}, the engine took {took}; drops: {app.status.drops}")
            assert len(took) >= 3 and is_subsequence(took, sent), (sent, took)
            voices = {name: [m.note for m in recorded[name]] for name in ("alto", "tenor", "bass")}
            for name, channel in zip(voices, VOICE_CHANNELS, strict=True):
                assert all(m.channel == channel - 1 for m in recorded[name])
            assert sum(len(notes) for notes in voices.values()) >= 3

            def heard_all() -> bool:  # the listener may lag the file a little
                received = listener.messages()
                return all(any(heard[i:i + len(got)] == got for i in range(len(heard) + 1))
                           for got, heard in ((voices[name], note_ons(received, channel))
                                              for name, channel in zip(voices, VOICE_CHANNELS,
                                                                       strict=True)))

            await until(heard_all, 10, f"the client to have heard what was recorded: {voices}")

    run(scenario())


# ------------------------------------------------------------------ engines of their own


def test_q_stops_its_own_engine_and_every_note_ends(own_engine: str, tester: JackTestClient,
                                                    listen: Callable[[str], Listener]) -> None:
    async def scenario() -> None:
        async with panel(lambda: start_engine(OPTS), own=True) as (app, _):
            engine = app.engine
            assert engine is not None
            hearing = listen(own_engine)
            await sound_voices(app, tester, hearing, hold=True)
            app.simulate_key("q")  # not pilot.press: it would wait on a screen that closes
            await until(lambda: not engine.alive, 30, "the engine to stop")
            await until(lambda: app.return_code is not None, 10, "the app to end")
        assert app.return_code == 0
        assert isinstance(engine, EngineProcess) and engine.proc.exitcode == 0
        await until(lambda: set(VOICE_CHANNELS) <= channels_with_cc(hearing.messages(), 123),
                    10, "the engine's CC123")
        assert left_sounding(hearing.messages()) == set()

    run(scenario())


def test_engine_death_is_shown_and_its_notes_resolved(own_engine: str, tester: JackTestClient,
                                                      listen: Callable[[str], Listener]) -> None:
    async def scenario() -> None:
        async with panel(lambda: start_engine(OPTS), own=True) as (app, _):
            engine = app.engine
            assert isinstance(engine, EngineProcess)
            listening = listen(own_engine)
            await sound_voices(app, tester, listening, hold=True)
            connections = app.connections
            assert connections is not None
            await until(lambda: any(tester.name in d for dests in connections.seen.values()
                                    for d in dests), 10, "the connections to be read")
            assert left_sounding(listening.messages())
            os.kill(engine.proc.pid, signal.SIGKILL)
            await until(lambda: app.rescue is not None, 30, "the rescue")
            assert app.banner.display and "ENGINE STOPPED" in str(app.banner.render())
            assert app.failure is not None and "SIGKILL" in app.failure
            assert app.rescue.startswith("sent"), app.rescue
            await until(lambda: not left_sounding(listening.messages()), 10,
                        f"every note to end after {app.rescue!r}")
            assert {2, 3, 4} <= channels_with_cc(listening.messages(), 120)
            app.simulate_key("q")
            await until(lambda: app.return_code is not None, 10, "the app to end")
        assert app.return_code == 1

    run(scenario())
