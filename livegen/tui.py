"""The control panel (DESIGN §7): a Textual app that watches and steers the engine process.

Layout (fits 80×24): three status lines (transport, clock, tempo, bar:beat, key, preset; ports,
recording, takeover, MIDI learn; latency p50/p99 and drop counters), a scrolling piano roll of
the human part and each voice in its own colour and letter (left), the live controls with their
learned CCs (right), the engine's messages, and a line of key hints. `?` or F1 lists every key
(`KEYMAP`, also the README's table).

The engine runs in its own process (`livegen.engine_process.EngineProcess`). A poller thread
calls `latest()` about 100 times a second, gathers the piano-roll events (`recent`) of every
snapshot it sees and hands the newest snapshot to the UI with `post_message` about 15 times a
second, so the UI never blocks and the engine never waits for the UI. Controls go to the engine
with `send`; a value change is computed from the settings of the latest snapshot, shown at once
and confirmed by the next snapshots. Presets are read in this process with `load_preset`, so a
bad file shows its one-sentence error here and the engine never sees it: the running preset
stays active. Quitting (q, Ctrl-C, SIGTERM or SIGHUP with `run_tui`) sends `quit`; the engine
resolves its notes itself (note-offs, CC64=0, CC123, CC120) and ends.

When the engine process dies (it exits, is killed, or reports an error), the TUI says so in a red
banner and resolves the notes the engine left sounding, because a killed process cannot: its
MIDI client vanishes with it and so do its connections. Decision: the TUI sends the resolution
itself, from a MIDI client of its own ("livegen-rescue"), straight to where the engine's output
went. It knows the notes from the last snapshot (`status["sounding"]`, (channel, pitch) pairs)
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

The poller goes on reading snapshots while the engine stops: a child whose snapshot pipe is
full cannot exit (its queue's feeder thread waits for a reader).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import math
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from multiprocessing import resource_tracker
from pathlib import Path
from typing import Any, Protocol

import rtmidi
from rich.markup import escape
from rich.table import Table
from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from livegen import paths, ports
from livegen.controls import apply_control, current
from livegen.keys import key_name, parse_key
from livegen.live import LiveOptions
from livegen.notes import (
    CC_ALL_NOTES_OFF,
    CC_ALL_SOUND_OFF,
    CC_SUSTAIN,
    cc_message,
    note_off_message,
)
from livegen.presets import (
    CONTROL_RANGES,
    VOICE_CONTROL_PREFIX,
    PresetError,
    learnable_controls,
    list_presets,
    load_preset,
    save_preset,
)
from livegen.settings import Settings

__all__ = [
    "KEYMAP",
    "LivegenApp",
    "JackGraph",
    "OutputConnections",
    "release_messages",
    "resolve_orphaned_notes",
    "run_tui",
    "start_engine",
]

POLL_S = 0.01  # the poller's look at the engine's snapshots
POST_S = 1 / 15  # how often the UI is handed a snapshot
ALIVE_S = 0.1  # how often the poller checks that the engine process lives
HOLD_S = 0.3  # after a local change, snapshots' settings are not trusted for this long
CONNECTIONS_S = 1.5  # how often the engine output's connections are read
RESCUE_CLIENT = "livegen-rescue"
ALSA_CLIENTS = "/proc/asound/seq/clients"
JACK_NO_START_SERVER = 0x01  # jack_options_t
JACK_PORT_IS_OUTPUT = 0x02  # JackPortFlags

# Every key, for the help screen and the README (one source of truth).
KEYMAP: list[tuple[str, str]] = [
    ("? / F1", "this help"),
    ("↑ ↓", "select a control"),
    ("← → / - +", "change it by a step"),
    ("Shift+← →", "change it by 5 steps"),
    ("Enter", "type a value; flip a switch"),
    ("Space", "flip a switch or key lock"),
    ("l", "MIDI learn: move a knob"),
    ("Esc", "cancel MIDI learn"),
    ("t T", "temperature − / +"),
    ("d D", "density − / +"),
    ("f F", "follow window − / +"),
    ("w W", "swing − / +"),
    ("h H", "humanize − / +"),
    ("[ ] / { }", "tempo −/+ 1 BPM, 5 BPM"),
    ("1 … 9", "voice 1…9 on/off"),
    ("k", "key lock off→auto→detected"),
    ("K", "type a key lock (G, F#m)"),
    ("o", "takeover on/off"),
    ("p", "load a preset"),
    ("s", "save as a user preset"),
    ("m", "switch model"),
    ("r", "record on/off"),
    ("x", "panic: all notes off"),
    ("q / Ctrl-C", "quit (every note ends)"),
]
HINTS = "? help  ↑↓ select  ←→ change  l learn  p preset  r rec  x panic  q quit"

# Numeric live controls: step per key press and display format (ranges: CONTROL_RANGES).
NUMERIC: dict[str, tuple[float, str]] = {
    "temperature": (0.05, "{:.2f}"),
    "top_p": (0.01, "{:.2f}"),
    "density": (0.1, "{:+.1f}"),
    "follow_ms": (5.0, "{:.0f} ms"),
    "swing": (0.02, "{:.2f}"),
    "humanize_ms": (1.0, "{:.0f} ms"),
    "bpm": (1.0, "{:.1f}"),
}
LABELS = {
    "temperature": "temperature",
    "top_p": "top-p",
    "density": "density",
    "follow_ms": "follow window",
    "swing": "swing",
    "humanize_ms": "humanize",
    "bpm": "tempo BPM",
    "key_lock": "key lock",
    "takeover": "takeover",
}
BASE_CONTROLS = ("temperature", "top_p", "density", "follow_ms", "swing", "humanize_ms", "bpm",
                 "key_lock", "takeover")

HUMAN, LEAD = -2, -1
VOICE_COLOURS = ("cyan", "green", "yellow", "red", "blue", "bright_magenta")
NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
_PRESET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


class EngineHandle(Protocol):
    """What the TUI needs of the engine (EngineProcess, already started)."""

    error: str | None

    def send(self, name: str, value: Any = None) -> None: ...
    def latest(self) -> dict | None: ...
    @property
    def alive(self) -> bool: ...
    def stop(self, timeout: float = ...) -> int | None: ...


def start_engine(opts: LiveOptions, synth: bool = False) -> EngineHandle:
    """Start the engine process; raises EngineError with the reason when it cannot start."""
    from livegen.engine_process import EngineProcess

    engine = EngineProcess(opts, synth)
    engine.start()
    return engine


# ---------------------------------------------------------------------------------- values


def step_value(settings: Settings, control: str, steps: float) -> float:
    """The control's value `steps` steps away, clamped to its live range."""
    step, _ = NUMERIC[control]
    lo, hi = CONTROL_RANGES[control]
    value = float(current(settings, control)) + steps * step
    return round(min(hi, max(lo, value)), 4)


