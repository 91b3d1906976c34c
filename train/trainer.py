"""`livegen train`: one training loop, checkpoints and resume, early stopping, export with a card.

Runs on CPU, on one GPU (bf16 autocast), or on several through `torchrun` (DistributedDataParallel:
each rank draws its own windows; rank 0 validates, checkpoints and exports).
"""

from __future__ import annotations

import itertools
import json
import math
import os
import platform
import shlex
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from livegen.model import modelfile
from livegen.model.network import DuetModel, ModelConfig
from livegen.model.runtime import pick_device
from livegen.train import data as data_mod
from livegen.train.config import TrainConfig


def load_dataset(cfg: TrainConfig, log=print) -> data_mod.Dataset:
    if cfg.data is None:
        ds = data_mod.chorales(limit=cfg.limit)
    else:
        voices = {}
        for item in cfg.voice or ["voice=track:1"]:
            name, _, role = item.partition("=")
            voices[name] = data_mod.Role.parse(role)
        ds = data_mod.midi_folder(Path(cfg.data), data_mod.Role.parse(cfg.human), voices, log=log)
        if cfg.limit is not None:
            ds.train = ds.train[:cfg.limit]
    return ds


class TrainError(Exception):
    """Something the user can fix before training; one sentence."""


def out_path(cfg: TrainConfig) -> Path:
    """Where the model goes: --out, or mine.pt in the user models folder (where a preset's
    bare `model = "mine"` finds it). A shipped model is never overwritten by accident."""
    from livegen.paths import shipped, user_models

    target = Path(cfg.out) if cfg.out else user_models() / "mine.pt"
    shipped_models = shipped("models").resolve()
    if (target.resolve().parent == shipped_models and target.exists()
            and not cfg.replace_shipped):
        raise TrainError(f"{target} is a model shipped with livegen; give another --out (your "
                         f"models go in {user_models()}), or add --replace-shipped to "
                         "replace it on purpose")
    return target


