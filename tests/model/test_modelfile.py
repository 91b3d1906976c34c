"""Model files: weights and metadata only. A round trip; a file with code in it is refused and
none of it runs; an old TorchScript livegen file names the converter, which copies it without
running it and gives identical outputs; a corrupt, truncated or foreign file gives one sentence."""

import builtins
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch
from torch import nn

from livegen.model import convert, modelfile
from livegen.model.modelfile import ModelFileError
from livegen.model.network import DuetModel, ModelConfig
from livegen.model.tokens import HUMAN_DIM, VOCAB
from tests.util import VOICES, tiny_model


def _assert_one_sentence(exc: ModelFileError, path) -> None:
    message = str(exc)
    assert message.startswith(str(path))
    assert "\n" not in message and "Traceback" not in message
    assert message.endswith(".")


def _info() -> modelfile.ModelInfo:
    """The metadata `tiny_model` writes."""
    return modelfile.ModelInfo([modelfile.VoiceInfo(*v) for v in VOICES], [2, 1, 0], (59, 81),
                               {"data": "random weights (test)"})


def _format1(path: Path, model: nn.Module) -> Path:
    """A model file as livegen 0.1 wrote it: TorchScript with livegen.json inside."""
    meta = _info().to_json() | {"format_version": 1}
    torch.jit.save(torch.jit.script(model.eval()), str(path),
                   _extra_files={"livegen.json": json.dumps(meta)})
    return path


