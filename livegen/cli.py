"""The `livegen` command line: one subcommand per job, each with its own --help.

This module is the one place that defines command-line flags (the trainer's own options come
from `livegen.train.config.add_arguments`, which imports nothing heavy either). Building the
parser, parsing and reporting a bad value import nothing heavy: torch, numpy, mido, rtmidi,
textual and music21 are imported inside the subcommand that needs them, so `livegen --help` and
a mistyped flag answer at once (tests/test_cli.py checks this). Bad values are refused by the
`type=` validators below with one sentence and exit status 2, before any subcommand runs.

`--seed`: `render` and `eval` default to 0, so the same command writes the same file; `run`
defaults to none, so each live session plays differently unless a seed is given.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from livegen.settings import Settings

DEFAULT_PRESET = "chorale"
# The tempi a preset accepts (livegen/presets.py, `timing.bpm`); --bpm takes the same range.
BPM_RANGE = (20.0, 300.0)
MIDI_APIS = ("auto", "jack", "alsa", "coremidi", "windows")


class UserError(Exception):
    """Something the user can fix; printed as one line, exit status 2."""


# Exceptions whose message is a sentence for the user, by module and name: `main` looks them up
# in sys.modules only (an exception of a class exists only once its module is imported), so
# reporting one imports nothing.
_USER_ERRORS = (
    ("livegen.midi.midifile", "MidiFileError"),
    ("livegen.model.modelfile", "ModelFileError"),
    ("livegen.presets", "PresetError"),
    ("livegen.midi.ports", "PortError"),
    ("livegen.synth", "SynthError"),
    ("livegen.train.trainer", "TrainError"),
)


# ------------------------------------------------------------------------------ value checks


def _whole_number(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None


def _int_at_least(low: int, what: str) -> Callable[[str], int]:
    """A whole number >= low; `what` completes "TEXT is not ..." (with the allowed values)."""

    def parse(text: str) -> int:
        value = _whole_number(text, what)
        if value < low:
            raise argparse.ArgumentTypeError(f"{value} is not {what}")
        return value

    return parse


def _channel(text: str) -> int:
    what = "a MIDI channel: give 1 to 16"
    value = _whole_number(text, what)
    if not 1 <= value <= 16:
        raise argparse.ArgumentTypeError(f"{value} is not {what}")
    return value


def _bpm(text: str) -> float:
    lo, hi = BPM_RANGE
    what = f"a tempo livegen plays: give {lo:g} to {hi:g} BPM"
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
    if not (math.isfinite(value) and lo <= value <= hi):
        raise argparse.ArgumentTypeError(f"{text} is not {what}")
    return value


def _file_to_write(example: str) -> Callable[[str], Path]:
    """A file livegen will write: not a folder, and in a folder that exists (checked now, not
    after a render or a live session has run); `example` is a file name to suggest."""

    def parse(text: str) -> Path:
        path = Path(text).expanduser()
        if path.is_dir():
            raise argparse.ArgumentTypeError(
                f"{text} is a folder: give a file name, for example {path / example}")
        if not path.parent.is_dir():
            raise argparse.ArgumentTypeError(
                f"cannot write {text}: the folder {path.parent} does not exist")
        return path

    return parse


def _stats_file(text: str) -> str:
    return str(_file_to_write("livegen-stats.json")(text))


def _osc_port(text: str) -> int:
    what = "a UDP port: give 1 to 65535 (from 1024 up without root)"
    value = _whole_number(text, what)
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not {what}")
    return value


def _file_to_read(text: str) -> Path:
    path = Path(text).expanduser()
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder, not a MIDI file")
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"{text}: no such file")
    return path


def _soundfont(text: str) -> str:
    """`auto` or a file that exists; whether FluidSynth can play it is checked when it loads."""
    if text == "auto":
        return text
    path = Path(text).expanduser()
    if not path.is_file():
        what = " is a folder, not a SoundFont file" if path.is_dir() else ": no such file"
        raise argparse.ArgumentTypeError(f"{text}{what}; give a SoundFont (.sf2) file or auto")
    return str(path)


_seed = _int_at_least(0, "a seed: give a whole number, 0 or more")
_track = _int_at_least(0, "a track number: tracks count from 0")
_limit = _int_at_least(1, "a number of pieces: give 1 or more")
_seeds = _int_at_least(1, "a number of seeds: give 1 or more")


def _octaves(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or not -3 <= value <= 3:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of octaves from -3 to 3")
    return value


# --------------------------------------------------------------------------------- commands


def _cmd_train(args: argparse.Namespace) -> int:
    from livegen.train.config import config_from_args
    from livegen.train.trainer import train

    train(config_from_args(args), list(args.argv))
    return 0


def load_settings(preset: str) -> Settings:
    from livegen.presets import find_preset, load_preset
    return load_preset(find_preset(preset))


def _model_file(args: argparse.Namespace, settings: Settings) -> Path:
    from livegen.paths import model_path
    return Path(args.model) if args.model else model_path(settings.model)


def _cmd_render(args: argparse.Namespace) -> int:
    from livegen.accompanist import Accompanist
    from livegen.model.runtime import Runtime
    from livegen.paths import demo_melody
    from livegen.render import render

    if args.soundfont:
        if not args.wav:
            raise UserError("--soundfont plays the audio of --wav: give --wav FILE too.")
        from livegen.soundfont import check
        args.soundfont = check(args.soundfont)  # before the render: FluidSynth and the font
    settings = load_settings(args.preset)
    melody = args.melody or demo_melody()
    rt = Runtime(_model_file(args, settings), device=args.device)
    acc = Accompanist(rt, settings, seed=args.seed)
    result = render(acc, melody, args.output, bpm=args.bpm, track=args.track,
                    channel=args.channel, all_notes=args.all_notes)
    perf = result.performance
    voices = ", ".join(v.name for v in acc.voices if v.enabled)
    print(f"rendered {melody} ({result.steps} steps at {result.bpm:g} BPM) with preset "
          f"{settings.name!r}, seed {args.seed}: melody + {voices} -> {args.output}")
    print(f"  model {rt.path.name} on {rt.device}, loaded in {rt.load_seconds:.2f} s; "
          f"{perf.steps_per_second:,.0f} steps/s")
    if args.wav and args.soundfont:
        from livegen.soundfont import render_wav as render_soundfont
        seconds = render_soundfont(result.parts, result.bpm, args.wav, args.soundfont)
        print(f"  audio through FluidSynth with {args.soundfont}: {args.wav} ({seconds:.1f} s)")
    elif args.wav:
        from livegen.synth import render_wav
        seconds = render_wav(result.parts, result.bpm, args.wav)
        print(f"  audio through the monitor synth: {args.wav} ({seconds:.1f} s)")
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    import json

    from livegen.presets import find_preset, load_preset
    from livegen.train.evaluate import SETS, evaluate_presets, format_report

    if args.preset is None:  # every shipped preset, not a user preset of the same name
        from livegen.paths import shipped
        files = sorted(shipped("presets").glob("*.toml"))
    else:
        files = [find_preset(args.preset)]
    presets = []
    for file in files:
        settings = load_preset(file)
        presets.append((settings, _model_file(args, settings)))
    sets = SETS if args.set == "both" else (args.set,)
    seeds = list(range(args.seed, args.seed + args.seeds))
    report = evaluate_presets(presets, sets, seeds, limit=args.limit, device=args.device,
                              octaves=args.octaves)
    print(json.dumps(report, indent=1) if args.json else format_report(report))
    return 0


def _cmd_presets(args: argparse.Namespace) -> int:
    from livegen.paths import user_presets
    from livegen.presets import list_presets

    for info in list_presets():
        print(f"{info.name:16} {info.source:8} {info.path}")
    print(f"(your presets go in {user_presets()})")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from livegen.session import LiveOptions, run_headless

    opts = LiveOptions.from_args(args)
    if args.headless:
        return run_headless(opts)
    from livegen.tui import run_tui
    return run_tui(opts, synth=opts.synth)


def _cmd_ports(args: argparse.Namespace) -> int:
    from livegen.midi import ports

    api = ports.resolve_api(args.midi_api)
    inputs, outputs = ports.list_ports(api)
    print(f"MIDI system: {ports.api_name(api)}")
    print("inputs (livegen can listen to these; --input NAME):")
    for name in inputs:
        print(f"  {name}")
    print("outputs (livegen can play into these; --output NAME):")
    for name in outputs:
        print(f"  {name}")
    return 0


def _cmd_doctor(args: argparse.Namespace) -> int:
    from livegen.doctor import main as doctor
    return doctor(midi_api=args.midi_api, loop=tuple(args.loop) if args.loop else None)


# ------------------------------------------------------------------------------------ flags


def _add_model_options(p: argparse.ArgumentParser, seed_default: int | None,
                       seed_help: str, preset_help: str | None = None) -> None:
    """--preset, --model, --device and --seed, the same for render, eval and run except the
    seed's default (the module docstring says why); with `preset_help`, --preset has no default
    (eval: every shipped preset)."""
    if preset_help is None:
        p.add_argument("--preset", default=DEFAULT_PRESET, help="preset name or .toml file "
                       "(default %(default)s; `livegen presets` lists them)")
    else:
        p.add_argument("--preset", help=preset_help)
    p.add_argument("--model", metavar="FILE", help="model file to use instead of the preset's")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="cpu",
                   help="where the recurrent net runs; auto = CUDA when present "
                   "(default %(default)s; README, section GPU)")
    p.add_argument("--seed", type=_seed, default=seed_default, metavar="N", help=seed_help)


def _add_midi_api(p: argparse.ArgumentParser) -> None:
    p.add_argument("--midi-api", default="auto", choices=MIDI_APIS,
                   help="MIDI system (default %(default)s: the first that works)")


def add_live_arguments(p: argparse.ArgumentParser) -> None:
    """The flags of `livegen run`; their names are the fields of `livegen.session.LiveOptions`."""
    _add_model_options(p, None, "random seed: the same seed repeats the accompaniment's random "
                       "choices (default: none, so every session plays differently)")
    p.add_argument("--input", metavar="NAME", help="connect to the MIDI output whose name "
                   "contains NAME (default: create a virtual input 'livegen in')")
    p.add_argument("--output", metavar="NAME", help="connect to the MIDI input whose name "
                   "contains NAME (default: create a virtual output 'livegen out')")
    _add_midi_api(p)
    p.add_argument("--clock", choices=["internal", "midi", "link"], help="clock source (default: "
                   "the preset's)")
    p.add_argument("--bpm", type=_bpm, help=f"tempo of the internal clock (with Link: the "
                   f"tempo livegen proposes), {BPM_RANGE[0]:g} to {BPM_RANGE[1]:g} (default: "
                   "the preset's)")
    p.add_argument("--stats", metavar="FILE", type=_stats_file, help="when the engine stops, "
                   "write its timing samples (onset -> note-on latency, emission error) to FILE "
                   "as JSON")
    p.add_argument("--synth", action="store_true", help="hear the voices through the built-in "
                   "monitor synth (PortAudio) as well as on the MIDI output")
    p.add_argument("--soundfont", type=_soundfont, metavar="FILE|auto", help="hear the voices "
                   "as real instruments: the monitor plays through FluidSynth with this General "
                   "MIDI SoundFont (.sf2) instead of the built-in synth (implies --synth); auto: "
                   "the one your distribution installed (Debian: fluid-soundfont-gm). Needs "
                   "libfluidsynth and pip install 'livegen[soundfont]'")
    p.add_argument("--osc-port", type=_osc_port, metavar="N", help="also take every live "
                   "control and the transport over OSC on UDP port N: /livegen/<control> "
                   "<value>, /livegen/voice/<name> 0|1, /livegen/transport start|stop, "
                   "/livegen/panic, /livegen/preset NAME ... (README, section OSC control; "
                   "default: no OSC)")
    p.add_argument("--osc-host", default="127.0.0.1", metavar="ADDR", help="the address the OSC "
                   "port listens on (default %(default)s: programs on this machine only; "
                   "0.0.0.0 exposes it to every network this machine is on, with no password)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="livegen",
        description="Real-time MIDI accompaniment: harmony voices, a bass line, or the melody "
                    "itself when the player stops. Without a command, `livegen` opens the "
                    "control panel (the same as `livegen run`).")
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("train", help="train a model on the Bach chorales or your MIDI files",
                       description="Train a duet model and export it with its card. Without "
                       "--data it trains on the Bach chorales that ship with music21.")
    from livegen.train.config import add_arguments
    add_arguments(p)
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("render", help="accompany a melody file offline and write a MIDI file",
                       description="Accompany a melody file offline, as fast as the model "
                       "computes: the accompanist (the step logic the live engine uses) is "
                       "driven directly, one 16th-note step at a time, with no clock and no MIDI "
                       "ports, and the melody plus one track per voice is written to a MIDI file. "
                       "Without MELODY it renders the demo melody that ships with livegen.")
    p.add_argument("melody", nargs="?", type=_file_to_read,
                   help="melody .mid file (default: the demo)")
    p.add_argument("-o", "--output", type=_file_to_write("accompanied.mid"),
                   required=True, metavar="FILE",
                   help="output .mid file")
    p.add_argument("--bpm", type=_bpm, help=f"tempo of the output, {BPM_RANGE[0]:g} to "
                   f"{BPM_RANGE[1]:g} (default: the file's)")
    p.add_argument("--track", type=_track, metavar="N",
                   help="take the melody from this track (0-based)")
    p.add_argument("--channel", type=_channel, metavar="N",
                   help="take the melody from this channel (1-16)")
    p.add_argument("--all-notes", action="store_true",
                   help="keep every note of the chosen part, not only its top line")
    p.add_argument("--wav", type=_file_to_write("accompanied.wav"), metavar="FILE",
                   help="also render audio through the monitor synth")
    p.add_argument("--soundfont", type=_soundfont, metavar="FILE|auto", help="with --wav: "
                   "render the audio through FluidSynth with this General MIDI SoundFont "
                   "(.sf2) instead of the built-in synth; auto: the one your distribution "
                   "installed (default: the built-in synth, the same file on every machine)")
    _add_model_options(p, 0, "random seed: the same seed gives the same notes "
                       "(default %(default)s, so the same command writes the same file)")
    p.set_defaults(func=_cmd_render)

    p = sub.add_parser("eval", help="evaluate a model on the chorales' test split and folk tunes",
                       description="The evaluation tables (README, section Figures): the model "
                       "(through the render path, as each preset plays it; mean ± sd over "
                       "seeds), Bach's own voices and a block-triad harmonizer, on the held-out "
                       "test split of the Bach chorales and on a validation set of folk tunes "
                       "(Ryan's Mammoth Collection, melodies only), one table per set and "
                       "preset. Needs music21 (pip install 'livegen[train]').")
    _add_model_options(p, 0, "first random seed: seeds N, N+1, ... are used (default "
                       "%(default)s; the same seeds give the same figures)",
                       preset_help="preset name or .toml file (default: every shipped preset)")
    p.add_argument("--seeds", type=_seeds, default=4, metavar="N",
                   help="how many seeds to sample the model with (default %(default)s)")
    p.add_argument("--set", choices=["chorales", "folk", "both", "valid"], default="both",
                   help="evaluate on the chorales' test split, the folk tunes, or both "
                   "(default %(default)s); valid: the chorales' validation split, where "
                   "presets are tuned")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    p.add_argument("--limit", type=_limit, metavar="N",
                   help="use only the first N pieces of each set (default: all)")
    p.add_argument("--octaves", type=_octaves, default=0, metavar="N",
                   help="move the melodies by N octaves (-3 to 3), as a player in another "
                   "register plays them; Bach's voices and the judged ranges move too "
                   "(default %(default)s)")
    p.set_defaults(func=_cmd_eval)

    p = sub.add_parser("run", help="play live: listen on a MIDI port, accompany on another",
                       description="Run the live engine. By default it creates a virtual input "
                       "'livegen in' and output 'livegen out'; connect your keyboard or DAW "
                       "to them, or name existing ports with --input/--output.")
    p.add_argument("--headless", action="store_true",
                   help="no control panel: the engine alone with a status line "
                   "(default: the terminal control panel, with the engine in its own process)")
    add_live_arguments(p)
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("ports", help="list the MIDI ports livegen can see",
                       description="List MIDI inputs and outputs, for --input and --output.")
    _add_midi_api(p)
    p.set_defaults(func=_cmd_ports)

    p = sub.add_parser("presets", help="list shipped and user presets",
                       description="List the presets livegen can load by name: yours first "
                       "(they replace a shipped one of the same name), then the shipped ones.")
    p.set_defaults(func=_cmd_presets)

    p = sub.add_parser("doctor", help="check that this machine can run livegen",
                       description="Check Python, torch, the shipped model (and how long it "
                       "takes to load), the presets, the MIDI systems and the MIDI ports "
                       "livegen sees, PortAudio and the default audio output, one line each (a "
                       "sentence on what to do for each problem). Then a loop test measures the "
                       "MIDI round trip on this machine: with a JACK server running, doctor "
                       "loops its own output back to its own input through JACK (or through "
                       "the ports --loop names) and sends 200 notes 10 ms apart, reports "
                       "p50/p99/max round trip, jitter and lost notes, and suggests the "
                       "preset's follow_ms and prewindow. Exit status 0 when `livegen render` "
                       "works, 1 otherwise or when the loop --loop names fails; a loop test "
                       "that cannot run (no JACK, no --loop) does not change it.")
    p.add_argument("--midi-api", default="auto", choices=MIDI_APIS,
                   help="MIDI system whose ports are listed and that --loop uses "
                   "(default %(default)s: the first that works)")
    p.add_argument("--loop", nargs=2, metavar=("IN", "OUT"),
                   help="run the loop test through existing ports instead of JACK: livegen "
                   "plays into the output whose name contains OUT and listens on the input "
                   "whose name contains IN; connect OUT back to IN first (a MIDI cable, or a "
                   "DAW track that echoes its input)")
    p.set_defaults(func=_cmd_doctor)
    return parser


def _version() -> str:
    from livegen import __version__
    return f"livegen {__version__}"


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = argv[1:]
    func: Callable[[argparse.Namespace], int] | None = getattr(args, "func", None)
    if func is None:  # `livegen` alone: the control panel with the default preset
        args = parser.parse_args(["run", *argv])
        args.argv = argv
        func = args.func
    try:
        return func(args)
    except KeyboardInterrupt:
        print("livegen: stopped.", file=sys.stderr)
        return 130
    except Exception as exc:
        if not _is_user_error(exc):
            raise
        print(f"livegen: {exc}", file=sys.stderr)
        return 2


def _is_user_error(exc: Exception) -> bool:
    if isinstance(exc, UserError | FileNotFoundError):
        return True
    for module, name in _USER_ERRORS:
        cls = getattr(sys.modules.get(module), name, None)
        if isinstance(cls, type) and isinstance(exc, cls):
            return True
    return False


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = ["main", "build_parser", "add_live_arguments", "UserError", "DEFAULT_PRESET"]
