"""Running the live engine: open the model and the ports, run the worker, stop cleanly.

`open_engine` is the I/O hub (model, ports, port supervisor); `run_headless` runs the engine
in this process with a compact status line, and stops on Ctrl-C, SIGTERM or SIGHUP with every note
resolved. The status callback only puts snapshots on a queue; a printer thread reads them, so
a slow terminal never holds the engine up.
"""

from __future__ import annotations

import argparse
import queue
import signal
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from livegen.engine import Engine
from livegen.paths import model_path
from livegen.report import drops
from livegen.settings import Settings
from livegen.status import Status


@dataclass
class LiveOptions:
    preset: str = "chorale"
    model: str | None = None
    device: str = "cpu"
    input: str | None = None  # None: a virtual port "livegen in"; else a name substring
    output: str | None = None
    midi_api: str = "auto"
    clock: str | None = None  # override the preset's clock source
    bpm: float | None = None
    seed: int | None = None
    synth: bool = False  # also play through the monitor synth (PortAudio)
    soundfont: str | None = None  # the monitor through FluidSynth: a .sf2 file or "auto"
    stats: str | None = None  # write timing samples here as JSON when the engine stops
    osc_port: int | None = None  # take controls over OSC on this UDP port (livegen/osc.py)
    osc_host: str = "127.0.0.1"  # the interface it listens on; 0.0.0.0: every network

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> LiveOptions:
        return cls(**{k: getattr(args, k) for k in cls.__dataclass_fields__ if hasattr(args, k)})


def load_live_settings(opts: LiveOptions) -> Settings:
    from dataclasses import replace

    from livegen.presets import find_preset, load_preset
    settings = load_preset(find_preset(opts.preset))
    timing = settings.timing
    if opts.clock:
        timing = replace(timing, clock=opts.clock)
    if opts.bpm:
        timing = replace(timing, bpm=opts.bpm)
    return replace(settings, timing=timing)


def open_engine(opts: LiveOptions, on_status=None) -> tuple[Engine, list]:
    """Model first (a bad model file fails before any port is created), then the ports."""
    from livegen.midi import ports
    from livegen.model.runtime import Runtime

    settings = load_live_settings(opts)
    model = Path(opts.model) if opts.model else model_path(settings.model)
    runtime = Runtime(model, device=opts.device)
    api = ports.resolve_api(opts.midi_api)
    inp = ports.open_input(opts.input, api)
    try:
        out = ports.open_output(opts.output, api)
    except Exception:
        inp.close()
        raise
    watches = [ports.PortWatch(inp), ports.PortWatch(out)]
    engine = Engine(settings, runtime, inp, out, seed=opts.seed, on_status=on_status,
                    watches=watches)
    return engine, [inp, out]


def run_headless(opts: LiveOptions, status_every: float = 0.25) -> int:
    snapshots: queue.SimpleQueue = queue.SimpleQueue()
    engine, opened = open_engine(opts, on_status=snapshots.put)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", signal.SIGTERM)):
        signal.signal(sig, lambda *_: stop.set())
    printer = threading.Thread(target=_print_status, args=(snapshots, stop, status_every),
                               daemon=True)
    printer.start()
    names = ", ".join(f"{p.direction} {p.name!r}" for p in opened)
    print(f"livegen: running headless with preset {engine.settings.name!r} "
          f"({engine.settings.timing.clock} clock); ports: {names}. Ctrl-C stops.",
          file=sys.stderr, flush=True)
    try:
        run_engine(engine, opened, opts, stop.is_set)
    finally:
        stop.set()
        printer.join(timeout=1.0)
    print("\nlivegen: stopped; all notes off.", file=sys.stderr, flush=True)
    return 0


def run_engine(engine: Engine, opened: list, opts: LiveOptions, should_stop) -> None:
    """Run until stopped (every note resolved by the engine), then close the OSC port, the
    monitor synth and the ports and write the timing samples if asked: the same for headless
    and the TUI. An OSC port that cannot be opened is said as an engine message and the engine
    plays on (livegen/osc.py)."""
    monitor = start_monitor(engine, opts.soundfont) if opts.synth or opts.soundfont else None
    osc = None
    try:
        if opts.osc_port is not None:
            from livegen.osc import start_osc
            osc = start_osc(engine, opts.osc_host, opts.osc_port)
        engine.run(should_stop)
    finally:
        if osc is not None:
            osc.stop()
        if monitor is not None:
            monitor.stop()
        for port in opened:
            port.close()
        if opts.stats:
            write_stats(engine, opts.stats)


def write_stats(engine: Engine, path: str) -> None:
    """The engine's timing samples, in seconds, for bench/latency.py and for users who want to
    measure their own setup."""
    import json
    data = {"latency": list(engine.stats.latency), "emission": list(engine.stats.emission),
            "latency_computed": list(engine.stats.latency_computed),
            "ready": engine.stats.ready, "computed": engine.stats.computed,
            "waited_in_vain": engine.stats.waited_in_vain,
            "onsets": engine.stats.onsets, "ticks": engine.stats.ticks,
            "steps": engine.stats.steps, "skipped_steps": engine.stats.skipped_steps,
            "drops": vars(drops(engine))}
    Path(path).write_text(json.dumps(data))


def start_monitor(engine: Engine, soundfont: str | None = None):
    """The monitor synth hears every message the engine sends: the numpy synth, or FluidSynth
    with `soundfont` (a .sf2 file or "auto"). Without PortAudio, an audio device, FluidSynth or
    the SoundFont the engine runs on and says why there is no sound."""
    from livegen.synth import MonitorOutput, Synth, SynthError
    try:
        if soundfont:
            from livegen.soundfont import SoundFontOutput
            monitor = SoundFontOutput(soundfont)
        else:
            monitor = MonitorOutput(Synth())
        monitor.start()
    except SynthError as exc:
        engine.note(f"monitor synth off: {exc}")
        return None
    if soundfont:
        engine.note(f"monitor synth: {monitor.describe()}")
    engine.monitors.append(monitor)
    return monitor


def status_line(s: Status) -> str:
    bpm = f"{s.bpm:.1f}" if s.bpm else "--"
    lat = s.latency_p99_ms
    drops = s.drops
    return (f"{'play' if s.running else 'stop'} {s.clock} {bpm} BPM  "
            f"{s.bar}:{s.beat}  key {s.key or '?'}  "
            f"{'TAKEOVER ' if s.takeover else ''}notes {len(s.sounding)}  "
            f"p99 {f'{lat:.2f} ms' if lat is not None else '--'}  "
            f"drops q{drops.queue} m{drops.malformed} e{drops.echo} t{drops.missed_ticks}  "
            f"in {s.ports['in']} out {s.ports['out']}")


def _print_status(snapshots: queue.SimpleQueue, stop: threading.Event, every: float) -> None:
    tty = sys.stderr.isatty()
    seen = 0
    latest: Status | None = None
    while not stop.is_set():
        try:
            latest = snapshots.get(timeout=every)
            while True:  # only the newest matters
                latest = snapshots.get_nowait()
        except queue.Empty:
            pass
        if latest is None:
            continue
        for serial, message in latest.messages:
            if serial > seen:
                print(("\n" if tty else "") + f"livegen: {message}", file=sys.stderr, flush=True)
                seen = serial
        line = status_line(latest)
        print(f"\r{line}\x1b[K" if tty else line, end="" if tty else "\n", file=sys.stderr,
              flush=True)
        if not tty:
            stop.wait(2.0)
