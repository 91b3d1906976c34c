"""`livegen doctor`: one line per check, a sentence for each problem, exit 1 only when render
cannot work, and never a traceback."""

from __future__ import annotations

import sys

import pytest

from livegen import doctor, paths
from livegen.cli import main


@pytest.fixture
def no_user_presets(monkeypatch, tmp_path):
    """Only the shipped presets: the machine's own user presets stay out of the test."""
    monkeypatch.setattr(paths, "user_presets", lambda: tmp_path / "user-presets")
    return tmp_path / "user-presets"


@pytest.fixture
def model_ok(monkeypatch):
    """Tests about other checks do not load the model (the healthy-path test does)."""
    monkeypatch.setattr(doctor, "check_model", lambda: doctor.Check(True, "model (not loaded)"))


def lines(capsys) -> list[str]:
    out = capsys.readouterr()
    assert "Traceback" not in out.err
    return out.out.splitlines()


def one(found: list[str], start: str) -> str:
    matching = [line for line in found if line.startswith(start)]
    assert len(matching) == 1, found
    return matching[0]


def test_healthy_machine_has_the_model_and_presets(capsys, no_user_presets):
    code = main(["doctor"])
    found = lines(capsys)
    model = one(found, "✓ shipped model 'chorale' loads in ")
    assert model.endswith("chorale.pt)") and "alto, tenor, bass" in model
    presets = one(found, "✓ 4 presets load: ")
    assert "chorale" in presets and "jam" in presets
    one(found, "✓ Python 3.")
    one(found, "✓ torch ")
    assert code == 0
    assert found[-1].startswith("livegen render")
    assert "does not work" not in found[-1]


def test_a_missing_model_is_a_cross_and_exit_1(capsys, monkeypatch, tmp_path, no_user_presets):
    missing = tmp_path / "gone.pt"
    monkeypatch.setattr(paths, "model_path", lambda name: missing)
    assert main(["doctor"]) == 1
    found = lines(capsys)
    line = one(found, "✗ shipped model 'chorale': ")
    assert f"{missing} is missing. Reinstall livegen" in line
    assert found[-1] == ("livegen render does not work yet: fix the ✗ lines above for shipped "
                         "model, then run `livegen doctor` again.")


def test_a_broken_default_preset_blocks_render_and_another_does_not(capsys, no_user_presets,
                                                                    model_ok):
    no_user_presets.mkdir()
    (no_user_presets / "mine.toml").write_text("[timing]\nbpm = 900\n")
    assert doctor.main() == 0
    line = one(lines(capsys), "✗ user preset 'mine': ")
    assert "bpm" in line and f"Fix or remove {no_user_presets / 'mine.toml'}" in line
    (no_user_presets / "chorale.toml").write_text("[timing\n")
    assert doctor.main() == 1
    found = lines(capsys)
    one(found, "✗ user preset 'chorale': ")
    assert "livegen render uses it by default" in one(found, "✗ user preset 'chorale': ")
    assert "for presets," in found[-1]


def test_a_check_that_breaks_is_a_cross_not_a_traceback(capsys, monkeypatch, no_user_presets,
                                                        model_ok):
    import livegen.presets

    def broken() -> list:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(livegen.presets, "list_presets", broken)
    assert doctor.main() == 1
    line = one(lines(capsys), "✗ presets: ")
    assert "the check itself failed (disk on fire)" in line


def test_without_portaudio_render_still_works(capsys, monkeypatch, no_user_presets, model_ok):
    monkeypatch.setitem(sys.modules, "sounddevice", None)  # the import raises ImportError
    assert doctor.main() == 0
    found = lines(capsys)
    line = one(found, "✗ PortAudio does not load")
    assert "`render --wav` works without it" in line
    assert found[-1].startswith("livegen render works; the ✗ lines above matter for live play")


def test_python_and_torch_failures_say_what_to_do(monkeypatch):
    old = doctor.check_python((3, 10, 4))
    assert not old.ok and old.needed and "3.11 or 3.12" in old.fix
    assert doctor.check_python((3, 12, 1)).ok
    monkeypatch.setitem(sys.modules, "torch", None)
    torch = doctor.check_torch()
    assert not torch.ok and torch.needed and "pip install torch" in torch.fix


def test_alsa_and_jack_are_for_live_play_only(monkeypatch):
    monkeypatch.setattr(doctor, "ALSA_SEQUENCER", "/nonexistent/snd/seq")
    alsa = doctor.check_alsa()
    assert not alsa.ok and not alsa.needed and "modprobe snd-seq" in alsa.fix
    from livegen.midi import ports
    monkeypatch.setattr(ports, "jack_server_state", lambda server=None: "down")
    jack = doctor.check_jack()
    assert not jack.ok and not jack.needed and "is not running" in jack.text
