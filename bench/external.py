"""Note -> accompaniment as a separate listening client hears it, against a Python echo floor.

    python bench/external.py [--seconds 60 | --quick] [--modes plain,osc,link]
                             [--melody folk|random] [--follow-threshold 0] [--osc-rate 4]
                             [--realtime] [--json FILE] [--keep DIR]

`bench/latency.py` times the engine from inside its own process; this bench times it from the
outside, on the transport, as a synth or a recorder would hear it. On a private JACK dummy
server (48 kHz / 128 frames, without realtime scheduling unless `--realtime`), four processes:

- the driver (this process): MIDI clock with a slow tempo swing between 120 and 150 BPM, and a
  melody played with human timing: each note, against its 16th step, half the time 0-3 ms early
  and half the time 0-15 ms late (the scheme of `bench/follow.py`). The melody is the folk
  validation set's 2/4 and 4/4 tunes (`livegen.train.data.folk_tunes`, music21's Ryan's Mammoth
  Collection, cached after the first parse), one after another, each from a bar line; or, with
  `--melody random`, a seeded random walk in 16ths and 8ths. One output port, connected to the
  engine's input, the echo's input and the listener;
- the engine: `livegen run --headless` with the shipped `chorale` preset on MIDI clock, the
  follow window on (30 ms) and, by default, `follow_threshold = 0` so that every step follows
  the player and every late onset is a sample (the shipped preset follows only where the model
  or the player's rhythm expects a note; `--follow-threshold 0.5` measures that);
- the echo: a Python client of its own, the floor: it answers each note-on the moment RtMidi
  hands it over (its callback, in its JACK client's process thread) with the same note-on on
  channel 16. What it costs is what any Python MIDI client costs on this transport;
- the listener: a client of its own, connected to the driver's, the engine's and the echo's
  outputs, stamping every message with `time.perf_counter()` in its RtMidi callback.
  `perf_counter` is CLOCK_MONOTONIC on Linux, one clock for every process on the machine, so the
  driver's send times, the listener's stamps and (with Link) the grid compare directly. (RtMidi's
  delta times were not used: they come from libjack's `jack_get_time`, which reads
  CLOCK_MONOTONIC_RAW here, a clock that NTP does not slew, so it drifts against the other.)
  The callbacks of the messages one cycle delivers run one after another, about 15 us apart.

Per onset: the engine's answer is the first note message (on or off; the ledger sends offs
before ons, in one burst) on an accompaniment channel from the step's boundary to half a step
after it; its latency is answer - max(the note as heard, the step's boundary as heard): a note
in the pre-window is answered at the boundary (the tick that begins the step, as the listener
heard it), a late one on arrival. The echo's latency is echo - note. The report gives
p50/p99/p99.9 of both and the difference of their p99, with the issue's target of at most 1 ms
above the floor. Not samples, and counted: onsets answered before the note was heard (the
step played without it: a follow failure), onsets whose step played when its follow window
ended, after the note but without it (the engine did not take the note as an onset: seen when
the transport lost the previous note's note-off, so that the skyline filter still held a
higher key), onsets whose step changed no note (the voices held), and onsets whose boundary
tick the listener did not hear. Clock ticks sent / heard by the listener / received by the
engine (`--stats`) / found missing by the engine's clock follower, note-ons sent / heard /
taken as onsets by the engine / echoed, and note-offs sent / heard tell the transport's losses
from the engine's. `--keep DIR` keeps each mode's records for a closer look.

JACK MIDI moves messages once per period (2.67 ms here): a message sent in one cycle is heard in
the next (or, when the sender's client runs after the receiver's within a cycle, in the same
one), so both figures come in steps of about a period, and the p99 difference is near 0 when
the engine answers in the same cycle as the echo for 99% of onsets, and a period when it misses
that cycle for more than 1%.

Modes, in one run for a fair comparison (each mode starts a fresh engine, echo and listener):
- plain: as above;
- osc: with `--osc-port`, and a fader sweep of `/livegen/temperature` between 0.75 and 0.85 sent
  `--osc-rate` times a second (0: the port open and idle). Every control change stales the
  frames proposed ahead for the coming step (`Accompanist.configure`), so some onsets are
  computed on arrival;
- link: `--clock link`, no MIDI clock. The driver joins the engine's Link session (through
  livegen's own `LinkClock`), swings the session's tempo as above (proposing it at each step)
  and plays the melody on the session's 16ths from a bar line, so the engine's grid and the
  player's agree as with MIDI clock. The boundary is the session's, mapped to `perf_counter` by
  the driver (no message marks it on the transport).
The osc and link p99 are compared with plain's; the target is at most 20% above.

Needs jackd (Debian's jackd2), jack_lsp and jack_connect; the link mode needs aalink
(`pip install 'livegen[link]'`); the folk tunes need music21 (`pip install -e '.[train]'`).
"""

