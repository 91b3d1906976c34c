"""Live latency over a JACK dummy server, with the engine in its own process as users run it.

    python bench/latency.py [--onsets 2000] [--modes headless,tui,tui-synth] [--emission 60]
                            [--realtime]

1. Onset -> note-on: a driver (a JACK client in this process) plays MIDI clock at tempos from
   120 to 180 BPM and a melody note on every 16th, each placed up to 3 ms early or up to 15 ms
   late against its step (the follow window is on). The engine timestamps, in its own process,
   each onset's arrival and the accompaniment note-on it sends (`livegen run --stats`), and
   reports send - max(arrival, boundary). The bench preset follows every step
   (follow_threshold 0), so each onset is a sample. Run headless, with the TUI attached (under
   tmux), and with the TUI and the monitor synth, in one run, for a fair comparison; mode `osc`
   is headless with the OSC server on and a fader moved 4 times a second over OSC.
2. Internal-clock emission error: the engine alone on its internal clock at 180 BPM with the
   follow window off; each step's note-on time against the ideal boundary.

It also prints how many onsets and clock ticks reached the engine, the follow windows that
ended without a note, and how many onsets found their frame proposed ahead (see
Engine._propose_ahead) against those computed on arrival, with the latter's own figures.

Transport losses: without `--realtime`, jackd and its clients' process threads run with normal
scheduling. Measured here with the TUI attached, the clients then miss JACK cycles on the two
busy cores and about 1-3% of MIDI messages are lost between the driver and the engine; a lost clock
tick shifts the engine's grid against the driver's for the rest of the run, so later onsets
fall outside the follow window ("ended without a note"). Headless runs lost none. With
`--realtime` (jackd's default, as JACK users run it; needs root or an rtprio limit) nothing was
lost in any mode. The latency figures are the engine's either way; the losses are the test
transport's.

Needs jackd (Debian's jackd2) and, for the TUI modes, tmux. Prints p50/p99/p99.9.

The same latency as a separate listening client hears it on the transport, against a Python
echo client's floor in the same run, with OSC active and on a Link clock as well:
`python bench/external.py` (see its docstring).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import rtmidi

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from jackserver import JackServer  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
from external import free_udp_port, osc_sweep  # noqa: E402

from livegen.presets import find_preset, load_preset, save_preset  # noqa: E402

LIVEGEN = [sys.executable, "-m", "livegen.cli"]
OSC_RATE = 4.0  # OSC messages a second in the osc mode


def preset_file(folder: Path, **timing) -> Path:
    s = load_preset(find_preset("chorale"))
    s = replace(s, name="bench", timing=replace(s.timing, **timing))
    path = folder / "bench.toml"
    save_preset(s, path)
    return path


def connect(client: str, port_substring: str, out: bool):
    rt = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, client) if out else \
        rtmidi.MidiIn(rtmidi.API_UNIX_JACK, client)
    deadline = time.time() + 60
    while time.time() < deadline:
        names = rt.get_ports()
        for i, name in enumerate(names):
            if port_substring in name:
                rt.open_port(i, "bench")
                time.sleep(0.1)
                return rt
        time.sleep(0.2)
    raise SystemExit(f"no JACK port {port_substring!r} appeared")


def sleep_until(t: float) -> None:
    left = t - time.perf_counter()
    if left > 0:
        time.sleep(left)


def drive(out, onsets: int, seed: int = 0) -> int:
    """MIDI clock with a tempo ramp 120 -> 180 -> 120 BPM, and a note on every 16th; returns
    the number of clock ticks sent."""
    rng = random.Random(seed)
    out.send_message([0xFA])
    t = time.perf_counter() + 0.2
    sent = ticks = 0
    step = 0
    pitch = None
    while sent < onsets:
        bpm = 150 + 30 * np.sin(2 * np.pi * step / 400)
        tick = 60.0 / bpm / 24
        boundary = t
        offset = rng.uniform(-0.003, 0.015)
        note_at = boundary + offset
        events = [(t + k * tick, [0xF8]) for k in range(6)]
        ticks += 6
        events.append((note_at, "note"))
        for when, what in sorted(events, key=lambda e: e[0]):
            sleep_until(when)
            if what == "note":
                if pitch is not None:
                    out.send_message([0x80, pitch, 0])
                pitch = rng.choice([67, 69, 71, 72, 74, 76, 77, 79])
                out.send_message([0x90, pitch, 90])
                sent += 1
            else:
                out.send_message(what)
        t += 6 * tick
        step += 1
    if pitch is not None:
        out.send_message([0x80, pitch, 0])
    out.send_message([0xFC])
    return ticks


def start_engine(mode: str, preset: Path, stats: Path, env: dict, session: str,
                 osc_port: int | None = None) -> subprocess.Popen | None:
    args = [*LIVEGEN, "run", "--preset", str(preset), "--stats", str(stats), "--seed", "0"]
    if mode == "osc":
        args += ["--osc-port", str(osc_port)]
    if mode in ("headless", "osc"):
        return subprocess.Popen([*args, "--headless"], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
    if mode == "tui-synth":
        args.append("--synth")
    command = " ".join(f"'{a}'" for a in args)
    envs = " ".join(f"{k}='{env[k]}'" for k in ("JACK_DEFAULT_SERVER", "LIVEGEN_CLIENT_NAME"))
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "80", "-y", "24",
                    f"env {envs} {command}"], check=True)
    return None


def stop_engine(mode: str, proc: subprocess.Popen | None, session: str, stats: Path) -> None:
    if proc is not None:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
    else:
        subprocess.run(["tmux", "send-keys", "-t", session, "q"], check=False)
        deadline = time.time() + 30
        while not stats.exists() and time.time() < deadline:
            time.sleep(0.2)
        subprocess.run(["tmux", "kill-session", "-t", session], check=False,
                       stderr=subprocess.DEVNULL)
    deadline = time.time() + 10
    while not stats.exists() and time.time() < deadline:
        time.sleep(0.1)


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values) * 1000.0, q))


def summary(values: list[float]) -> str:
    if not values:
        return "no samples"
    return (f"n={len(values):5d}  p50 {pct(values, 50):.3f} ms  p99 {pct(values, 99):.3f} ms  "
            f"p99.9 {pct(values, 99.9):.3f} ms  max {max(values) * 1000:.3f} ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--onsets", type=int, default=2000)
    ap.add_argument("--modes", default="headless,tui,tui-synth")
    ap.add_argument("--emission", type=float, default=60.0,
                    help="seconds of the internal-clock phase (0 skips it)")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    ap.add_argument("--realtime", action="store_true",
                    help="run jackd (and so its clients' process threads) with realtime "
                    "scheduling, as JACK users do; needs the right to (root or an rtprio limit)")
    args = ap.parse_args()
    modes = [m for m in args.modes.split(",") if m]
    if any(m.startswith("tui") for m in modes) and not shutil.which("tmux"):
        raise SystemExit("the TUI modes need tmux (apt-get install tmux)")
    server = JackServer(realtime=args.realtime)
    server.start()
    env = dict(os.environ, JACK_DEFAULT_SERVER=server.name, JACK_NO_START_SERVER="1",
               LIVEGEN_CLIENT_NAME=f"livegen-{os.getpid()}")
    os.environ.update({k: env[k] for k in ("JACK_DEFAULT_SERVER", "JACK_NO_START_SERVER")})
    results: dict = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            follow = preset_file(folder, clock="midi", follow_ms=30.0, follow_threshold=0.0)
            for mode in modes:
                stats = folder / f"{mode}.json"
                session = f"lgbench{os.getpid()}"
                osc_port = free_udp_port() if mode == "osc" else None
                proc = start_engine(mode, follow, stats, env, session, osc_port)
                out = connect(f"bench-{os.getpid()}", "livegen in", out=True)
                stop, osc_sent = threading.Event(), [0]
                if osc_port is not None:  # the engine is up (its MIDI port appeared)
                    threading.Thread(target=osc_sweep, args=(osc_port, OSC_RATE, stop,
                                                             osc_sent), daemon=True).start()
                t0 = time.perf_counter()
                ticks = drive(out, args.onsets)
                played = time.perf_counter() - t0
                stop.set()
                if mode == "osc":
                    print(f"  OSC messages sent: {osc_sent[0]}", flush=True)
                time.sleep(0.5)
                stop_engine(mode, proc, session, stats)
                out.close_port()
                out.delete()
                data = json.loads(stats.read_text())
                results[mode] = data["latency"]
                print(f"onset -> note-on, {mode:9} ({played:.0f} s, 120-180 BPM, follow on): "
                      f"{summary(data['latency'])}", flush=True)
                print(f"  reached the engine: onsets {data['onsets']} of {args.onsets}, clock "
                      f"ticks {data['ticks']} of {ticks}; follow windows that ended without a "
                      f"note: {data['waited_in_vain']}", flush=True)
                print(f"  onsets answered from a frame proposed ahead {data['ready']}, computed "
                      f"on arrival {data['computed']}: {summary(data['latency_computed'])}",
                      flush=True)
            if args.emission > 0:
                grid = preset_file(folder, clock="internal", bpm=180.0, follow_ms=0.0)
                stats = folder / "emission.json"
                proc = start_engine("headless", grid, stats, env, "")
                time.sleep(args.emission)
                stop_engine("headless", proc, "", stats)
                data = json.loads(stats.read_text())
                results["emission"] = data["emission"]
                print(f"internal-clock emission error (180 BPM, {args.emission:.0f} s): "
                      f"{summary(data['emission'])}", flush=True)
    finally:
        server.stop()
    base = results.get("headless")
    for mode in ("tui", "tui-synth", "osc"):
        if base and results.get(mode):
            print(f"p99 {mode} / headless = {pct(results[mode], 99) / pct(base, 99):.2f}")
    if args.json:
        args.json.write_text(json.dumps({k: {"p50": pct(v, 50), "p99": pct(v, 99),
                                             "p99.9": pct(v, 99.9), "n": len(v)}
                                         for k, v in results.items() if v}, indent=1))


if __name__ == "__main__":
    main()
