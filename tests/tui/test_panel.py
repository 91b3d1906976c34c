"""The control panel's own logic, headless (App.run_test and Pilot), against `FakeEngine`: no
engine process, no model, no JACK, so each test takes a fraction of a second. What the panel
sends is read from the fake's `received` list; what the panel shows comes from the fake's
snapshots through the real poller. The panel's pure parts are here too. The tests that need
the real engine and a MIDI listener are in test_app.py.

The panel's own MIDI parts (the connection watcher and the rescue of a dead engine's notes)
are replaced by stand-ins, so the rescue is checked as far as the panel goes: it is asked with
the last snapshot and the lost destinations, and its answer is shown.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator, Coroutine
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

import livegen.tui.app as app_module
from livegen import paths
from livegen.controls import CONTROLS, ControlMessage, step_value
from livegen.midi import ports
from livegen.midi.rescue import parse_alsa_connections, release_messages
from livegen.presets import PresetError, find_preset, load_preset
from livegen.process import EngineError
from livegen.session import LiveOptions
from livegen.settings import Settings
from livegen.status import Status, VoiceState
from livegen.tui import KEYMAP, LivegenApp
from livegen.tui.keymap import next_key_lock
from livegen.tui.screens import HelpScreen, PromptScreen
from tests.fakes import FakeEngine
from tests.helpers import left_sounding, pick, until

OPTS = LiveOptions(input=None, output=None, midi_api="jack", seed=1)

pytestmark = pytest.mark.timeout(60)


# --------------------------------------------------------------------------- stand-ins


class FakeConnections:
    """Stands in for `livegen.midi.rescue.OutputConnections`: where the engine's output went."""

    def __init__(self, api: int, interval: float = 1.5) -> None:
        self.api = api
        self.seen: dict[str, list[str]] = {"lgtest:livegen out": ["synth:in"]}
        self.started = self.stopped = False

    def start(self) -> None:
        self.started = True

    def stop(self) -> None:
        self.stopped = True

    def lost_destinations(self, timeout: float = 2.0) -> list[str]:
        self.stop()
        return ["synth:in"]


class RescueSpy:
    """Stands in for `livegen.midi.rescue.resolve_orphaned_notes`; remembers its calls."""

    ANSWER = "sent 2 note-offs and CC64/123/120 on channels 1-4 to synth:in"

    def __init__(self) -> None:
        self.calls: list[tuple[Status | None, int, list[str]]] = []

    def __call__(self, status: Status | None, api: int, destinations: list[str]) -> str:
        self.calls.append((status, api, list(destinations)))
        return self.ANSWER


@pytest.fixture(autouse=True)
def user_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Private user folders (platformdirs honours XDG_* on Linux)."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    return tmp_path


@pytest.fixture(autouse=True)
def rescue(monkeypatch: pytest.MonkeyPatch) -> RescueSpy:
    """No MIDI system in these tests: the panel's connection watcher and rescue are stand-ins."""
    spy = RescueSpy()
    monkeypatch.setattr(ports, "resolve_api", lambda choice="auto": 0)
    monkeypatch.setattr(app_module, "OutputConnections", FakeConnections)
    monkeypatch.setattr(app_module, "resolve_orphaned_notes", spy)
    return spy


@pytest.fixture
def chorale() -> Settings:
    return load_preset(find_preset("chorale"))


@pytest.fixture
def engine(chorale: Settings) -> FakeEngine:
    return FakeEngine(chorale)


# --------------------------------------------------------------------------- helpers


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(asyncio.wait_for(coro, timeout=45))


@contextlib.asynccontextmanager
async def panel(engine: FakeEngine, own: bool = True, size: tuple[int, int] = (80, 24)
                ) -> AsyncIterator[tuple[LivegenApp, Pilot[int]]]:
    app = LivegenApp(lambda: engine, OPTS, own_engine=own)
    async with app.run_test(size=size) as pilot:
        await until(lambda: app.status is not None, 10, "the first snapshot")
        yield app, pilot


async def received(engine: FakeEngine, count: int) -> list[ControlMessage]:
    """The messages the engine received, once there are `count` of them."""
    await until(lambda: len(engine.received) >= count, 5, f"{count} control messages")
    return engine.received


