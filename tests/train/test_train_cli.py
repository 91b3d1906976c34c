"""`livegen train` end to end on a tiny folder of MIDI files made here, in seconds."""

import subprocess
import sys

from livegen.cli import main
from livegen.midi.midifile import Note, Part, write_parts
from livegen.model import modelfile


def make_folder(folder, n=5):
    folder.mkdir()
    for i in range(n):
        melody = [Note(60 + (i + k) % 8, k, k + 1, 90, 1) for k in range(16)]
        bass = [Note(40 + (i + k) % 5, 2 * k, 2 * k + 2, 80, 2) for k in range(8)]
        write_parts(folder / f"song{i}.mid", [Part("tune", 1, 0, melody),
                                              Part("bass", 2, 32, bass)], 120)
    (folder / "broken.mid").write_bytes(b"MThd nonsense")
    write_parts(folder / "solo.mid", [Part("tune", 1, 0, [Note(60, 0, 1)])], 120)


def test_train_exports_a_loadable_model_with_its_card(tmp_path, capsys):
    make_folder(tmp_path / "songs")
    out = tmp_path / "mine.pt"
    code = main(["train", "--data", str(tmp_path / "songs"), "--human", "track:1",
                 "--voice", "bass=track:2", "--out", str(out), "--run-dir",
                 str(tmp_path / "run"), "--hidden", "16", "--layers", "1", "--embed", "4",
                 "--epochs", "2", "--batch", "2", "--seq-len", "16", "--no-eval"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "skipped" in printed and "broken.mid" in printed and "solo.mid" in printed
    assert "5 of 7 MIDI files used, 2 skipped." in printed
    net, info = modelfile.load(out)
    assert [v.name for v in info.voices] == ["bass"]
    assert info.extra["command"].startswith("livegen train --data")
    assert info.extra["train_seconds"] > 0
    card = out.with_suffix(".md").read_text()
    assert "Training time" in card and "bass" in card
    # resume continues from the last checkpoint for one more epoch
    code = main(["train", "--data", str(tmp_path / "songs"), "--human", "track:1",
                 "--voice", "bass=track:2", "--out", str(out), "--run-dir",
                 str(tmp_path / "run"), "--hidden", "16", "--layers", "1", "--embed", "4",
                 "--epochs", "3", "--batch", "2", "--seq-len", "16", "--no-eval", "--resume"])
    assert code == 0
    assert "resumed from" in capsys.readouterr().out


def test_a_phrase_weight_that_is_not_positive_is_named(tmp_path, capsys):
    code = main(["train", "--data", str(tmp_path), "--phrase-weight", "0", "--out",
                 str(tmp_path / "mine.pt")])
    err = capsys.readouterr().err
    assert code != 0 and "--phrase-weight 0.0 is not a positive number" in err
    assert not (tmp_path / "mine.pt").exists()


def test_every_command_has_help():
    for command in ([], ["train"], ["render"], ["eval"], ["presets"]):
        out = subprocess.run([sys.executable, "-m", "livegen.cli", *command, "--help"],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0 and "usage: livegen" in out.stdout
