"""Presets: loading, checking with file:line messages, finding, listing and saving."""

from __future__ import annotations

import copy
import json
import os
import pickle
import random
import zipfile
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


# ------------------------------------------------------------------- bad values never crash


def assert_only_preset_errors(path: Path) -> Settings | None:
    """Load `path`: a `Settings`, or a `PresetError` that is one sentence naming the file, or
    a summary line and one such sentence a line; any other exception fails the test."""
    try:
        return load_preset(path)
    except PresetError as error:
        lines = str(error).split("\n")
        assert all(line.startswith(str(path)) for line in lines), str(error)
        problems = error.problems
        if len(lines) == 1:
            assert problems == (error,)
        else:
            assert lines[0] == f"{path} has {len(problems)} problems:"
            more = len(problems) > presets.MAX_LISTED
            assert len(lines) == 1 + min(len(problems), presets.MAX_LISTED) + more
            assert all("\n" not in str(p) for p in problems)
        return None


@pytest.mark.parametrize(
    "text, says",
    [
        ('[learn]\n"²" = "temperature"\n', 'learn."²" is not a CC number'),
        ('[learn]\n"٧٤" = "temperature"\n', "is not a CC number"),  # Arabic-Indic digits
        ('[learn]\n"+74" = "temperature"\n', 'learn."+74" is not a CC number'),
        ('[learn]\n" 74" = "temperature"\n', "is not a CC number"),
        ('[learn]\n"' + "7" * 5000 + '" = "temperature"\n', "is not a CC number"),
        ('[learn]\n"' + "0" * 5000 + '" = "temperature"\n', "is not a CC number"),
        ('model = "~nosuchuser/x.pt"\n', "is not a path livegen can use"),
        ('model = "' + "a/" * 3000 + 'x.pt"\n', "(file name too long)"),
        ('model = "' + "m" * 5000 + '.pt"\n', "is not a path livegen can use"),
        ('model = "' + "m" * 5000 + '"\n', "is neither a shipped model"),
        ('model = "a\\u0000b.pt"\n', "is not a file"),
        ('model = "chorle"\n', '(did you mean "chorale"?)'),
        ("[timing]\nbpm = " + "9" * 5000 + "\n", "a number is too long to read"),
        ("x = " + "[" * 5000 + "\n", "nests lists or tables too deeply"),
        ("[" + " " * 50_000 + "x\n", "the TOML syntax is invalid"),
        ("[" + "a." * 20_000 + "b]\n", "a key joins more than 32 names with dots"),
        ("x = {" + "a . " * 40 + "b = 1}\n", "a key joins more than 32 names with dots"),
        ('[sampling]\n"a\\nb\\u2028c" = 1\n', 'unknown key sampling."a\\nb\\u2028c"'),
        ('name = "' + "n" * 5000 + '"\n[timing]\nbpm = "' + "f" * 5000 + '"\n', "…"),
    ],
)
def test_the_measured_crashes_are_sentences(tmp_path: Path, text: str, says: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(PresetError) as caught:
        load_preset(path)
    message = str(caught.value)
    assert says in message, message
    assert message.startswith(f"{path}:") and "\n" not in message
    assert len(message) < 600, message  # long values are shortened


def test_leading_zeros_name_the_same_cc(tmp_path: Path) -> None:
    settings = load_preset(write(tmp_path, '[learn]\n"074" = "temperature"\n"0001" = "density"\n'))
    assert settings.learn == {74: "temperature", 1: "density"}


@pytest.mark.parametrize("other", ["074", "0074", "74"])
def test_one_cc_learned_twice_names_both_keys(tmp_path: Path, other: str) -> None:
    first = "74" if other != "74" else "074"
    text = f'name = "x"\n[learn]\n"{first}" = "temperature"\n"{other}" = "density"\n'
    error = error_for(tmp_path, text)
    assert_points_at(error, tmp_path / "mine.toml", 4, f"learn.{other}")
    assert f'learn.{first} = "temperature" on line 3' in str(error)
    assert "CC 74 again" in str(error)


# -------------------------------------------------------------------------- unreadable paths


def test_unreadable_paths_are_sentences(tmp_path: Path) -> None:
    def refused(path: str | Path, says: str) -> None:
        with pytest.raises(PresetError) as caught:
            load_preset(path)
        message = str(caught.value)
        assert message.startswith(f"{path}") and says in message, message
        assert "\n" not in message

    refused(tmp_path / "absent.toml", "cannot read the preset (No such file or directory).")
    refused(tmp_path, "cannot read the preset")
    refused(tmp_path / "absent" / "x.toml", "cannot read the preset")
    refused(str(tmp_path / "a\0b.toml"), "the path holds a NUL character")
    refused(write(tmp_path, GOOD) / "below.toml", "cannot read the preset (Not a directory).")

    if hasattr(os, "mkfifo"):
        fifo = tmp_path / "pipe.toml"
        os.mkfifo(fifo)
        refused(fifo, "it is a device or a pipe, not a file")  # and it does not block

    latin = tmp_path / "latin.toml"
    latin.write_bytes(b'name = "x"\n# caf\xe9\n')
    refused(latin, ":2: the preset is not UTF-8 text; save it as UTF-8.")

    huge = write(tmp_path, "# padding\n" * (presets.MAX_BYTES // 10 + 1), "huge.toml")
    refused(huge, f"the preset is longer than {presets.MAX_BYTES} bytes")
    write(tmp_path, "# padding\n" * (presets.MAX_BYTES // 10), "big.toml")  # at the cap: read
    assert load_preset(tmp_path / "big.toml").name == "big"

    bom = tmp_path / "bom.toml"
    bom.write_bytes(b"\xef\xbb\xbf" + GOOD.encode())  # a byte order mark is allowed
    assert load_preset(bom).name == "mine"


@pytest.mark.skipif(os.geteuid() == 0 if hasattr(os, "geteuid") else True, reason="root reads all")
def test_a_file_without_read_permission_is_a_sentence(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    path.chmod(0)
    with pytest.raises(PresetError, match=r"cannot read the preset \(Permission denied\)"):
        load_preset(path)


# ------------------------------------------------------------------------ every problem at once


def test_every_problem_of_a_file_is_listed_at_once(tmp_path: Path) -> None:
    text = (
        'name = "x"\n'  # 1
        "colour = 3\n"  # 2
        "[[voices]]\n"  # 3
        'name = "tenr"\n'  # 4
        "channel = 17\n"  # 5
        "[timing]\n"  # 6
        "bpm = 1000\n"  # 7
        "[learn]\n"  # 8
        '"74" = "temperature"\n'  # 9
        '"074" = "density"\n'  # 10
    )
    path = tmp_path / "mine.toml"
    error = error_for(tmp_path, text)
    lines = str(error).split("\n")
    assert lines[0] == f"{path} has 5 problems:"
    assert [p.line for p in error.problems] == [2, 4, 5, 7, 10]
    assert lines[1:] == [str(p) for p in error.problems]
    for problem, key in zip(
        error.problems,
        ["colour", "voices[1].name", "voices[1].channel", "timing.bpm", "learn.074"],
        strict=True,
    ):
        assert_points_at(problem, path, problem.line, key)
        assert problem.problems == (problem,)
    assert (error.line, error.key) == (2, "colour")
    assert 'did you mean "tenor"?' in lines[2] and "from 1 to 16" in lines[3]


def test_a_file_with_one_problem_raises_that_sentence_alone(tmp_path: Path) -> None:
    error = error_for(tmp_path, GOOD.replace("bpm = 100", "bpm = 1000"))
    assert error.problems == (error,)
    assert_points_at(error, tmp_path / "mine.toml", line_of(GOOD, "bpm"), "timing.bpm")


def test_a_file_with_very_many_problems_lists_some_and_counts_the_rest(tmp_path: Path) -> None:
    text = "[timing]\n" + "".join(f"bpm{i} = 1\n" for i in range(100))
    error = error_for(tmp_path, text)
    lines = str(error).split("\n")
    assert lines[0].endswith("has 100 problems:") and len(error.problems) == 100
    assert len(lines) == 1 + presets.MAX_LISTED + 1
    assert lines[-1] == f"{tmp_path / 'mine.toml'}: and {100 - presets.MAX_LISTED} more problems."


def test_save_lists_every_problem_too(tmp_path: Path) -> None:
    bad = Settings(sampling=SamplingSettings(temperature=0.0), timing=TimingSettings(bpm=1000.0))
    with pytest.raises(PresetError) as caught:
        save_preset(bad, tmp_path / "out.toml")
    lines = str(caught.value).split("\n")
    assert (
        lines[0] == f"{tmp_path / 'out.toml'}: not saved, because the preset it would write "
        "has 2 problems:"
    )
    assert "sampling.temperature" in lines[1] and "timing.bpm" in lines[2]
    assert not (tmp_path / "out.toml").exists()


def test_a_name_with_characters_toml_must_escape_round_trips(tmp_path: Path) -> None:
    settings = Settings(name="del\x7f tab\t nul\x00 line\u2028end")
    save_preset(settings, tmp_path / "odd.toml")
    assert load_preset(tmp_path / "odd.toml") == settings


# ---------------------------------------------------------------------------- model voices


def fake_model(path: Path, voices: list[str], payload: object = None) -> Path:
    """A zip laid out like a model file, whose data.pkl holds only plain values."""
    meta = {"voices": [{"name": n, "low": 40, "high": 70} for n in voices]}
    data = pickle.dumps(payload or {"format": "livegen-model", "format_version": 2, "meta": meta})
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{path.stem}/data.pkl", data)
    return path


def test_shipped_model_voices_match_the_shipped_model_file() -> None:
    file = paths.model_path("chorale")
    assert presets._file_voices(file) == presets._SHIPPED_MODEL_VOICES["chorale"]
    modelfile = pytest.importorskip("livegen.model.modelfile")
    names = tuple(v.name for v in modelfile.read_info(file).voices)
    assert names == presets._SHIPPED_MODEL_VOICES["chorale"]


def test_voices_that_match_none_of_the_models_are_an_error(tmp_path: Path) -> None:
    text = 'model = "chorale"\n[[voices]]\nname = "soprano"\n[[voices]]\nname = "piano"\n'
    error = error_for(tmp_path, text)
    assert [p.line for p in error.problems] == [3, 5]
    for problem in error.problems:
        assert 'the voices of "chorale" are "alto", "tenor", "bass"' in str(problem)

    fake_model(tmp_path / "duo.pt", ["lead", "pad"])
    text = 'model = "duo.pt"\n[[voices]]\nname = "alto"\n'
    error = error_for(tmp_path, text)
    assert_points_at(error, tmp_path / "mine.toml", 3, "voices[1].name")
    assert 'the voices of the model file are "lead", "pad"' in str(error)
    settings = load_preset(write(tmp_path, 'model = "duo.pt"\n[[voices]]\nname = "pad"\n'))
    assert [v.name for v in settings.voices] == ["pad"]


def test_a_model_file_whose_voices_cannot_be_read_keeps_them_unchecked(tmp_path: Path) -> None:
    (tmp_path / "empty.pt").write_bytes(b"")
    fake_model(tmp_path / "other.pt", [], {"format": "something else"})
    marker = tmp_path / "ran"
    fake_model(tmp_path / "evil.pt", [], _RunsCode(str(marker)))
    for model in ("empty.pt", "other.pt", "evil.pt"):
        text = f'model = "{model}"\n[[voices]]\nname = "anything"\n'
        assert [v.name for v in load_preset(write(tmp_path, text)).voices] == ["anything"]
    assert not marker.exists()  # the metadata reader ran nothing in the file


class _RunsCode:
    """Pickles as a call of os.mkdir: what a hostile model file would hold."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.mkdir, (self.path,))


# ------------------------------------------------------------------------------------- fuzz

_VALUES = [
    "0", "-1", "1", "64", "127", "128", "1e309", "-0.0", "nan", "inf", "0.5", "3.0",
    "9" * 30, "9" * 5000, '""', '" "', '"²"', '"~nosuchuser/x.pt"', '"chorale"', '"alto"',
    '"C major"', '"H major"', '"auto"', '"temperature"', '"voice.bass"', '"\\u007f"',
    '"' + "x" * 3000 + '"', '"' + "a/" * 2000 + '"', '"a\\u0000b"', "true", "false",
    "[1, 2]", "[]", "{}", "{ name = 1 }", "1979-05-27", "07:32:00", "'lit'", '"""a\nb"""',
]  # fmt: skip
_KEYS = [
    '"74"', '"074"', '"+74"', '"²"', '"0"', '"120"', '"' + "7" * 5000 + '"', "bpm", "name",
    "model", "channel", "voices", "learn", "a.b.c", '"a\\nb"', "temprature", "low", "high",
]  # fmt: skip
_LINES = [
    "[learn]", "[[voices]]", "[timing]", "[[learn]]", "[voices]", "[timing.x]", "[", "]]",
    "= 1", '"74" = "temperature"', '"074" = "density"', "key_lock = 3", "[sampling",
    'model = "~nosuchuser/x.pt"', "\x00", "\ufeff", "\u2028", "# comment",
]  # fmt: skip


def _mutate(rng: random.Random, text: str) -> str:
    lines = text.split("\n")
    for _ in range(rng.randint(1, 4)):
        kind = rng.randrange(7)
        at = rng.randrange(len(lines)) if lines else 0
        if kind == 0 and lines:
            del lines[at]
        elif kind == 1 and lines:
            lines.insert(rng.randrange(len(lines) + 1), lines[at])
        elif kind == 2:
            lines.insert(at, rng.choice(_LINES))
        elif kind == 3 and lines and "=" in lines[at]:
            key = lines[at].split("=", 1)[0]
            lines[at] = f"{key}= {rng.choice(_VALUES)}"
        elif kind == 4 and lines and "=" in lines[at]:
            value = lines[at].split("=", 1)[1]
            lines[at] = f"{rng.choice(_KEYS)} ={value}"
        elif kind == 5 and lines:
            line = lines[at]
            cut = rng.randrange(len(line) + 1)
            lines[at] = line[:cut] + chr(rng.choice([0, 9, 34, 39, 61, 91, 93, 92, 0xB2, 0x663]))
            lines[at] += line[cut:]
        elif kind == 6:
            lines = lines[: rng.randrange(len(lines) + 1)]
    return "\n".join(lines)


def test_fuzzed_presets_load_or_raise_preset_error(tmp_path: Path, no_user_presets: Path) -> None:
    rng = random.Random(20240611)
    sources = [find_preset(name).read_text(encoding="utf-8") for name in SHIPPED] + [GOOD]
    loaded = failed = 0
    for number in range(400):
        text = _mutate(rng, rng.choice(sources))
        path = tmp_path / f"fuzz{number}.toml"
        if number % 10 == 9:  # now and then, bytes that need not be UTF-8
            data = bytearray(text.encode("utf-8"))
            for _ in range(rng.randint(1, 3)):
                if data:
                    data[rng.randrange(len(data))] = rng.randrange(256)
            path.write_bytes(bytes(data))
        else:
            path.write_text(text, encoding="utf-8")
        settings = assert_only_preset_errors(path)
        if settings is None:
            failed += 1
            continue
        loaded += 1
        save_preset(settings, tmp_path / "again.toml")  # what loads also saves and reloads
        assert load_preset(tmp_path / "again.toml") == settings
    assert loaded > 20 and failed > 200  # both paths were exercised


# ----------------------------------------------------------------------- the chord zone


@pytest.mark.parametrize(
    ("written", "zone"),
    [('"C4"', 60), ('"F#3"', 54), ('"Bb2"', 46), ('"c5"', 72), ("48", 48), ('"off"', None)],
)
def test_chord_zone_reads_a_note_a_number_or_off_and_round_trips(
    tmp_path: Path, written: str, zone: int | None
) -> None:
    settings = load_preset(write(tmp_path, GOOD + f"\n[input]\nchord_zone = {written}\n"))
    assert settings.input.chord_zone == zone
    save_preset(settings, tmp_path / "again.toml")
    assert load_preset(tmp_path / "again.toml") == settings
    assert load_preset(write(tmp_path, GOOD)).input.chord_zone is None  # omitted: off


@pytest.mark.parametrize("bad", ['"H4"', '"C"', '"middle C"', "0", "128", "60.5", "true", '"G#9"'])
def test_a_bad_chord_zone_is_one_sentence_naming_the_key(tmp_path: Path, bad: str) -> None:
    text = GOOD + f"\n[input]\nchord_zone = {bad}\n"
    error = error_for(tmp_path, text)
    assert_points_at(error, tmp_path / "mine.toml", line_of(text, "chord_zone"), "input.chord_zone")
    assert '"C4"' in str(error) and '"off"' in str(error)  # says what is allowed