from __future__ import annotations

import argparse
import bisect
import json
import math
import os
import random
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import rtmidi

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from jackserver import JackServer, unique_server_name  # noqa: E402

from livegen.presets import find_preset, load_preset, save_preset  # noqa: E402

LIVEGEN = [sys.executable, "-m", "livegen.cli"]
RATE, PERIOD = 48000, 128
DRIVER_CHANNEL, ECHO_CHANNEL = 0, 15  # 0-based: the player on 1, the echo on 16
BPM_LOW, BPM_HIGH = 120.0, 150.0
SWING_STEPS = 400  # steps per period of the tempo swing
LEAD_IN_STEPS = 16  # a bar of clock before the first note, for the clock follower to lock
NOTE_GAP_S = 0.005  # a note ends this long before its end step's boundary
ANSWER_BEFORE_S = 0.005  # an answer may come this long before the boundary as the driver has it
FOLLOW_MS = 30.0  # the follow window of the bench's preset
READY_S = 90.0  # longest wait for a client's ports (the engine loads its model first)
SETTLE_S = 0.5  # after connecting: a graph change settles over a cycle or two


# ---------------------------------------------------------------------------- the clients

def _die_with_parent() -> None:
    """In a child before exec: SIGTERM when this bench dies, so no client outlives it."""
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _wait_for_term() -> None:
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    print("ready", flush=True)
    while not stop.is_set():
        stop.wait(0.2)


def run_echo(client: str) -> None:
    """The floor: each note-on (and note-off) out again at once, on channel 16, from the
    RtMidi callback."""
    out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, f"{client}-out")
    out.open_virtual_port("echo out")
    inp = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, client)
    inp.ignore_types(sysex=True, timing=True, active_sense=True)
    send = out.send_message

    def on_message(event, _data=None) -> None:
        message = event[0]
        if len(message) == 3 and message[0] & 0xE0 == 0x80:
            send([(message[0] & 0xF0) | ECHO_CHANNEL, message[1], message[2]])

    inp.set_callback(on_message)
    inp.open_virtual_port("echo in")
    _wait_for_term()
    inp.close_port()
    out.close_port()


def run_listener(client: str, path: Path) -> None:
    """Stamp every message heard with perf_counter in the RtMidi callback; write them on exit
    as JSON [[time, [bytes...]], ...]."""
    heard: list[tuple[float, list[int]]] = []
    clock = time.perf_counter
    inp = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, client)
    inp.ignore_types(sysex=True, timing=False, active_sense=True)

    def on_message(event, _data=None) -> None:
        heard.append((clock(), event[0]))

    inp.set_callback(on_message)
    inp.open_virtual_port("listen in")
    _wait_for_term()
    inp.cancel_callback()
    inp.close_port()
    path.write_text(json.dumps(heard))


class Child:
    """A client process of this bench: the echo or the listener, started with `--role`."""

    def __init__(self, role: str, client: str, env: dict, out: Path | None = None) -> None:
        command = [sys.executable, __file__, "--role", role, "--client", client]
        if out is not None:
            command += ["--out", str(out)]
        self.role = role
        self.proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True,
                                     preexec_fn=_die_with_parent)
        ready, _, _ = select.select([self.proc.stdout], [], [], READY_S)
        line = self.proc.stdout.readline().strip() if ready else "nothing"
        if line != "ready":
            self.stop()
            raise SystemExit(f"the {role} client did not start (it said {line!r})")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


# ---------------------------------------------------------------------------- JACK graph

def jack_ports(server: str) -> list[str]:
    result = subprocess.run(["jack_lsp", "-s", server], capture_output=True, text=True,
                            timeout=10, env=dict(os.environ, JACK_NO_START_SERVER="1"))
    return [line.strip() for line in result.stdout.splitlines() if line.strip()]