def next_key_lock(key_lock: str, detected: str | None) -> str:
    """off → auto → the detected key (fixed) → off; auto goes back to off with no key yet."""
    if key_lock == "off":
        return "auto"
    if key_lock == "auto" and detected:
        return detected
    return "off"


def format_value(settings: Settings, control: str) -> str:
    value = current(settings, control)
    if control in NUMERIC:
        return NUMERIC[control][1].format(value)
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def note_label(pitch: int) -> str:
    return f"{NOTE_NAMES[pitch % 12]}{pitch // 12 - 1}"


# ---------------------------------------------------------------------- engine death: notes


def release_messages(status: dict | None) -> tuple[list[list[int]], list[int]]:
    """What ends every note the engine may have left sounding: a note-off per note of the last
    snapshot, then CC64=0, CC123, CC120 on every channel in use (all 16 with no snapshot)."""
    if status is None:
        sounding: list[tuple[int, int]] = []
        channels = set(range(1, 17))
    else:
        sounding = [(int(ch), int(p)) for ch, p in status.get("sounding", ())]
        channels = {int(ch) for _, _, ch in status.get("voices", ())}
        channels |= {ch for ch, _ in sounding}
        settings = status.get("settings")
        if settings is not None:
            channels.add(settings.takeover.channel)
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
    livegen.ports), and a new one is opened when the server is back."""

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
        self.seen: dict[str, list[str]] = {}
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
                self.seen = found
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()

    def lost_destinations(self, timeout: float = 2.0) -> list[str]:
        """After the engine died: the destinations of the "livegen out" port(s) that vanished
        since the last reading, as names `ports.open_output` finds."""
        self.stop()
        before = dict(self.seen)
        if not before:
            return []
        deadline = time.monotonic() + timeout
        gone: list[str] = []
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


def resolve_orphaned_notes(status: dict | None, api: int, destinations: list[str]) -> str:
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


class Snapshot(Message):
    def __init__(self, status: dict, recent: list[tuple[int, int, int]]):
        super().__init__()
        self.status = status
        self.recent = recent


class EngineStarted(Message):
    def __init__(self, engine: EngineHandle):
        super().__init__()
        self.engine = engine


class EngineFailed(Message):
    def __init__(self, reason: str):
        super().__init__()
        self.reason = reason


class EngineDied(Message):
    def __init__(self, reason: str):
        super().__init__()
        self.reason = reason


class Rescued(Message):
    def __init__(self, text: str):
        super().__init__()
        self.text = text


class EngineStopped(Message):
    pass


def death_reason(engine: EngineHandle) -> str | None:
    """Why the engine is gone, or None while it runs."""
    if engine.error:
        return engine.error
    if engine.alive:
        return None
    proc = getattr(engine, "proc", None)
    code = getattr(proc, "exitcode", None)
    if code is None:
        return "the engine process is gone"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"the engine process was killed by {name}"
    return f"the engine process ended with status {code}"


class _Poller(threading.Thread):
    """Reads the engine's snapshots without ever blocking the UI or the engine."""

    def __init__(self, app: LivegenApp, engine: EngineHandle):
        super().__init__(name="livegen-poller", daemon=True)
        self.app = app
        self.engine = engine
        self.halt = threading.Event()

    def run(self) -> None:
        last: dict | None = None
        recent: list[tuple[int, int, int]] = []
        fresh = False
        posted = checked = 0.0
        while not self.halt.wait(POLL_S):
            snap = self.engine.latest()
            if snap is not None and snap is not last:
                last, fresh = snap, True
                recent.extend(snap.get("recent", ()))
            now = time.monotonic()
            if fresh and now - posted >= POST_S:
                self.app.post_message(Snapshot(last, recent))
                recent, fresh, posted = [], False, now
            if now - checked >= ALIVE_S:
                checked = now
                reason = death_reason(self.engine)
                if reason is not None:
                    if fresh and last is not None:
                        self.app.post_message(Snapshot(last, recent))
                    self.app.post_message(EngineDied(reason))
                    return


