"""Training options: the config dataclass and its command-line flags (no torch import here,
so `livegen --help` stays quick)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path


@dataclass
class TrainConfig:
    out: str = "models/chorale.pt"
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
    limit: int | None = None  # use only this many training pieces (smoke tests)
    resume: bool = False
    threads: int = 0  # CPU threads for training; 0 = torch's default
    evaluate: bool = True  # run `livegen eval` figures into the card at the end
    export_only: bool = False  # export RUN_DIR/best.pt without training


def add_arguments(p: argparse.ArgumentParser) -> None:
    d = TrainConfig()
    p.add_argument("--data", type=Path, help="folder of MIDI files (default: the Bach chorales "
                   "from music21's corpus)")
    p.add_argument("--human", default=d.human, help="role of the human part in --data files: "
                   "track:N or channel:N (default %(default)s)")
    p.add_argument("--voice", action="append", metavar="NAME=ROLE",
                   help="a machine voice in --data files, e.g. bass=track:3; repeat, top to bottom")
    p.add_argument("--out", default=d.out, help="model file to export (default %(default)s)")
    p.add_argument("--run-dir", default=d.run_dir, help="checkpoints and logs "
                   "(default %(default)s)")
    p.add_argument("--cell", choices=["gru", "lstm"], default=d.cell)
    p.add_argument("--hidden", type=int, default=d.hidden)
    p.add_argument("--layers", type=int, default=d.layers)
    p.add_argument("--embed", type=int, default=d.embed)
    p.add_argument("--dropout", type=float, default=d.dropout)
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--batch", type=int, default=d.batch)
    p.add_argument("--seq-len", type=int, default=d.seq_len)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default=d.device)
    p.add_argument("--patience", type=int, default=d.patience,
                   help="stop after this many epochs without a better validation loss")
    p.add_argument("--limit", type=int, help="use only N training pieces (for a quick try)")
    p.add_argument("--resume", action="store_true", help="continue from RUN_DIR/last.pt")
    p.add_argument("--threads", type=int, default=d.threads)
    p.add_argument("--no-eval", dest="evaluate", action="store_false",
                   help="skip the evaluation figures at the end")
    p.add_argument("--export-only", action="store_true",
                   help="skip training: export RUN_DIR/best.pt (with evaluation) and its card")


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    fields = TrainConfig.__dataclass_fields__
    values = {k: v for k, v in vars(args).items() if k in fields}
    if values.get("data") is not None:
        values["data"] = str(values["data"])
    return TrainConfig(**values)
