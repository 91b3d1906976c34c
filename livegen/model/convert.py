"""`python -m livegen.model.convert OLD NEW`: a format-1 model file (TorchScript) to format 2,
running nothing that is in OLD.

Decision. Format 1 was a TorchScript archive: `code/` (the network as TorchScript source),
`data.pkl` (the module tree, pickled, its tensors in `data/N`) and `extra/livegen.json` (the
metadata). Loading it the TorchScript way, `torch.jit.load`, compiles and runs that code (a
scripted `__setstate__` runs during the load), so this converter never does, and it offers no
opt-in to do so either: the weights can be had without running anything, so there is nothing
to trade for the risk.

- `code/` is never read.
- `extra/livegen.json` is JSON, read with `json`.
- `data.pkl` is read by `_WeightsUnpickler`, a `pickle.Unpickler` whose `find_class` resolves a
  fixed list of names, none to anything from the file: each `__torch__.*` class (the module
  tree's nodes) to an inert stand-in that only keeps its pickled state; `torch._utils.
  _rebuild_tensor_v2` to a function of this module that copies a view of a storage; storage
  types to dtypes; `torch.jit._pickle`'s list builders to `list`; `collections.OrderedDict` to
  itself. Any other name stops the conversion. Storages are read as raw bytes from `data/N`.
  This is the approach of `torch.load(weights_only=True)`, applied to the one layout TorchScript
  writes; what stays trusted is Python's own unpickler, as there.

The weights are then looked up by name in the stand-in tree for every entry of livegen's own
network's `state_dict`, with the network's sizes read from their shapes (dropout, which only
training uses, from the metadata's hyper-parameters); the result is written with
`modelfile.export` and loaded back with `modelfile.load` as a check. So the converted file runs
this livegen's network code, not the code stored in OLD: for a file written by livegen 0.1 that
is the same network, and the outputs are identical (tests/model/test_modelfile.py checks it on
fresh format-1 files; the shipped `models/chorale.pt` was converted this way, and its outputs
over a 256-step input compared bitwise equal before and after). A format-1 file whose stored
code was changed by hand would, after conversion, run livegen's network instead of its own.
"""

from __future__ import annotations

import argparse
import collections
import io
import json
import math
import pickle
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from livegen.model import modelfile
from livegen.model.modelfile import ModelFileError
from livegen.model.network import DuetModel, ModelConfig
from livegen.model.tokens import VOCAB

_DTYPES = {"FloatStorage": torch.float32, "DoubleStorage": torch.float64,
           "HalfStorage": torch.float16, "BFloat16Storage": torch.bfloat16,
           "LongStorage": torch.int64, "IntStorage": torch.int32, "ShortStorage": torch.int16,
           "CharStorage": torch.int8, "ByteStorage": torch.uint8, "BoolStorage": torch.bool}


class _Stub:
    """Stands in for one TorchScript object of the module tree: keeps its state, runs nothing."""

    qualname = ""

    def __init__(self, *args: object) -> None:
        self.args = args
        self.state: object = None

    def __setstate__(self, state: object) -> None:
        self.state = state


def _rebuild_tensor(storage: torch.Tensor, offset: int, size: tuple[int, ...],
                    stride: tuple[int, ...], *_: object) -> torch.Tensor:
    if not all(type(x) is int for x in (offset, *size, *stride)):
        raise pickle.UnpicklingError("a tensor's shape is not made of integers")
    if math.prod(size) > storage.numel():  # a view larger than its data: not a weight
        raise pickle.UnpicklingError("a tensor is larger than its storage")
    return torch.as_strided(storage, size, stride, offset).clone()


