"""The live engine over a real JACK dummy server: ports, clock, follow window, takeover,
floods, hygiene, port loss and signals. Timings are taken in process (the engine's own
timestamps of arrivals and sends), as the benchmark does; the test client checks what a
listening synth or DAW would receive: the tests wait, with deadlines, until it has received
everything the engine sent (`heard_everything`) before they check that nothing is left hanging.

Every test here is in the `jack` layer (`pytest -m "not jack"` leaves them out)."""

from __future__ import annotations

import bisect
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import JackTestClient

from livegen.engine import Engine
from livegen.frames import Frame
from livegen.midi import ports
from livegen.model.runtime import Runtime
from livegen.settings import Settings, TakeoverSettings, TimingSettings, VoiceSettings
from tests.helpers import channels_with_cc, left_sounding, wait_for

MODEL = Path(__file__).resolve().parents[2] / "models" / "chorale.pt"

pytestmark = pytest.mark.jack


class EngineThread:
    """How long the OS kept the engine's thread waiting for a processor while it could run.

    Sampled by that thread itself (it polls, sends and plays): the run-queue wait Linux counts
    per thread (the second field of /proc/thread-self/schedstat, in ns), at a perf_counter time.
    On a machine with CPU to spare it stays near zero; beside CPU hogs a normal thread waits
    milliseconds now and then, which no program can help. A latency bound is checked on what
    is left after that wait (`kept_waiting`). Where the counter cannot be read it stays zero,
    and the bounds are on the plain wall-clock latency."""

    GAP_S = 0.0001  # polls closer together than this are not sampled (a spinning engine)

    def __init__(self) -> None:
        self.times: list[float] = []
        self.waited: list[float] = []
        self._fd: int | None = None

    def _read(self) -> float:
        if self._fd is None:
            try:
                self._fd = os.open("/proc/thread-self/schedstat", os.O_RDONLY)
            except OSError:
                self._fd = -1
        if self._fd < 0:
            return 0.0
        return int(os.pread(self._fd, 100, 0).split()[1]) / 1e9

    def sample(self, force: bool = True) -> float:
        """Note the wait so far, now; perf_counter() now. Called by the engine's thread."""
        now = time.perf_counter()
        if force or not self.times or now - self.times[-1] >= self.GAP_S:
            waited = self._read()
            self.times.append(now)
            self.waited.append(waited)
        return now

    def kept_waiting(self, start: float, end: float) -> float:
        """The run-queue wait of the engine's thread after `start` up to `end` (a sample's time),
        at least: the wait since the last sample before `start`, less the time up to `start`."""
        i = bisect.bisect_right(self.times, start) - 1
        j = bisect.bisect_right(self.times, end) - 1
        if i < 0 or j <= i:
            return 0.0
        return max(0.0, self.waited[j] - self.waited[i] - (start - self.times[i]))

    def close(self) -> None:
        if self._fd is not None and self._fd >= 0:
            os.close(self._fd)


class Logged:
    """Wraps a port to timestamp what passes (in process, perf_counter), sampling `thread`."""

    def __init__(self, port, thread: EngineThread):
        self.port = port
        self.thread = thread
        self.log: list[tuple[float, list[int]]] = []

    def poll(self, limit=512):
        got = self.port.poll(limit)
        self.thread.sample(force=bool(got))
        self.log.extend((t, list(m)) for m, t in got)
        return got

    def send(self, message):
        ok = self.port.send(message)
        self.log.append((self.thread.sample(), list(message)))
        return ok

    def __getattr__(self, name):
        return getattr(self.port, name)


CLOCK_SOURCE = """
import json, os, sys, time
import rtmidi
out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, sys.argv[1])
index = next(i for i, name in enumerate(out.get_ports()) if sys.argv[2] in name)
out.open_port(index, "clock out")
try:  # as a DAW's or a drum machine's clock runs, where this machine allows it
    os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
except (AttributeError, OSError):
    pass
print("ready", flush=True)
for line in sys.stdin:
    sent = []
    for at, message in json.loads(line):
        while (left := at - time.perf_counter()) > 0:
            time.sleep(left)
        sent.append(time.perf_counter())
        out.send_message(message)
    print(json.dumps(sent), flush=True)
time.sleep(0.2)  # a JACK graph change settles before its port closes (tests/conftest.py)
out.close_port()
out.delete()
"""