def wait_port(server: str, name: str, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + READY_S
    while time.monotonic() < deadline:
        if name in jack_ports(server):
            return
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"the engine exited (status {proc.returncode}) before its port "
                             f"{name!r} appeared; its log is printed above")
        time.sleep(0.2)
    raise SystemExit(f"no JACK port {name!r} appeared within {READY_S:.0f} s")


def jack_connect(server: str, source: str, destination: str) -> None:
    result = subprocess.run(["jack_connect", "-s", server, source, destination],
                            capture_output=True, text=True, timeout=10,
                            env=dict(os.environ, JACK_NO_START_SERVER="1"))
    if result.returncode != 0:
        raise SystemExit(f"jack_connect {source!r} -> {destination!r} failed: "
                         f"{(result.stderr or result.stdout).strip()}")


# ---------------------------------------------------------------------------- the melody

@dataclass
class Note:
    step: int  # the step it starts on (from the driver's step 0)
    pitch: int
    end: int  # the step it ends on


def folk_melody(steps: int, seed: int) -> list[Note]:
    """The folk validation set's 2/4 and 4/4 tunes one after another, from tune `seed`, each
    starting on a bar line (its pickup before it), a bar of rest between them."""
    try:
        from livegen.train.data import folk_tunes
    except ImportError as exc:
        raise SystemExit(f"the folk tunes need music21 ({exc}): pip install -e '.[train]', or "
                         "use --melody random") from exc
    print("loading the folk tunes (music21's corpus, cached after the first parse)",
          flush=True)
    tunes = [t for t in folk_tunes() if t.beats_per_bar in (2, 4) and t.human]
    if not tunes:
        raise SystemExit("the folk set has no 2/4 or 4/4 tune; use --melody random")
    notes: list[Note] = []
    at, k = LEAD_IN_STEPS, seed % len(tunes)
    while at < steps:
        tune = tunes[k % len(tunes)]
        pickup = tune.first_downbeat
        origin = at + ((pickup + 15) // 16) * 16 - pickup  # the first downbeat on a bar line
        for n in tune.human:
            notes.append(Note(origin + n.start, n.pitch, origin + n.end))
        last = max(n.end for n in tune.human) + origin
        at = (last + 16 + 15) // 16 * 16
        k += 1
    return [n for n in notes if n.step < steps]


def random_melody(steps: int, seed: int) -> list[Note]:
    """A seeded walk on G major from G4 to G5: 16ths and 8ths, mostly by step."""
    rng = random.Random(seed)
    scale = [67, 69, 71, 72, 74, 76, 78, 79]
    notes, degree, at = [], 0, LEAD_IN_STEPS
    while at < steps:
        length = rng.choice([1, 1, 2])
        degree = max(0, min(len(scale) - 1, degree + rng.choice([-2, -1, -1, 1, 1, 2, 0])))
        notes.append(Note(at, scale[degree], at + length))
        at += length
    return notes


def tempo(step: int) -> float:
    mid, half = (BPM_LOW + BPM_HIGH) / 2, (BPM_HIGH - BPM_LOW) / 2
    return mid + half * math.sin(2 * math.pi * step / SWING_STEPS)


# ---------------------------------------------------------------------------- the driver

@dataclass
class DriveLog:
    """What the driver did, in perf_counter seconds."""

    clock: str
    boundaries: dict[int, float] = field(default_factory=dict)  # step -> boundary (as sent)
    lengths: dict[int, float] = field(default_factory=dict)  # step -> its length
    notes: list[tuple[int, int, float, float]] = field(default_factory=list)  # step, pitch,
    #   sent at, offset against the boundary
    ticks: int = 0
    offs: int = 0  # note-offs sent
    steps: int = 0


def sleep_until(t: float) -> None:
    left = t - time.perf_counter()
    if left > 0:
        time.sleep(left)


def _human(rng: random.Random, early_ms: float, late_ms: float) -> float:
    if rng.random() < 0.5:
        return rng.uniform(0.0, late_ms / 1000.0)
    return -rng.uniform(0.0, early_ms / 1000.0)


def drive(out, melody: list[Note], seconds: float, log: DriveLog, rng: random.Random,
          early_ms: float, late_ms: float, link=None) -> None:
    """Play until `seconds` have passed: MIDI clock and the melody, or (with `link`) the melody
    on the Link session's 16ths with the session's tempo swung."""
    by_step: dict[int, list[Note]] = {}
    for n in melody:
        by_step.setdefault(n.step, []).append(n)
    offs: dict[int, list[int]] = {}  # end step -> pitches to end just before its boundary
    clock = time.perf_counter
    start = clock()
    if link is None:
        # Start, and a song position of 0 with Continue as a DAW sends them: the JACK server
        # without realtime loses a message now and then, and a lost Start alone would leave the
        # engine stopped for the whole run (it would be counted as "no samples")
        out.send_message([0xFA])
        sleep_until(clock() + 0.02)
        out.send_message([0xF2, 0, 0])
        out.send_message([0xFB])
        t = clock() + 0.05
    else:
        sample = link.sample()
        bar = 16
        origin = math.ceil(4 * sample.beat_at(clock() + 0.3) / bar) * bar  # a bar line ahead
    step = 0
    while clock() - start < seconds or step < LEAD_IN_STEPS + 1:
        bpm = tempo(step)
        length = 15.0 / bpm
        if link is None:
            boundary = t
        else:
            link.propose_tempo(bpm)  # after the last step's boundary: the engine's is set
            sample = link.sample()
            boundary = sample.time_at((origin + step) / 4.0)
            length = 15.0 / sample.tempo
        events: list[tuple[float, int, list[int] | None]] = []
        for pitch in offs.pop(step, []):
            events.append((boundary - NOTE_GAP_S, 0, [0x80 | DRIVER_CHANNEL, pitch, 0]))
        for n in by_step.get(step, []):
            offset = _human(rng, early_ms, late_ms)
            events.append((boundary + offset, 1, [0x90 | DRIVER_CHANNEL, n.pitch, 90]))
            offs.setdefault(n.end, []).append(n.pitch)
        if link is None:
            tick = length / 6
            events += [(boundary + k * tick, 2, None) for k in range(6)]
        else:  # wait for the boundary, so that the next tempo change leaves this step alone
            events.append((boundary, 3, None))
        for when, kind, message in sorted(events, key=lambda e: (e[0], e[1])):
            sleep_until(when)
            sent = clock()
            if kind == 3:
                continue
            if message is None:
                out.send_message([0xF8])
                log.ticks += 1
                if when == boundary:
                    log.boundaries[step] = sent
            else:
                out.send_message(message)
                if kind == 1:
                    log.notes.append((step, message[1], sent, when - boundary))
                else:
                    log.offs += 1
        if link is not None:
            log.boundaries[step] = boundary
        log.lengths[step] = length
        if link is None:
            t = boundary + length
        step += 1
    log.steps = step
    for pitches in offs.values():
        for pitch in pitches:
            out.send_message([0x80 | DRIVER_CHANNEL, pitch, 0])
            log.offs += 1
    if link is None:
        sleep_until(t)
        out.send_message([0xFC])


def osc_sweep(port: int, rate: float, stop: threading.Event, sent: list[int]) -> None:
    """A fader moved to and fro: /livegen/temperature between 0.75 and 0.85, `rate` a second."""
    from pythonosc.udp_client import SimpleUDPClient

    client = SimpleUDPClient("127.0.0.1", port)
    k = 0
    while not stop.wait(1.0 / rate):
        phase = (k % 20) / 10.0
        client.send_message("/livegen/temperature", 0.75 + 0.1 * min(phase, 2.0 - phase))
        sent[0] += 1
        k += 1


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def join_link(link, seconds: float = 10.0) -> bool:
    """Wait for the engine to be a peer of the driver's Link session, and for the session to
    play. Measured here: the session the engine set playing comes out of the meeting stopped
    (the joining peer's start/stop state wins), so the engine's grid stops; the driver then
    sets it playing and the engine starts again on the session's next bar line. Returns
    whether the driver had to."""
    deadline = time.monotonic() + seconds
    while link.peers < 1:
        if time.monotonic() > deadline:
            raise SystemExit(f"the engine's Link session did not show up within {seconds:.0f} "
                             "s (Link peers find each other by UDP multicast: is it blocked "
                             "on this machine?)")
        time.sleep(0.05)
    time.sleep(SETTLE_S)  # the session states meet
    if link.sample().playing:
        return False
    link.propose_playing(True)
    while not link.sample().playing:
        if time.monotonic() > deadline:
            raise SystemExit("the Link session would not play")
        time.sleep(0.05)
    return True


# ---------------------------------------------------------------------------- analysis

def _first_at_or_after(times: list[float], t: float) -> int:
    return bisect.bisect_left(times, t)


def analyse(heard: list[tuple[float, list[int]]], log: DriveLog, voice_channels: set[int],
            follow_s: float) -> dict:
    """Pair what the listener heard with what the driver sent (module docstring). An answer
    that comes when the step's follow window ends (`follow_s` after the boundary, less a
    millisecond), however long after the note, played the step without it: the engine did not
    take the note as an onset, and it is counted as missed, not as a latency."""
    ticks = [t for t, m in heard if m and m[0] == 0xF8]
    offs_heard = sum(1 for _, m in heard if len(m) == 3 and m[0] & 0x0F == DRIVER_CHANNEL
                     and (m[0] & 0xF0 == 0x80 or m[0] & 0xF0 == 0x90 and m[2] == 0))
    player: dict[int, list[float]] = {}
    echo: dict[int, list[float]] = {}
    answers: list[float] = []
    for t, m in heard:
        if len(m) != 3 or m[0] & 0xE0 != 0x80:
            continue
        channel, on = m[0] & 0x0F, m[0] & 0xF0 == 0x90 and m[2] > 0
        if channel == DRIVER_CHANNEL and on:
            player.setdefault(m[1], []).append(t)
        elif channel == ECHO_CHANNEL and on:
            echo.setdefault(m[1], []).append(t)
        elif channel in voice_channels:
            answers.append(t)
    # the boundary as heard: the tick the driver sent at the boundary (MIDI), or the session's
    boundary: dict[int, float] = {}
    for step, sent in log.boundaries.items():
        if log.clock == "link":
            boundary[step] = sent
            continue
        i = _first_at_or_after(ticks, sent)
        if i < len(ticks) and ticks[i] - sent < log.lengths[step] / 12:  # half a tick
            boundary[step] = ticks[i]
    engine, floor, paired = [], [], []
    late_engine, late_floor, early_engine = [], [], []
    out = {"notes_sent": len(log.notes), "notes_heard": 0, "echoed": 0, "before_note": 0,
           "missed": 0, "no_change": 0, "no_boundary": 0}
    seen_steps: set[int] = set()
    for step, pitch, sent, _offset in log.notes:
        times = player.get(pitch, [])
        i = _first_at_or_after(times, sent)
        if i == len(times) or times[i] - sent > 0.05:
            continue
        note = times[i]
        out["notes_heard"] += 1
        e = echo.get(pitch, [])
        j = _first_at_or_after(e, note)
        echo_latency = e[j] - note if j < len(e) and e[j] - note < 0.05 else None
        if echo_latency is not None:
            out["echoed"] += 1
            floor.append(echo_latency)
        if step in seen_steps:  # a chord: the step's first note is its sample
            continue
        seen_steps.add(step)
        b = boundary.get(step)
        if b is None:
            out["no_boundary"] += 1
            continue
        k = _first_at_or_after(answers, b - ANSWER_BEFORE_S)
        if k == len(answers) or answers[k] >= b + log.lengths[step] / 2:
            out["no_change"] += 1
            continue
        answer = answers[k]
        if answer < note:
            out["before_note"] += 1
            continue
        if answer >= b + follow_s - 0.001:
            out["missed"] += 1
            continue
        latency = answer - max(note, b)
        engine.append(latency)
        if echo_latency is not None:
            paired.append(latency - echo_latency)
        if note >= b and echo_latency is not None:
            late_engine.append(latency)
            late_floor.append(echo_latency)
        elif note < b:
            early_engine.append(latency)
    out.update(ticks_sent=log.ticks, ticks_heard=len(ticks), offs_sent=log.offs,
               offs_heard=offs_heard, engine=engine, echo=floor,
               paired=paired, late_engine=late_engine, late_echo=late_floor,
               early_engine=early_engine,
               onset_steps=len(seen_steps))
    return out


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values) * 1000.0, q))


