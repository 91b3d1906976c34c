"""Model files: metadata round trip; a corrupt, truncated or foreign file gives one sentence."""

import subprocess
import sys
import zipfile

import pytest

from livegen.model import modelfile
from livegen.model.modelfile import ModelFileError
from tests.util import tiny_model


def test_metadata_travels_inside_the_file(tmp_path):
    _, path = tiny_model(tmp_path / "m.pt")
    info = modelfile.read_info(path)
    assert [(v.name, v.low, v.high) for v in info.voices][0] == ("alto", 53, 77)
    assert info.human_range == (59, 81)
    assert info.extra["data"] == "random weights (test)"
    assert info.extra["steps_per_beat"] == 4


def _assert_one_sentence(exc: ModelFileError, path) -> None:
    message = str(exc)
    assert message.startswith(str(path))
    assert "\n" not in message and "Traceback" not in message
    assert message.endswith(".")


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
        with pytest.raises(ModelFileError, match="not a livegen model file"):
            modelfile.load(bad)


def test_a_foreign_zip_and_a_pickle_are_refused_without_running_it(tmp_path):
    foreign = tmp_path / "other.pt"
    with zipfile.ZipFile(foreign, "w") as z:
        z.writestr("archive/data.pkl", b"\x80\x04K\x01.")
    with pytest.raises(ModelFileError, match="no livegen metadata"):
        modelfile.load(foreign)
    # a pickle that would create a file if it were ever unpickled
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    payload = (b"cos\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR.")
    evil.write_bytes(payload)
    with pytest.raises(ModelFileError):
        modelfile.load(evil)
    assert not marker.exists()


def test_a_newer_format_version_is_named(tmp_path):
    _, path = tiny_model(tmp_path / "m.pt")
    newer = tmp_path / "newer.pt"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(newer, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename.endswith("extra/livegen.json"):
                data = data.replace(b'"format_version": 1', b'"format_version": 9')
            dst.writestr(item, data)
    with pytest.raises(ModelFileError, match="format version 9"):
        modelfile.load(newer)


def test_missing_file(tmp_path):
    with pytest.raises(ModelFileError, match="no such model file"):
        modelfile.load(tmp_path / "absent.pt")


def test_cli_says_one_line_and_exits_non_zero(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00" * 100)
    out = subprocess.run([sys.executable, "-m", "livegen.cli", "render", "-o",
                          str(tmp_path / "o.mid"), "--model", str(bad)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0
    assert str(bad) in out.stderr and "Traceback" not in out.stderr