async def shown(app: LivegenApp, text: str) -> str:
    """The first message the panel showed that contains `text`, once it is shown."""
    return await until(lambda: next((t for t in app.shown_messages if text in t), None), 5,
                       f"a message with {text!r}; shown: {app.shown_messages}")


def keyed(control: str) -> tuple[str, str]:
    keys = next(c.keys for c in CONTROLS if c.name == control)
    assert keys is not None
    return keys


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
    assert left_sounding([[0x91, 64, 90], [0x93, 48, 90], *messages]) == set()
    _, every = release_messages(None)
    assert every == list(range(1, 17))


def test_alsa_connection_listing_is_read() -> None:
    alsa = ('Client 128 : "livegen" [User Legacy]\n  Port   0 : "livegen in" (-We-)\n'
            "    Connected From: 20:0\n  Port   1 : \"livegen out\" (R-e-)\n"
            "    Connecting To: 129:0, 130:0[real:0]\n"
            'Client 129 : "FLUID Synth (1)" [User Legacy]\n  Port   0 : "Synth input" (-We-)\n'
            "    Connected From: 128:1\n")
    assert parse_alsa_connections(alsa) == {"128:1": ["129:0", "130:0"]}


# --------------------------------------------------------------------------- controls


def test_every_control_key_sends_its_step_to_the_engine(engine: FakeEngine) -> None:
    async def scenario() -> None:
        async with panel(engine) as (app, pilot):
            for control in CONTROLS:
                for keys, times in ((control.keys, 1), (control.big_keys, 5)):
                    if keys is None:
                        continue
                    for key, sign in zip(keys, (-1, 1), strict=True):
                        want = step_value(engine.settings, control.name, sign * times)
                        count = len(engine.received)
                        await pilot.press(key)
                        got = (await received(engine, count + 1))[-1]
                        assert got == ControlMessage("set", control.name, want), key
            # the panel shows what the engine reports
            final = engine.settings
            await until(lambda: app.status.settings == final, what="the final snapshot")
            assert app.settings == final

    run(scenario())


def test_temperature_takeover_and_voice_toggles(engine: FakeEngine, chorale: Settings) -> None:
    start = chorale.sampling.temperature

    async def scenario() -> None:
        async with panel(engine) as (app, pilot):
            down, up = keyed("temperature")
            await pilot.press(up, up, down)
            assert app.panel.control == "temperature"  # selected at start: → steps it too
            await pilot.press("right")
            await received(engine, 4)
            assert [m.value for m in engine.sent("set")] == pytest.approx(
                [start + 0.05, start + 0.1, start + 0.05, start + 0.1])
            await pilot.press("o", "1")  # takeover on, then voice 1 (alto) off
            got = await received(engine, 6)
            assert got[4:] == [ControlMessage("set", "takeover", True),
                               ControlMessage("set", "voice.alto", False)]
            await until(lambda: app.status.settings.takeover.enabled
                        and not app.status.settings.voices[0].enabled
                        and app.status.settings.sampling.temperature
                        == pytest.approx(start + 0.1), what="the engine's snapshot")
            assert "off" in str(app.panel.render()).split("alto")[1].splitlines()[0]
            await pilot.press("9")  # the chorale has three voices
            await shown(app, "there is no voice 9")
            assert len(engine.received) == 6
            await pilot.press("1", "o")
            got = await received(engine, 8)
            assert got[6:] == [ControlMessage("set", "voice.alto", True),
                               ControlMessage("set", "takeover", False)]

    run(scenario())


def test_selection_space_enter_and_key_lock(engine: FakeEngine, chorale: Settings) -> None:
    async def scenario() -> None:
        async with panel(engine) as (app, pilot):
            # down to the key lock: space cycles it through the detected key
            while app.panel.control != "key_lock":
                await pilot.press("down")
            lock = chorale.sampling.key_lock
            await pilot.press("space")
            got = await received(engine, 1)
            assert got[-1] == ControlMessage("set", "key_lock",
                                             next_key_lock(lock, engine.latest().key))
            # K asks for a key by name
            await pilot.press("K")
            await until(lambda: isinstance(app.screen, PromptScreen), what="the key prompt")
            app.screen.query_one("Input").value = "F#m"  # type: ignore[attr-defined]
            await pilot.press("enter")
            got = await received(engine, 2)
            assert got[-1] == ControlMessage("set", "key_lock", "F# minor")
            # up to the temperature: Enter asks for a number
            while app.panel.control != "temperature":
                await pilot.press("up")
            await pilot.press("enter")
            await until(lambda: isinstance(app.screen, PromptScreen), what="the value prompt")
            app.screen.query_one("Input").value = "7"  # type: ignore[attr-defined]
            await pilot.press("enter")
            got = await received(engine, 3)
            assert got[-1] == ControlMessage("set", "temperature", 2.0)  # clamped to its span
            await pilot.press("enter")
            await until(lambda: isinstance(app.screen, PromptScreen), what="the value prompt")
            app.screen.query_one("Input").value = "warm"  # type: ignore[attr-defined]
            await pilot.press("enter")
            await shown(app, "'warm' is not a number")
            assert len(engine.received) == 3

    run(scenario())


