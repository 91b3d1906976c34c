"""`livegen eval` on the shipped model, a few test pieces: the table a user reads."""

import json

import pytest

from livegen.cli import main

pytest.importorskip("music21")


def test_eval_prints_the_three_rows(capsys):
    assert main(["eval", "--limit", "8", "--json"]) == 0
    table = json.loads(capsys.readouterr().out)
    assert set(table) >= {"model", "bach", "rules"}
    model = table["model"]
    assert 0 < model["nll_voice"] < 2.0
    for row in ("model", "bach", "rules"):
        assert 0.5 <= table[row]["consonance"] <= 1.0
        assert table[row]["range"] > 0.9
    assert model["parallels_per_100_beats"] == 0.0  # the shipped preset forbids them
    assert table["rules"]["parallels_per_100_beats"] > 1.0  # block triads do not