class ClockSource:
    """A MIDI clock source in a process of its own, connected to the port containing `to`: it
    sends messages at given perf_counter() times (CLOCK_MONOTONIC on Linux: one clock for every
    process), with realtime scheduling where this machine allows it, and says when it sent each.
    A sender in the test process shares the GIL with the engine's thread: on a busy machine its
    ticks went out milliseconds late now and then, which the follower may take for a lost tick
    (livegen.midi.clock), and which a DAW's clock does not do."""

    def __init__(self, tester: JackTestClient, to: str):
        self.proc = subprocess.Popen(
            [sys.executable, "-c", CLOCK_SOURCE, f"clock-{os.getpid()}", to],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.stdin, self.stdout = self.proc.stdin, self.proc.stdout
        try:
            assert self.stdout.readline().startswith("ready"), "the clock source did not start"
            tester.sync()  # its connection to `to` is in force
        except BaseException:
            self.close()
            raise

    def play(self, schedule: list[tuple[float, list[int]]]) -> list[float]:
        """Send each message at its time; when each was sent."""
        self.stdin.write(json.dumps(schedule) + "\n")
        self.stdin.flush()
        line = self.stdout.readline()
        assert line, "the clock source ended"
        return json.loads(line)

    def close(self) -> None:
        self.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.stdout.close()

    def __enter__(self) -> ClockSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class LiveRig:
    """An Engine on real JACK ports, run in a thread, with logging wrappers around its ports."""

    def __init__(self, settings: Settings, input_name: str | None = None):
        api = ports.resolve_api("jack")
        self.raw_in = ports.open_input(input_name, api)
        self.raw_out = ports.open_output(None, api)
        self.stats = EngineThread()
        self.inp, self.out = Logged(self.raw_in, self.stats), Logged(self.raw_out, self.stats)
        self.engine = Engine(settings, Runtime(MODEL), self.inp, self.out, seed=3,
                             watches=[ports.PortWatch(self.raw_in), ports.PortWatch(self.raw_out)])
        self.emitted: list[tuple[int, tuple[int, ...]]] = []  # (step, human onsets)
        self.emit_times: list[float] = []  # when each step was played (before its sends)

        def spy(step: int, frame: Frame) -> None:
            self.emit_times.append(self.stats.sample())
            self.emitted.append((step, frame.onsets))

        self.engine.on_play = spy
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.engine.run, args=(self.stop.is_set,))

    def __enter__(self):
        # the engine runs in a thread of the test process here (the product runs it in its own
        # process): switch threads often so the test client's sends are not held up
        self.switch = sys.getswitchinterval()
        sys.setswitchinterval(0.0002)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(5)
        sys.setswitchinterval(self.switch)
        self.raw_in.close()
        self.raw_out.close()
        self.stats.close()

    def note_ons(self, channels=(1, 2, 3)):
        return [(t, m) for t, m in self.out.log
                if m[0] & 0xF0 == 0x90 and m[2] > 0 and m[0] & 15 in channels]

    def sent(self) -> list[bytes]:
        """Every message the engine has sent so far."""
        return [bytes(m) for _, m in list(self.out.log)]


def heard_everything(rig: LiveRig, listener: JackTestClient, got: list[bytes] | None = None,
                     timeout: float = 10.0) -> list[bytes]:
    """Receive (into `got`) until the listener has received everything the engine has sent so
    far: what it received since it connected is then the tail of what was sent (JACK keeps the
    order). The positive marker a check that nothing is left hanging waits for."""
    got = [] if got is None else got

    def caught_up() -> bool:
        got.extend(m for m, _ in listener.receive(100_000, timeout=0.01))
        sent = rig.sent()
        return bool(got) and got == sent[-len(got):]

    try:
        wait_for(caught_up, timeout, "the listener to receive everything the engine sent",
                 interval=0)
    except AssertionError as exc:
        sent = rig.sent()
        raise AssertionError(
            f"{exc}: it received {len(got)} of the {len(sent)} messages sent; the last received "
            f"{got[-3:]}, the last sent {sent[-3:]}; not received (counted from the end of what "
            f"was sent) {_not_received(got, sent)[:5]}; the output port dropped "
            f"{rig.raw_out.dropped}; ports {rig.engine.port_state}; the engine's last messages "
            f"{list(rig.engine.messages)[-3:]}") from None
    return got


