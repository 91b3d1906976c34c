"""Presets: TOML files that fill `livegen.settings.Settings` (docs/ARCHITECTURE.md, "Modules").

Schema (every key is optional unless noted; an omitted key keeps the `Settings` default):

    name = "jam"                  # display name; defaults to the file's stem
    model = "chorale"             # a shipped model's name (letters, digits, '-' and '_' only) or
                                  # a path to a model file (anything with '/', '\\' or '.');
                                  # a relative path is resolved against the preset's folder
    [[voices]]                    # one table per model voice; `name` is required
    name = "alto"                 # for the shipped "chorale" model: "alto", "tenor" or "bass"
    enabled = true
    channel = 2                   # 1..16
    program = 52                  # 0..127; omitted: the voice's DEFAULT_PROGRAMS entry, else 0
    low = 55                      # 0..127, low <= high; omitted: the model's range
    high = 74
    velocity = 80                 # 1..127
    [input]     channel (1..16; omitted = every channel), mode ("all"|"skyline"|"split"),
                split (0..127)
    [sampling]  temperature (above 0, at most 5), top_p (above 0, at most 1), density (-1..1),
                key_lock ("off" | "auto" | a key such as "C major", "F# minor", "Bb", "Am";
                stored in the canonical spelling of `livegen.tonality.key_name`), max_leap (1..24),
                allow_unison (bool), avoid_parallels (bool)
    [timing]    clock ("internal"|"midi"), bpm (20..300), beats_per_bar (1..8),
                prewindow (0..1), follow_ms (0..200), follow_threshold (0..1), swing (0..0.5),
                humanize_ms (0..50), humanize_velocity (0..40), clock_out (bool)
    [takeover]  enabled (bool), bars (1..64), channel (1..16), velocity (1..127)
    [learn]     "74" = "temperature": CC number (1..119, as a key) -> a live control name

MIDI learn: the controls a CC can drive are the learnable rows of `livegen.controls.CONTROLS`
plus "voice.<name>" for every voice the preset lists (and, for the shipped "chorale" model, its
voices alto, tenor and bass). Continuous controls sweep the control's `span` linearly as the CC
goes 0..127; the toggles
("takeover" and "voice.<name>") are on while the CC value is 64 or more.

Errors: every problem raises `PresetError`, whose message is one sentence of the form
`file:line: key = value is wrong; what is allowed.` TOML syntax errors, unknown keys (with a
did-you-mean suggestion) and wrong types are reported the same way.

Contract: the loader is pure. `load_preset` builds a brand-new `Settings` or raises; it never
touches a `Settings` that already exists. The engine swaps its active settings only after a
successful load, so a bad preset leaves the previously active preset in place.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import tempfile
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, NamedTuple

from livegen import paths
from livegen.controls import LEARNABLE, VOICE_PREFIX
from livegen.settings import (
    DEFAULT_PROGRAMS,
    InputSettings,
    SamplingSettings,
    Settings,
    TakeoverSettings,
    TimingSettings,
    VoiceSettings,
)
from livegen.tonality import key_name, parse_key

__all__ = [
    "PresetError",
    "PresetInfo",
    "find_preset",
    "learnable_controls",
    "list_presets",
    "load_preset",
    "save_preset",
]

CC_RANGE = (1, 119)  # CC 0 is bank select and 120..127 are channel mode messages

# Voices of the shipped models (the human part, the soprano, is not a model voice).
_SHIPPED_MODEL_VOICES = {"chorale": ("alto", "tenor", "bass")}
_MODEL_NAME = re.compile(r"[A-Za-z0-9_-]+")


class PresetError(Exception):
    """A preset that cannot be read, found or saved. `str(error)` is one sentence that starts
    with `file:line:` where a line is known; `path`, `line` and `key` hold the parts."""

    def __init__(
        self, message: str, path: str | None = None, line: int | None = None, key: str = ""
    ) -> None:
        super().__init__(message)
        self.path = path
        self.line = line
        self.key = key


class PresetInfo(NamedTuple):
    name: str  # the file's stem: what `find_preset` looks up
    path: Path
    source: str  # "user" or "shipped"


# ---------------------------------------------------------------------------------- field rules

Key = tuple[str | int, ...]  # a key's path in the document: ("voices", 1, "channel")


def _fmt(value: Any) -> str:
    """A value as TOML writes it (for messages and for saving)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return str(value)


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, str):
        return "text"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return "a date or time"