def test_panic_and_record_toggle(engine: FakeEngine) -> None:
    engine.sound([(2, 64), (3, 57), (4, 48)])

    async def scenario() -> None:
        async with panel(engine) as (app, pilot):
            assert app.status.sounding == [(2, 64), (3, 57), (4, 48)]
            await pilot.press("x")
            assert (await received(engine, 1)) == [ControlMessage("panic")]
            await shown(app, "panic: every note off")
            await until(lambda: app.status.sounding == [], what="nothing sounding")
            await pilot.press("r")
            assert (await received(engine, 2))[-1] == ControlMessage("record", value=True)
            await until(lambda: app.status.recording, what="recording on")
            assert "REC" in str(app.status_lines.render())
            await shown(app, "recording to ")
            await pilot.press("r")
            assert (await received(engine, 3))[-1] == ControlMessage("record", value=False)
            await until(lambda: app.status.recording is None, what="recording off")
            assert "saved: /fake/recordings/livegen-take-1.mid" in await shown(app, "saved")
            assert "REC" not in str(app.status_lines.render())

    run(scenario())


def test_midi_learn_binds_a_knob_and_the_binding_is_saved(engine: FakeEngine) -> None:
    async def scenario() -> None:
        async with panel(engine) as (app, pilot):
            assert app.panel.control == "temperature"
            await pilot.press("l")
            assert (await received(engine, 1)) == [ControlMessage("learn", "temperature")]
            await until(lambda: app.status.learning == "temperature", what="learning")
            assert "learn…" in str(app.panel.render())
            assert "LEARN temperature" in str(app.status_lines.render())
            engine.knob(21, 64)  # the knob the player moves
            await until(lambda: app.status.learn.get(21) == "temperature", what="the bind")
            assert app.status.learning is None and 74 not in app.status.learn
            await shown(app, "CC 21 now drives temperature")
            await until(lambda: "cc21" in str(app.panel.render()), what="cc21 in the panel")
            engine.knob(21, 0)
            await until(lambda: app.status.settings.sampling.temperature
                        == pytest.approx(0.1), what="the knob at 0")
            # Esc cancels a learn
            await pilot.press("l")
            await until(lambda: app.status.learning == "temperature", what="learning again")
            await pilot.press("escape")
            assert engine.received[-1] == ControlMessage("learn", None)
            await shown(app, "MIDI learn cancelled")
            await until(lambda: app.status.learning is None, what="the learn cancelled")
            # the key lock cannot be learned: the panel says so and sends nothing
            while app.panel.control != "key_lock":
                await pilot.press("down")
            count = len(engine.received)
            await pilot.press("l")
            await shown(app, "key lock cannot be MIDI-learned")
            assert len(engine.received) == count
            # `s` saves the settings with the learn map as a user preset
            await pilot.press("s")
            await until(lambda: isinstance(app.screen, PromptScreen), what="the name prompt")
            app.screen.query_one("Input").value = ""  # type: ignore[attr-defined]
            await pilot.press(*"learned", "enter")
            saved = paths.user_presets() / "learned.toml"
            await until(saved.exists, what="the saved preset")
            assert load_preset(saved).learn[21] == "temperature"

    run(scenario())


# --------------------------------------------------------------------------- presets


def test_preset_switch_sends_the_settings(engine: FakeEngine) -> None:
    counterpoint = load_preset(find_preset("counterpoint"))

    async def scenario() -> None:
        async with panel(engine) as (app, pilot):
            await pick(app, pilot, "counterpoint")
            got = await received(engine, 1)
            assert got == [ControlMessage("settings", value=counterpoint)]  # the same model
            await shown(app, "preset 'counterpoint' loaded")
            await until(lambda: app.status.preset == "counterpoint", what="the switch")
            assert "counterpoint" in str(app.status_lines.render())

    run(scenario())