# ---------------------------------------------------------------------------------- widgets


class StatusLines(Static):
    """Transport, clock, tempo, position, key, preset; ports; latency and drops."""

    def show(self, status: dict | None, port_names: dict[str, str], learning: str | None,
             starting: str | None) -> None:
        if status is None:
            self.update(Text(starting or "starting the engine…", style="bold"))
            return
        s = status
        t = Text(no_wrap=True, overflow="ellipsis")
        t.append(" ▶ PLAY " if s["running"] else " ■ STOP ",
                 style="bold black on green" if s["running"] else "bold black on yellow")
        bpm = f"{s['bpm']:.1f}" if s.get("bpm") else "--"
        t.append(f" {s['clock']} clock  ")
        t.append(f"{bpm} BPM", style="bold")
        t.append("  bar ")
        t.append(f"{s['bar']}:{s['beat']}", style="bold")
        t.append("  key ")
        t.append(s["key"] or "?", style="bold")
        t.append("  preset ")
        t.append(s["preset"], style="bold")
        t.append("\n")
        for side in ("in", "out"):
            state = s["ports"].get(side, "?")
            t.append(f"{side} {port_names.get(side, side)} ")
            t.append(state, style="green" if state == "open" else "bold red")
            t.append("  ")
        if s.get("recording"):
            t.append(" ● REC ", style="bold white on red")
            t.append(" ")
        if s.get("takeover"):
            t.append(" TAKEOVER ", style="bold black on magenta")
            t.append(" ")
        if learning:
            t.append(f" LEARN {learning}: move a knob ", style="bold black on cyan")
        t.append("\n")
        p50, p99 = s.get("latency_p50_ms"), s.get("latency_p99_ms")
        t.append("latency p50 ")
        t.append(f"{p50:.1f}" if p50 is not None else "--", style="bold")
        t.append(" p99 ")
        t.append(f"{p99:.1f}" if p99 is not None else "--", style="bold")
        d = s["drops"]
        t.append(f" ms  drops queue {d['queue']} bad {d['malformed']} sysex {d['sysex']} "
                 f"sense {d['sensing']} echo {d['echo']} late {d['skipped_steps']}",
                 style="yellow" if any(d.values()) else "")
        self.update(t)


