"""The control desk: what the player changes while the music plays (docs/ARCHITECTURE.md,
"How a change flows").

Controls come from any thread (the panel's poller, the OSC server, a MIDI knob through the
worker itself) as typed `ControlMessage`s; the desk queues them and the worker applies them on
its next pass, between steps, so that nothing on the hot path is ever half changed. The desk owns
what belongs to the controls alone: MIDI learn (which control the next knob binds to) and the
recording. Everything else it asks of the engine through the engine's public methods: stop,
panic, release every note, switch settings or model, start or stop the transport, and post a
message for the panel.
"""

from __future__ import annotations

from collections import deque
from dataclasses import replace
from typing import TYPE_CHECKING

from livegen.controls import ControlMessage, apply_control, from_cc
from livegen.midi.recorder import Recorder, RecorderError, new_recording_path
from livegen.paths import user_data

if TYPE_CHECKING:
    from livegen.engine import Engine


class Desk:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.queue: deque[ControlMessage] = deque()  # from any thread; deque is thread-safe
        self.learning: str | None = None  # a control waiting for a knob to be moved
        self.recorder: Recorder | None = None

    def apply(self, now: float) -> None:
        """Apply every queued control, in order (the worker, once per pass)."""
        eng = self.engine
        while self.queue:
            m = self.queue.popleft()
            match m.kind:
                case "quit":
                    eng.stopping = True
                case "panic":
                    eng.panic()
                case "mute":
                    eng.release_all()
                case "settings":
                    eng.switch_settings(m.value)
                case "set":
                    try:
                        eng.switch_settings(apply_control(eng.settings, m.name, m.value))
                    except (KeyError, TypeError, ValueError):
                        eng.note(f"unknown control {m.name!r} ignored")
                case "learn":
                    self.learning = m.name
                    if m.name:
                        eng.note(f"MIDI learn: move a knob for {m.name}")
                case "record":
                    self.record(bool(m.value), now)
                case "model":
                    eng.switch_model(m.value)
                case "transport":
                    eng.transport_control(str(m.value), now)
                case "note":
                    eng.note(str(m.value))
                case _:
                    eng.note(f"unknown control {m.kind!r} ignored")

    def knobs(self, ccs: dict[tuple[int, int], int], now: float) -> None:
        """Coalesced CC changes: bind one to the control being learned, or drive the controls
        the preset's learn map names."""
        eng = self.engine
        if self.learning is not None:
            (_, cc), _ = next(iter(ccs.items()))
            learn = {k: v for k, v in eng.settings.learn.items() if v != self.learning}
            learn[cc] = self.learning
            eng.note(f"MIDI learn: CC {cc} now drives {self.learning}")
            self.learning = None
            eng.settings = replace(eng.settings, learn=learn)
            return
        settings = eng.settings
        for (_, cc), value in ccs.items():
            control = settings.learn.get(cc)
            if control == "transport":
                eng.transport_control("start" if from_cc(control, value) else "stop", now)
            elif control is not None:
                settings = apply_control(settings, control, from_cc(control, value))
        if settings is not eng.settings:
            eng.switch_settings(settings)

    def record(self, on: bool, now: float) -> None:
        """Start a recording (a new file, one track per voice) or stop and save it; a failure
        stops the recording with a message, and the music goes on."""
        eng = self.engine
        if on and self.recorder is None:
            try:
                path = new_recording_path(user_data() / "recordings")
                rec = Recorder(path, eng.settings.timing.bpm,
                               eng.settings.timing.beats_per_bar, now)
            except RecorderError as exc:
                eng.note(str(exc))
                return
            rec.track("human", 1)
            for v in eng.acc.voices:
                rec.track(v.name, v.channel, v.program)
            rec.track("takeover", eng.settings.takeover.channel)
            self.recorder = rec
            eng.note(f"recording to {path}")
        elif not on and self.recorder is not None:
            rec, self.recorder = self.recorder, None
            try:
                eng.note(f"recording saved: {rec.close(now)}")
            except RecorderError as exc:
                eng.note(str(exc))

    def flush(self, now: float) -> None:
        """Hand what was recorded since the last flush to the writer (a quiet moment)."""
        if self.recorder is None:
            return
        try:
            self.recorder.maybe_flush(now)
        except RecorderError as exc:  # the music goes on; the recording stops
            self.engine.note(str(exc))
            self.recorder = None

    def close(self, now: float) -> None:
        """Stop the recording, if any, and wait until its file is written."""
        rec = self.recorder
        if rec is not None:
            self.record(False, now)
            rec.wait(5.0)  # the final file is written before the process may end