def test_bad_preset_shows_its_error_and_the_old_one_stays(engine: FakeEngine) -> None:
    folder = paths.user_presets()
    folder.mkdir(parents=True)
    bad = folder / "broken.toml"
    bad.write_text('name = "broken"\n[sampling]\ntemperature = 9.0\n')
    with pytest.raises(PresetError) as error:
        load_preset(bad)
    assert "broken.toml:3:" in str(error.value)

    async def scenario() -> None:
        async with panel(engine) as (app, pilot):
            await pick(app, pilot, "broken")
            text = await shown(app, str(error.value))
            assert "'chorale' stays active" in text
            assert engine.received == []  # the engine never saw it
            assert app.settings.name == "chorale" and app.status.preset == "chorale"

    run(scenario())


# --------------------------------------------------------------------------- screen, quitting


def test_layout_fits_80x24_help_and_q_stops_the_engine(engine: FakeEngine) -> None:
    async def scenario() -> None:
        async with panel(engine, own=True) as (app, pilot):
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
            await pilot.press("q")  # closes help, does not quit
            await until(lambda: not isinstance(app.screen, HelpScreen), what="help to close")
            assert engine.alive
            app.simulate_key("q")  # not pilot.press: it would wait on a screen that closes
            await until(lambda: app.return_code is not None, 10, "the app to end")
        assert app.return_code == 0
        assert engine.stop_calls == 1 and not engine.alive

    run(scenario())


def test_a_shared_engine_is_not_stopped_on_quit(engine: FakeEngine) -> None:
    async def scenario() -> None:
        async with panel(engine, own=False) as (app, _):
            app.simulate_key("q")
            await until(lambda: app.return_code is not None, 10, "the app to end")
        assert app.return_code == 0
        assert engine.stop_calls == 0 and engine.alive

    run(scenario())


@pytest.mark.parametrize(("error", "exitcode", "log", "reason"), [
    (None, -signal.SIGKILL, None, "killed by SIGKILL"),
    ("the output port failed", 1, None, "the output port failed"),
    (None, 1, "MemoryError", "status 1 (its log /fake/logs/engine.log ends: MemoryError"),
])
def test_engine_death_shows_the_banner_and_rescues_its_notes(
        engine: FakeEngine, rescue: RescueSpy, error: str | None, exitcode: int,
        log: str | None, reason: str) -> None:
    async def scenario() -> None:
        async with panel(engine, own=True) as (app, pilot):
            assert not app.banner.display
            engine.sound([(2, 64), (4, 48)])
            await until(lambda: app.status.sounding == [(2, 64), (4, 48)], what="the notes")
            engine.die(error, exitcode, log)
            await until(lambda: app.rescue is not None, 10, "the rescue")
            assert reason in app.failure
            [(status, _, destinations)] = rescue.calls
            assert status is not None and status.sounding == [(2, 64), (4, 48)]
            assert destinations == ["synth:in"]
            banner = str(app.banner.render())
            assert app.banner.display and "ENGINE STOPPED" in banner and reason in banner
            assert RescueSpy.ANSWER in banner
            # controls now say the engine is gone instead of being sent
            await pilot.press("x")
            await shown(app, "the engine is not running")
            assert engine.received == []
            app.simulate_key("q")
            await until(lambda: app.return_code is not None, 10, "the app to end")
        assert app.return_code == 1
        assert engine.stop_calls == 0  # a dead engine is not stopped again

    run(scenario())


def test_an_engine_that_cannot_start_shows_why() -> None:
    def fail() -> FakeEngine:
        raise EngineError("no model file at /nowhere/chorale.pt")

    async def scenario() -> None:
        app = LivegenApp(fail, OPTS)
        async with app.run_test(size=(80, 24)) as pilot:
            await until(lambda: app.failure is not None, 10, "the failure")
            assert "THE ENGINE COULD NOT START" in str(app.banner.render())
            assert "/nowhere/chorale.pt" in app.failure
            await pilot.press("x")
            await shown(app, "the engine is not running")
            app.simulate_key("q")
            await until(lambda: app.return_code is not None, 10, "the app to end")
        assert app.return_code == 1

    run(scenario())

