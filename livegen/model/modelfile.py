"""The model file: TorchScript with livegen's metadata embedded. Export and load, one place each.

The file is a TorchScript zip archive with an extra file `livegen.json`: format version,
vocabulary, steps per beat, voices with names and ranges, training data and command, evaluation
figures. Loading reads and checks that JSON with `zipfile` first, so a foreign or corrupt file is
refused before torch touches it, then loads the TorchScript and checks the shapes of its methods.
A switch to `torch.export` later changes only this module.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from livegen.model.tokens import HUMAN_DIM, N_POSITIONS, STEPS_PER_BEAT, VOCAB

FORMAT = "livegen-model"
FORMAT_VERSION = 1
META_NAME = "livegen.json"
METHODS = ("init_state", "context", "context_base", "context_human", "voice_logits",
           "voice_condition", "head_weights", "lead", "advance")


class ModelFileError(Exception):
    """A model file livegen cannot use; the message is one sentence naming the file."""


@dataclass
class VoiceInfo:
    name: str
    low: int
    high: int


@dataclass
class ModelInfo:
    voices: list[VoiceInfo]
    order: list[int]  # the order voices are chosen in within a step
    human_range: tuple[int, int]
    extra: dict[str, Any] = field(default_factory=dict)  # data, command, hparams, eval, ...

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT, "format_version": FORMAT_VERSION, "vocab": VOCAB,
            "human_dim": HUMAN_DIM, "n_positions": N_POSITIONS, "steps_per_beat": STEPS_PER_BEAT,
            "voices": [vars(v) for v in self.voices], "order": self.order,
            "human_range": list(self.human_range), **self.extra,
        }


def export(module: torch.nn.Module, info: ModelInfo, path: str | Path) -> Path:
    """Script `module` (a train.model.DuetModel) and save it with its metadata."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    scripted = torch.jit.script(module.cpu().eval())
    meta = json.dumps(info.to_json(), indent=1, sort_keys=True)
    tmp = path.with_suffix(path.suffix + ".partial")
    torch.jit.save(scripted, str(tmp), _extra_files={META_NAME: meta})
    tmp.replace(path)  # never leave a half-written model where a preset points
    return path


def read_info(path: str | Path) -> ModelInfo:
    """The metadata of a model file, checked, without loading any weights."""
    path = Path(path)
    meta = _read_meta(path)
    try:
        voices = [VoiceInfo(str(v["name"]), int(v["low"]), int(v["high"])) for v in meta["voices"]]
        order = [int(i) for i in meta["order"]]
        human = (int(meta["human_range"][0]), int(meta["human_range"][1]))
    except (KeyError, TypeError, ValueError, IndexError):
        raise ModelFileError(f"{path}: the model's metadata is incomplete; re-export it with "
                             "`livegen train`.") from None
    if sorted(order) != list(range(len(voices))) or not voices:
        raise ModelFileError(f"{path}: the model's voice order does not match its voices; "
                             "re-export it with `livegen train`.")
    extra = {k: v for k, v in meta.items() if k not in
             ("voices", "order", "human_range", "format", "format_version")}
    return ModelInfo(voices, order, human, extra)


def load(path: str | Path, device: str = "cpu") -> tuple[torch.jit.ScriptModule, ModelInfo]:
    """Load a model file onto `device`, checking format, version and the shapes of its methods."""
    path = Path(path)
    info = read_info(path)
    try:
        net = torch.jit.load(str(path), map_location=device)
    except Exception as exc:  # torch raises RuntimeError and others for damaged archives
        raise ModelFileError(f"{path}: the model file is damaged ({type(exc).__name__}); "
                             "copy it again or re-export it.") from None
    missing = [m for m in METHODS if not hasattr(net, m)]
    if missing:
        raise ModelFileError(f"{path}: not a livegen model (it lacks {', '.join(missing)}).")
    for param in net.parameters():
        param.requires_grad_(False)  # inference only: no graph is ever built for backward
    _check_shapes(net, info, path, device)
    return net.eval(), info


def _read_meta(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file; check the path or the preset's "
                             "`model` key.")
    try:
        with zipfile.ZipFile(path) as z:
            names = [n for n in z.namelist() if n.endswith("/extra/" + META_NAME)]
            if not names:
                raise ModelFileError(f"{path}: not a livegen model file (no livegen metadata "
                                     "inside); choose a file made by `livegen train`.")
            meta = json.loads(z.read(names[0]).decode("utf-8"))
    except ModelFileError:
        raise
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, UnicodeDecodeError):
        raise ModelFileError(f"{path}: not a livegen model file, or a truncated one; choose a "
                             "file made by `livegen train`.") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelFileError(f"{path}: not a livegen model file; choose a file made by "
                             "`livegen train`.")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(f"{path}: model format version {meta.get('format_version')} is "
                             f"not the {FORMAT_VERSION} this livegen reads; update livegen or "
                             "re-export the model.")
    for key, want in (("vocab", VOCAB), ("human_dim", HUMAN_DIM), ("n_positions", N_POSITIONS),
                      ("steps_per_beat", STEPS_PER_BEAT)):
        if meta.get(key) != want:
            raise ModelFileError(f"{path}: the model's {key} is {meta.get(key)}, this livegen "
                                 f"needs {want}; re-export it with this version.")
    return meta


def _check_shapes(net: torch.jit.ScriptModule, info: ModelInfo, path: Path, device: str) -> None:
    n = len(info.voices)
    try:
        with torch.inference_mode():
            state = net.init_state(1)
            human = torch.zeros(HUMAN_DIM, device=device)
            ctx = net.context(state, human, 0)
            ok = net.voice_logits(ctx, n - 1).shape == (VOCAB,)
            ok = ok and net.lead(state, 0).shape == (VOCAB,)
            machine = torch.zeros(n, dtype=torch.long, device=device)
            ok = ok and net.advance(state, human, machine, 0).shape == state.shape
    except Exception:
        ok = False
    if not ok:
        raise ModelFileError(f"{path}: the model's shapes do not match its metadata ({n} voices);"
                             " re-export it with `livegen train`.")
