"""Stand-ins: in-process ports and a simulated clock (isobar-style), so the engine runs
deterministically; and `FakeEngine`, an engine handle for the panel that needs no process, no
model and no MIDI system."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from livegen.controls import ControlMessage, apply_control, from_cc
from livegen.settings import Settings, VoiceSettings
from livegen.status import Status, VoiceState
from tests.helpers import left_sounding


class SimTime:
    """now() creeps forward a little on every call (so spin-waits end); sleep() jumps."""

    def __init__(self, start: float = 100.0, creep: float = 2e-5):
        self.t = start
        self.creep = creep

    def now(self) -> float:
        self.t += self.creep
        return self.t

    def sleep(self, dt: float) -> None:
        self.t += max(dt, 0.0)


class FakeIn:
    """Messages scheduled at times; `poll` hands over those due, stamped with their time."""

    def __init__(self, clock: SimTime):
        self.clock = clock
        self.queue: list[tuple[float, list[int]]] = []

    def at(self, t: float, message: list[int]) -> None:
        self.queue.append((t, message))
        self.queue.sort(key=lambda x: x[0])

    def poll(self, limit: int = 512) -> list[tuple[list[int], float]]:
        now = self.clock.t
        due = [(m, t) for t, m in self.queue if t <= now][:limit]
        self.queue = self.queue[len(due):]
        return due


class FakeOut:
    def __init__(self, clock: SimTime):
        self.clock = clock
        self.sent: list[tuple[float, list[int]]] = []

    def send(self, message) -> bool:
        self.sent.append((self.clock.t, list(message)))
        return True

    def note_ons(self, channel: int | None = None) -> list[tuple[float, int, int]]:
        return [(t, m[0] & 15, m[1]) for t, m in self.sent
                if m[0] & 0xF0 == 0x90 and m[2] > 0
                and (channel is None or m[0] & 15 == channel - 1)]

    def hanging(self) -> set[tuple[int, int]]:
        """(channel 1..16, pitch) left sounding."""
        return left_sounding(m for _, m in self.sent)


@dataclass
class FakeProc:
    """The engine's process, as far as a reader of `engine.proc` goes."""

    exitcode: int | None = None


FAKE_VOICES = (VoiceSettings("alto", channel=2), VoiceSettings("tenor", channel=3),
               VoiceSettings("bass", channel=4))