def summary(values: list[float]) -> str:
    if not values:
        return "no samples"
    return (f"n={len(values):4d}  p50 {pct(values, 50):6.3f}  p99 {pct(values, 99):6.3f}  "
            f"p99.9 {pct(values, 99.9):6.3f}  max {max(values) * 1000:6.3f} ms")


# ---------------------------------------------------------------------------- one mode

def preset_file(folder: Path, threshold: float, clock: str) -> tuple[Path, set[int]]:
    s = load_preset(find_preset("chorale"))
    timing = replace(s.timing, clock=clock, bpm=(BPM_LOW + BPM_HIGH) / 2, follow_ms=FOLLOW_MS,
                     follow_threshold=threshold, swing=0.0, humanize_ms=0.0, clock_out=False,
                     start="now")
    s = replace(s, name="external", timing=timing)
    path = folder / f"external-{clock}.toml"
    save_preset(s, path)
    channels = {v.channel - 1 for v in s.voices} | {s.takeover.channel - 1}
    return path, channels - {DRIVER_CHANNEL, ECHO_CHANNEL}


def run_mode(mode: str, args, server: JackServer, env: dict, folder: Path,
             melody: list[Note]) -> dict:
    tag = f"{os.getpid()}"
    clock = "link" if mode == "link" else "midi"
    preset, voice_channels = preset_file(folder, args.follow_threshold, clock)
    stats = folder / f"{mode}-stats.json"
    heard_path = folder / f"{mode}-heard.json"
    engine_log = folder / f"{mode}-engine.log"
    engine_env = dict(env, LIVEGEN_CLIENT_NAME=f"lgeng{tag}")
    command = [*LIVEGEN, "run", "--headless", "--preset", str(preset), "--stats", str(stats),
               "--seed", "0", "--midi-api", "jack"]
    osc_port = None
    if mode == "osc":
        osc_port = free_udp_port()
        command += ["--osc-port", str(osc_port)]
    if clock == "link":
        command += ["--clock", "link"]
    children: list[Child] = []
    link = None
    restarted = False
    out = None
    with open(engine_log, "w") as log_file:
        engine = subprocess.Popen(command, env=engine_env, stdout=log_file, stderr=log_file,
                                  preexec_fn=_die_with_parent)
    try:
        children.append(Child("echo", f"lgecho{tag}", env))
        children.append(Child("listener", f"lglisten{tag}", env, heard_path))
        out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, f"lgdrive{tag}")
        out.open_virtual_port("drive out")
        drive_port = f"lgdrive{tag}:drive out"
        engine_in, engine_out = f"lgeng{tag}:livegen in", f"lgeng{tag}-01:livegen out"
        for name in (engine_in, engine_out):
            wait_port(server.name, name, engine)
        listen = f"lglisten{tag}:listen in"
        for destination in (engine_in, f"lgecho{tag}:echo in", listen):
            jack_connect(server.name, drive_port, destination)
        jack_connect(server.name, engine_out, listen)
        jack_connect(server.name, f"lgecho{tag}-out:echo out", listen)
        time.sleep(SETTLE_S)
        log = DriveLog(clock)
        if clock == "link":
            from livegen.link import LinkClock
            link = LinkClock((BPM_LOW + BPM_HIGH) / 2, 4)
            restarted = join_link(link)
        stop = threading.Event()
        osc_sent = [0]
        sweeper = None
        if osc_port is not None and args.osc_rate > 0:
            sweeper = threading.Thread(target=osc_sweep, daemon=True,
                                       args=(osc_port, args.osc_rate, stop, osc_sent))
            sweeper.start()
        rng = random.Random(args.seed)
        drive(out, melody, args.seconds, log, rng, args.early, args.late, link)
        stop.set()
        if sweeper is not None:
            sweeper.join(2)
        time.sleep(0.5)
    finally:
        if link is not None:
            link.close()
        if engine.poll() is None:
            engine.send_signal(signal.SIGINT)
            try:
                engine.wait(30)
            except subprocess.TimeoutExpired:
                engine.kill()
                engine.wait(5)
        for child in reversed(children):
            child.stop()
        if out is not None:
            out.close_port()
            out.delete()
    if not stats.exists() or not heard_path.exists():
        print(engine_log.read_text(errors="replace")[-2000:], file=sys.stderr)
        missing = [name for name, path in (("the engine's stats", stats),
                                           ("the listener's record", heard_path))
                   if not path.exists()]
        raise SystemExit(f"mode {mode}: {' and '.join(missing)} missing (the engine exited "
                         f"with {engine.returncode})")
    data = json.loads(stats.read_text())
    heard = [(t, m) for t, m in json.loads(heard_path.read_text())]
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
        for path in (stats, heard_path, engine_log):
            shutil.copy(path, args.keep / path.name)
        (args.keep / f"{mode}-driver.json").write_text(json.dumps(
            {"clock": log.clock, "boundaries": log.boundaries, "lengths": log.lengths,
             "notes": log.notes, "ticks": log.ticks, "offs": log.offs}))
    result = analyse(heard, log, voice_channels, FOLLOW_MS / 1000.0)
    result.update(mode=mode, clock=clock, steps=log.steps, engine_stats={
        k: data[k] for k in ("onsets", "ticks", "ready", "computed", "waited_in_vain",
                             "skipped_steps", "drops")},
        in_engine=data["latency"], osc_sent=osc_sent[0], link_restarted=restarted)
    if mode == "osc":
        result["osc_open"] = "OSC control on UDP" in engine_log.read_text(errors="replace")
    return result


