"""The engine in its own process, for the control panel (docs/ARCHITECTURE.md, "Processes").

The TUI never holds the GIL the hot path needs: the engine runs in a child process that owns
the ports, model, clock and notes. Controls go in through one queue; status snapshots (~30 Hz)
come out through another, offered without waiting (a full queue drops the snapshot, never
blocks the engine). Stopping sends `quit`; a child that does not end in time gets SIGTERM,
whose handler still resolves every note, and one that still does not end (hung) is killed, so
quitting never waits more than about a second.

Every way the panel can go ends the engine's notes: SIGTERM, SIGHUP (a closed terminal or ssh
session) and SIGINT-free quitting all set the engine's stop flag, so its loop ends with
note-offs, CC64=0, CC123 and CC120; the death of the panel's process (SIGKILL included) is
noticed by a watcher thread within `PARENT_CHECK_S` (through the parent's sentinel, which the
kernel closes when the parent's process ends) and does the same. The child's stderr goes to a
log file (`log_path`, in the user data folder) so that "ended with status 1" can say why.
"""

from __future__ import annotations

import contextlib
import faulthandler
import multiprocessing as mp
import os
import pickle
import queue
import signal
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from livegen.controls import ControlMessage
from livegen.paths import user_data
from livegen.session import LiveOptions
from livegen.status import Status

PARENT_CHECK_S = 0.2  # how often the child checks that the panel's process lives
QUIT_S = 0.6  # a quitting engine gets this long to end its notes before SIGTERM
TERM_S = 0.3  # and this long after SIGTERM before it is killed
LOGS_KEPT = 10  # engine log files kept in the logs folder


class EngineError(Exception):
    """The engine could not start or died; the message is the reason, in one sentence."""


class EngineProcess:
    def __init__(self, opts: LiveOptions, synth: bool = False):
        ctx = mp.get_context("spawn")
        self.opts = opts
        self.controls: Any = ctx.Queue()
        self.events: Any = ctx.Queue(maxsize=256)
        self.log_path = new_log_path()
        self.proc = ctx.Process(target=_child, name="livegen-engine",
                                args=(opts, synth, self.controls, self.events, self.log_path))
        self.last: Status | None = None
        self.error: str | None = None
        self.info: dict = {}

    def start(self, timeout: float = 60.0) -> dict:
        """Start the child and wait until its engine runs; raises EngineError with the reason."""
        self.proc.start()
        # This process never writes snapshots: closing its copy of the queue's write end means
        # a child that dies mid-write leaves the reader an end of file, not a read that waits
        # forever for the rest of the message.
        self.events._writer.close()
        deadline = time.monotonic() + timeout
        while True:
            try:
                kind, payload = self.events.get(timeout=0.2)
                break
            except queue.Empty:
                if not self.proc.is_alive():
                    self.proc.join(1.0)
                    tail = self.log_tail()
                    raise EngineError(f"the engine process ended with status "
                                      f"{self.proc.exitcode} while starting"
                                      + (f"; its log {self.log_path} ends: {tail}" if tail
                                         else "")) from None
                if time.monotonic() > deadline:
                    self.stop()
                    raise EngineError(f"the engine did not start within {timeout:.0f} s"
                                      ) from None
            except (EOFError, OSError):
                self.proc.join(1.0)
                raise EngineError(f"the engine process ended with status {self.proc.exitcode} "
                                  "while starting") from None
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
            except (queue.Empty, EOFError, OSError, ValueError):  # EOF: the child is gone
                return self.last
            if kind == "status":
                self.last = pickle.loads(payload)
            elif kind == "error":
                self.error = payload

    @property
    def alive(self) -> bool:
        return self.proc.is_alive()

    @property
    def exitcode(self) -> int | None:
        return self.proc.exitcode

    def stop(self, timeout: float = QUIT_S) -> int | None:
        """Quit, then SIGTERM (the child still resolves its notes), then kill a hung child;
        the exit code (negative: the signal that ended it)."""
        if self.proc.is_alive():
            with contextlib.suppress(OSError, ValueError):  # a queue already closed
                self.send(ControlMessage("quit"))
            self.proc.join(timeout)
        if self.proc.is_alive():
            self.proc.terminate()
            self.proc.join(TERM_S)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(1.0)
        return self.proc.exitcode

    def log_tail(self) -> str | None:
        """The last line the engine wrote to its log, if any."""
        return log_tail(self.log_path)


def _offer(events: Any, item: tuple[str, Any]) -> None:
    try:
        events.put_nowait(item)
    except queue.Full:
        pass  # the reader is behind: this snapshot is dropped, the engine never waits


def new_log_path() -> Path:
    """A fresh log file name for an engine process; the oldest logs beyond LOGS_KEPT go."""
    folder = user_data() / "logs"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        old = sorted(folder.glob("engine-*.log"))
        for stale in old[:max(0, len(old) - LOGS_KEPT + 1)]:
            stale.unlink(missing_ok=True)
    except OSError:
        pass  # the log is a help, never a reason not to play
    return folder / f"engine-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"


def log_tail(path: Path) -> str | None:
    try:
        with open(path, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 4096))
            lines = f.read().decode("utf-8", "replace").strip().splitlines()
    except OSError:
        return None
    return lines[-1].strip() if lines else None


def _log_to(path: Path) -> None:
    """Send this process's stderr (and Python's fault dumps) to `path`."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    except OSError:
        return
    os.dup2(fd, 2)
    os.close(fd)
    sys.stderr = open(2, "w", buffering=1, encoding="utf-8", errors="replace", closefd=False)
    faulthandler.enable(sys.stderr)


def _die_with_parent(stop: threading.Event) -> None:
    """End the engine (with its notes) when the panel's process is gone, however it went.
    (Linux's PR_SET_PDEATHSIG is not used: it fires when the *thread* that started the child
    ends, and the panel starts the engine from a short-lived thread.)"""
    parent = mp.parent_process()

    def watch() -> None:
        while not stop.wait(PARENT_CHECK_S):
            if parent is not None and not parent.is_alive():
                print("livegen engine: the panel's process is gone; ending every note",
                      file=sys.stderr)
                stop.set()

    threading.Thread(target=watch, name="livegen-parent-watch", daemon=True).start()


def _child(opts: LiveOptions, synth: bool, controls: Any, events: Any, log_path: Path) -> None:
    _log_to(log_path)
    # never let unread snapshots keep this process from exiting (the queue's feeder thread
    # would otherwise wait for the reader to drain its pipe)
    events.cancel_join_thread()
    stop = threading.Event()

    def on_signal(number: int, _frame: Any) -> None:
        print(f"livegen engine: {signal.Signals(number).name}: ending every note",
              file=sys.stderr)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, on_signal)  # the terminal or ssh session went away
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C belongs to the TUI, which sends quit
    _die_with_parent(stop)
    from livegen.session import open_engine, run_engine

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
    # Every note is resolved, the recording closed, the ports closed: skip the interpreter's
    # teardown, which took ~2 s with torch loaded (measured with bench/startstop.py).
    sys.stderr.flush()
    os._exit(0)