def train(cfg: TrainConfig, argv: list[str] | None = None) -> Path:
    if not cfg.phrase_weight > 0:
        raise TrainError(f"--phrase-weight {cfg.phrase_weight} is not a positive number; give "
                         "1 for no extra weight at phrase ends, or more (default 3)")
    target = out_path(cfg)
    if cfg.export_only:  # the model as trained: its sizes and data come from the checkpoint
        saved = torch.load(Path(cfg.run_dir) / "last.pt", map_location="cpu", weights_only=True)
        keep = {"out": cfg.out, "replace_shipped": cfg.replace_shipped, "run_dir": cfg.run_dir,
                "evaluate": cfg.evaluate,
                "export_only": True, "device": cfg.device}
        cfg = TrainConfig(**(saved["config"] | keep))
    distributed = "RANK" in os.environ and "WORLD_SIZE" in os.environ
    rank = int(os.environ["RANK"]) if distributed else 0
    world = int(os.environ["WORLD_SIZE"]) if distributed else 1
    device = pick_device(cfg.device)
    if distributed:
        backend = "nccl" if device == "cuda" else "gloo"
        torch.distributed.init_process_group(backend)
        if device == "cuda":
            local = int(os.environ.get("LOCAL_RANK", 0))
            torch.cuda.set_device(local)
            device = f"cuda:{local}"
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    main = rank == 0
    log = print if main else (lambda *a, **k: None)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed + rank)

    ds = load_dataset(cfg, log)
    if main:
        data_mod.describe(ds)
    ranges = [ds.ranges["human"], *(ds.ranges[v] for v in ds.voices)]
    train_items = [data_mod.arrays(p, ranges, augment=True, phrase_weight=cfg.phrase_weight)
                   for p in ds.train]
    valid_items = [data_mod.arrays(p, ranges, augment=False) for p in ds.valid]

    mcfg = ModelConfig(n_voices=len(ds.voices), cell=cfg.cell, hidden=cfg.hidden,
                       layers=cfg.layers, embed=cfg.embed, dropout=cfg.dropout,
                       order=list(range(len(ds.voices)))[::-1])
    model = DuetModel(mcfg).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.01)
    run_dir = Path(cfg.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    start_epoch, best, stale, elapsed, frames_per_s = 0, math.inf, 0, 0.0, 0.0
    all_frames, loop_seconds = 0, 0.0
    command = argv if argv is not None else sys.argv[2:]
    if cfg.resume or cfg.export_only:
        ckpt = torch.load(run_dir / "last.pt", map_location=device, weights_only=True)
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        start_epoch, best, stale = ckpt["epoch"] + 1, ckpt["best"], ckpt["stale"]
        elapsed, frames_per_s = ckpt["elapsed"], ckpt["frames_per_s"]
        rng = np.random.default_rng(cfg.seed + rank + 1000 * start_epoch)
        if cfg.export_only:
            command, start_epoch = ckpt["argv"], cfg.epochs  # the command that trained it
        else:
            log(f"resumed from {run_dir / 'last.pt'} at epoch {start_epoch + 1}")
    net = (torch.nn.parallel.DistributedDataParallel(model) if distributed else model)
    amp = device.startswith("cuda")
    for epoch in range(start_epoch, cfg.epochs):
        t0 = time.perf_counter()
        model.train()
        steps = (sum(len(a.lead) for a in train_items) // cfg.seq_len) // (cfg.batch * world)
        batches = itertools.islice(
            data_mod.batches(train_items, cfg.batch, cfg.seq_len, rng, device), max(1, steps))
        bar = tqdm(batches, total=max(1, steps), desc=f"epoch {epoch + 1}/{cfg.epochs}",
                   disable=not main, leave=False, file=sys.stderr)
        frames, total, i = 0, 0.0, 0
        for i, b in enumerate(bar):
            lr = cfg.lr * 0.5 * (1 + math.cos(math.pi * epoch / cfg.epochs))
            for g in opt.param_groups:
                g["lr"] = lr
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
                lead, voices = net(b["human"], data_mod.machine_input(b["voices"]),
                                   b["positions"])
                loss = _loss(lead, voices, b)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            frames += b["lead"].numel() * world
            total += loss.item()
            spent = time.perf_counter() - t0
            bar.set_postfix(loss=f"{total / (i + 1):.3f}", fps=f"{frames / spent:,.0f}")
        spent = time.perf_counter() - t0
        all_frames, loop_seconds = all_frames + frames, loop_seconds + spent
        frames_per_s = all_frames / loop_seconds  # over the whole run, not one noisy epoch
        if not main:
            continue
        val = validate(model, valid_items, device)
        elapsed += time.perf_counter() - t0  # training time includes validation
        improved = val["loss"] < best - 1e-4
        best, stale = (val["loss"], 0) if improved else (best, stale + 1)
        log(f"epoch {epoch + 1}: train loss {total / max(1, i + 1):.3f}  valid loss "
            f"{val['loss']:.3f} (voice NLL {val['voice_nll']:.3f}, lead NLL {val['lead_nll']:.3f})"
            f"  {frames / spent:,.0f} frames/s  {spent:.0f} s{'  *' if improved else ''}")
        state = {"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": epoch,
                 "best": best, "stale": stale, "elapsed": elapsed, "frames_per_s": frames_per_s,
                 "argv": command, "config": asdict(cfg),
                 "model_config": mcfg.to_dict()}
        torch.save(state, run_dir / "last.pt")
        if improved:
            torch.save(state, run_dir / "best.pt")
        if stale >= cfg.patience:
            log(f"no better validation loss for {cfg.patience} epochs: stopping early")
            break
    if distributed:
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    if not main:
        return target
    best_state = torch.load(run_dir / "best.pt", map_location="cpu", weights_only=True)
    model = DuetModel(mcfg)
    model.load_state_dict(best_state["model"])
    model.eval()
    extra = {
        "data": ds.source, "split": {"train": len(ds.train), "valid": len(ds.valid),
                                     "test": len(ds.test)},
        "command": "livegen train " + shlex.join(command),
        "hparams": asdict(cfg) | {"model": mcfg.to_dict()},
        "train_seconds": round(elapsed, 1), "frames_per_second": round(frames_per_s),
        "best_epoch": best_state["epoch"] + 1, "valid_loss": round(best, 4),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
                   f"{device}",
    }
    info = modelfile.ModelInfo(
        voices=[modelfile.VoiceInfo(v, *ds.ranges[v]) for v in ds.voices], order=mcfg.order,
        human_range=ds.ranges["human"], extra=extra)
    out = modelfile.export(model, info, target)
    if cfg.evaluate:
        from livegen.train.evaluate import evaluate
        table = evaluate(out, ds, _eval_settings(cfg))
        info.extra["eval"] = table
        out = modelfile.export(model, info, target)
    write_card(out, info)
    log(f"exported {out} and {card_path(out)}")
    return out


def _eval_settings(cfg: TrainConfig):
    """The chorale model is evaluated as users hear it: with the shipped `chorale` preset."""
    from livegen.presets import find_preset, load_preset
    from livegen.settings import Settings
    return load_preset(find_preset("chorale")) if cfg.data is None else Settings()


def _loss(lead: torch.Tensor, voices: torch.Tensor, b: dict[str, torch.Tensor]) -> torch.Tensor:
    """The lead's mean NLL plus the voices' NLL, weighted per step (`data.phrase_weights`: the
    phrase ends count more) and normalized by the weights, times the number of voices."""
    lead_loss = F.cross_entropy(lead.flatten(0, 1).float(), b["lead"].flatten(), ignore_index=-100)
    per_token = F.cross_entropy(voices.flatten(0, 2).float(), b["voices"].flatten(),
                                ignore_index=-100, reduction="none")
    weights = b["weights"].unsqueeze(-1).expand(b["voices"].shape).flatten()
    weights = weights * (b["voices"].flatten() != -100)
    voice_loss = (per_token * weights).sum() / weights.sum().clamp(min=1e-6)
    return lead_loss + voices.shape[2] * voice_loss


@torch.no_grad()
def validate(model: torch.nn.Module, items: list[data_mod.Arrays], device: str
             ) -> dict[str, float]:
    """Mean NLL per voice token and per lead token over whole pieces (teacher forcing)."""
    model.eval()
    voice_sum = lead_sum = 0.0
    voice_n = lead_n = 0
    for b in data_mod.sequential(items, 0, device):
        lead, voices = model(b["human"], data_mod.machine_input(b["voices"]), b["positions"])
        voice_sum += float(F.cross_entropy(voices.flatten(0, 2).float(), b["voices"].flatten(),
                                           reduction="sum"))
        lead_sum += float(F.cross_entropy(lead.flatten(0, 1).float(), b["lead"].flatten(),
                                          reduction="sum"))
        voice_n += b["voices"].numel()
        lead_n += b["lead"].numel()
    v, lead_nll = voice_sum / voice_n, lead_sum / lead_n
    n_voices = items[0].voices.shape[1] if items else 1
    return {"voice_nll": v, "lead_nll": lead_nll, "loss": lead_nll + n_voices * v}


def card_path(model_path: Path) -> Path:
    return model_path.with_suffix(".md")


def write_card(path: Path, info: modelfile.ModelInfo) -> Path:
    x = info.extra
    hp = x.get("hparams", {})
    lines = [
        f"# Model card: {path.name}", "",
        f"- **Data:** {x.get('data')} — split by piece into {x.get('split')} (fixed seed; "
        "the test split is never trained on)",
        "- **Voices:** " + ", ".join(f"{v.name} {v.low}–{v.high}" for v in info.voices)
        + f"; human part {info.human_range[0]}–{info.human_range[1]}",
        f"- **Command:** `{x.get('command')}`",
        f"- **Training time:** {x.get('train_seconds')} s on {x.get('machine')}; "
        f"{x.get('frames_per_second')} frames/s; best epoch {x.get('best_epoch')} "
        f"(validation loss {x.get('valid_loss')})",
        f"- **Hyper-parameters:** `{json.dumps(hp.get('model', {}))}`; lr {hp.get('lr')}, "
        f"batch {hp.get('batch')}, sequence {hp.get('seq_len')}, seed {hp.get('seed')}",
        f"- **File size:** {path.stat().st_size / 1e6:.2f} MB",
        f"- **File format:** livegen model format {modelfile.FORMAT_VERSION}: weights and "
        "metadata only, no code (a `torch.save` zip read with `torch.load(weights_only=True)`; "
        "livegen builds the network from its own `livegen/model/network.py`; see "
        "`livegen/model/modelfile.py`)", "",
    ]
    if "eval" in x:
        from livegen.train.evaluate import format_table
        lines += ["## Evaluation on the test split (`livegen eval`)", "", format_table(x["eval"]),
                  ""]
    card = card_path(path)
    card.write_text("\n".join(lines))
    return card
