"""`livegen eval` on the shipped model, a piece or two per set: the tables a user reads."""

import json
import subprocess
import sys

import pytest

from livegen.cli import build_parser, main
from livegen.paths import shipped

pytest.importorskip("music21")

SHIPPED = sorted(p.stem for p in shipped("presets").glob("*.toml"))
HEAVY = {"torch", "textual", "music21", "numpy", "mido", "rtmidi"}


@pytest.fixture(scope="module")
def report():
    """Every shipped preset on both sets, two pieces each, two seeds."""
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["eval", "--limit", "2", "--seeds", "2", "--json"]) == 0
    return json.loads(out.getvalue())


def test_eval_reports_every_shipped_preset_on_both_sets(report):
    assert set(report["sets"]) == {"chorales", "folk"}
    for name in ("chorales", "folk"):
        assert sorted(report["sets"][name]) == SHIPPED
    assert report["_about"]["seeds"] == [0, 1]


def test_chorales_have_the_model_bach_and_the_floor(report):
    table = report["sets"]["chorales"]["chorale"]
    assert set(table) == {"model", "sd", "bach", "rules", "_about"}
    model = table["model"]
    assert 0 < model["nll_voice"] < 2.0
    for row in ("model", "bach", "rules"):
        assert 0.5 <= table[row]["consonance"] <= 1.0
        assert table[row]["range"] > 0.9
        assert table[row]["onsets_per_beat_bass"] > 0
    assert table["sd"]["model"]["consonance"] is not None  # two seeds: a spread
    assert table["bach"]["bass_agreement"] is None  # Bach's bass is the reference
    assert 0 <= model["bass_agreement"] <= 1 and 0 <= table["rules"]["bass_agreement"] <= 1
    assert table["rules"]["parallels_per_100_beats"] > 1.0  # block triads move in parallel


def test_the_model_plays_only_the_voices_of_each_preset(report):
    for preset in SHIPPED:
        table = report["sets"]["chorales"][preset]
        playing = table["_about"]["playing"]
        model = table["model"]
        assert {k.removeprefix("onsets_per_beat_") for k in model
                if k.startswith("onsets_per_beat_")} == set(playing)
        assert {k for k in table["bach"] if k.startswith("onsets_per_beat_")} == {
            "onsets_per_beat_alto", "onsets_per_beat_tenor", "onsets_per_beat_bass"}
        assert model["parallels_per_100_beats"] == 0.0  # every shipped preset forbids them
    assert report["sets"]["chorales"]["bassline"]["_about"]["playing"] == ["bass"]
    # counterpoint plays the tenor alone: no bass to compare with Bach's
    assert report["sets"]["chorales"]["counterpoint"]["model"]["bass_agreement"] is None


def test_folk_tunes_have_no_bach_and_no_nll(report):
    table = report["sets"]["folk"]["chorale"]
    assert set(table) == {"model", "sd", "rules", "_about"}
    assert "nll_voice" not in table["model"]
    assert table["model"]["bass_agreement"] is None and table["rules"]["bass_agreement"] is None
    assert 0.5 <= table["model"]["consonance"] <= 1.0


def test_the_tables_fit_in_100_columns(capsys):
    assert main(["eval", "--limit", "1", "--seeds", "2", "--preset", "counterpoint",
                 "--set", "chorales"]) == 0
    text = capsys.readouterr().out
    assert "## chorales: preset counterpoint" in text and "± " in text
    assert "| strong-beat consonance" in text and "tenor onsets per beat" in text
    assert max(len(line) for line in text.splitlines()) <= 100


def test_eval_defaults_and_bad_values():
    args = build_parser().parse_args(["eval"])
    assert (args.preset, args.seeds, args.set, args.seed) == (None, 4, "both", 0)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["eval", "--seeds", "0"])
    with pytest.raises(SystemExit):
        build_parser().parse_args(["eval", "--set", "jazz"])
    assert build_parser().parse_args(["eval"]).octaves == 0
    for bad in ("4", "-4", "two"):
        with pytest.raises(SystemExit):
            build_parser().parse_args(["eval", "--octaves", bad])


def test_a_piece_moved_by_octaves_keeps_its_rhythm_and_pitch_classes():
    from livegen.model.tokens import PITCH0
    from livegen.train import data as D
    from livegen.train.evaluate import transposed
    piece = D.chorales().test[0]
    down = transposed(piece, -24)
    assert [(n.pitch + 24, n.start, n.end) for n in down.human] == [
        (n.pitch, n.start, n.end) for n in piece.human]
    pitched = piece.voices >= PITCH0
    assert (down.voices[pitched] == piece.voices[pitched] - 24).all()
    assert (down.voices[~pitched] == piece.voices[~pitched]).all()  # rests and holds stay
    assert transposed(piece, 0) is piece
    with pytest.raises(ValueError, match="leaves the MIDI range"):
        transposed(piece, -48)


def test_the_voices_follow_a_melody_played_two_octaves_down(capsys):
    """The register figures of the issue: the voices stay under the melody (crossing) and
    consonant, judged in the moved ranges (range adherence)."""
    assert main(["eval", "--limit", "2", "--seeds", "1", "--preset", "chorale", "--set",
                 "chorales", "--octaves", "-2", "--json"]) == 0
    table = json.loads(capsys.readouterr().out)["sets"]["chorales"]["chorale"]
    assert table["_about"]["octaves"] == -2 and "nll_voice" not in table["model"]
    assert table["model"]["crossing"] <= 0.03 and table["model"]["range"] > 0.95
    assert table["model"]["consonance"] >= 0.85


def test_eval_help_imports_nothing_heavy():
    out = subprocess.run([sys.executable, "-X", "importtime", "-m", "livegen", "eval", "--help"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "--seeds" in out.stdout
    names = {line.rsplit("|", 1)[1].strip().split(".")[0] for line in out.stderr.splitlines()
             if line.startswith("import time:") and line.count("|") == 2}
    assert names and not names & HEAVY, sorted(names & HEAVY)