def _not_received(got: list[bytes], sent: list[bytes]) -> list[tuple[int, bytes]]:
    """The messages sent, after the first one received, that were not received, as (position
    from the end of `sent`, message): JACK keeps the order, so `got` is matched from the end."""
    missing: list[tuple[int, bytes]] = []
    i = len(got) - 1
    for j in range(len(sent) - 1, -1, -1):
        if i < 0:
            break
        if sent[j] == got[i]:
            i -= 1
        else:
            missing.append((len(sent) - j, sent[j]))
    return missing


def wait_for_or_none(predicate: Callable[[], object], timeout: float) -> bool:
    """Whether `predicate` came true within `timeout` seconds."""
    try:
        wait_for(predicate, timeout)
    except AssertionError:
        return False
    return True


def settings(**timing) -> Settings:
    return Settings(
        name="test",
        voices=[VoiceSettings("alto", channel=2), VoiceSettings("tenor", channel=3),
                VoiceSettings("bass", channel=4)],
        timing=TimingSettings(**({"bpm": 120.0, "follow_ms": 0.0} | timing)))


def median(values: list[float]) -> float:
    return statistics.median(values)


def late_by(wall: list[float], own: list[float]) -> str:
    """For a failed latency bound: the latencies (ms), and for each step measured what was left
    after the time the OS kept the engine's thread waiting for a processor."""
    return (f"latencies {[round(x * 1000, 2) for x in wall]} ms; per step, less the OS's "
            f"run-queue wait: {[round(x * 1000, 2) for x in own]} ms")


def wait_until(t: float) -> None:
    """Sleep until perf_counter() `t`, in one sleep: each wake-up of this thread takes the GIL
    from the engine's thread (in this process here), and on a busy machine it may then wait for
    a processor while the engine waits for the GIL."""
    while (left := t - time.perf_counter()) > 0:
        time.sleep(left)


