"""Training options: the config dataclass and its command-line flags (no torch import here,
so `livegen --help` stays quick)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path


@dataclass
class TrainConfig:
    out: str | None = None  # None: mine.pt in the user models folder (livegen.paths.user_models)
    replace_shipped: bool = False  # allow --out to overwrite a shipped model file
    run_dir: str = "runs/chorale"
    data: str | None = None  # a folder of MIDI files; None = the Bach chorales
    human: str = "track:0"
    voice: list[str] | None = None  # NAME=ROLE for a MIDI folder
    cell: str = "gru"
    hidden: int = 256
    layers: int = 2
    embed: int = 48
    dropout: float = 0.1
    epochs: int = 40
    lr: float = 2e-3
    batch: int = 32
    seq_len: int = 128
    seed: int = 1
    device: str = "auto"
    patience: int = 5
    # weight of the voices' loss at phrase ends (fermata notes and the beat before; chorales)
    phrase_weight: float = 3.0
    limit: int | None = None  # use only this many training pieces (smoke tests)
    resume: bool = False
    threads: int = 0  # CPU threads for training; 0 = torch's default
    evaluate: bool = True  # run `livegen eval` figures into the card at the end
    export_only: bool = False  # export RUN_DIR/best.pt without training


def add_arguments(p: argparse.ArgumentParser) -> None:
    d = TrainConfig()
    p.add_argument("--data", type=Path, metavar="FOLDER", help="folder of MIDI files "
                   "(default: the Bach chorales from music21's corpus)")
    p.add_argument("--human", default=d.human, help="role of the human part in --data files: "
                   "track:N or channel:N (default %(default)s)")
    p.add_argument("--voice", action="append", metavar="NAME=ROLE",
                   help="a machine voice in --data files, e.g. bass=track:3; repeat, top to "
                   "bottom (default: one voice, voice=track:1)")
    p.add_argument("--out", default=d.out, metavar="FILE",
                   help="where the model goes: the model file to write, with its card beside "
                   "it (same name, .md); a relative path is taken from the current folder, and "
                   "missing folders are created (default: mine.pt in your models folder, "
                   "where a preset's `model = \"mine\"` finds it; see `livegen presets`)")
    p.add_argument("--replace-shipped", action="store_true",
                   help="let --out overwrite a model shipped with livegen (default: refused)")
    p.add_argument("--run-dir", default=d.run_dir, metavar="FOLDER",
                   help="checkpoints (last.pt, best.pt) and logs (default %(default)s)")
    p.add_argument("--cell", choices=["gru", "lstm"], default=d.cell,
                   help="recurrent cell (default %(default)s)")
    p.add_argument("--hidden", type=int, default=d.hidden,
                   help="recurrent state size (default %(default)s)")
    p.add_argument("--layers", type=int, default=d.layers,
                   help="recurrent layers (default %(default)s)")
    p.add_argument("--embed", type=int, default=d.embed,
                   help="token embedding size (default %(default)s)")
    p.add_argument("--dropout", type=float, default=d.dropout,
                   help="dropout while training (default %(default)s)")
    p.add_argument("--epochs", type=int, default=d.epochs,
                   help="most passes over the training pieces (default %(default)s)")
    p.add_argument("--lr", type=float, default=d.lr, help="learning rate (default %(default)s)")
    p.add_argument("--batch", type=int, default=d.batch,
                   help="sequences per batch (default %(default)s)")
    p.add_argument("--seq-len", type=int, default=d.seq_len,
                   help="16th-note steps per training sequence (default %(default)s)")
    p.add_argument("--seed", type=int, default=d.seed,
                   help="random seed for initialisation and batching (default %(default)s)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default=d.device,
                   help="where to train; auto = CUDA when present (default %(default)s)")
    p.add_argument("--patience", type=int, default=d.patience,
                   help="stop after this many epochs without a better validation loss "
                   "(default %(default)s)")
    p.add_argument("--phrase-weight", type=float, default=d.phrase_weight, metavar="W",
                   help="weight of the voices' loss at phrase ends: the chorales' fermata notes "
                   "and the beat before each, so that the model learns cadences (1 = no extra "
                   "weight; default %(default)s)")
    p.add_argument("--limit", type=int, metavar="N",
                   help="use only N training pieces, for a quick try (default: all)")
    p.add_argument("--resume", action="store_true",
                   help="continue from RUN_DIR/last.pt (default: start afresh)")
    p.add_argument("--threads", type=int, default=d.threads,
                   help="CPU threads for training; 0 = torch's choice (default %(default)s)")
    p.add_argument("--no-eval", dest="evaluate", action="store_false",
                   help="skip the evaluation figures at the end (default: evaluate, and write "
                   "the figures into the model and its card)")
    p.add_argument("--export-only", action="store_true",
                   help="skip training: export RUN_DIR/best.pt (with evaluation) and its card "
                   "(default: train first)")


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    fields = TrainConfig.__dataclass_fields__
    values = {k: v for k, v in vars(args).items() if k in fields}
    if values.get("data") is not None:
        values["data"] = str(values["data"])
    return TrainConfig(**values)