class _Trap(nn.Module):
    """Stands in for Dropout (identity at inference); its scripted __setstate__, which
    torch.jit.load runs, writes a file."""

    def __init__(self, marker: str):
        super().__init__()
        self.marker = marker

    @torch.jit.export
    def __getstate__(self) -> tuple[str, bool]:
        return (self.marker, self.training)

    @torch.jit.export
    def __setstate__(self, state: tuple[str, bool]) -> None:
        self.marker = state[0]
        self.training = state[1]
        torch.save(torch.zeros(1), self.marker)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class _Opens:
    """Pickles as a call to open(marker, "w"): unpickling it creates the marker file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (builtins.open, (str(self.marker), "w"))


def _run(net, steps: int = 24, voices: int = 3) -> list[torch.Tensor]:
    """Every output of the step-by-step methods over a fixed input sequence."""
    g = torch.Generator().manual_seed(7)
    human = (torch.rand(steps, HUMAN_DIM, generator=g) < 0.03).float()
    machine = torch.randint(0, VOCAB, (steps, voices), generator=g)
    outs = []
    with torch.inference_mode():
        state = net.init_state(1)
        for t in range(steps):
            pos = (3 * t) % 32
            ctx = net.context(state, human[t], pos)
            for k in (2, 1, 0):
                outs.append(net.voice_logits(ctx, k))
                ctx = net.voice_condition(ctx, k, int(machine[t, k]))
            outs.append(net.lead(state, pos))
            state = net.advance(state, human[t], machine[t], pos)
            outs.append(state.clone())
        outs += list(net.head_weights().values())
    return outs


# ------------------------------------------------------------------------------- round trip


def test_metadata_travels_inside_the_file(tmp_path):
    _, path = tiny_model(tmp_path / "m.pt")
    info = modelfile.read_info(path)
    assert [(v.name, v.low, v.high) for v in info.voices][0] == ("alto", 53, 77)
    assert info.order == [2, 1, 0]
    assert info.human_range == (59, 81)
    assert info.extra["data"] == "random weights (test)"
    assert info.extra["steps_per_beat"] == 4


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_round_trip_builds_livegens_network_scripted_with_the_same_outputs(tmp_path, cell):
    model, path = tiny_model(tmp_path / "m.pt", cell=cell, seed=2)
    net, info = modelfile.load(path)
    assert isinstance(net, torch.jit.ScriptModule)
    assert all(hasattr(net, m) for m in modelfile.METHODS)
    assert not any(p.requires_grad for p in net.parameters())
    assert info == modelfile.read_info(path)
    with torch.no_grad():
        for a, b in zip(_run(model), _run(net), strict=True):
            assert torch.equal(a, b)


def test_the_file_holds_data_only(tmp_path):
    model, path = tiny_model(tmp_path / "m.pt")
    names = zipfile.ZipFile(path).namelist()
    assert not any("/code/" in n for n in names)
    payload = torch.load(path, map_location="cpu", weights_only=True)
    assert set(payload) == {"format", "format_version", "meta", "config", "state_dict"}
    assert payload["format_version"] == modelfile.FORMAT_VERSION
    assert payload["config"] == model.config.to_dict()
    json.dumps(payload["meta"])  # plain JSON values
    assert set(payload["state_dict"]) == set(model.state_dict())


def test_loading_leaves_the_random_stream_alone(tmp_path):
    _, path = tiny_model(tmp_path / "m.pt")
    torch.manual_seed(5)
    modelfile.load(path)
    after = torch.rand(3)
    torch.manual_seed(5)
    assert torch.equal(after, torch.rand(3))


# ------------------------------------------------------------------- files with code in them


def test_a_pickle_with_a_reduce_payload_is_refused_and_does_not_run(tmp_path):
    marker = tmp_path / "pwned"
    model, _ = tiny_model(tmp_path / "m.pt")
    payload = {"format": modelfile.FORMAT, "format_version": modelfile.FORMAT_VERSION,
               "meta": _info().to_json(), "config": model.config.to_dict(),
               "state_dict": model.state_dict() | {"trap": _Opens(marker)}}
    evil = tmp_path / "evil.pt"
    torch.save(payload, evil)
    for read in (modelfile.load, modelfile.read_info):
        with pytest.raises(ModelFileError, match="more than weights and metadata") as err:
            read(evil)
        _assert_one_sentence(err.value, evil)
    assert not marker.exists()
    torch.load(evil, weights_only=False)  # the payload is live: unpickling it does run it
    assert marker.exists()


def test_a_raw_pickle_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    evil.write_bytes(b"cos\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR.")
    with pytest.raises(ModelFileError) as err:
        modelfile.load(evil)
    _assert_one_sentence(err.value, evil)
    assert not marker.exists()


def test_an_old_torchscript_livegen_file_names_the_converter_and_does_not_run(tmp_path):
    marker = tmp_path / "pwned"
    model, _ = tiny_model(tmp_path / "m.pt")
    model.drop = _Trap(str(marker))
    old = _format1(tmp_path / "old model.pt", model)
    for read in (modelfile.load, modelfile.read_info):
        with pytest.raises(ModelFileError) as err:
            read(old)
        _assert_one_sentence(err.value, old)
        message = str(err.value)
        assert "format 1" in message and "livegen train" in message
        assert f"python -m livegen.model.convert '{old}' '{tmp_path / 'old model-v2.pt'}'" \
            in message
    assert not marker.exists()
    torch.jit.load(str(old))  # the trap is live: the TorchScript way of loading springs it
    assert marker.exists()


def test_a_foreign_torchscript_archive_is_refused(tmp_path):
    path = tmp_path / "ts.pt"
    torch.jit.save(torch.jit.script(nn.Linear(2, 2)), str(path))
    with pytest.raises(ModelFileError, match="TorchScript archive") as err:
        modelfile.load(path)
    _assert_one_sentence(err.value, path)


# ------------------------------------------------------------------------------ the converter


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_the_converter_gives_identical_outputs(tmp_path, cell):
    model, _ = tiny_model(tmp_path / "m.pt", cell=cell, seed=4)
    old = _format1(tmp_path / "old.pt", model)
    new = convert.convert(old, tmp_path / "new.pt")
    net, info = modelfile.load(new)
    assert info.extra["data"] == "random weights (test)" and info.order == [2, 1, 0]
    assert torch.load(new, weights_only=True)["config"] == model.config.to_dict() | {
        "dropout": 0.0}
    for a, b in zip(_run(torch.jit.load(str(old))), _run(net), strict=True):
        assert torch.equal(a, b)


def test_the_converter_runs_nothing_from_the_old_file(tmp_path):
    marker = tmp_path / "pwned"
    model, _ = tiny_model(tmp_path / "m.pt", seed=6)
    reference = _run(model)
    model.drop = _Trap(str(marker))
    old = _format1(tmp_path / "old.pt", model)
    assert convert.main([str(old), str(tmp_path / "new.pt")]) == 0
    assert not marker.exists()
    net, _ = modelfile.load(tmp_path / "new.pt")
    assert all(torch.equal(a, b) for a, b in zip(reference, _run(net), strict=True))


def test_the_converter_refuses_other_files_in_one_line(tmp_path, capsys):
    marker = tmp_path / "pwned"
    _, current = tiny_model(tmp_path / "m.pt")
    ts = tmp_path / "ts.pt"
    torch.jit.save(torch.jit.script(nn.Linear(2, 2)), str(ts))
    # a format-1 file whose data names a function: refused, not called
    old = _format1(tmp_path / "old.pt", tiny_model(tmp_path / "m2.pt")[0])
    evil = tmp_path / "evil.pt"
    with zipfile.ZipFile(old) as src, zipfile.ZipFile(evil, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename.endswith("/data.pkl"):
                data = b"cos\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR."
            dst.writestr(item, data)
    for bad, says in ((current, "already"), (ts, "nothing to convert"),
                      (evil, "refusing os.system"), (tmp_path / "absent.pt", "no such")):
        assert convert.main([str(bad), str(tmp_path / "out.pt")]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and str(bad) in err and says in err
    assert not marker.exists() and not (tmp_path / "out.pt").exists()


# ---------------------------------------------------------------- corrupt, foreign, mismatched


def test_truncated_file(tmp_path):
    _, path = tiny_model(tmp_path / "m.pt")
    data = path.read_bytes()
    bad = tmp_path / "truncated.pt"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError) as err:
        modelfile.load(bad)
    _assert_one_sentence(err.value, bad)


def test_random_bytes_and_a_text_file(tmp_path):
    for name, payload in (("noise.pt", bytes(range(256)) * 40), ("notes.pt", b"hello\n")):
        bad = tmp_path / name
        bad.write_bytes(payload)
        with pytest.raises(ModelFileError, match="not a livegen model file") as err:
            modelfile.load(bad)
        _assert_one_sentence(err.value, bad)


def test_foreign_zips_and_foreign_weights(tmp_path):
    foreign = tmp_path / "other.pt"
    with zipfile.ZipFile(foreign, "w") as z:
        z.writestr("archive/notes.txt", b"hello")
    weights = tmp_path / "weights.pt"
    torch.save({"weight": torch.zeros(2)}, weights)
    bare = tmp_path / "bare.pt"
    with zipfile.ZipFile(bare, "w") as z:
        z.writestr("archive/data.pkl", b"\x80\x04K\x01.")
    for path in (foreign, weights, bare):
        with pytest.raises(ModelFileError) as err:
            modelfile.load(path)
        _assert_one_sentence(err.value, path)
        assert "not a livegen model file" in str(err.value) or "damaged" in str(err.value)


def _rewrite(path: Path, out: Path, **change) -> Path:
    payload = torch.load(path, map_location="cpu", weights_only=True)
    torch.save(payload | change, out)
    return out


def test_a_newer_format_version_is_named(tmp_path):
    _, path = tiny_model(tmp_path / "m.pt")
    newer = _rewrite(path, tmp_path / "newer.pt", format_version=9)
    with pytest.raises(ModelFileError, match="format version 9") as err:
        modelfile.load(newer)
    _assert_one_sentence(err.value, newer)


def test_weights_that_do_not_fit_the_config_are_refused(tmp_path):
    model, path = tiny_model(tmp_path / "m.pt")
    sd = model.state_dict()
    cases = {
        "huge": {"config": model.config.to_dict() | {"hidden": 10 ** 7}},
        "missing": {"state_dict": {k: v for k, v in sd.items() if k != "lead_out.bias"}},
        "shape": {"state_dict": sd | {"lead_out.bias": torch.zeros(3)}},
        "dtype": {"state_dict": sd | {"lead_out.bias": sd["lead_out.bias"].double()}},
        "voices": {"config": model.config.to_dict() | {"order": [0, 1, 2]}},
        "config": {"config": {"hidden": 24}},
        "meta": {"meta": _info().to_json() | {"vocab": 7}},
    }
    for name, change in cases.items():
        bad = _rewrite(path, tmp_path / f"{name}.pt", **change)
        with pytest.raises(ModelFileError) as err:
            modelfile.load(bad)
        _assert_one_sentence(err.value, bad)


def test_missing_file(tmp_path):
    with pytest.raises(ModelFileError, match="no such model file"):
        modelfile.load(tmp_path / "absent.pt")


def test_export_takes_the_duet_network_only(tmp_path):
    with pytest.raises(TypeError):
        modelfile.export(nn.Linear(2, 2), _info(), tmp_path / "m.pt")  # type: ignore[arg-type]
    model = DuetModel(ModelConfig(hidden=8, embed=4, dropout=0.0))
    with pytest.raises(ValueError, match="order"):
        modelfile.export(model, modelfile.ModelInfo(_info().voices, [0, 1, 2], (59, 81)),
                         tmp_path / "m.pt")
    assert modelfile.load(modelfile.export(model, _info(), tmp_path / "m.pt"))[1].order == [2, 1, 0]


def test_cli_says_one_line_and_exits_non_zero(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00" * 100)
    out = subprocess.run([sys.executable, "-m", "livegen.cli", "render", "-o",
                          str(tmp_path / "o.mid"), "--model", str(bad)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0
    assert str(bad) in out.stderr and "Traceback" not in out.stderr
