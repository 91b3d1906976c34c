"""The engine in its own process, for the control panel (docs/ARCHITECTURE.md, "Processes").

The TUI never holds the GIL the hot path needs: the engine runs in a child process that owns
the ports, model, clock and notes. Controls go in through one queue; status snapshots (~30 Hz)
come out through another, offered without waiting (a full queue drops the snapshot, never
blocks the engine). Stopping sends `quit`; a child that does not end in time gets SIGTERM,
whose handler still resolves every note.
"""

from __future__ import annotations

import multiprocessing as mp
import pickle
import queue
import signal
import threading
from dataclasses import replace
from typing import Any

from livegen.controls import ControlMessage
from livegen.session import LiveOptions
from livegen.status import Status


class EngineError(Exception):
    """The engine could not start or died; the message is the reason, in one sentence."""


class EngineProcess:
    def __init__(self, opts: LiveOptions, synth: bool = False):
        ctx = mp.get_context("spawn")
        self.opts = opts
        self.controls: Any = ctx.Queue()
        self.events: Any = ctx.Queue(maxsize=256)
        self.proc = ctx.Process(target=_child, args=(opts, synth, self.controls, self.events),
                                name="livegen-engine")
        self.last: Status | None = None
        self.error: str | None = None
        self.info: dict = {}

    def start(self, timeout: float = 60.0) -> dict:
        """Start the child and wait until its engine runs; raises EngineError with the reason."""
        self.proc.start()
        try:
            kind, payload = self.events.get(timeout=timeout)
        except queue.Empty:
            self.stop()
            raise EngineError(f"the engine did not start within {timeout:.0f} s") from None
        if kind == "error":
            self.proc.join(timeout=5)
            raise EngineError(payload)
        self.info = payload
        return payload

    def send(self, message: ControlMessage) -> None:
        self.controls.put(message)

    def latest(self) -> Status | None:
        """The newest status snapshot (None if none yet); never waits."""
        while True:
            try:
                kind, payload = self.events.get_nowait()
            except (queue.Empty, OSError, ValueError):
                return self.last
            if kind == "status":
                self.last = pickle.loads(payload)
            elif kind == "error":
                self.error = payload

    @property
    def alive(self) -> bool:
        return self.proc.is_alive()

    def stop(self, timeout: float = 5.0) -> int | None:
        if self.proc.is_alive():
            self.send(ControlMessage("quit"))
            self.proc.join(timeout)
        if self.proc.is_alive():
            self.proc.terminate()  # SIGTERM: the child still resolves its notes
            self.proc.join(timeout)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(timeout)
        return self.proc.exitcode


def _offer(events: Any, item: tuple[str, Any]) -> None:
    try:
        events.put_nowait(item)
    except queue.Full:
        pass  # the reader is behind: this snapshot is dropped, the engine never waits


def _child(opts: LiveOptions, synth: bool, controls: Any, events: Any) -> None:
    from livegen.session import open_engine, run_engine

    # never let unread snapshots keep this process from exiting (the queue's feeder thread
    # would otherwise wait for the reader to drain its pipe)
    events.cancel_join_thread()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C belongs to the TUI, which sends quit
    try:
        # pickled here, in the engine's quiet moment, not later by the queue's feeder thread
        # (which would take the GIL from the worker at any time)
        engine, opened = open_engine(
            opts, on_status=lambda s: _offer(events, ("status", pickle.dumps(s))))
    except Exception as exc:  # bad preset, model or port: one sentence back to the TUI
        events.put(("error", str(exc)))
        return

    def read_controls() -> None:
        while not stop.is_set():
            try:
                message = controls.get(timeout=0.2)
            except queue.Empty:
                continue
            except (OSError, EOFError, ValueError):
                stop.set()
                return
            engine.control(message)
            if message.kind == "quit":
                return

    threading.Thread(target=read_controls, daemon=True).start()
    events.put(("ready", {"ports": [f"{p.direction} {p.name!r}" for p in opened],
                          "voices": [v.name for v in engine.acc.voices]}))
    run_engine(engine, opened, replace(opts, synth=synth or opts.synth), stop.is_set)
