"""Presets: loading, checking with file:line messages, finding, listing and saving."""

from __future__ import annotations

import copy
import json
from dataclasses import fields
from pathlib import Path

import pytest

from livegen import paths, presets
from livegen.controls import BY_NAME, LEARNABLE
from livegen.presets import (
    PresetError,
    find_preset,
    learnable_controls,
    list_presets,
    load_preset,
    save_preset,
)
from livegen.settings import (
    InputSettings,
    SamplingSettings,
    Settings,
    TakeoverSettings,
    TimingSettings,
    VoiceSettings,
)

SHIPPED = ("chorale", "bassline", "counterpoint", "jam")

GOOD = """\
name = "mine"
model = "chorale"

[[voices]]
name = "alto"
channel = 2

[[voices]]
name = "tenor"
channel = 3

[sampling]
temperature = 0.8
key_lock = "auto"

[timing]
bpm = 100
"""


def write(tmp_path: Path, text: str, name: str = "mine.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def line_of(text: str, needle: str, occurrence: int = 1) -> int:
    numbers = [n for n, line in enumerate(text.splitlines(), 1) if needle in line]
    return numbers[occurrence - 1]


def error_for(tmp_path: Path, text: str) -> PresetError:
    path = write(tmp_path, text)
    with pytest.raises(PresetError) as caught:
        load_preset(path)
    return caught.value


@pytest.fixture
def no_user_presets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "user-presets"
    monkeypatch.setattr(paths, "user_presets", lambda: folder)
    return folder


# ------------------------------------------------------------------------------ shipped presets


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_preset_loads(name: str, no_user_presets: Path) -> None:
    path = find_preset(name)
    assert path == paths.shipped("presets") / f"{name}.toml"
    settings = load_preset(path)
    assert settings.name == name
    assert settings.model == "chorale"
    assert {v.name for v in settings.voices} <= {"alto", "tenor", "bass"}
    for cc, control in settings.learn.items():
        assert cc in range(1, 120) and control in learnable_controls(settings)


def test_shipped_presets_match_their_purpose(no_user_presets: Path) -> None:
    chorale, bassline, counterpoint, jam = (load_preset(find_preset(n)) for n in SHIPPED)

    def on(s: Settings) -> list[str]:
        return [v.name for v in s.voices if v.enabled]

    assert on(chorale) == ["alto", "tenor", "bass"]
    assert [v.channel for v in chorale.voices] == [2, 3, 4]
    assert chorale.sampling.key_lock == "auto" and chorale.timing.follow_ms > 0
    assert not chorale.takeover.enabled
    assert on(bassline) == ["bass"] and bassline.sampling.density > chorale.sampling.density
    assert on(counterpoint) == ["tenor"]
    assert on(jam) == ["alto", "tenor", "bass"]
    assert jam.takeover.enabled and jam.takeover.bars == 2


def test_list_presets_has_the_shipped_ones(no_user_presets: Path) -> None:
    found = {info.name: info for info in list_presets()}
    assert set(SHIPPED) <= set(found)
    assert all(info.source == "shipped" for info in found.values())


# ------------------------------------------------------------------------------------- schema


def test_rules_cover_exactly_the_settings_fields() -> None:
    assert set(presets._TOP_KEYS) == {f.name for f in fields(Settings)}
    assert set(presets._VOICE_RULES) == {f.name for f in fields(VoiceSettings)}
    for section, cls in [
        ("input", InputSettings),
        ("sampling", SamplingSettings),
        ("timing", TimingSettings),
        ("takeover", TakeoverSettings),
    ]:
        assert set(presets._SECTIONS[section][1]) == {f.name for f in fields(cls)}


def test_defaults_and_normalization(tmp_path: Path) -> None:
    text = 'model = "chorale"\n[[voices]]\nname = "bass"\n[sampling]\nkey_lock = "f# MINOR"\n'
    settings = load_preset(write(tmp_path, text, "quiet.toml"))
    assert settings.name == "quiet"  # the file's stem
    assert settings.voices == [VoiceSettings(name="bass", program=32)]  # DEFAULT_PROGRAMS
    assert settings.sampling.key_lock == "F# minor"
    assert settings.timing == TimingSettings() and settings.learn == {}
    assert isinstance(load_preset(write(tmp_path, GOOD)).timing.bpm, float)


def test_model_path_is_relative_to_the_preset(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "mine.pt").write_bytes(b"")
    settings = load_preset(write(tmp_path, 'model = "models/mine.pt"\n'))
    assert Path(settings.model) == tmp_path / "models" / "mine.pt"
    error = error_for(tmp_path, 'name = "x"\nmodel = "models/missing.pt"\n')
    assert f"{tmp_path / 'mine.toml'}:2:" in str(error) and "model" in str(error)


def test_learnable_controls() -> None:
    settings = Settings(voices=[VoiceSettings(name="alto")])
    controls = learnable_controls(settings)
    assert controls[: len(LEARNABLE)] == list(LEARNABLE)
    assert {"voice.alto", "voice.tenor", "voice.bass"} <= set(controls)
    assert {n for n, c in BY_NAME.items() if c.span} <= set(LEARNABLE)


# ------------------------------------------------------------------------------------ errors


def assert_points_at(error: PresetError, path: Path, line: int, key: str) -> None:
    message = str(error)
    assert message.startswith(f"{path}:{line}: "), message
    assert key in message, message
    assert error.line == line
    assert message.endswith((".", "?")) and "\n" not in message


def test_syntax_error(tmp_path: Path) -> None:
    text = GOOD.replace("temperature = 0.8", "temperature = 0.8.")
    error = error_for(tmp_path, text)
    assert_points_at(error, tmp_path / "mine.toml", line_of(text, "temperature"), "temperature")
    assert "syntax" in str(error)


def test_out_of_range(tmp_path: Path) -> None:
    text = GOOD.replace("temperature = 0.8", "temperature = -1")
    error = error_for(tmp_path, text)
    assert_points_at(
        error, tmp_path / "mine.toml", line_of(text, "temperature"), "sampling.temperature"
    )
    assert str(error).endswith(
        "sampling.temperature = -1 is out of range; use a number above 0 and at most 5."
    )


def test_wrong_type(tmp_path: Path) -> None:
    text = GOOD.replace("bpm = 100", 'bpm = "fast"')
    error = error_for(tmp_path, text)
    assert_points_at(error, tmp_path / "mine.toml", line_of(text, "bpm"), "timing.bpm")
    assert "not a number" in str(error) and "from 20 to 300" in str(error)
    error = error_for(tmp_path, GOOD.replace("channel = 3", "channel = 3.0"))
    assert "whole number" in str(error)
    error = error_for(tmp_path, GOOD + "\n[takeover]\nenabled = 1\n")
    assert "takeover.enabled" in str(error) and "true or false" in str(error)


def test_unknown_key_with_suggestion(tmp_path: Path) -> None:
    text = GOOD.replace("temperature = 0.8", "temprature = 0.8")
    error = error_for(tmp_path, text)
    assert_points_at(
        error, tmp_path / "mine.toml", line_of(text, "temprature"), "sampling.temprature"
    )
    assert "did you mean temperature?" in str(error)

    text = GOOD.replace("[timing]", "[timeing]")
    error = error_for(tmp_path, text)
    assert_points_at(error, tmp_path / "mine.toml", line_of(text, "[timeing]"), "timeing")
    assert "did you mean timing?" in str(error)


def test_bad_voice_entry(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    text = GOOD.replace("channel = 3", "channel = 17")
    error = error_for(tmp_path, text)
    assert_points_at(error, path, line_of(text, "channel = 17"), "voices[2].channel")
    assert "from 1 to 16" in str(error)

    text = GOOD.replace('name = "tenor"', 'name = "tenr"')
    error = error_for(tmp_path, text)
    assert_points_at(error, path, line_of(text, "tenr"), "voices[2].name")
    assert '"tenor"' in str(error)

    text = GOOD.replace('name = "tenor"\n', "")
    error = error_for(tmp_path, text)
    assert_points_at(error, path, line_of(text, "[[voices]]", 2), "voices[2]")

    text = GOOD.replace("channel = 2", "channel = 2\nlow = 70\nhigh = 60")
    error = error_for(tmp_path, text)
    assert_points_at(error, path, line_of(text, "high = 60"), "voices[1].high")

    text = GOOD.replace('name = "tenor"', 'name = "alto"')
    error = error_for(tmp_path, text)
    assert_points_at(error, path, line_of(text, 'name = "alto"', 2), "voices[2].name")

    text = GOOD.replace("channel = 2", "chanel = 2")
    error = error_for(tmp_path, text)
    assert_points_at(error, path, line_of(text, "chanel"), "voices[1].chanel")
    assert "did you mean channel?" in str(error)


def test_bad_learn_and_choices(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    text = GOOD + '\n[learn]\n"74" = "temprature"\n'
    error = error_for(tmp_path, text)
    assert_points_at(error, path, line_of(text, "temprature"), "learn.74")
    assert '"temperature"' in str(error)
    text = GOOD + '\n[learn]\n"120" = "density"\n'
    assert_points_at(error_for(tmp_path, text), path, line_of(text, "120"), "learn")
    text = GOOD.replace('key_lock = "auto"', 'key_lock = "H major"')
    assert_points_at(
        error_for(tmp_path, text), path, line_of(text, "key_lock"), "sampling.key_lock"
    )
    text = GOOD + '\n[input]\nmode = "skyln"\n'
    error = error_for(tmp_path, text)
    assert_points_at(error, path, line_of(text, "skyln"), "input.mode")
    assert '"skyline"' in str(error)


def test_dotted_and_inline_keys_are_placed(tmp_path: Path) -> None:
    text = 'name = "x"\nsampling.top_p = 2\n'
    assert_points_at(error_for(tmp_path, text), tmp_path / "mine.toml", 2, "sampling.top_p")
    text = 'name = "x"\n\ntiming = { swing = 0.9 }\n'
    assert_points_at(error_for(tmp_path, text), tmp_path / "mine.toml", 3, "timing.swing")


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(PresetError, match="cannot read"):
        load_preset(tmp_path / "absent.toml")


def test_failed_load_leaves_the_active_settings_alone(tmp_path: Path) -> None:
    active = load_preset(write(tmp_path, GOOD, "good.toml"))
    before = copy.deepcopy(active)
    result = None
    with pytest.raises(PresetError):
        result = load_preset(write(tmp_path, GOOD.replace("bpm = 100", "bpm = 1000")))
    assert result is None
    assert active == before


# ---------------------------------------------------------------------------- finding, saving


def test_user_preset_shadows_shipped(no_user_presets: Path) -> None:
    no_user_presets.mkdir()
    mine = no_user_presets / "jam.toml"
    mine.write_text(GOOD.replace('"mine"', '"my jam"'), encoding="utf-8")
    (no_user_presets / "extra.toml").write_text(GOOD, encoding="utf-8")

    assert find_preset("jam") == mine
    assert find_preset("jam.toml") == mine
    assert load_preset(find_preset("jam")).name == "my jam"
    assert find_preset("chorale") == paths.shipped("presets") / "chorale.toml"
    listed = {info.name: (info.path, info.source) for info in list_presets()}
    assert listed["jam"] == (mine, "user")
    assert listed["extra"] == (no_user_presets / "extra.toml", "user")
    assert listed["chorale"][1] == "shipped"
    assert [name for name, _, _ in list_presets()] == sorted(listed)


def test_find_preset_by_path_and_unknown_name(tmp_path: Path, no_user_presets: Path) -> None:
    path = write(tmp_path, GOOD)
    assert find_preset(path) == path
    assert find_preset(str(path)) == path
    with pytest.raises(PresetError, match="did you mean chorale"):
        find_preset("chorail")
    with pytest.raises(PresetError, match="no such preset"):
        find_preset(tmp_path / "nowhere" / "x.toml")


def full_settings(model: str = "chorale") -> Settings:
    return Settings(
        name='Quote "this" \\ and ünïcode',
        model=model,
        voices=[
            VoiceSettings(name="alto", enabled=False, channel=5, program=0, velocity=1),
            VoiceSettings(name="bass", channel=16, program=127, low=30, high=60, velocity=127),
        ],
        input=InputSettings(channel=10, mode="split", split=0),
        sampling=SamplingSettings(
            temperature=1e-05,
            top_p=1.0,
            density=-0.35,
            key_lock="Bb minor",
            max_leap=24,
            allow_unison=True,
        ),
        timing=TimingSettings(
            clock="midi",
            bpm=123.456,
            beats_per_bar=7,
            prewindow=0.0,
            follow_ms=0.0,
            follow_threshold=1.0,
            swing=0.5,
            humanize_ms=50.0,
            humanize_velocity=40,
            clock_out=True,
        ),
        takeover=TakeoverSettings(enabled=True, bars=64, channel=16, velocity=1),
        learn={1: "voice.bass", 74: "temperature", 119: "takeover", 20: "voice.alto"},
    )


@pytest.mark.parametrize("name", SHIPPED)
def test_round_trip_shipped(name: str, tmp_path: Path, no_user_presets: Path) -> None:
    original = load_preset(find_preset(name))
    save_preset(original, tmp_path / f"{name}.toml")
    assert load_preset(tmp_path / f"{name}.toml") == original


def test_round_trip_everything(tmp_path: Path) -> None:
    for settings in (full_settings(), Settings()):
        save_preset(settings, tmp_path / "sub" / "out.toml")
        assert load_preset(tmp_path / "sub" / "out.toml") == settings


def test_round_trip_model_path(tmp_path: Path) -> None:
    inside = tmp_path / "presets" / "models" / "mine"
    inside.parent.mkdir(parents=True)
    inside.write_bytes(b"")
    outside = tmp_path / "elsewhere.pt"
    outside.write_bytes(b"")
    target = tmp_path / "presets" / "p.toml"
    for model, written in ((inside, "./models/mine"), (outside, str(outside))):
        settings = full_settings(str(model))
        save_preset(settings, target)
        assert f"model = {json.dumps(written)}\n" in target.read_text(encoding="utf-8")
        assert load_preset(target) == settings


def test_save_refuses_invalid_settings(tmp_path: Path) -> None:
    target = write(tmp_path, GOOD)
    bad = Settings(sampling=SamplingSettings(temperature=0.0))
    with pytest.raises(PresetError, match="not saved.*sampling.temperature"):
        save_preset(bad, target)
    assert target.read_text(encoding="utf-8") == GOOD
    assert [p.name for p in tmp_path.iterdir()] == ["mine.toml"]