def test_melody_gets_accompaniment_at_the_expected_steps(jack_client):
    tester = jack_client()
    with LiveRig(settings()) as rig:
        tester.connect_output("livegen in")
        tester.connect_input("livegen out")
        clock = rig.engine.transport.clock
        start = rig.engine.transport.step + 4
        melody = [(start + 4 * i, p) for i, p in enumerate([72, 74, 76, 77, 79, 77])]
        for step, pitch in melody:
            # early, in the middle of the step's pre-window (the last half of the step before):
            # a loaded machine may delay the note by a few ms but not out of the window
            wait_until(clock.step_time(step) - 0.3 * clock.step_length)
            tester.send([0x90, pitch, 90])
            wait_until(clock.step_time(step) + 0.3 * clock.step_length)
            tester.send([0x80, pitch, 0])
        wait_until(clock.step_time(start + 26))
    got = heard_everything(rig, tester)  # after the engine stopped: nothing may hang
    heard = {(s, o) for s, o in rig.emitted if o}
    assert heard == {(s, (p,)) for s, p in melody}
    ons = rig.note_ons()
    assert ons, (f"no accompaniment in {len(rig.emitted)} steps (the engine skipped "
                 f"{rig.engine.stats.skipped_steps}); it sent {rig.sent()}")
    # on the grid: every note-on in the first quarter of a step, typically within 1 ms of its
    # boundary (the bound is on the median, and on what is left after the time the OS kept the
    # engine from running: a busy machine may preempt any single send)
    errors, firsts, own = [], [], []
    for t, _ in ons:
        k = int((t - clock.step_time(0)) // clock.step_length)
        errors.append(t - clock.step_time(k))
        if k not in firsts:  # a step's first note-on: its notes go out together
            firsts.append(k)
            own.append(errors[-1] - rig.stats.kept_waiting(clock.step_time(k), t))
    assert all(0 <= e < clock.step_length / 4 for e in errors)
    assert median(own) < 0.002, late_by(errors, own)
    assert any(m[0] & 0xF0 == 0x90 and m[2] > 0 for m in got), "the listener heard nothing"
    assert left_sounding(got) == set()


@pytest.mark.parametrize("bpm", [100, 140])
def test_midi_clock_follow_stop_continue_and_song_position(jack_client, bpm):
    tester = jack_client()
    with LiveRig(settings(clock="midi")) as rig:
        tester.connect_input("livegen out")
        with ClockSource(tester, "livegen in") as source:
            tick = 60.0 / bpm / 24
            now = time.perf_counter()
            t0 = now + 0.1
            schedule = [(now, [0xFA])]
            for k in range(24 * 16):  # four bars
                schedule.append((t0 + k * tick, [0xF8]))
                if k % 24 == 1:
                    schedule.append((t0 + k * tick, [0x90, 72 + (k // 24) % 5, 90]))
                if k % 24 == 20:
                    schedule.append((t0 + k * tick, [0x80, 72 + (k // 24) % 5, 0]))
            sent = source.play(schedule)
            tick_sent = [at for (_, m), at in zip(schedule, sent, strict=True) if m == [0xF8]]
            try:
                wait_for(lambda: len(rig.emitted) >= 63, 5, "the steps of four bars")
            except AssertionError as exc:
                ticks = sum(1 for _, m in rig.inp.log if m == [0xF8])
                late = sorted(at - (t0 + k * tick) for k, at in enumerate(tick_sent))[-3:]
                raise AssertionError(
                    f"{exc}: steps {[s for s, _ in rig.emitted]}; {ticks} of {len(tick_sent)} "
                    f"ticks arrived, the follower counted "
                    f"{rig.engine.transport.follower.missed_ticks} missing; the latest sends "
                    f"were {[round(x, 4) for x in late]} s late; the engine's messages "
                    f"{list(rig.engine.messages)[-3:]}") from None
            steps = [s for s, _ in rig.emitted]
            assert steps == list(range(len(steps))) and len(steps) >= 63  # every step, in order
            arrivals = sorted(t for t, m in rig.inp.log if m == [0xF8])
            ons = rig.note_ons()
            assert ons
            delays, own = [], []
            played = set()  # the steps whose first note-on was measured
            for t, _ in ons:
                k = max(i for i, e in enumerate(rig.emit_times) if e <= t)
                # never before the tick that starts its step (every 6th) was sent ...
                assert t >= tick_sent[6 * steps[k]], (
                    f"step {steps[k]} played {tick_sent[6 * steps[k]] - t:.4f} s before its tick "
                    f"was sent; {len(arrivals)} of {len(tick_sent)} ticks arrived, the follower "
                    f"counted {rig.engine.transport.follower.missed_ticks} missing")
                # ... and soon after the tick that set it off arrived (found by time, not by
                # count: a loaded machine may lose a tick, which the follower makes up for);
                # measured on a step's first note-on: its notes go out together, and one
                # preempted step would count as many
                if k in played:
                    continue
                played.add(k)
                began = max(a for a in arrivals if a <= rig.emit_times[k])
                delays.append(t - began)
                own.append(delays[-1] - rig.stats.kept_waiting(began, t))
            assert median(own) < 0.002, late_by(delays, own)
            assert rig.engine.transport.follower.bpm == pytest.approx(bpm, rel=0.03)
            source.play([(time.perf_counter(), [0xFC])])
            wait_for(lambda: not rig.engine.transport.running and not rig.engine.ledger, 5,
                     "the stop to end every note")
            assert left_sounding(heard_everything(rig, tester)) == set()
            # Song Position Pointer to 16th 40 (bar 3, beat 3), then Continue
            n = len(rig.emitted)
            now = time.perf_counter()
            source.play([(now, [0xF2, 40, 0]), (now, [0xFB])]
                        + [(now + 0.01 + k * tick, [0xF8]) for k in range(13)])
            wait_for(lambda: len(rig.emitted) >= n + 2, 5, "two steps after Continue")
            assert [s for s, _ in rig.emitted[n:]][:2] == [40, 41]


def test_follow_window_plays_right_after_a_late_note(jack_client):
    tester = jack_client()
    # a window well beyond the 15 ms lateness, so that a loaded machine delaying the note a
    # little more does not take it out of the window
    with LiveRig(settings(follow_ms=60.0, follow_threshold=0.0)) as rig:
        tester.connect_output("livegen in")
        clock = rig.engine.transport.clock
        lates = []
        for i in range(4):
            step = rig.engine.transport.step + 8
            wait_until(clock.step_time(step) + 0.015)  # 15 ms late on the beat
            lates.append((step, tester.send([0x90, 74 + i, 90])))
            time.sleep(0.05)  # paces the melody
            tester.send([0x80, 74 + i, 0])
        wait_for(lambda: any(s == lates[-1][0] for s, _ in rig.emitted), 5, "the last step")
    arrivals = {m[1]: t for t, m in rig.inp.log if m[0] & 0xF0 == 0x90 and m[2] > 0}
    waits, own = [], []
    for i, (step, sent_at) in enumerate(lates):
        assert 74 + i in arrivals, f"the note {74 + i} never reached the engine"
        arrived = arrivals[74 + i]
        k = [s for s, _ in rig.emitted].index(step)
        assert rig.emitted[k][1] == (74 + i,), (
            f"the late note is not in its step's frame: sent {sent_at - clock.step_time(step):.4f}"
            f" s, arrived {arrived - clock.step_time(step):.4f} s after the boundary")
        emitted_at = rig.emit_times[k]
        assert emitted_at >= arrived, "the step was emitted before the late note"
        waits.append(emitted_at - arrived)
        own.append(waits[-1] - rig.stats.kept_waiting(arrived, emitted_at))
        early = [t for t, _ in rig.note_ons() if clock.step_time(step) <= t < arrived]
        assert early == [], "accompaniment came before the late note"
    assert median(own) < 0.002, late_by(waits, own)


def test_takeover_after_silent_bars_and_hand_back(jack_client):
    tester = jack_client()
    s = replace(settings(bpm=240.0), takeover=TakeoverSettings(enabled=True, bars=1, channel=1))
    with LiveRig(s) as rig:
        tester.connect_output("livegen in")
        tester.connect_input("livegen out")
        tester.send([0x90, 72, 90])
        time.sleep(0.05)  # a short note
        tester.send([0x80, 72, 0])
        wait_for(lambda: rig.engine.takeover, 10, "a takeover after a silent bar")
        wait_for(lambda: rig.note_ons(channels=(0,)), 5, "the model to play the melody")
        back = tester.send([0x90, 76, 90])
        wait_for(lambda: not rig.engine.takeover, 5, "the hand-back")
        played = len(rig.emitted)  # the marker: the engine played four more steps
        wait_for(lambda: len(rig.emitted) >= played + 4, 5, "four steps after the hand-back")
        later = [t for t, _ in rig.note_ons(channels=(0,)) if t > back + 0.002]
        assert later == []
        tester.send([0x80, 76, 0])
    got = heard_everything(rig, tester)
    assert not any(ch == 1 for ch, _ in left_sounding(got))


def test_a_flood_of_5000_messages_a_second_for_2_seconds(jack_client):
    tester = jack_client()
    with LiveRig(settings()) as rig:
        tester.connect_output("livegen in")
        tester.connect_input("livegen out")
        sent = 0
        got: list[bytes] = []  # what the listener heard, read as it goes (its queue is finite)
        t0 = time.perf_counter()
        for i in range(10000):
            wait_until(t0 + i / 5000)
            pitch = 60 + i % 24
            kind = i % 4
            message = ([0x90, pitch, 80] if kind == 0 else [0x80, pitch, 0] if kind == 1
                       else [0xB0, 1, i % 128] if kind == 2 else [0xB0, 64, 127 * (i % 8 < 4)])
            tester.send(message)
            sent += 1
            if i % 250 == 249:
                got += [m for m, _ in tester.receive(4096, timeout=0.0005)]

        # the marker: a note after the flood, taken once the flood before it was read (sent
        # again while the engine's full input queue still drops what comes)
        def marker_taken() -> bool:
            nonlocal sent
            tester.send([0x90, 100, 90])
            sent += 1
            return wait_for_or_none(lambda: 100 in rig.engine.filter.held(), 0.1)

        wait_for(marker_taken, 15, "the note after the flood", interval=0)
        tester.send([0x80, 100, 0])
        assert rig.thread.is_alive()
        c = rig.engine.filter.counters
        assert c.messages + c.dropped_queue > 0 and c.messages <= sent
        assert rig.engine.status().drops.queue == c.dropped_queue
    assert left_sounding(heard_everything(rig, tester, got)) == set()
    assert not rig.engine.ledger


def test_input_hygiene_on_the_wire(jack_client):
    tester = jack_client()
    with LiveRig(settings()) as rig:
        tester.connect_output("livegen in")
        f = rig.engine.filter
        tester.send([0xF0, 0x7E, 0x7F, 0x06, 0x01, 0xF7])  # SysEx identity request
        tester.send([0xFE])  # active sensing
        tester.send([0x90, 60])  # too short
        tester.send([0x3C, 0x40])  # data bytes with no status
        for i in range(501):  # a sustain pedal flood, ending with the pedal up
            tester.send([0xB0, 64, 127 if i % 2 else 0])
        tester.send([0x90, 67, 100])
        wait_for(lambda: 67 in f.held(), 5, "the note-on")
        tester.send([0x90, 67, 0])  # velocity 0 = note-off
        wait_for(lambda: 67 not in f.held(), 5, "the note-on with velocity 0 to end it")
        # SysEx and active sensing are dropped inside RtMidi (livegen.midi.ports); the two
        # malformed messages reach the filter and are counted and dropped
        assert f.counters.messages == 2 + 501 + 2
        assert f.counters.malformed == 2 and f.counters.notes == 1
        assert rig.thread.is_alive()


def test_input_port_vanishes_and_returns(jack_client):
    keyboard = jack_client("keyboard")
    keyboard.virtual_output("keys")
    listener = jack_client("listener")
    with LiveRig(settings(), input_name="keys") as rig:
        # in force when this returns, as is every connection made before: the engine's from "keys"
        listener.connect_input("livegen out")
        keyboard._out.send_message([0x90, 72, 90])
        time.sleep(0.5)  # the voices may start under it
        keyboard.close_output()  # unplugged
        # notes resolved when the port went (the worker marks the port, then releases)
        wait_for(lambda: rig.engine.port_state["in"] == "missing" and not rig.engine.ledger, 8,
                 "the input port to be missing and every note released")
        keyboard.virtual_output("keys")  # plugged back in
        wait_for(lambda: rig.engine.port_state["in"] == "open", 8, "the input port to return")
        keyboard.sync()  # the engine's new connection from "keys" is in force
        n = len(rig.inp.log)
        keyboard._out.send_message([0x90, 74, 90])
        wait_for(lambda: any(m[:2] == [0x90, 74] for _, m in rig.inp.log[n:]), 5,
                 "input after reconnecting")
        keyboard._out.send_message([0x80, 74, 0])
    assert left_sounding(heard_everything(rig, listener)) == set()


def _headless(extra: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "livegen.cli", "run", "--headless",
                             "--bpm", "160", *extra], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ))


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signals_while_notes_sound_end_every_note(jack_client, sig):
    proc = _headless([])
    try:
        tester = jack_client()
        deadline = time.perf_counter() + 30
        while True:
            try:
                tester.connect_output("livegen in")
                tester.connect_input("livegen out")
                break
            except AssertionError:
                if proc.poll() is not None:
                    _, err = proc.communicate()
                    raise AssertionError(f"the headless engine ended with status "
                                         f"{proc.returncode} before it offered its ports: "
                                         f"{err.strip()[-2000:]}") from None
                if time.perf_counter() > deadline:
                    raise
                time.sleep(0.2)  # polls for the engine's ports
        got: list[bytes] = []
        deadline = time.perf_counter() + 20
        pitches = [72, 76, 79, 77, 74, 71]
        while not left_sounding(got) and time.perf_counter() < deadline:  # until voices sound
            tester.send([0x90, pitches[len(got) % len(pitches)], 90])
            got += [m for m, _ in tester.receive(5000, timeout=0.25)]
        assert left_sounding(got), "nothing was sounding before the signal"
        proc.send_signal(sig)
        assert proc.wait(20) == 0

        def ended() -> bool:  # the marker: CC120 on every channel, the last thing it sends
            got.extend(m for m, _ in tester.receive(5000, timeout=0.01))
            return {1, 2, 3, 4} <= channels_with_cc(got, 120)

        wait_for(ended, 5, "the engine's last CC120s", interval=0)
        assert left_sounding(got) == set()
        ccs = {(m[1], m[2]) for m in got if m[0] & 0xF0 == 0xB0}
        assert {(64, 0), (123, 0), (120, 0)} <= ccs
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def test_a_corrupt_model_gives_one_sentence_and_a_non_zero_exit(jack_server, tmp_path):
    bad = tmp_path / "broken.pt"
    bad.write_bytes(MODEL.read_bytes()[:5000])
    proc = _headless(["--model", str(bad)])
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    lines = [line for line in err.splitlines() if line.startswith("livegen:")]
    assert len(lines) == 1 and str(bad) in lines[0]
    assert "Traceback" not in err
