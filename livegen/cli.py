"""The `livegen` command line: one subcommand per job, each with its own --help.

Heavy imports (torch, music21, textual) happen inside the subcommand that needs them, so
`livegen --help` and `livegen ports` answer at once.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path


class UserError(Exception):
    """Something the user can fix; printed as one line, exit status 2."""


def _cmd_train(args: argparse.Namespace) -> int:
    from livegen.train.config import config_from_args
    from livegen.train.trainer import train

    train(config_from_args(args), list(args.argv))
    return 0


def load_settings(preset: str):
    from livegen.presets import find_preset, load_preset
    return load_preset(find_preset(preset))


def _model_file(args: argparse.Namespace, settings) -> Path:
    from livegen.paths import model_path
    return Path(args.model) if args.model else model_path(settings.model)


def _cmd_render(args: argparse.Namespace) -> int:
    from livegen.accompanist import Accompanist
    from livegen.model.runtime import Runtime
    from livegen.paths import demo_melody
    from livegen.render import render

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
    if args.wav:
        from livegen.synth import render_wav
        seconds = render_wav(result.parts, result.bpm, args.wav)
        print(f"  audio through the monitor synth: {args.wav} ({seconds:.1f} s)")
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    import json

    from livegen.train import data as data_mod
    from livegen.train.evaluate import evaluate, format_table

    settings = load_settings(args.preset)
    ds = data_mod.chorales(limit=args.limit)
    table = evaluate(_model_file(args, settings), ds, settings, seed=args.seed,
                     device=args.device)
    print(json.dumps(table, indent=1) if args.json else format_table(table))
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


def _add_model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", default="chorale",
                   help="preset name or .toml file (default %(default)s; see `livegen presets`)")
    p.add_argument("--model", help="model file to use instead of the preset's")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="cpu",
                   help="where the model runs (default %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="random seed: same seed, same notes "
                   "(default %(default)s)")


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
                       description="Run the engine on a simulated clock over a melody file and "
                       "write the melody plus one track per voice. Without MELODY it renders the "
                       "demo melody that ships with livegen.")
    p.add_argument("melody", nargs="?", type=Path, help="melody .mid file (default: the demo)")
    p.add_argument("-o", "--output", type=Path, required=True, help="output .mid file")
    p.add_argument("--bpm", type=float, help="tempo of the output (default: the file's)")
    p.add_argument("--track", type=int, help="take the melody from this track (0-based)")
    p.add_argument("--channel", type=int, help="take the melody from this channel (1-16)")
    p.add_argument("--all-notes", action="store_true",
                   help="keep every note of the chosen part, not only its top line")
    p.add_argument("--wav", type=Path, help="also render audio through the monitor synth")
    _add_model_options(p)
    p.set_defaults(func=_cmd_render)

    p = sub.add_parser("eval", help="evaluate a model on the chorales' test split",
                       description="One table on the held-out test split of the Bach chorales: "
                       "the model (through the render path), Bach's own voices and a block-triad "
                       "harmonizer. Needs music21 (pip install 'livegen[train]').")
    _add_model_options(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--limit", type=int, help="use only the first N pieces of each split")
    p.set_defaults(func=_cmd_eval)

    from livegen.session import add_live_arguments
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
    p.add_argument("--midi-api", default="auto",
                   choices=["auto", "jack", "alsa", "coremidi", "windows"])
    p.set_defaults(func=_cmd_ports)

    p = sub.add_parser("presets", help="list shipped and user presets",
                       description="List the presets livegen can load by name: yours first "
                       "(they replace a shipped one of the same name), then the shipped ones.")
    p.set_defaults(func=_cmd_presets)
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
    except UserError as exc:
        print(f"livegen: {exc}", file=sys.stderr)
        return 2
    except _user_errors() as exc:
        print(f"livegen: {exc}", file=sys.stderr)
        return 2


def _user_errors() -> tuple[type[Exception], ...]:
    from livegen.midi.midifile import MidiFileError
    from livegen.midi.ports import PortError
    from livegen.model.modelfile import ModelFileError
    from livegen.presets import PresetError
    from livegen.synth import SynthError
    return (MidiFileError, ModelFileError, PresetError, PortError, SynthError,
            FileNotFoundError)


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = ["main", "build_parser", "UserError"]