class _WeightsUnpickler(pickle.Unpickler):
    """Reads a TorchScript `data.pkl` into stand-ins and tensors; see the module docstring."""

    def __init__(self, data: bytes, archive: zipfile.ZipFile, prefix: str) -> None:
        super().__init__(io.BytesIO(data))
        self.archive, self.prefix = archive, prefix
        self.stubs: dict[str, type[_Stub]] = {}
        self.storages: dict[str, torch.Tensor] = {}

    def find_class(self, module: str, name: str) -> Any:
        if module.startswith("__torch__.") or module == "__torch__":
            qualname = f"{module}.{name}"
            if qualname not in self.stubs:  # a class of its own per name, made here: inert
                self.stubs[qualname] = type(name, (_Stub,), {"qualname": qualname})
            return self.stubs[qualname]
        if module == "torch" and name in _DTYPES:
            return _DTYPES[name]
        simple: dict[tuple[str, str], Callable[..., Any]] = {
            ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
            ("torch.jit._pickle", "build_intlist"): list,
            ("torch.jit._pickle", "build_doublelist"): list,
            ("torch.jit._pickle", "build_boollist"): list,
            ("torch.jit._pickle", "build_tensorlist"): list,
            ("torch.jit._pickle", "restore_type_tag"): lambda value, _tag: value,
            ("collections", "OrderedDict"): collections.OrderedDict,
        }
        if (module, name) in simple:
            return simple[(module, name)]
        raise pickle.UnpicklingError(f"refusing {module}.{name}")

    def persistent_load(self, pid: Any) -> torch.Tensor:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"
                and isinstance(pid[1], torch.dtype) and isinstance(pid[2], str)
                and type(pid[4]) is int):
            raise pickle.UnpicklingError("a storage reference of an unknown form")
        _, dtype, key, _location, numel = pid
        if key not in self.storages:
            raw = self.archive.read(f"{self.prefix}/data/{key}")
            itemsize = torch.empty(0, dtype=dtype).element_size()
            if len(raw) != numel * itemsize:
                raise pickle.UnpicklingError(f"storage {key} has {len(raw)} bytes, not "
                                             f"{numel * itemsize}")
            self.storages[key] = torch.frombuffer(bytearray(raw), dtype=dtype) if raw \
                else torch.empty(0, dtype=dtype)
        return self.storages[key]


def read_format1(path: Path) -> tuple[dict[str, Any], _Stub]:
    """The metadata and the module tree (stand-ins and tensors) of a format-1 file."""
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
            metas = [n for n in names if n.count("/") == 2
                     and n.endswith(f"/extra/{modelfile.META_NAME}")]
            if len(metas) != 1:
                raise ModelFileError(f"{path}: not a format-{modelfile.TORCHSCRIPT_VERSION} "
                                     "livegen model file (no livegen.json inside), so there is "
                                     "nothing to convert.")
            prefix = metas[0].split("/")[0]
            meta = json.loads(z.read(metas[0]).decode("utf-8"))
            order = z.read(f"{prefix}/byteorder").decode() if f"{prefix}/byteorder" in names \
                else "little"
            if order != sys.byteorder:
                raise ModelFileError(f"{path}: its weights are {order}-endian and this machine "
                                     f"is {sys.byteorder}-endian; convert it on a "
                                     f"{order}-endian machine.")
            root = _WeightsUnpickler(z.read(f"{prefix}/data.pkl"), z, prefix).load()
    except ModelFileError:
        raise
    except Exception as exc:  # a damaged or hostile archive: zipfile, json, pickle and torch
        raise ModelFileError(f"{path}: not a readable format-{modelfile.TORCHSCRIPT_VERSION} "
                             f"livegen model file ({type(exc).__name__}: {exc}), so nothing "
                             "was converted.") from None
    if not isinstance(root, _Stub) or not isinstance(root.state, dict):
        raise ModelFileError(f"{path}: its TorchScript data is not a module, so it is not a "
                             "livegen model and nothing was converted.")
    return meta, root


def _lookup(root: _Stub, key: str) -> object:
    node: object = root
    for part in key.split("."):
        state = node.state if isinstance(node, _Stub) else None
        if not isinstance(state, dict) or part not in state:
            return None
        node = state[part]
    return node


