"""The model file: weights and metadata, no code. Export and load, one place each.

Decision: a model file is data. It is a `torch.save` zip of one dict,

    {"format": "livegen-model", "format_version": 2,
     "meta": {...},           # JSON values: vocabulary, steps per beat, voices with names and
                              # ranges, voice order, human range, training data and command,
                              # hyper-parameters, evaluation figures (`ModelInfo.to_json`)
     "config": {...},         # `network.ModelConfig.to_dict()`: what rebuilds the network
     "state_dict": {...}}     # name -> tensor, the network's weights

and `load` reads it with `torch.load(..., weights_only=True)`, whose unpickler builds only
tensors and plain containers and refuses any other object, so nothing in a file runs. The
network itself is livegen's own code (`livegen.model.network.DuetModel`): `load` builds it from
the file's config (once each size in it shows in one of the file's weights, so a config cannot
make livegen allocate more than the file holds), checks every weight's name, shape and type
against that net, loads the weights, and scripts it with `torch.jit.script`, so the runtime
calls the same TorchScript methods, as fast and as warm, as when the file itself was
TorchScript.

Format 1 (livegen 0.1) was a TorchScript archive with `livegen.json` inside. TorchScript carries
code, and `torch.jit.load` runs it (a scripted `__setstate__` runs at load), so livegen no
longer loads such files, nor any other file with code in it (a TorchScript archive, a pickle
that names a function): each is refused with one sentence, before anything in it is unpickled
or compiled. A format-1 file is recognised from its zip directory alone and the sentence names
`python -m livegen.model.convert OLD NEW`, which copies its weights and metadata into format 2
without running its code (see that module), or retraining with `livegen train`.

Every refusal is a `ModelFileError` whose message is one sentence that starts with the file's
path and says what to do.
"""

from __future__ import annotations

import json
import pickle
import shlex
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from livegen.model.network import DuetModel, ModelConfig
from livegen.model.tokens import HUMAN_DIM, N_POSITIONS, STEPS_PER_BEAT, VOCAB

FORMAT = "livegen-model"
FORMAT_VERSION = 2
TORCHSCRIPT_VERSION = 1  # the last format that was a TorchScript archive
META_NAME = "livegen.json"  # the metadata entry of a format-1 (TorchScript) file
METHODS = ("init_state", "context", "context_base", "context_human", "voice_logits",
           "voice_condition", "head_weights", "lead", "advance")
_KEYS = {"format", "format_version", "meta", "config", "state_dict"}


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


def export(module: DuetModel, info: ModelInfo, path: str | Path) -> Path:
    """Save `module`'s config and weights with `info` as a model file (written atomically)."""
    if not isinstance(module, DuetModel):
        raise TypeError(f"export takes a DuetModel, not {type(module).__name__}")
    if info.order != module.config.order or len(info.voices) != module.config.n_voices:
        raise ValueError(f"the metadata's {len(info.voices)} voices in order {info.order} do "
                         f"not match the network's {module.config.n_voices} in order "
                         f"{module.config.order}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = json.loads(json.dumps(info.to_json()))  # plain JSON values only: tuples become lists
    weights = {k: v.detach().cpu().contiguous().clone() for k, v in module.state_dict().items()}
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, "meta": meta,
               "config": module.config.to_dict(), "state_dict": weights}
    tmp = path.with_suffix(path.suffix + ".partial")
    torch.save(payload, tmp)
    tmp.replace(path)  # never leave a half-written model where a preset points
    return path


def read_info(path: str | Path) -> ModelInfo:
    """The metadata of a model file, checked (the file is read whole: it is one small pickle)."""
    path = Path(path)
    return info_from_meta(path, _read(path)["meta"])


def load(path: str | Path, device: str = "cpu") -> tuple[torch.jit.ScriptModule, ModelInfo]:
    """Build livegen's network from a model file's config and weights, scripted, on `device`;
    checks format, version, metadata, every weight's name and shape, and the methods' shapes."""
    path = Path(path)
    payload = _read(path)
    info = info_from_meta(path, payload["meta"])
    model = build(path, payload["config"], payload["state_dict"], info)
    model = model.to(device)  # before scripting: an RNN on CUDA flattens its weights here
    try:
        net = torch.jit.script(model)
    except Exception as exc:  # livegen's own network always scripts; say so if it ever does not
        raise ModelFileError(f"{path}: livegen could not compile its network for this model "
                             f"({type(exc).__name__}); report this with the model file.") from None
    _check_shapes(net, info, path, device)
    return net, info


def build(path: Path, config: object, state_dict: object, info: ModelInfo) -> DuetModel:
    """The eager network for a config and weights read from `path`, in eval mode on the CPU,
    without gradients; every mismatch is a ModelFileError."""
    try:
        cfg = ModelConfig.from_dict(config)
    except ValueError as exc:
        raise ModelFileError(f"{path}: {exc}; re-export the model with `livegen train`.") from None
    if cfg.n_voices != len(info.voices) or cfg.order != info.order:
        raise ModelFileError(f"{path}: the network's {cfg.n_voices} voices in order {cfg.order} "
                             f"do not match the metadata's {len(info.voices)} in order "
                             f"{info.order}; re-export the model with `livegen train`.")
    if not isinstance(state_dict, dict) or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state_dict.items()):
        raise ModelFileError(f"{path}: the model's weights are not a table of tensors; "
                             "re-export it with `livegen train`.")
    if not _sizes_in_weights(cfg, state_dict):
        raise ModelFileError(f"{path}: the model's weights do not fit its network config; "
                             "re-export it with `livegen train`.")
    with torch.random.fork_rng(devices=[]):  # the initial weights are overwritten: leave the
        model = DuetModel(cfg)               # caller's random stream as it was
    want = {k: (tuple(v.shape), v.dtype, v.layout) for k, v in model.state_dict().items()}
    got = {k: (tuple(v.shape), v.dtype, v.layout) for k, v in state_dict.items()}
    if got != want:
        wrong = sorted(set(want) ^ set(got)) or sorted(k for k in want if want[k] != got[k])
        raise ModelFileError(f"{path}: the model's weights do not fit its network config "
                             f"({wrong[0]}, {len(wrong)} in all); re-export it with "
                             "`livegen train`.")
    try:
        model.load_state_dict(state_dict)
    except Exception as exc:  # names and shapes match; anything left is a damaged tensor
        raise ModelFileError(f"{path}: the model's weights do not load ({type(exc).__name__}); "
                             "copy the file again or re-export it.") from None
    for param in model.parameters():
        param.requires_grad_(False)  # inference only: no graph is ever built for backward
    return model.eval()