class _Bad(Exception):
    """A value problem without its place; `_Doc.check` adds file, line and key."""

    def __init__(self, problem: str, allowed: str) -> None:
        super().__init__(problem)
        self.problem = problem
        self.allowed = allowed


def _num(lo: float, hi: float, whole: bool = False, lo_open: bool = False) -> Callable[[Any], Any]:
    if whole:
        allowed = f"a whole number from {lo:g} to {hi:g}"
    elif lo_open:
        allowed = f"a number above {lo:g} and at most {hi:g}"
    else:
        allowed = f"a number from {lo:g} to {hi:g}"

    def check(value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _Bad(f"is {_kind(value)}, not a number", allowed)
        if whole and not isinstance(value, int):
            raise _Bad("is not a whole number", allowed)
        if value != value or value < lo or value > hi or (lo_open and value <= lo):
            raise _Bad("is out of range", allowed)
        return int(value) if whole else float(value)

    return check


def _choice(*options: str) -> Callable[[Any], str]:
    allowed = "one of " + ", ".join(_fmt(o) for o in options)

    def check(value: Any) -> str:
        if not isinstance(value, str):
            raise _Bad(f"is {_kind(value)}, not text", allowed)
        if value not in options:
            close = difflib.get_close_matches(value, options, n=1)
            hint = f" (did you mean {_fmt(close[0])}?)" if close else ""
            raise _Bad(f"is not a choice{hint}", allowed)
        return value

    return check


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _Bad(f"is {_kind(value)}, not true/false", "true or false (without quotes)")
    return value


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise _Bad(f"is {_kind(value)}, not text", "text in double quotes")
    if not value.strip():
        raise _Bad("is empty", "non-empty text in double quotes")
    return value


_KEY_ALLOWED = '"off", "auto" or a key such as "C major", "F# minor", "Bb" or "Am"'


def _key_lock(value: Any) -> str:
    if not isinstance(value, str):
        raise _Bad(f"is {_kind(value)}, not text", _KEY_ALLOWED)
    if value in ("off", "auto"):
        return value
    try:
        tonic, mode = parse_key(value)
    except ValueError:
        raise _Bad("is not a key", _KEY_ALLOWED) from None
    return key_name(tonic, mode)


_MIDI = _num(0, 127, whole=True)
_CHANNEL = _num(1, 16, whole=True)
_VELOCITY = _num(1, 127, whole=True)

_VOICE_RULES: dict[str, Callable[[Any], Any]] = {
    "name": _text,
    "enabled": _bool,
    "channel": _CHANNEL,
    "program": _MIDI,
    "low": _MIDI,
    "high": _MIDI,
    "velocity": _VELOCITY,
}
_SECTIONS: dict[str, tuple[type, dict[str, Callable[[Any], Any]]]] = {
    "input": (
        InputSettings,
        {"channel": _CHANNEL, "mode": _choice("all", "skyline", "split"), "split": _MIDI},
    ),
    "sampling": (
        SamplingSettings,
        {
            "temperature": _num(0, 5, lo_open=True),
            "top_p": _num(0, 1, lo_open=True),
            "density": _num(-1, 1),
            "key_lock": _key_lock,
            "max_leap": _num(1, 24, whole=True),
            "allow_unison": _bool,
            "avoid_parallels": _bool,
        },
    ),
    "timing": (
        TimingSettings,
        {
            "clock": _choice("internal", "midi"),
            "bpm": _num(20, 300),
            "beats_per_bar": _num(1, 8, whole=True),
            "prewindow": _num(0, 1),
            "follow_ms": _num(0, 200),
            "follow_threshold": _num(0, 1),
            "swing": _num(0, 0.5),
            "humanize_ms": _num(0, 50),
            "humanize_velocity": _num(0, 40, whole=True),
            "clock_out": _bool,
        },
    ),
    "takeover": (
        TakeoverSettings,
        {
            "enabled": _bool,
            "bars": _num(1, 64, whole=True),
            "channel": _CHANNEL,
            "velocity": _VELOCITY,
        },
    ),
}
_TOP_KEYS = ("name", "model", "voices", *_SECTIONS, "learn")


# ------------------------------------------------------------------------------ line scanning

_HEADER = re.compile(r"\s*(\[\[?)\s*([^\[\]#]+?)\s*\]\]?\s*(?:#.*)?")
_KEY_PART = r"(?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*')"
_KEY_LINE = re.compile(rf"\s*({_KEY_PART}(?:\s*\.\s*{_KEY_PART})*)\s*=")


def _split_key(dotted: str) -> list[str]:
    return [part.strip().strip("\"'") for part in re.findall(_KEY_PART, dotted)]


def _scan(text: str) -> Iterator[tuple[int, Key, bool]]:
    """(line number, full key, is a header) for each table header and `key =` line."""
    table: Key = ()
    counts: dict[Key, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.fullmatch(line)
        if header:
            name = tuple(_split_key(header.group(2)))
            if header.group(1) == "[[":
                counts[name] = counts.get(name, -1) + 1
                table = (*name, counts[name])
            else:
                table = name
            yield number, table, True
            continue
        match = _KEY_LINE.match(line)
        if match:
            yield number, (*table, *_split_key(match.group(1))), False


def _line_of(text: str, key: Key) -> int:
    """The line that defines `key`, else the nearest enclosing table or key, else line 1."""
    found = {k: n for n, k, _ in reversed(list(_scan(text)))}
    for length in range(len(key), 0, -1):
        if key[:length] in found:
            return found[key[:length]]
    return 1


def _dotted(key: Key) -> str:
    out = ""
    for part in key:
        out += f"[{part + 1}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


# ---------------------------------------------------------------------------------- the loader


@dataclass
class _Doc:
    """One preset's text while it is being checked, for placing messages."""

    label: str  # the file as the user named it
    text: str
    folder: Path

    def fail(self, key: Key, message: str) -> PresetError:
        line = _line_of(self.text, key)
        return PresetError(f"{self.label}:{line}: {message}", self.label, line, _dotted(key))

    def check(self, key: Key, value: Any, rule: Callable[[Any], Any]) -> Any:
        try:
            return rule(value)
        except _Bad as bad:
            message = f"{_dotted(key)} = {_fmt(value)} {bad.problem}; use {bad.allowed}."
            raise self.fail(key, message) from None

    def table(self, key: Key, value: Any, allowed: list[str] | tuple[str, ...]) -> dict[str, Any]:
        """`value` as a table whose keys are all in `allowed`."""
        if not isinstance(value, dict):
            name = _dotted(key)
            header = f"[[{key[0]}]]" if isinstance(key[-1], int) else f"[{name}]"
            raise self.fail(
                key, f"{name} is {_kind(value)}, not a table; write it as a {header} table."
            )
        for item in value:
            if item not in allowed:
                close = difflib.get_close_matches(item, allowed, n=1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                raise self.fail(
                    (*key, item),
                    f"unknown key {_dotted((*key, item))}{hint}; "
                    f"allowed here: {', '.join(allowed)}.",
                )
        return value


def load_preset(path: str | os.PathLike[str]) -> Settings:
    """Read and check one preset file: a new `Settings`, or `PresetError` (nothing changes)."""
    label = os.fspath(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise PresetError(
            f"{label}: cannot read the preset ({error.strerror or error}).", label
        ) from None
    except UnicodeDecodeError:
        raise PresetError(
            f"{label}: the preset is not UTF-8 text; save it as UTF-8.", label
        ) from None
    return _parse(_Doc(label, text, Path(path).absolute().parent), Path(path).stem)


def _parse(doc: _Doc, default_name: str) -> Settings:
    try:
        data = tomllib.loads(doc.text)
    except tomllib.TOMLDecodeError as error:
        raise _syntax_error(doc, error) from None
    doc.table((), data, _TOP_KEYS)

    name = doc.check(("name",), data.get("name", default_name), _text)
    model = _model(doc, data.get("model", Settings.model))
    voices = _voices(doc, data.get("voices", []), model)
    sections = {
        section: cls(
            **{
                k: doc.check((section, k), v, rules[k])
                for k, v in doc.table((section,), data.get(section, {}), tuple(rules)).items()
            }
        )
        for section, (cls, rules) in _SECTIONS.items()
    }
    learn = _learn(doc, data.get("learn", {}), voices, model)
    return Settings(name=name, model=model, voices=voices, learn=learn, **sections)


def _syntax_error(doc: _Doc, error: tomllib.TOMLDecodeError) -> PresetError:
    reason = str(error)
    where = re.search(r"\s*\(at line (\d+), column \d+\)$", reason)
    lines = doc.text.splitlines()
    line = min(int(where.group(1)), len(lines)) if where else len(lines)
    line = max(line, 1)
    reason = (reason[: where.start()] if where else reason.split(" (at ")[0]).rstrip(".")
    here = [(key, header) for number, key, header in _scan(doc.text) if number == line]
    key = _dotted(here[0][0]) if here else ""
    if here and here[0][1]:
        at = f"in the header of [{key}]"
    else:
        at = f"at {key}" if key else f"in {lines[line - 1].strip()!r}" if lines else "here"
    return PresetError(
        f"{doc.label}:{line}: the TOML syntax is invalid {at} ({reason.lower()}); write "
        "key = value, with text in double quotes and [table] headers on their own lines.",
        doc.label,
        line,
        key,
    )


def _model(doc: _Doc, value: Any) -> str:
    model = doc.check(("model",), value, _text)
    if _MODEL_NAME.fullmatch(model):
        return model
    file = Path(model).expanduser()
    file = Path(os.path.normpath(file if file.is_absolute() else doc.folder / file))
    if not file.is_file():
        raise doc.fail(
            ("model",),
            f"model = {_fmt(model)} is not a file ({file} is missing); "
            'use a shipped model name such as "chorale" or the path of a '
            "model file, relative to the preset's folder.",
        )
    return str(file)


def _voices(doc: _Doc, value: Any, model: str) -> list[VoiceSettings]:
    if not isinstance(value, list):
        raise doc.fail(
            ("voices",),
            f"voices is {_kind(value)}, not a list of tables; write "
            "each voice as a [[voices]] table.",
        )
    known = _SHIPPED_MODEL_VOICES.get(model)
    voices: list[VoiceSettings] = []
    for index, entry in enumerate(value):
        key: Key = ("voices", index)
        table = doc.table(key, entry, tuple(_VOICE_RULES))
        if "name" not in table:
            raise doc.fail(
                key,
                f"{_dotted(key)} has no name; give every [[voices]] table a "
                f'name = "..." line{_of_model(model)}.',
            )
        checked = {k: doc.check((*key, k), v, _VOICE_RULES[k]) for k, v in table.items()}
        name = checked["name"]
        if known is not None and name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" (did you mean {_fmt(close[0])}?)" if close else ""
            raise doc.fail(
                (*key, "name"),
                f"{_dotted((*key, 'name'))} = {_fmt(name)} is not a "
                f"voice of the model{hint}{_of_model(model)}.",
            )
        if any(v.name == name for v in voices):
            raise doc.fail(
                (*key, "name"),
                f"{_dotted((*key, 'name'))} = {_fmt(name)} appears "
                "twice; give each voice one [[voices]] table.",
            )
        low, high = checked.get("low"), checked.get("high")
        if low is not None and high is not None and low > high:
            raise doc.fail(
                (*key, "high"),
                f"{_dotted((*key, 'high'))} = {high} is below low = "
                f"{low}; use a high pitch at or above the low one.",
            )
        checked.setdefault("program", DEFAULT_PROGRAMS.get(name, 0))
        voices.append(VoiceSettings(**checked))
    return voices


def _of_model(model: str) -> str:
    known = _SHIPPED_MODEL_VOICES.get(model)
    return f"; the voices of {_fmt(model)} are {', '.join(map(_fmt, known))}" if known else ""


def learnable_controls(settings: Settings) -> list[str]:
    """Every control a CC can be learned to with these settings (see the module docstring)."""
    names = [v.name for v in settings.voices]
    names += [n for n in _SHIPPED_MODEL_VOICES.get(settings.model, ()) if n not in names]
    return [*LEARNABLE, *(VOICE_PREFIX + n for n in names)]


def _learn(doc: _Doc, value: Any, voices: list[VoiceSettings], model: str) -> dict[int, str]:
    if not isinstance(value, dict):
        raise doc.fail(
            ("learn",),
            f"learn is {_kind(value)}, not a table; write it as a [learn] "
            'table of lines such as "74" = "temperature".',
        )
    controls = learnable_controls(Settings(model=model, voices=voices))
    learn: dict[int, str] = {}
    for cc_text, control in value.items():
        key: Key = ("learn", cc_text)
        lo, hi = CC_RANGE
        if not (cc_text.isdigit() and lo <= int(cc_text) <= hi):
            raise doc.fail(
                key,
                f"learn.{_fmt(cc_text)} is not a CC number; use a whole number "
                f'from {lo} to {hi} as the key, e.g. "74" = "temperature".',
            )
        if not isinstance(control, str) or control not in controls:
            close = (
                difflib.get_close_matches(control, controls, n=1)
                if isinstance(control, str)
                else []
            )
            hint = f" (did you mean {_fmt(close[0])}?)" if close else ""
            raise doc.fail(
                key,
                f"learn.{cc_text} = {_fmt(control)} is not a learnable control"
                f"{hint}; use one of {', '.join(map(_fmt, controls))}.",
            )
        learn[int(cc_text)] = control
    return learn


# ------------------------------------------------------------------------------- finding files


def _folders() -> list[tuple[Path, str]]:
    return [(paths.user_presets(), "user"), (paths.shipped("presets"), "shipped")]


def list_presets() -> list[PresetInfo]:
    """Every preset by name (the file's stem), sorted; a user preset hides a shipped one."""
    found: dict[str, PresetInfo] = {}
    for folder, source in _folders():
        if folder.is_dir():
            for file in sorted(folder.glob("*.toml")):
                if file.is_file():
                    found.setdefault(file.stem, PresetInfo(file.stem, file, source))
    return [found[name] for name in sorted(found)]


def find_preset(name_or_path: str | os.PathLike[str]) -> Path:
    """An existing file as given, else the preset of that name (the user's first, then the
    shipped one); `PresetError` when neither exists."""
    given = Path(name_or_path).expanduser()
    if given.is_file():
        return given
    name = given.stem if given.suffix == ".toml" else given.name
    if len(given.parts) == 1:  # a bare name, not a path that does not exist
        for folder, _ in _folders():
            if (folder / f"{name}.toml").is_file():
                return folder / f"{name}.toml"
    names = [info.name for info in list_presets()]
    close = difflib.get_close_matches(name, names, n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    raise PresetError(
        f"{os.fspath(name_or_path)}: no such preset or file{hint}; "
        f"available presets: {', '.join(names) or 'none'}.",
        os.fspath(name_or_path),
    )


# ------------------------------------------------------------------------------------- saving


def _dump(settings: Settings, folder: Path) -> str:
    out = [f"# livegen preset; load it with --preset {_fmt(settings.name)}.", ""]
    out.append(f"name = {_fmt(settings.name)}")
    out.append(f"model = {_fmt(_model_for(settings.model, folder))}")
    for voice in settings.voices:
        out += ["", "[[voices]]"]
        out += [
            f"{f.name} = {_fmt(getattr(voice, f.name))}"
            for f in fields(voice)
            if getattr(voice, f.name) is not None
        ]
    for section in _SECTIONS:
        part = getattr(settings, section)
        out += ["", f"[{section}]"]
        out += [
            f"{f.name} = {_fmt(getattr(part, f.name))}"
            for f in fields(part)
            if getattr(part, f.name) is not None
        ]
    out += ["", "[learn]"]
    out += [f"{_fmt(str(cc))} = {_fmt(control)}" for cc, control in sorted(settings.learn.items())]
    return "\n".join(out) + "\n"


def _model_for(model: str, folder: Path) -> str:
    """A model path relative to the preset's folder when it lies inside it."""
    if _MODEL_NAME.fullmatch(model):
        return model
    try:
        return "./" + Path(model).relative_to(folder).as_posix()
    except ValueError:
        return model


def save_preset(settings: Settings, path: str | os.PathLike[str]) -> None:
    """Write `settings` as a preset that `load_preset` reads back equal. The text is checked
    before anything is written, so invalid settings raise `PresetError` and leave the file as
    it was; the file is replaced atomically."""
    target = Path(path)
    folder = target.absolute().parent
    label = os.fspath(path)
    text = _dump(settings, folder)
    try:
        _parse(_Doc(label, text, folder), target.stem)
    except PresetError as error:
        reason = str(error).split(": ", 1)[1]
        raise PresetError(
            f"{label}: not saved, because in the preset it would write {reason}",
            label,
            None,
            error.key,
        ) from None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(dir=folder, prefix=f".{target.name}.", suffix=".tmp")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                stream.write(text)
            os.replace(temp, target)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
    except OSError as error:
        raise PresetError(
            f"{label}: cannot write the preset ({error.strerror or error}).", label
        ) from None