def report(r: dict) -> None:
    st = r["engine_stats"]
    source = "MIDI clock" if r["clock"] == "midi" else "Link session"
    extra = f", OSC messages sent {r['osc_sent']}" if r["mode"] == "osc" else ""
    print(f"[{r['mode']}] {source}, {r['steps']} steps, {r['notes_sent']} notes{extra}")
    print(f"  engine note -> accompaniment  {summary(r['engine'])}")
    print(f"  echo   note -> echo (floor)   {summary(r['echo'])}")
    if r["engine"] and r["echo"]:
        diff = pct(r["engine"], 99) - pct(r["echo"], 99)
        print(f"  p99 engine - echo: {diff:+.3f} ms (target: at most +1 ms)")
    if r["paired"]:
        period = PERIOD / RATE
        later = sum(d >= period * 0.75 for d in r["paired"])
        print(f"  same onset, engine - echo     {summary(r['paired'])}; a period or more "
              f"later: {later}")
    if r["late_engine"]:
        print(f"  late onsets only: engine p99 {pct(r['late_engine'], 99):.3f} ms, echo p99 "
              f"{pct(r['late_echo'], 99):.3f} ms (n={len(r['late_engine'])})")
    print(f"  in the engine (onset -> send, --stats) {summary(r['in_engine'])}")
    if r["early_engine"]:
        hint = (f"; a tick is {1000 * 60 / BPM_HIGH / 24:.1f}-{1000 * 60 / BPM_LOW / 24:.1f} "
                "ms: a tick more means the engine's grid is a tick behind the driver's"
                if r["clock"] == "midi" else "")
        print(f"  early onsets (heard before the boundary) answered p50 "
              f"{pct(r['early_engine'], 50):.3f} ms after it (n={len(r['early_engine'])}){hint}")
    if r["clock"] == "midi":
        found = st["drops"].get("missed_ticks", 0)
        unfound = r["ticks_sent"] - st["ticks"] - found
        unfound_text = ""
        if unfound > 0:
            unfound_text = (f"; lost and not found {unfound}: the engine's grid ended that many "
                            "ticks behind")
        elif unfound < 0:
            unfound_text = (f"; found {-unfound} more than were lost: the engine's grid ended "
                            "that many ticks ahead")
        print(f"  clock ticks: sent {r['ticks_sent']}, heard by the listener {r['ticks_heard']}"
              f", received by the engine {st['ticks']}, found missing by the engine {found}"
              f"{unfound_text}")
    print(f"  note-ons: sent {r['notes_sent']}, heard by the listener {r['notes_heard']}, "
          f"onsets in the engine {st['onsets']}, echoed {r['echoed']}; note-offs: sent "
          f"{r['offs_sent']}, heard by the listener {r['offs_heard']}")
    drops = {k: v for k, v in st["drops"].items() if v and k != "missed_ticks"}
    if drops:
        print(f"  the engine's input filter dropped: {drops}")
    print(f"  onsets answered before the note (follow failures) {r['before_note']}; played at "
          f"the follow window's end without the note (missed) {r['missed']}; steps with an "
          f"onset that changed no note (voices held) {r['no_change']}; boundary not heard "
          f"{r['no_boundary']}; follow windows ended without a note {st['waited_in_vain']}; "
          f"skipped steps {st['skipped_steps']}")
    print(f"  frames proposed ahead {st['ready']}, computed on arrival {st['computed']}",
          flush=True)
    if r["link_restarted"]:
        print("  joining the engine's Link session stopped it; the driver set it playing again")
    if r["mode"] == "osc" and not r.get("osc_open"):
        print("  the engine did not say its OSC port was open: OSC was not measured")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="playing time per mode")
    ap.add_argument("--quick", action="store_true", help="a 15 s smoke run per mode")
    ap.add_argument("--modes", default="plain,osc,link")
    ap.add_argument("--melody", choices=["folk", "random"], default="folk")
    ap.add_argument("--seed", type=int, default=0, help="the first tune and the human timing")
    ap.add_argument("--early", type=float, default=3.0, help="ms a note may come early")
    ap.add_argument("--late", type=float, default=15.0, help="ms a note may come late")
    ap.add_argument("--follow-threshold", type=float, default=0.0,
                    help="the preset's follow_threshold (0: follow every step; shipped: 0.5)")
    ap.add_argument("--osc-rate", type=float, default=4.0,
                    help="OSC messages a second in the osc mode (0: the port open and idle)")
    ap.add_argument("--realtime", action="store_true",
                    help="run jackd with realtime scheduling (needs root or an rtprio limit)")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    ap.add_argument("--keep", type=Path, metavar="DIR", help="keep each mode's engine log, "
                    "--stats file, driver log and the listener's record in DIR")
    ap.add_argument("--role", choices=["echo", "listener"], help=argparse.SUPPRESS)
    ap.add_argument("--client", help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.role == "echo":
        return run_echo(args.client)
    if args.role == "listener":
        return run_listener(args.client, args.out)
    if args.quick:
        args.seconds = 15.0
    modes = [m for m in args.modes.split(",") if m]
    for m in modes:
        if m not in ("plain", "osc", "link"):
            raise SystemExit(f"--modes: unknown mode {m!r}; the modes are plain, osc and link")
    if "link" in modes:
        try:
            import aalink  # noqa: F401
        except ImportError as exc:
            raise SystemExit("the link mode needs aalink: pip install 'livegen[link]', or "
                             "leave link out of --modes") from exc
    steps = int(args.seconds * BPM_HIGH / 15.0) + 2 * LEAD_IN_STEPS
    melody = (folk_melody if args.melody == "folk" else random_melody)(steps, args.seed)
    server = JackServer(name=unique_server_name("lgext"), rate=RATE, period=PERIOD,
                        realtime=args.realtime)
    server.start()
    env = dict(os.environ, JACK_DEFAULT_SERVER=server.name, JACK_NO_START_SERVER="1")
    os.environ.update({k: env[k] for k in ("JACK_DEFAULT_SERVER", "JACK_NO_START_SERVER")})
    print(f"JACK dummy {server.name} ({'realtime' if args.realtime else 'no realtime'}), "
          f"{RATE} Hz / {PERIOD} frames (a period is {PERIOD / RATE * 1000:.2f} ms); "
          f"{args.seconds:.0f} s per mode; {args.melody} melody, {BPM_LOW:.0f}-{BPM_HIGH:.0f} "
          f"BPM, notes 0-{args.early:g} ms early or 0-{args.late:g} ms late; follow window "
          f"{FOLLOW_MS:g} ms, follow_threshold {args.follow_threshold:g}", flush=True)
    results: dict[str, dict] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for mode in modes:
                results[mode] = run_mode(mode, args, server, env, Path(tmp), melody)
                report(results[mode])
    finally:
        server.stop()
    base = results.get("plain")
    if base and base["engine"]:
        for mode in ("osc", "link"):
            r = results.get(mode)
            if r and r["engine"]:
                print(f"p99 {mode} / plain: engine {pct(r['engine'], 99):.3f} / "
                      f"{pct(base['engine'], 99):.3f} ms = "
                      f"{pct(r['engine'], 99) / pct(base['engine'], 99):.2f} (target: at most "
                      f"1.20); p99 above the floor {pct(r['engine'], 99) - pct(r['echo'], 99):+.3f}"
                      f" vs {pct(base['engine'], 99) - pct(base['echo'], 99):+.3f} ms")
    if args.json:
        figures = {}
        for mode, r in results.items():
            f = {k: r[k] for k in ("notes_sent", "notes_heard", "echoed", "before_note",
                                   "missed", "no_change", "no_boundary", "ticks_sent",
                                   "ticks_heard", "offs_sent", "offs_heard", "steps",
                                   "engine_stats")}
            for key in ("engine", "echo", "paired", "in_engine"):
                if r[key]:
                    f[key] = {"n": len(r[key]), "p50": pct(r[key], 50), "p99": pct(r[key], 99),
                              "p99.9": pct(r[key], 99.9), "max": max(r[key]) * 1000}
            figures[mode] = f
        args.json.write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