def _tensor(root: _Stub, key: str) -> torch.Tensor:
    t = _lookup(root, key)
    if not isinstance(t, torch.Tensor):
        raise ValueError(f"it has no tensor {key}")
    return t


def _config(root: _Stub, info: modelfile.ModelInfo) -> ModelConfig:
    """The network's sizes, read from the shapes of its weights."""
    voice_w, machine = _tensor(root, "voice_w"), _tensor(root, "in_machine.weight")
    ih0 = _tensor(root, "rnn.weight_ih_l0")
    if voice_w.dim() != 3 or voice_w.shape[1] != VOCAB or machine.dim() != 2 or ih0.dim() != 2:
        raise ValueError("its weights are not shaped like the duet network's")
    hidden = int(voice_w.shape[2])
    gates = int(ih0.shape[0]) // max(hidden, 1)
    if gates not in (3, 4) or int(ih0.shape[0]) != gates * hidden:
        raise ValueError("its recurrent cell is neither a GRU nor an LSTM")
    layers = 0
    while isinstance(_lookup(root, f"rnn.weight_ih_l{layers}"), torch.Tensor):
        layers += 1
    hparams = info.extra.get("hparams")
    trained = hparams.get("model") if isinstance(hparams, dict) else None
    drop = trained.get("dropout") if isinstance(trained, dict) else None  # training only
    return ModelConfig(n_voices=int(voice_w.shape[0]), cell="gru" if gates == 3 else "lstm",
                       hidden=hidden, layers=layers, embed=int(machine.shape[1]),
                       dropout=float(drop) if isinstance(drop, float) and 0 <= drop < 1 else 0.0,
                       order=list(info.order))


def convert(old: str | Path, new: str | Path) -> Path:
    """Write the weights and metadata of the format-1 file `old` as a model file at `new`."""
    old, new = Path(old), Path(new)
    if not old.is_file():
        raise ModelFileError(f"{old}: no such model file; check the path.")
    if new.resolve() == old.resolve():
        raise ModelFileError(f"{new}: choose a new path for the converted file; the old one is "
                             "kept as it is.")
    try:
        modelfile.read_info(old)
    except ModelFileError:
        pass
    else:
        raise ModelFileError(f"{old}: already a livegen model file of format "
                             f"{modelfile.FORMAT_VERSION}; use it as it is.")
    meta, root = read_format1(old)
    info = modelfile.info_from_meta(old, meta, version=modelfile.TORCHSCRIPT_VERSION)
    try:
        cfg = _config(root, info)
        with torch.random.fork_rng(devices=[]):
            names = list(DuetModel(cfg).state_dict())
        weights = {k: _tensor(root, k) for k in names}
    except ValueError as exc:
        raise ModelFileError(f"{old}: {exc}, so it is not a livegen model and nothing was "
                             "converted.") from None
    model = modelfile.build(old, cfg.to_dict(), weights, info)
    out = modelfile.export(model, info, new)
    modelfile.load(out)  # the converted file loads, scripts and passes the shape checks
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m livegen.model.convert",
        description="Convert a livegen model file of format 1 (TorchScript) to the current "
                    "format (weights and metadata only), running nothing that is in it.")
    parser.add_argument("old", type=Path, help="the format-1 model file")
    parser.add_argument("new", type=Path, help="where to write the converted file")
    args = parser.parse_args(argv)
    try:
        out = convert(args.old, args.new)
    except ModelFileError as exc:
        print(f"livegen: {exc}", file=sys.stderr)
        return 2
    info = modelfile.read_info(out)
    print(f"converted {args.old} to {out} ({', '.join(v.name for v in info.voices)}); it runs "
          "this livegen's network code, none from the old file")
    return 0


if __name__ == "__main__":
    sys.exit(main())