class PianoRoll(Widget):
    """The last steps, newest on the right: the human part (●), the takeover lead (◆) and each
    voice (its initial, then ─ while held), in their colours."""

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.cells: dict[int, dict[int, tuple[int, bool]]] = {}  # step → pitch → (part, onset)
        self.step = 0
        self.bar_steps = 16
        self.glyphs: dict[int, tuple[str, str]] = {HUMAN: ("●", "bold white"),
                                                   LEAD: ("◆", "bold magenta")}
        self.names: dict[int, str] = {HUMAN: "you", LEAD: "lead"}

    def set_voices(self, names: list[str]) -> None:
        used: set[str] = {"●", "◆"}
        for i, name in enumerate(names):
            self.names[i] = name
            letter = (name[:1] or str(i)).lower()
            if letter in used:
                letter = str(i + 1)
            used.add(letter)
            self.glyphs[i] = (letter, VOICE_COLOURS[i % len(VOICE_COLOURS)])

    def legend(self) -> str:
        return "  ".join(f"[{style}]{escape(glyph)}[/] {escape(self.names[part])}"
                        for part, (glyph, style) in sorted(self.glyphs.items()))

    @staticmethod
    def _rank(part: int) -> int:
        return -10 if part == HUMAN else -5 if part == LEAD else part

    def _put(self, step: int, pitch: int, part: int, onset: bool) -> None:
        column = self.cells.setdefault(step, {})
        old = column.get(pitch)
        if old is None or self._rank(part) < self._rank(old[0]) or (old[0] == part and onset):
            column[pitch] = (part, onset or (old is not None and old[0] == part and old[1]))

    def add(self, status: dict, recent: list[tuple[int, int, int]]) -> None:
        self.step = int(status["step"])
        settings = status.get("settings")
        if settings is not None:
            self.bar_steps = settings.timing.beats_per_bar * 4
        for step, part, pitch in recent:
            self._put(int(step), int(pitch), int(part), True)
        parts: dict[int, int] = {}
        for i, (_, enabled, channel) in enumerate(status.get("voices", ())):
            if enabled:
                parts.setdefault(channel, i)
        if settings is not None:
            parts.setdefault(settings.takeover.channel, LEAD)
        for channel, pitch in status.get("sounding", ()):
            part = parts.get(channel)
            if part is not None:
                self._put(self.step, int(pitch), part, False)
        for old in [s for s in self.cells if s < self.step - 400]:
            del self.cells[old]
        self.refresh()

    def render(self) -> Text:
        width, height = self.size.width, self.size.height
        label_w = 4
        cols = max(1, width - label_w)
        first = self.step - cols + 1
        pitches = [p for s in range(first, self.step + 1) for p in self.cells.get(s, {})]
        lo, hi = (min(pitches) - 1, max(pitches) + 1) if pitches else (55, 79)
        rows = max(1, height)
        span = hi - lo + 1
        per_row = max(1, math.ceil(span / rows))
        top = lo - (per_row * rows - span) // 2 + per_row * rows - 1
        out = Text(no_wrap=True, overflow="crop")
        for r in range(rows):
            band_hi = top - r * per_row
            band_lo = band_hi - per_row + 1
            c_pitch = next((p for p in range(band_lo, band_hi + 1) if p % 12 == 0), None)
            label = note_label(c_pitch) if c_pitch is not None and 0 <= c_pitch <= 127 else ""
            out.append(f"{label:<3}│", style="dim")
            for s in range(first, self.step + 1):
                column = self.cells.get(s)
                best: tuple[int, bool] | None = None
                if column:
                    for p in range(band_lo, band_hi + 1):
                        cell = column.get(p)
                        if cell is not None and (best is None or self._rank(cell[0])
                                                 < self._rank(best[0]) or
                                                 (cell[0] == best[0] and cell[1])):
                            best = cell
                if best is not None:
                    glyph, style = self.glyphs.get(best[0], ("?", "white"))
                    out.append(glyph if best[1] else "─", style=style)
                elif s % self.bar_steps == 0:
                    out.append("┊", style="dim")
                elif s % 4 == 0:
                    out.append("·", style="dim")
                else:
                    out.append(" ")
            if r < rows - 1:
                out.append("\n")
        return out


