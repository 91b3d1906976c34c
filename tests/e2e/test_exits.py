"""Every way the panel can go ends every note the engine sounds (issue: SIGKILL of the panel,
a closed terminal's SIGHUP, a quit that must not wait for a hung engine). A stand-in for the
panel (a process that starts the engine process exactly as the panel does) is killed while
voices sound; a listening client on the JACK server must then receive the note-offs and
CC64=0/CC123/CC120 within a second."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid

import pytest

from livegen.status import Status
from tests.helpers import left_sounding, wait_for

pytestmark = [pytest.mark.jack, pytest.mark.timeout(120)]

PANEL = """
import sys, time
from livegen.process import EngineProcess
from livegen.session import LiveOptions
engine = EngineProcess(LiveOptions(midi_api="jack", seed=1))
engine.start()
print("ready", engine.proc.pid, engine.log_path, flush=True)
while True:
    engine.latest()
    time.sleep(0.05)
"""


def start_panel(client: str) -> tuple[subprocess.Popen, int, str]:
    env = dict(os.environ, LIVEGEN_CLIENT_NAME=client)
    proc = subprocess.Popen([sys.executable, "-c", PANEL], stdout=subprocess.PIPE, text=True,
                            env=env, start_new_session=True)
    assert proc.stdout is not None
    line = proc.stdout.readline().split()
    assert line and line[0] == "ready", f"the engine did not start: {line}"
    return proc, int(line[1]), line[2]


def play_until_voices_sound(tester) -> list[bytes]:
    got: list[bytes] = []
    pitches = [72, 76, 79, 77, 74, 71]
    deadline = time.monotonic() + 20
    i = 0
    while not left_sounding(got):
        assert time.monotonic() < deadline, "no voice sounded"
        tester.send([0x90, pitches[i % len(pitches)], 90])
        got += [m for m, _ in tester.receive(5000, timeout=0.25)]
        i += 1
    return got


def gone(pid: int, timeout: float) -> bool:
    """Whether the process has ended within `timeout`: no such process, or a zombie (it has
    exited and holds nothing; reaping an orphan is the job of the machine's init)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii") as f:
                if f.read().rpartition(")")[2].split()[0] == "Z":
                    return True
        except (OSError, IndexError):
            pass
        try:  # reap it if it is our child's child already orphaned to us
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("how", ["SIGKILL of the panel", "SIGHUP to the terminal's group"])
def test_the_panel_going_away_ends_every_note(jack_client, how: str) -> None:
    client = f"exit-{uuid.uuid4().hex[:6]}"
    proc, engine_pid, log = start_panel(client)
    try:
        tester = jack_client()
        tester.connect_output(f"{client}:livegen in")
        tester.connect_input(client)
        got = play_until_voices_sound(tester)
        if how.startswith("SIGKILL"):
            proc.kill()
        else:
            os.killpg(proc.pid, signal.SIGHUP)  # what a closed terminal does to its group
        went = time.monotonic()

        def resolved() -> bool:
            got.extend(m for m, _ in tester.receive(5000, timeout=0.05))
            ccs = {(m[1], m[2]) for m in got if m[0] & 0xF0 == 0xB0}
            return not left_sounding(got) and {(64, 0), (123, 0), (120, 0)} <= ccs

        # within a second on a quiet machine (printed); the deadline is for a loaded one
        wait_for(resolved, 10, f"every note to end (engine log {log})")
        print(f"{how}: every note ended {time.monotonic() - went:.2f} s later")
        # the panel kills a hung engine ~2 s after it quits; 10 s is for a loaded machine
        with open(log, encoding="utf-8") as f:
            said = f.read()
        assert gone(engine_pid, 10.0), f"the engine process outlived the panel; its log: {said}"
        assert "ending every note" in said
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(5)
        try:
            os.kill(engine_pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_quit_takes_under_a_second_and_a_hung_engine_is_killed(jack_server) -> None:
    from livegen.process import EngineProcess
    from livegen.session import LiveOptions

    engine = EngineProcess(LiveOptions(midi_api="jack", seed=1))
    engine.start()
    try:
        deadline = time.monotonic() + 10
        while not isinstance(engine.latest(), Status):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        began = time.monotonic()
        assert engine.stop() == 0  # quit: the engine ends its notes and exits
        assert time.monotonic() - began < 3.0  # speed: bench/startstop.py
    finally:
        engine.stop()

    hung = EngineProcess(LiveOptions(midi_api="jack", seed=1))
    hung.start()
    try:
        os.kill(hung.proc.pid, signal.SIGSTOP)  # a hung engine: answers nothing
        began = time.monotonic()
        assert hung.stop() == -signal.SIGKILL
        assert time.monotonic() - began < 3.0
    finally:
        if hung.alive:
            hung.proc.kill()