class FakeEngine:
    """An engine handle for the panel (`livegen.tui.poller.EngineHandle`), in this process, with
    no model and no MIDI: fast panel tests drive the real panel against it.

    It records every `ControlMessage` it receives in `received` and applies it as the engine
    does: "set" and "settings" change its `Settings` (through `apply_control`), "learn" waits
    for a knob, "record" starts or saves a (pretend) recording, "panic" and "mute" end what
    sounds, "model" notes the model, "quit" ends it. Each change makes `latest()` return a new
    `Status`, so the panel sees it on its next poll. `knob(cc, value)` is a CC arriving at the
    engine (it binds the CC while learning, else moves the control the learn map names);
    `sound(...)` sets what the engine has sounding; `die(...)` ends it as a crash would: `alive`
    turns False, with `error` text, or an exit code and the last line of its log, which the
    panel reports. Thread-safe: the panel's poller, its UI and its stopper thread all call in.
    """

    def __init__(self, settings: Settings | None = None,
                 recordings: str = "/fake/recordings") -> None:
        self.settings = settings or Settings(name="fake", voices=list(FAKE_VOICES))
        self.recordings = recordings
        self.received: list[ControlMessage] = []
        self.error: str | None = None
        self.proc = FakeProc()
        self.log_path: Path | None = None
        self.log_line: str | None = None
        self.stop_calls = 0
        self.learning: str | None = None
        self.recording: str | None = None
        self.takes = 0
        self.sounding: list[tuple[int, int]] = []
        self.model: str | None = None
        self.messages: list[tuple[int, str]] = []
        self.step = 0  # counts the changes the engine made: each one is a new snapshot
        self.info = {"ports": ["input 'livegen in'", "output 'livegen out'"],
                     "voices": [v.name for v in self.settings.voices]}
        self._lock = threading.RLock()
        self._snapshot: Status | None = None

    # ------------------------------------------------------------------ EngineHandle

    @property
    def alive(self) -> bool:
        return self.proc.exitcode is None

    @property
    def exitcode(self) -> int | None:
        return self.proc.exitcode

    def log_tail(self) -> str | None:
        return self.log_line

    def send(self, message: ControlMessage) -> None:
        with self._lock:
            self.received.append(message)
            if self.alive:
                self._apply(message)

    def latest(self) -> Status | None:
        """The newest snapshot: the same object until something changed, as a real engine's
        last snapshot stays the same between its offers."""
        with self._lock:
            if self._snapshot is None or self._snapshot.step != self.step:
                self._snapshot = self._status()
            return self._snapshot

    def stop(self, timeout: float = 5.0) -> int | None:
        with self._lock:
            self.stop_calls += 1
            if self.alive:
                self._end()
            return self.proc.exitcode

    # ------------------------------------------------------------------ for the tests

    def sent(self, kind: str) -> list[ControlMessage]:
        """The control messages of one kind received so far."""
        with self._lock:
            return [m for m in self.received if m.kind == kind]

    def knob(self, cc: int, value: int) -> None:
        """A CC arriving at the engine's input."""
        with self._lock:
            if self.learning is not None:
                learn = {k: v for k, v in self.settings.learn.items() if v != self.learning}
                learn[cc] = self.learning
                self._note(f"MIDI learn: CC {cc} now drives {self.learning}")
                self.learning = None
                self._change(replace(self.settings, learn=learn))
            elif cc in self.settings.learn:
                name = self.settings.learn[cc]
                self._change(apply_control(self.settings, name, from_cc(name, value)))

    def sound(self, notes: Sequence[tuple[int, int]]) -> None:
        """What the engine has sounding now: (channel, pitch) pairs."""
        with self._lock:
            self.sounding = sorted(notes)
            self.step += 1

    def die(self, error: str | None = None, exitcode: int = 1, log: str | None = None) -> None:
        """End as a crash would: with `error` (an engine that reported why), or just gone with
        `exitcode` (negative: killed by that signal) and `log`, the last line of its log."""
        with self._lock:
            self.error = error
            if log is not None:
                self.log_path, self.log_line = Path("/fake/logs/engine.log"), log
            self.proc.exitcode = exitcode

    # ------------------------------------------------------------------ the engine's part

    def _note(self, text: str) -> None:
        self.messages.append((len(self.messages) + 1, text))
        self.step += 1

    def _change(self, settings: Settings) -> None:
        self.settings = settings
        self.step += 1

    def _end(self) -> None:
        if self.recording is not None:
            self._record(False)
        self.sounding = []
        self.proc.exitcode = 0
        self.step += 1

    def _record(self, on: bool) -> None:
        if on and self.recording is None:
            self.takes += 1
            self.recording = f"{self.recordings}/livegen-take-{self.takes}.mid"
            self._note(f"recording to {self.recording}")
        elif not on and self.recording is not None:
            path, self.recording = self.recording, None
            self._note(f"recording saved: {path}")

    def _apply(self, m: ControlMessage) -> None:
        match m.kind:
            case "set":
                try:
                    self._change(apply_control(self.settings, str(m.name), m.value))
                except (KeyError, TypeError, ValueError):
                    self._note(f"unknown control {m.name!r} ignored")
            case "settings":
                self._change(m.value)
            case "learn":
                self.learning = m.name
                if m.name:
                    self._note(f"MIDI learn: move a knob for {m.name}")
                else:
                    self.step += 1
            case "record":
                self._record(bool(m.value))
            case "panic" | "mute":
                self.sounding = []
                self.step += 1
            case "model":
                self.model = str(m.value)
                self._note(f"model {m.value} loaded")
            case "quit":
                self._end()

    def _status(self) -> Status:
        s = self.settings
        return Status(
            time=float(self.step), preset=s.name, running=True, clock=s.timing.clock,
            bpm=s.timing.bpm, step=self.step, bar=1, beat=1, key="C major", takeover=False,
            settings=s, sounding=list(self.sounding), latency_p50_ms=0.2, latency_p99_ms=0.3,
            emission_p99_ms=0.4, ports={"in": "open", "out": "open"},
            messages=list(self.messages),
            voices=[VoiceState(v.name, v.enabled, v.channel) for v in s.voices],
            recording=self.recording, learning=self.learning, learn=dict(s.learn))


def engine_on_sim_clock(model, bpm: float = 120.0, **timing):
    """An Engine with three voices (alto, tenor, bass on channels 2-4) over in-process ports on
    a simulated clock: (engine, clock, input, output). `timing` overrides TimingSettings (the
    follow window is off unless given)."""
    from livegen.engine import Engine
    from livegen.model.runtime import Runtime
    from livegen.settings import Settings, TimingSettings

    settings = Settings(voices=list(FAKE_VOICES),
                        timing=TimingSettings(**({"bpm": bpm, "follow_ms": 0.0} | timing)))
    clock = SimTime()
    inp, out = FakeIn(clock), FakeOut(clock)
    engine = Engine(settings, Runtime(model, device="cpu", warmup=2), inp, out, now=clock.now,
                    sleep=clock.sleep, seed=1)
    return engine, clock, inp, out


def run_until(engine, clock: SimTime, t_end: float) -> None:
    while clock.t < t_end:
        engine.tick()