class ControlPanel(Widget):
    """The live controls with their values and learned CCs; one is selected."""

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.controls: list[str] = list(BASE_CONTROLS)
        self.selected = 0
        self.settings: Settings | None = None
        self.learn: dict[int, str] = {}
        self.learning: str | None = None

    def set_state(self, settings: Settings | None, voices: list[str], learn: dict[int, str],
                  learning: str | None) -> None:
        self.controls = list(BASE_CONTROLS) + [VOICE_CONTROL_PREFIX + v for v in voices]
        self.selected = min(self.selected, len(self.controls) - 1)
        self.settings, self.learn, self.learning = settings, learn, learning
        self.refresh()

    @property
    def control(self) -> str:
        return self.controls[self.selected]

    def render(self) -> Text:
        out = Text(no_wrap=True, overflow="crop")
        ccs = {control: cc for cc, control in self.learn.items()}
        for i, control in enumerate(self.controls):
            label = LABELS.get(control, control[len(VOICE_CONTROL_PREFIX):])
            if control.startswith(VOICE_CONTROL_PREFIX):
                label = f"{i - len(BASE_CONTROLS) + 1} {label}"
            value = format_value(self.settings, control) if self.settings else "--"
            cc = "learn…" if control == self.learning else (f"cc{ccs[control]}"
                                                          if control in ccs else "")
            line = f"{'▸' if i == self.selected else ' '}{label:<13.13}{value:>9.9} {cc:<6}"
            style = "reverse bold" if i == self.selected else ""
            if control == self.learning:
                style += " cyan"
            out.append(line, style=style.strip())
            if i < len(self.controls) - 1:
                out.append("\n")
        return out


class MessageLog(Widget):
    """The newest messages (engine and TUI), wrapped, newest at the bottom."""

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.entries: list[tuple[str, str]] = []

    def add(self, text: str, style: str = "") -> None:
        self.entries.append((text, style))
        del self.entries[:-50]
        self.refresh()

    def render(self) -> Text:
        width, height = max(1, self.size.width), max(1, self.size.height)
        lines: list[Text] = []
        for text, style in self.entries[-height:]:
            lines.extend(Text(text, style=style).wrap(self.app.console, width))
        out = Text(no_wrap=True, overflow="crop")
        for i, line in enumerate(lines[-height:]):
            if i:
                out.append("\n")
            out.append_text(line)
        return out


