"""The engine handle the panel drives, and the poller thread that reads its snapshots without
ever blocking the UI or the engine (docs/ARCHITECTURE.md, "Threads")."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from livegen.controls import ControlMessage
from livegen.session import LiveOptions
from livegen.status import RollEvent, Status, new_events
from livegen.tui.messages import EngineDied, Snapshot

if TYPE_CHECKING:
    from livegen.tui.app import LivegenApp

POLL_S = 0.01  # the poller's look at the engine's snapshots
POST_S = 1 / 15  # how often the UI is handed a snapshot
ALIVE_S = 0.1  # how often the poller checks that the engine process lives
HOLD_S = 0.3  # after a local change, snapshots' settings are not trusted for this long


class EngineHandle(Protocol):
    """What the TUI needs of the engine (EngineProcess, already started)."""

    error: str | None

    def send(self, message: ControlMessage) -> None: ...
    def latest(self) -> Status | None: ...
    @property
    def alive(self) -> bool: ...
    @property
    def exitcode(self) -> int | None: ...
    log_path: Path | None
    def log_tail(self) -> str | None: ...
    def stop(self, timeout: float = ...) -> int | None: ...


def start_engine(opts: LiveOptions, synth: bool = False) -> EngineHandle:
    """Start the engine process; raises EngineError with the reason when it cannot start."""
    from livegen.process import EngineProcess

    engine = EngineProcess(opts, synth)
    engine.start()
    return engine


# ---------------------------------------------------------------------------------- values


def death_reason(engine: EngineHandle) -> str | None:
    """Why the engine is gone, or None while it runs; with the last line of its log when it
    ended on its own."""
    if engine.error:
        return engine.error
    if engine.alive:
        return None
    code = engine.exitcode
    if code is None:
        reason = "the engine process is gone"
    elif code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        reason = f"the engine process was killed by {name}"
    else:
        reason = f"the engine process ended with status {code}"
    tail = engine.log_tail()
    if tail:
        reason += f" (its log {engine.log_path} ends: {tail})"
    elif engine.log_path is not None:
        reason += f" (its log: {engine.log_path})"
    return reason


class Poller(threading.Thread):
    """Reads the engine's snapshots without ever blocking the UI or the engine."""

    def __init__(self, app: LivegenApp, engine: EngineHandle):
        super().__init__(name="livegen-poller", daemon=True)
        self.app = app
        self.engine = engine
        self.halt = threading.Event()

    def run(self) -> None:
        last: Status | None = None
        recent: list[RollEvent] = []
        taken = 0  # serial of the newest piano-roll event taken
        fresh = False
        posted = checked = 0.0
        while not self.halt.wait(POLL_S):
            snap = self.engine.latest()
            if snap is not None and snap is not last:
                last, fresh = snap, True
                fresh_events = new_events(snap.recent, taken)
                if fresh_events:
                    recent.extend(fresh_events)
                    taken = fresh_events[-1].serial
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

