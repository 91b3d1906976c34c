"""The command line itself: what building the parser imports, bad values, `python -m livegen`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from livegen import __version__
from livegen.cli import BPM_RANGE, build_parser, main

HEAVY = {"torch", "textual", "music21", "numpy", "mido", "rtmidi"}


def imported_top_level(args: list[str]) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run `python -X importtime -m livegen ARGS`; the top-level packages it imported."""
    out = subprocess.run([sys.executable, "-X", "importtime", "-m", "livegen", *args],
                         capture_output=True, text=True, timeout=60)
    names = set()
    for line in out.stderr.splitlines():
        if line.startswith("import time:") and line.count("|") == 2:
            name = line.rsplit("|", 1)[1].strip()
            names.add(name.split(".")[0])
    assert names, out.stderr  # -X importtime wrote its table
    return out, names


@pytest.mark.parametrize("args", [["--help"], ["render", "--help"], ["run", "--help"],
                                  ["train", "--help"], ["doctor", "--help"]])
def test_help_imports_nothing_heavy(args):
    out, names = imported_top_level(args)
    assert out.returncode == 0 and "usage: livegen" in out.stdout
    assert not names & HEAVY, sorted(names & HEAVY)


def test_a_bad_value_is_reported_without_heavy_imports(tmp_path):
    out, names = imported_top_level(["render", "-o", str(tmp_path / "x.mid"), "--bpm", "nan"])
    assert out.returncode == 2 and "--bpm: nan is not a tempo" in out.stderr
    assert "Traceback" not in out.stderr
    assert not names & HEAVY, sorted(names & HEAVY)


