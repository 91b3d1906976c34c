"""The control panel (docs/ARCHITECTURE.md, "Processes"): a Textual app that watches and steers
the engine process.

Layout (fits 80×24): three status lines (transport, clock, tempo, bar:beat, key, preset; ports,
recording, takeover, MIDI learn; latency p50/p99 and drop counters), a scrolling piano roll of
the human part and each voice in its own colour and letter (left), the live controls with their
learned CCs (right), the engine's messages, and a line of key hints. `?` or F1 lists every key
(`KEYMAP`, also the README's table).

The engine runs in its own process (`livegen.process.EngineProcess`). A poller thread
calls `latest()` about 100 times a second, gathers the piano-roll events (`recent`) of every
snapshot it sees and hands the newest snapshot to the UI with `post_message` about 15 times a
second, so the UI never blocks and the engine never waits for the UI. Controls go to the engine
with `send`; a value change is computed from the settings of the latest snapshot, shown at once
and confirmed by the next snapshots. Presets are read in this process with `load_preset`, so a
bad file shows its one-sentence error here and the engine never sees it: the running preset
stays active. Quitting (q, Ctrl-C, SIGTERM or SIGHUP with `run_tui`) sends `quit`; the engine
resolves its notes itself (note-offs, CC64=0, CC123, CC120) and ends.

When the engine process dies (it exits, is killed, or reports an error), the panel says why in
a red banner (with the last line of the engine's log) and resolves the notes the engine left
sounding from a MIDI client of its own: `livegen.midi.rescue` says how and why. Quitting never
waits more than about a second: a hung engine is killed and its notes resolved the same way.

The poller goes on reading snapshots while the engine stops: a child whose snapshot pipe is
full cannot exit (its queue's feeder thread waits for a reader).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from multiprocessing import resource_tracker
from pathlib import Path
from typing import Any

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import ModalScreen
from textual.widgets import Static

from livegen import paths
from livegen.controls import (
    BY_NAME,
    CONTROLS,
    NUMERIC,
    VOICE_PREFIX,
    ControlMessage,
    apply_control,
    current,
    format_value,
    label,
    step_value,
)
from livegen.midi import ports
from livegen.midi.rescue import OutputConnections, resolve_orphaned_notes
from livegen.presets import (
    PresetError,
    learnable_controls,
    list_presets,
    load_preset,
    save_preset,
)
from livegen.session import LiveOptions
from livegen.settings import Settings
from livegen.status import Status
from livegen.tonality import key_name, parse_key
from livegen.tui.keymap import (
    HINTS,
    PRESET_NAME,
    next_key_lock,
)
from livegen.tui.messages import (
    EngineDied,
    EngineFailed,
    EngineStarted,
    EngineStopped,
    Rescued,
    Snapshot,
)
from livegen.tui.poller import HOLD_S, EngineHandle, Poller, start_engine
from livegen.tui.screens import HelpScreen, PickScreen, PromptScreen
from livegen.tui.widgets import ControlPanel, MessageLog, PianoRoll, StatusLines


class LivegenApp(App[int]):
    """The control panel. `engine_factory()` returns a started engine (see `start_engine`); it
    runs in a thread so the panel shows at once. With `own_engine` the panel stops the engine
    when it quits; tests that share one engine pass False."""

    TITLE = "livegen"
    ENABLE_COMMAND_PALETTE = False
    CSS = """
    Screen { layout: vertical; }
    #banner { height: auto; display: none; background: $error; color: $text;
        text-style: bold; padding: 0 1; }
    #status { height: 3; }
    #middle { height: 1fr; min-height: 6; }
    #roll { width: 1fr; border: round $primary; }
    #controls { width: 32; border: round $secondary; }
    #messages { height: 4; }
    #hints { height: 1; background: $panel; color: $text-muted; }
    """
    BINDINGS = [
        Binding("question_mark,f1", "help", "help"),
        Binding("q", "quit", "quit"),
        Binding("ctrl+c", "force_quit", "quit", priority=True),
        Binding("ctrl+q", "force_quit", "quit", priority=True),
        Binding("up", "select(-1)", "select"),
        Binding("down", "select(1)", "select"),
        Binding("left,minus", "change(-1)", "less"),
        Binding("right,plus,equals_sign", "change(1)", "more"),
        Binding("shift+left", "change(-5)", "much less"),
        Binding("shift+right", "change(5)", "much more"),
        Binding("enter", "edit", "edit"),
        Binding("space", "flip", "flip"),
        Binding("l", "learn", "learn"),
        Binding("escape", "cancel_learn", "cancel learn"),
        *[Binding(key, f"nudge('{c.name}', {sign * times})", f"{c.label} {'-+'[sign > 0]}")
          for c in CONTROLS
          for keys, times in ((c.keys, 1), (c.big_keys, 5)) if keys
          for key, sign in zip(keys, (-1, 1), strict=True)],
        *[Binding(str(n), f"voice({n})", f"voice {n}") for n in range(1, 10)],
        Binding("k", "key_cycle", "key lock"),
        Binding("K", "key_type", "fixed key"),
        Binding("o", "toggle('takeover')", "takeover"),
        Binding("p", "presets", "presets"),
        Binding("s", "save", "save preset"),
        Binding("m", "model", "model"),
        Binding("r", "record", "record"),
        Binding("x", "panic", "panic"),
        Binding("g", "transport", "start/stop"),
    ]

    def __init__(self, engine_factory: Callable[[], EngineHandle],
                 opts: LiveOptions | None = None, *, own_engine: bool = True,
                 handle_signals: bool = False):
        super().__init__()
        # A spawned child needs multiprocessing's resource tracker, which is started with this
        # process's stderr; while the app runs, stderr is Textual's capture (no file
        # descriptor), so the tracker is started now, before the app runs.
        resource_tracker.ensure_running()
        self.engine_factory = engine_factory
        self.opts = opts or LiveOptions()
        self.own_engine = own_engine
        self.handle_signals = handle_signals
        self.engine: EngineHandle | None = None
        self.status: Status | None = None
        self.settings: Settings | None = None
        self.failure: str | None = None  # the engine could not start, or died
        self.rescue: str | None = None  # what was done about the notes of a dead engine
        self.shown_messages: list[str] = []
        self.port_names: dict[str, str] = {}
        self.connections: OutputConnections | None = None
        self._poller: Poller | None = None
        self.starter: threading.Thread | None = None
        self._hold_until = 0.0
        self._seen_serial = 0
        self._quitting = False
        self._model: str | None = None
        # widgets, kept so that a snapshot updates them while a dialog is on top
        self.banner = Static(id="banner")
        self.status_lines = StatusLines(id="status")
        self.roll = PianoRoll(id="roll")
        self.panel = ControlPanel(id="controls")
        self.log_view = MessageLog(id="messages")

    # --------------------------------------------------------------------- set-up, teardown

    def compose(self) -> ComposeResult:
        yield self.banner
        yield self.status_lines
        with Horizontal(id="middle"):
            yield self.roll
            yield self.panel
        yield self.log_view
        yield Static(HINTS, id="hints")

    def on_mount(self) -> None:
        self.roll.border_title = "piano roll"
        self.panel.border_title = "controls"
        self.status_lines.show(None, {}, None, None)
        if self.handle_signals:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGHUP):
                with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                    loop.add_signal_handler(sig, self.action_force_quit)
        self.starter = threading.Thread(target=self._start_engine, name="livegen-start",
                                         daemon=True)
        self.starter.start()

    def _start_engine(self) -> None:
        try:
            engine = self.engine_factory()
        except Exception as exc:  # EngineError, a bad preset or port: one sentence
            self.post_message(EngineFailed(str(exc) or type(exc).__name__))
            return
        if self._quitting:  # the user quit while it started
            if self.own_engine:
                engine.stop()
            return
        self.post_message(EngineStarted(engine))

    def on_engine_started(self, message: EngineStarted) -> None:
        engine = self.engine = message.engine
        info = getattr(engine, "info", {}) or {}
        for entry in info.get("ports", ()):
            direction, _, name = str(entry).partition(" ")
            self.port_names["in" if direction == "input" else "out"] = name
        self.roll.set_voices(list(info.get("voices", ())))
        self.roll.border_subtitle = self.roll.legend()
        self._model = self.opts.model
        try:
            self.connections = OutputConnections(ports.resolve_api(self.opts.midi_api))
            self.connections.start()
        except ports.PortError:
            self.connections = None
        self._poller = Poller(self, engine)
        self._poller.start()
        names = " and ".join(f"{side} {name}" for side, name in self.port_names.items())
        self._say(f"engine running ({names}); ? lists the keys")

    def on_engine_failed(self, message: EngineFailed) -> None:
        self.failure = message.reason
        self._banner(f"THE ENGINE COULD NOT START: {message.reason}\nPress q to quit.")
        self._say(message.reason, "bold red")

    def on_unmount(self) -> None:
        engine = self.engine
        if engine is not None and self.own_engine and engine.alive:
            engine.stop()  # the app ended without quitting (an error): the notes still end
        if self._poller is not None:
            self._poller.halt.set()
        if self.connections is not None:
            self.connections.stop()

    # --------------------------------------------------------------------------- snapshots

    def on_snapshot(self, message: Snapshot) -> None:
        s = message.status
        self.status = s
        if time.monotonic() >= self._hold_until or self.settings is None:
            self.settings = s.settings
        for serial, text in s.messages:
            if serial > self._seen_serial:
                self._seen_serial = serial
                self._say(text)
        self.roll.add(s, message.recent)
        self._refresh()

    def _refresh(self) -> None:
        s = self.status
        learning = s.learning if s else None
        self.status_lines.show(s, self.port_names, learning, None)
        voices = [v.name for v in s.voices] if s else []
        self.panel.set_state(self.settings, voices, s.learn if s else {}, learning)

    def _say(self, text: str, style: str = "") -> None:
        self.shown_messages.append(text)
        self.log_view.add(text, style)

    def _banner(self, text: str) -> None:
        self.banner.update(Text(text))
        self.banner.display = True

    # --------------------------------------------------------------------------- death

    def on_engine_died(self, message: EngineDied) -> None:
        if self._quitting:  # stopped on purpose
            return
        self.failure = message.reason
        self._banner(f"ENGINE STOPPED: {message.reason}. Resolving its notes…")
        self._say(f"engine stopped: {message.reason}", "bold red")
        status, connections = self.status, self.connections
        api_choice = self.opts.midi_api
        named = self.opts.output

        def rescue() -> None:
            try:
                api = ports.resolve_api(api_choice)
                destinations = connections.lost_destinations() if connections else []
                if named:
                    destinations.append(named)
                text = resolve_orphaned_notes(status, api, destinations)
            except Exception as exc:  # never let the rescue take the panel down
                text = f"could not resolve the notes: {exc}"
            self.post_message(Rescued(text))

        threading.Thread(target=rescue, name="livegen-rescue", daemon=True).start()

    def on_rescued(self, message: Rescued) -> None:
        self.rescue = message.text
        self._banner(f"ENGINE STOPPED: {self.failure}.\nNotes: {message.text}. Press q to quit.")
        self._say(f"notes of the stopped engine: {message.text}", "bold red")

    def _engine_ok(self) -> bool:
        if self.engine is None or self.failure is not None:
            self._say("the engine is not running" if self.engine or self.failure
                      else "the engine is still starting", "yellow")
            return False
        return True

    # --------------------------------------------------------------------------- quitting

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "force_quit":
            return True
        return not isinstance(self.screen, ModalScreen)

    async def action_quit(self) -> None:
        self.action_force_quit()

    def action_force_quit(self) -> None:
        if self._quitting:
            return
        self._quitting = True
        engine = self.engine  # the poller keeps reading while it stops (module docstring)
        if engine is not None and self.own_engine and engine.alive:
            self._say("stopping the engine: every note is being ended…")

            connections, status = self.connections, self.status

            def stop() -> None:
                try:
                    if engine.stop() == -signal.SIGKILL:  # hung: its notes are the panel's job
                        api = ports.resolve_api(self.opts.midi_api)
                        lost = connections.lost_destinations(0.5) if connections else []
                        self.rescue = resolve_orphaned_notes(
                            status, api, lost + ([self.opts.output] if self.opts.output else []))
                except Exception as exc:  # quitting must not fail
                    self.rescue = f"could not resolve the notes: {exc}"
                finally:
                    self.post_message(EngineStopped())

            threading.Thread(target=stop, name="livegen-stop", daemon=True).start()
        else:
            self.post_message(EngineStopped())

    def on_engine_stopped(self, message: EngineStopped) -> None:
        code = 1 if self.failure else 0
        self.exit(code, return_code=code)

    # --------------------------------------------------------------------------- controls

    def _set(self, control: str, value: Any) -> None:
        if not self._engine_ok() or self.settings is None:
            return
        self.engine.send(ControlMessage("set", control, value))  # type: ignore[union-attr]
        self.settings = apply_control(self.settings, control, value)
        self._hold_until = time.monotonic() + HOLD_S
        self._refresh()

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_select(self, delta: int) -> None:
        panel = self.panel
        panel.selected = (panel.selected + delta) % len(panel.controls)
        panel.refresh()

    def action_change(self, steps: int) -> None:
        control = self.panel.control
        if control in NUMERIC:
            self.action_nudge(control, steps)
        elif control == "key_lock":
            self.action_key_cycle()
        else:
            self.action_toggle(control)

    def action_nudge(self, control: str, steps: int) -> None:
        if self.settings is not None:
            self._set(control, step_value(self.settings, control, steps))

    def action_toggle(self, control: str) -> None:
        if self.settings is not None:
            self._set(control, not bool(current(self.settings, control)))

    def action_flip(self) -> None:
        control = self.panel.control
        if control == "key_lock":
            self.action_key_cycle()
        elif control not in NUMERIC:
            self.action_toggle(control)

    def action_edit(self) -> None:
        control = self.panel.control
        if control == "key_lock":
            self.action_key_type()
        elif control not in NUMERIC:
            self.action_toggle(control)
        elif self.settings is not None:
            lo, hi = BY_NAME[control].span
            value = format_value(self.settings, control).split()[0]
            self.push_screen(PromptScreen(f"{label(control)} ({lo:g} to {hi:g}):", value),
                             lambda text: self._typed_value(control, text))

    def _typed_value(self, control: str, text: str | None) -> None:
        if not text:
            return
        try:
            value = float(text)
        except ValueError:
            self._say(f"{text!r} is not a number", "yellow")
            return
        lo, hi = BY_NAME[control].span
        self._set(control, min(hi, max(lo, value)))

    def action_voice(self, n: int) -> None:
        voices = [v.name for v in self.status.voices] if self.status else []
        if not 1 <= n <= len(voices):
            self._say(f"there is no voice {n}", "yellow")
            return
        self.action_toggle(VOICE_PREFIX + voices[n - 1])

    def action_key_cycle(self) -> None:
        if self.settings is None:
            return
        detected = self.status.key if self.status else None
        new = next_key_lock(self.settings.sampling.key_lock, detected)
        if self.settings.sampling.key_lock == "auto" and new == "off":
            self._say("no key detected yet, so key lock goes off", "yellow")
        self._set("key_lock", new)

    def action_key_type(self) -> None:
        if self.settings is None:
            return
        self.push_screen(PromptScreen("Key lock: a key (G major, F# minor, Bb, Am), off or auto:",
                                      self.settings.sampling.key_lock), self._typed_key)

    def _typed_key(self, text: str | None) -> None:
        if not text:
            return
        if text.lower() in ("off", "auto"):
            self._set("key_lock", text.lower())
            return
        try:
            tonic, mode = parse_key(text)
        except ValueError as exc:
            self._say(str(exc), "yellow")
            return
        self._set("key_lock", key_name(tonic, mode))

    def action_learn(self) -> None:
        if not self._engine_ok() or self.settings is None:
            return
        control = self.panel.control
        allowed = learnable_controls(self.settings)
        if control not in allowed:
            self._say(f"{label(control)} cannot be MIDI-learned; these can: "
                      f"{', '.join(allowed)}", "yellow")
            return
        self.engine.send(ControlMessage("learn", control))  # type: ignore[union-attr]

    def action_cancel_learn(self) -> None:
        if self.engine is not None and self.status and self.status.learning:
            self.engine.send(ControlMessage("learn", None))
            self._say("MIDI learn cancelled")

    def action_transport(self) -> None:
        if self._engine_ok():
            self.engine.send(ControlMessage("transport", value="toggle"))  # type: ignore

    def action_panic(self) -> None:
        if self._engine_ok():
            self.engine.send(ControlMessage("panic"))  # type: ignore[union-attr]
            self._say("panic: every note off, sustain off, all notes off, all sound off")

    def action_record(self) -> None:
        if self._engine_ok() and self.status is not None:
            self.engine.send(ControlMessage(  # type: ignore[union-attr]
                "record", value=self.status.recording is None))

    # --------------------------------------------------------------------------- presets

    def action_presets(self) -> None:
        if not self._engine_ok():
            return
        try:
            infos = list_presets()
        except OSError as exc:
            self._say(f"cannot list the presets: {exc}", "yellow")
            return
        if not infos:
            self._say(f"no presets found (yours go in {paths.user_presets()})", "yellow")
            return
        running = self.settings.name if self.settings else None
        options = [(f"{i.name:<18} {i.source:<8} {i.path}", str(i.path)) for i in infos]
        selected = next((str(i.path) for i in infos if i.name == running), None)
        self.push_screen(PickScreen("Load a preset (Enter loads, Esc cancels)", options,
                                    selected), self.load_preset_file)

    def load_preset_file(self, path: str | Path | None) -> None:
        """Load a preset here; on success the engine switches to it, else its error shows and
        the running preset stays active."""
        if path is None or not self._engine_ok():
            return
        try:
            settings = load_preset(path)
        except PresetError as exc:
            running = self.settings.name if self.settings else "the running preset"
            self._say(f"{exc} ({running!r} stays active)", "bold red")
            return
        engine = self.engine
        assert engine is not None
        engine.send(ControlMessage("settings", value=settings))
        model = str(paths.model_path(settings.model))
        loaded = self._model or (str(paths.model_path(self.settings.model))
                                 if self.settings else model)
        if Path(model).resolve() != Path(loaded).resolve():
            engine.send(ControlMessage("model", value=model))
            self._model = model
        self.settings = settings
        self._hold_until = time.monotonic() + HOLD_S
        self._say(f"preset {settings.name!r} loaded from {path}")
        self._refresh()

    def action_save(self) -> None:
        if not self._engine_ok() or self.settings is None:
            return
        self.push_screen(PromptScreen(f"Save as a user preset in {paths.user_presets()}; name:",
                                      self.settings.name), self._save_as)

    def _save_as(self, name: str | None) -> None:
        if not name or self.settings is None:
            return
        if not PRESET_NAME.fullmatch(name):
            self._say(f"{name!r} is not a preset name: use letters, digits, - and _", "yellow")
            return
        base = self.status.settings if self.status else self.settings
        settings = replace(base if time.monotonic() >= self._hold_until else self.settings,
                           name=name)
        path = paths.user_presets() / f"{name}.toml"
        try:
            save_preset(settings, path)
        except PresetError as exc:
            self._say(str(exc), "bold red")
            return
        self._say(f"preset {name!r} saved to {path}")

    def action_model(self) -> None:
        if not self._engine_ok():
            return
        found: list[Path] = []
        for folder in (paths.shipped("models"), paths.user_data() / "models"):
            if folder.is_dir():
                found += sorted(folder.glob("*.pt"))
        options = [(f"{p.stem:<18} {p}", str(p)) for p in found]
        self.push_screen(PickScreen("Switch model (Enter loads, Esc cancels)", options,
                                    self._model, typed="or type a model file path + Enter"),
                         self.switch_model)

    def switch_model(self, path: str | None) -> None:
        if path is None or not self._engine_ok():
            return
        file = Path(path).expanduser()
        if not file.is_file():
            self._say(f"{path}: no such model file", "yellow")
            return
        self.engine.send(ControlMessage("model", value=str(file)))  # type: ignore[union-attr]
        self._model = str(file)
        self._say(f"loading model {file}…")


def run_tui(opts: LiveOptions, synth: bool = False) -> int:
    """Run the control panel with the engine in its own process; the exit status."""
    app = LivegenApp(lambda: start_engine(opts, synth), opts, handle_signals=True)
    code = app.run()
    if app.starter is not None:  # quit while the engine started: it stops it when it is up
        app.starter.join(70)
    engine = app.engine
    if engine is not None and engine.alive:  # the panel ended some other way: end the notes
        engine.stop()
    if app.failure:
        print(f"livegen: {app.failure}", file=sys.stderr)
        if app.rescue:
            print(f"livegen: notes of the stopped engine: {app.rescue}", file=sys.stderr)
    return code if isinstance(code, int) else (app.return_code or 0)