# ---------------------------------------------------------------------------------- screens


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark,f1,enter,space", "close", "close")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 80; max-width: 100%; height: auto; max-height: 100%;
        border: round $primary; background: $surface; padding: 0 1; }
    """

    def compose(self) -> ComposeResult:
        table = Table.grid(padding=(0, 1))
        for _ in range(2):
            table.add_column(style="bold cyan", no_wrap=True)
            table.add_column()
        half = (len(KEYMAP) + 1) // 2
        for i in range(half):
            left = KEYMAP[i]
            right = KEYMAP[i + half] if i + half < len(KEYMAP) else ("", "")
            table.add_row(left[0], left[1], right[0], right[1])
        with VerticalScroll() as scroll:
            scroll.border_title = "livegen keys (Esc closes)"
            yield Static(table)

    def action_close(self) -> None:
        self.dismiss(None)


class PickScreen(ModalScreen[str | None]):
    """A list to pick from (presets, models), optionally with a path to type."""

    BINDINGS = [Binding("escape", "cancel", "cancel")]
    DEFAULT_CSS = """
    PickScreen { align: center middle; }
    PickScreen > Vertical { width: 70; max-width: 100%; height: auto; max-height: 100%;
        border: round $primary; background: $surface; }
    PickScreen OptionList { height: auto; max-height: 14; }
    """

    def __init__(self, title: str, options: list[tuple[str, str]], selected: str | None = None,
                 typed: str | None = None):
        super().__init__()
        self.title_text = title
        self.options = options
        self.selected = selected
        self.typed = typed

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = self.title_text
            yield OptionList(*[Option(escape(label), id=value) for label, value in self.options])
            if self.typed is not None:
                yield Input(placeholder=self.typed)

    def on_mount(self) -> None:
        option_list = self.query_one(OptionList)
        for i, (_, value) in enumerate(self.options):
            if value == self.selected:
                option_list.highlighted = i
        option_list.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() or None)

    def action_cancel(self) -> None:
        self.dismiss(None)


class PromptScreen(ModalScreen[str | None]):
    BINDINGS = [Binding("escape", "cancel", "cancel")]
    DEFAULT_CSS = """
    PromptScreen { align: center middle; }
    PromptScreen > Vertical { width: 60; max-width: 100%; height: auto;
        border: round $primary; background: $surface; }
    """

    def __init__(self, question: str, value: str = ""):
        super().__init__()
        self.question = question
        self.value = value

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.question)
            yield Input(value=self.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip())

    def action_cancel(self) -> None:
        self.dismiss(None)


# -------------------------------------------------------------------------------------- app


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
        Binding("t", "nudge('temperature', -1)", "temperature -"),
        Binding("T", "nudge('temperature', 1)", "temperature +"),
        Binding("d", "nudge('density', -1)", "density -"),
        Binding("D", "nudge('density', 1)", "density +"),
        Binding("f", "nudge('follow_ms', -1)", "follow -"),
        Binding("F", "nudge('follow_ms', 1)", "follow +"),
        Binding("w", "nudge('swing', -1)", "swing -"),
        Binding("W", "nudge('swing', 1)", "swing +"),
        Binding("h", "nudge('humanize_ms', -1)", "humanize -"),
        Binding("H", "nudge('humanize_ms', 1)", "humanize +"),
        Binding("left_square_bracket", "nudge('bpm', -1)", "tempo -"),
        Binding("right_square_bracket", "nudge('bpm', 1)", "tempo +"),
        Binding("left_curly_bracket", "nudge('bpm', -5)", "tempo --"),
        Binding("right_curly_bracket", "nudge('bpm', 5)", "tempo ++"),
        *[Binding(str(n), f"voice({n})", f"voice {n}") for n in range(1, 10)],
        Binding("k", "key_cycle", "key lock"),
        Binding("K", "key_type", "fixed key"),
        Binding("o", "toggle('takeover')", "takeover"),
        Binding("p", "presets", "presets"),
        Binding("s", "save", "save preset"),
        Binding("m", "model", "model"),
        Binding("r", "record", "record"),
        Binding("x", "panic", "panic"),
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
        self.status: dict | None = None
        self.settings: Settings | None = None
        self.failure: str | None = None  # the engine could not start, or died
        self.rescue: str | None = None  # what was done about the notes of a dead engine
        self.shown_messages: list[str] = []
        self.port_names: dict[str, str] = {}
        self.connections: OutputConnections | None = None
        self._poller: _Poller | None = None
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
        self._poller = _Poller(self, engine)
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
            self.settings = s["settings"]
        for serial, text in s.get("messages", ()):
            if serial > self._seen_serial:
                self._seen_serial = serial
                self._say(text)
        self.roll.add(s, message.recent)
        self._refresh()

    def _refresh(self) -> None:
        s = self.status
        learning = s.get("learning") if s else None
        self.status_lines.show(s, self.port_names, learning, None)
        voices = [name for name, _, _ in s["voices"]] if s else []
        self.panel.set_state(self.settings, voices, s.get("learn", {}) if s else {}, learning)

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

            def stop() -> None:
                try:
                    engine.stop()
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
        self.engine.send("set", (control, value))  # type: ignore[union-attr]
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
            lo, hi = CONTROL_RANGES[control]
            value = format_value(self.settings, control).split()[0]
            self.push_screen(PromptScreen(f"{LABELS[control]} ({lo:g} to {hi:g}):", value),
                             lambda text: self._typed_value(control, text))

    def _typed_value(self, control: str, text: str | None) -> None:
        if not text:
            return
        try:
            value = float(text)
        except ValueError:
            self._say(f"{text!r} is not a number", "yellow")
            return
        lo, hi = CONTROL_RANGES[control]
        self._set(control, min(hi, max(lo, value)))

    def action_voice(self, n: int) -> None:
        voices = [name for name, _, _ in self.status["voices"]] if self.status else []
        if not 1 <= n <= len(voices):
            self._say(f"there is no voice {n}", "yellow")
            return
        self.action_toggle(VOICE_CONTROL_PREFIX + voices[n - 1])

    def action_key_cycle(self) -> None:
        if self.settings is None:
            return
        detected = self.status.get("key") if self.status else None
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
            self._say(f"{LABELS.get(control, control)} cannot be MIDI-learned; these can: "
                      f"{', '.join(allowed)}", "yellow")
            return
        self.engine.send("learn", control)  # type: ignore[union-attr]

    def action_cancel_learn(self) -> None:
        if self.engine is not None and self.status and self.status.get("learning"):
            self.engine.send("learn", None)
            self._say("MIDI learn cancelled")

    def action_panic(self) -> None:
        if self._engine_ok():
            self.engine.send("panic", None)  # type: ignore[union-attr]
            self._say("panic: every note off, sustain off, all notes off, all sound off")

    def action_record(self) -> None:
        if self._engine_ok() and self.status is not None:
            self.engine.send("record", self.status.get("recording") is None)  # type: ignore

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
        engine.send("settings", settings)
        model = str(paths.model_path(settings.model))
        loaded = self._model or (str(paths.model_path(self.settings.model))
                                 if self.settings else model)
        if Path(model).resolve() != Path(loaded).resolve():
            engine.send("model", model)
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
        if not _PRESET_NAME.fullmatch(name):
            self._say(f"{name!r} is not a preset name: use letters, digits, - and _", "yellow")
            return
        base = self.status["settings"] if self.status else self.settings
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
        self.engine.send("model", str(file))  # type: ignore[union-attr]
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