def test_python_dash_m_livegen():
    out = subprocess.run([sys.executable, "-m", "livegen", "--version"], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0
    assert out.stdout.strip() == f"livegen {__version__}"


def refused(capsys, argv: list[str]) -> str:
    """`main(argv)` stops at parsing with exit status 2; the one line it wrote after the usage."""
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("livegen ") and ": error: argument " in last
    return last


@pytest.mark.parametrize("bpm", ["nan", "inf", "-inf", "-120", "0", "1e6", "19.9", "300.5",
                                 "fast"])
@pytest.mark.parametrize("command", ["render", "run"])
def test_bpm_outside_the_preset_range_is_refused(capsys, tmp_path, command, bpm):
    argv = [command, f"--bpm={bpm}"]
    if command == "render":
        argv += ["-o", str(tmp_path / "x.mid")]
    line = refused(capsys, argv)
    assert f"--bpm: {bpm!r}" in line or f"--bpm: {bpm} " in line
    assert "give 20 to 300 BPM" in line


@pytest.mark.parametrize("bpm", [BPM_RANGE[0], BPM_RANGE[1]])
def test_bpm_range_is_the_presets(tmp_path, bpm):
    """The bounds of --bpm are the bounds a preset's `timing.bpm` accepts, and no wider."""
    from livegen.presets import PresetError, load_preset

    args = build_parser().parse_args(["render", "-o", str(tmp_path / "x.mid"), "--bpm",
                                      str(bpm)])
    assert args.bpm == bpm
    preset = tmp_path / "edge.toml"
    preset.write_text(f"[timing]\nbpm = {bpm}\n")
    assert load_preset(preset).timing.bpm == bpm
    outside = bpm - 1 if bpm == BPM_RANGE[0] else bpm + 1
    preset.write_text(f"[timing]\nbpm = {outside}\n")
    with pytest.raises(PresetError):
        load_preset(preset)


@pytest.mark.parametrize("argv, said", [
    (["--channel", "0"], "--channel: 0 is not a MIDI channel: give 1 to 16"),
    (["--channel", "17"], "--channel: 17 is not a MIDI channel: give 1 to 16"),
    (["--channel", "two"], "--channel: 'two' is not a MIDI channel: give 1 to 16"),
    (["--track", "-1"], "--track: -1 is not a track number: tracks count from 0"),
    (["--seed", "-1"], "--seed: -1 is not a seed: give a whole number, 0 or more"),
])
def test_render_values_are_checked(capsys, tmp_path, argv, said):
    assert said in refused(capsys, ["render", "-o", str(tmp_path / "x.mid"), *argv])


def test_files_to_write_must_not_be_folders(capsys, tmp_path):
    line = refused(capsys, ["run", "--stats", str(tmp_path)])
    assert f"--stats: {tmp_path} is a folder: give a file name" in line
    line = refused(capsys, ["render", "-o", str(tmp_path)])
    assert f"-o/--output: {tmp_path} is a folder" in line
    line = refused(capsys, ["render", "-o", str(tmp_path / "no" / "x.mid")])
    assert f"the folder {tmp_path / 'no'} does not exist" in line
    line = refused(capsys, ["render", str(tmp_path), "-o", str(tmp_path / "x.mid")])
    assert f"melody: {tmp_path} is a folder, not a MIDI file" in line


def test_eval_limit_must_be_positive(capsys):
    assert "--limit: 0 is not a number of pieces: give 1 or more" in \
        refused(capsys, ["eval", "--limit", "0"])


def test_good_values_parse(tmp_path):
    parser = build_parser()
    args = parser.parse_args(["render", "-o", str(tmp_path / "x.mid"), "--bpm", "96.5",
                              "--channel", "16", "--track", "0", "--seed", "7"])
    assert (args.bpm, args.channel, args.track, args.seed) == (96.5, 16, 0, 7)
    assert args.output == tmp_path / "x.mid"
    args = parser.parse_args(["run", "--stats", str(tmp_path / "s.json"), "--bpm", "20"])
    assert args.stats == str(tmp_path / "s.json") and args.bpm == 20.0


def test_seed_defaults(tmp_path):
    """render and eval are reproducible by default; each live session differs unless seeded."""
    parser = build_parser()
    assert parser.parse_args(["render", "-o", str(tmp_path / "x.mid")]).seed == 0
    assert parser.parse_args(["eval"]).seed == 0
    assert parser.parse_args(["run"]).seed is None


def test_run_flags_fill_live_options(tmp_path):
    from livegen.session import LiveOptions

    args = build_parser().parse_args(["run", "--preset", "jam", "--model", "m.pt", "--device",
                                      "auto", "--input", "kbd", "--output", "synth",
                                      "--midi-api", "jack", "--clock", "midi", "--bpm", "90",
                                      "--seed", "3", "--synth", "--stats",
                                      str(tmp_path / "s.json")])
    opts = LiveOptions.from_args(args)
    assert opts == LiveOptions(preset="jam", model="m.pt", device="auto", input="kbd",
                               output="synth", midi_api="jack", clock="midi", bpm=90.0,
                               seed=3, synth=True, stats=str(tmp_path / "s.json"))
    # every LiveOptions field is a flag of `run`
    assert set(LiveOptions.__dataclass_fields__) <= set(vars(args))


def test_render_help_says_what_render_does(capsys):
    with pytest.raises(SystemExit):
        main(["render", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "simulated clock" not in text
    assert "accompanist" in text and "no clock and no MIDI ports" in text


def test_train_help_shows_every_default(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = capsys.readouterr().out
    options = [line.split()[0] for line in text.splitlines() if line.startswith("  --")]
    blocks = text.split("\n  --")[1:]
    assert len(blocks) == len(options) >= 20
    for block in blocks:
        assert "default" in block, block
    assert "mine.pt in your models folder" in text and ".md" in text


def test_train_never_overwrites_a_shipped_model_by_accident(tmp_path):
    from livegen.paths import shipped
    from livegen.train.config import TrainConfig
    from livegen.train.trainer import TrainError, out_path

    with pytest.raises(TrainError, match="shipped with livegen.*--replace-shipped"):
        out_path(TrainConfig(out=str(shipped("models") / "chorale.pt")))
    assert out_path(TrainConfig(out=str(shipped("models") / "chorale.pt"),
                                replace_shipped=True)).name == "chorale.pt"
    assert out_path(TrainConfig()).name == "mine.pt"
    assert out_path(TrainConfig(out=str(tmp_path / "x.pt"))) == tmp_path / "x.pt"


def test_a_bare_model_name_finds_your_models_first(tmp_path, monkeypatch):
    from livegen import paths

    monkeypatch.setattr(paths, "user_models", lambda: tmp_path)
    assert paths.model_path("chorale") == paths.shipped("models") / "chorale.pt"
    (tmp_path / "chorale.pt").write_bytes(b"x")
    assert paths.model_path("chorale") == tmp_path / "chorale.pt"


def test_a_missing_preset_is_one_line(capsys, tmp_path):
    assert main(["render", "-o", str(tmp_path / "x.mid"), "--preset", "no-such-preset"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("livegen: no-such-preset: no such preset") and err.count("\n") == 1
    assert not Path(tmp_path / "x.mid").exists()