def _sizes_in_weights(cfg: ModelConfig, state_dict: dict[str, torch.Tensor]) -> bool:
    """Whether each size in `cfg` shows in a weight of the file, so that building the network
    allocates no more than the file holds (a config alone could ask for any amount)."""
    def shape(name: str) -> tuple[int, ...] | None:
        t = state_dict.get(name)
        return tuple(t.shape) if t is not None else None

    last = cfg.layers - 1
    return (shape("voice_w") == (cfg.n_voices, VOCAB, cfg.hidden)
            and shape("in_machine.weight") == (cfg.n_voices * VOCAB, cfg.embed)
            and f"rnn.weight_hh_l{last}" in state_dict
            and f"rnn.weight_hh_l{last + 1}" not in state_dict)


def info_from_meta(path: Path, meta: object, version: int = FORMAT_VERSION) -> ModelInfo:
    """`ModelInfo` from a file's metadata dict, checked against this livegen (format `version`,
    vocabulary, input size, positions, steps per beat, voices and their order)."""
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelFileError(f"{path}: not a livegen model file; choose a file made by "
                             "`livegen train`.")
    if meta.get("format_version") != version:
        raise ModelFileError(f"{path}: model format version {meta.get('format_version')} is "
                             f"not the {version} this livegen reads; update livegen or "
                             "re-export the model.")
    for key, want in (("vocab", VOCAB), ("human_dim", HUMAN_DIM), ("n_positions", N_POSITIONS),
                      ("steps_per_beat", STEPS_PER_BEAT)):
        if meta.get(key) != want:
            raise ModelFileError(f"{path}: the model's {key} is {meta.get(key)}, this livegen "
                                 f"needs {want}; re-export it with this version.")
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


def convert_command(path: Path) -> str:
    """The command that converts the format-1 file at `path`, quoted for a shell."""
    new = path.with_name(f"{path.stem}-v{FORMAT_VERSION}{path.suffix or '.pt'}")
    return f"python -m livegen.model.convert {shlex.quote(str(path))} {shlex.quote(str(new))}"


def _read(path: Path) -> dict[str, Any]:
    """The file's top-level dict, format and version checked; refuses code before reading it."""
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file; check the path or the preset's "
                             "`model` key.")
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError):
        raise ModelFileError(f"{path}: not a livegen model file, or a truncated one; choose a "
                             "file made by `livegen train`.") from None
    parts = [n.split("/") for n in names]
    if any(len(p) > 2 and p[1] == "code" for p in parts):  # TorchScript: code/__torch__/...
        if any(p[1:] == ["extra", META_NAME] for p in parts if len(p) > 1):
            raise ModelFileError(
                f"{path}: this is a livegen model file of format {TORCHSCRIPT_VERSION} "
                "(TorchScript, which holds code that runs when it is loaded), so livegen no "
                f"longer loads it; convert it with `{convert_command(path)}`, which copies only "
                "its weights and metadata and runs none of its code, or retrain it with "
                "`livegen train`.")
        raise ModelFileError(f"{path}: a TorchScript archive, which holds code, not a livegen "
                             "model file; livegen refuses it without running anything in it "
                             "(choose a file made by `livegen train`).")
    if not any(len(p) == 2 and p[1] == "data.pkl" for p in parts):
        raise ModelFileError(f"{path}: not a livegen model file (no livegen data inside); "
                             "choose a file made by `livegen train`.")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "weights only" not in str(exc).lower():
            raise ModelFileError(f"{path}: the model file is damaged (its data does not "
                                 "unpickle); copy it again or re-export it.") from None
        raise ModelFileError(f"{path}: the file holds more than weights and metadata (objects "
                             "or code that would run when loaded), so livegen refuses it "
                             "without running any of it; choose a file made by "
                             "`livegen train`.") from None
    except Exception as exc:  # torch raises RuntimeError and others for damaged archives
        raise ModelFileError(f"{path}: the model file is damaged ({type(exc).__name__}); "
                             "copy it again or re-export it.") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ModelFileError(f"{path}: not a livegen model file; choose a file made by "
                             "`livegen train`.")
    if payload.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(f"{path}: model format version {payload.get('format_version')} is "
                             f"not the {FORMAT_VERSION} this livegen reads; update livegen or "
                             "re-export the model.")
    if set(payload) != _KEYS:
        raise ModelFileError(f"{path}: the model file has parts {sorted(map(str, payload))}, "
                             f"not {sorted(_KEYS)}; re-export it with `livegen train`.")
    return payload


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
            ok = ok and all(hasattr(net, m) for m in METHODS)
    except Exception:
        ok = False
    if not ok:
        raise ModelFileError(f"{path}: the model's shapes do not match its metadata ({n} voices);"
                             " re-export it with `livegen train`.")
