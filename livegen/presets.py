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
                split (0..127), chord_zone ("off" | a note such as "C4" (= 60, middle C) or
                "F#3" | a MIDI note number 1..127; stored as the number, "off" as no key:
                the keys below it are the left-hand chord, livegen/midi/inputfilter.py)
    [sampling]  temperature (above 0, at most 5), top_p (above 0, at most 1), density (-1..1),
                key_lock ("off" | "auto" | a key such as "C major", "F# minor", "Bb", "Am";
                stored in the canonical spelling of `livegen.tonality.key_name`), max_leap (1..24),
                allow_unison (bool), avoid_parallels (bool)
    [timing]    clock ("internal"|"midi"|"link"), bpm (20..300), beats_per_bar (1..8),
                prewindow (0..1), follow_ms (0..200), follow_threshold (0..1), swing (0..0.5),
                humanize_ms (0..50), humanize_velocity (0..40), clock_out (bool),
                start ("now"|"first_note"), count_in (0..4 bars), click_channel (1..16)
    [takeover]  enabled (bool), bars (1..64), channel (1..16), velocity (1..127)
    [learn]     "74" = "temperature": CC number (1..119, as a key) -> a live control name;
                the key is ASCII digits, leading zeros allowed ("074" is CC 74), and each CC
                number may be learned once, however it is spelled

MIDI learn: the controls a CC can drive are the learnable rows of `livegen.controls.CONTROLS`
plus "voice.<name>" for every voice the preset lists (and, for the shipped "chorale" model, its
voices alto, tenor and bass). Continuous controls sweep the control's `span` linearly as the CC
goes 0..127; the toggles
("takeover" and "voice.<name>") are on while the CC value is 64 or more.

Models and voices: a model name must be a shipped model (a file in the shipped `models`
folder). Where the model's voices are known when the preset is read (the shipped models, from
`_SHIPPED_MODEL_VOICES`; another model file, from its metadata, read without torch and without
running anything in the file), every `[[voices]]` name must be one of them, so a preset whose
voices match none of the model's cannot load. A model file whose metadata cannot be read then
keeps its voices unchecked; the engine reports such a file when it loads it.

Errors: `load_preset` raises `PresetError` and nothing else, whatever the file holds and
whatever is at the path (missing, a folder, unreadable, not UTF-8, longer than `MAX_BYTES`),
and it answers within about a second whatever the file (a key of more than
`MAX_KEY_PARTS` dotted names is refused before TOML parsing, which is quadratic in them).
Every problem is one sentence of the form `file:line: key = value is wrong; what is allowed.`
TOML syntax errors, unknown keys (with a did-you-mean suggestion) and wrong types are reported
the same way; values and keys are shown as TOML writes them, long ones shortened. The whole file
is checked before anything is raised, and every problem is listed at once: a file with one
problem raises that sentence alone; a file with several raises one `PresetError` whose first
line is `file has N problems:` and whose next lines are the sentences, one a line (at most
`MAX_LISTED`, then how many more), and whose `problems` holds each as its own `PresetError`.
TOML that cannot be parsed stops the reading, so its syntax error is the only one reported.

Contract: the loader is pure. `load_preset` builds a brand-new `Settings` or raises; it never
touches a `Settings` that already exists. The engine swaps its active settings only after a
successful load, so a bad preset leaves the previously active preset in place.
"""

from __future__ import annotations

import difflib
import io
import json
import os
import pickle
import re
import stat
import tempfile
import tomllib
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, fields
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
# The longest preset file read: the shipped ones are about 2 kB, and TOML parsing takes up to
# about 4 µs a byte, so even a hostile file at the limit is answered within about a second.
MAX_BYTES = 100_000
MAX_KEY_PARTS = 32  # names joined by dots in one key (TOML parsing is quadratic in them)
MAX_LISTED = 20  # problems listed in one error; the rest are counted

# Voices of the shipped models (the human part, the soprano, is not a model voice).
_SHIPPED_MODEL_VOICES = {"chorale": ("alto", "tenor", "bass")}
_MODEL_NAME = re.compile(r"[A-Za-z0-9_-]+")
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]{1,80}")
_INVALID: Any = object()  # what `_Doc.check` gives for a value it reported


class PresetError(Exception):
    """A preset that cannot be read, found or saved. `str(error)` is one sentence that starts
    with `file:line:` where a line is known; `path`, `line` and `key` hold the parts. For a file
    with several problems, the first line says how many and each further line is one problem's
    sentence; `problems` holds each problem (just this error when there is one), and `line`
    and `key` are the first problem's."""

    def __init__(
        self,
        message: str,
        path: str | None = None,
        line: int | None = None,
        key: str = "",
        problems: Sequence[PresetError] = (),
    ) -> None:
        super().__init__(message)
        self.path = path
        self.line = line
        self.key = key
        self.problems: tuple[PresetError, ...] = tuple(problems) or (self,)


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
    if isinstance(value, str):  # JSON's escapes are TOML's; TOML also wants DEL escaped
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return str(value)


def _clip(text: str, limit: int = 80) -> str:
    """`text` with its middle left out when it is longer than `limit`."""
    if len(text) <= limit:
        return text
    half = (limit - 1) // 2
    return f"{text[:half]}…{text[-half:]}"


def _show(value: Any, limit: int = 80) -> str:
    """A value as TOML writes it, for a message: a long text shortened, and every character
    that does not print (line breaks of any kind included) escaped, so it stays on one line."""
    if not isinstance(value, str):
        return _fmt(value)
    return "".join(
        c if c.isprintable() else f"\\u{ord(c):04x}" if ord(c) < 0x10000 else f"\\U{ord(c):08x}"
        for c in _fmt(_clip(value, limit))
    )


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


_NOTE = re.compile(r"([A-Ga-g])([#♯b♭]?)(-?[0-9])")
_ACCIDENTAL = {"": 0, "#": 1, "♯": 1, "b": -1, "♭": -1}
_ZONE_ALLOWED = ('"off", a note such as "C4" (middle C) or "F#3", '
                 "or a MIDI note number from 1 to 127")


def _chord_zone(value: Any) -> int | None:
    """The chord zone's split point: "off" (None), a note name in scientific pitch notation
    (C4 = 60, as `livegen.tonality.note_label` writes it) or a MIDI note number."""
    if isinstance(value, str):
        if value.strip().lower() == "off":
            return None
        note = _NOTE.fullmatch(value.strip())
        if note is None:
            raise _Bad("is not a note", _ZONE_ALLOWED)
        letter, accidental, octave = note.groups()
        pitch = 12 * (int(octave) + 1) + parse_key(letter)[0] + _ACCIDENTAL[accidental]
        if not 1 <= pitch <= 127:
            raise _Bad(f"is MIDI note {pitch}, out of range", _ZONE_ALLOWED)
        return pitch
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Bad(f"is {_kind(value)}, not a note", _ZONE_ALLOWED)
    if not isinstance(value, int):
        raise _Bad("is not a whole number", _ZONE_ALLOWED)
    if not 1 <= value <= 127:
        raise _Bad("is out of range", _ZONE_ALLOWED)
    return value


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
        {
            "channel": _CHANNEL,
            "mode": _choice("all", "skyline", "split"),
            "split": _MIDI,
            "chord_zone": _chord_zone,
        },
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
            "clock": _choice("internal", "midi", "link"),
            "bpm": _num(20, 300),
            "beats_per_bar": _num(1, 8, whole=True),
            "prewindow": _num(0, 1),
            "follow_ms": _num(0, 200),
            "follow_threshold": _num(0, 1),
            "swing": _num(0, 0.5),
            "humanize_ms": _num(0, 50),
            "humanize_velocity": _num(0, 40, whole=True),
            "clock_out": _bool,
            "start": _choice("now", "first_note"),
            "count_in": _num(0, 4, whole=True),
            "click_channel": _CHANNEL,
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

# Both patterns run on every line of a file being reported, so neither may backtrack
# quadratically on a long line: no repeated part can match what its neighbour matches.
_HEADER = re.compile(r"\s*(\[\[?)([^\[\]#]*)\]\]?\s*(?:#.*)?")
_KEY_PART = r"(?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*')"
_KEY_LINE = re.compile(rf"\s*({_KEY_PART}(?:\s*\.\s*{_KEY_PART})*)\s*=")


def _split_key(dotted: str) -> list[str]:
    return [part.strip().strip("\"'") for part in re.findall(_KEY_PART, dotted)]


def _text_lines(text: str) -> list[str]:
    """The lines as TOML numbers them: only "\n" ends a line (a form feed or a U+2028 in a
    comment does not)."""
    return text.removesuffix("\n").split("\n") if text else []


def _scan(text: str) -> Iterator[tuple[int, Key, bool]]:
    """(line number, full key, is a header) for each table header and `key =` line."""
    table: Key = ()
    counts: dict[Key, int] = {}
    for number, line in enumerate(_text_lines(text), start=1):
        header = _HEADER.fullmatch(line)
        if header and header.group(2).strip():
            name = tuple(_split_key(header.group(2).strip()))
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


def _lines(text: str) -> dict[Key, int]:
    """The first line that defines each key or table."""
    return {k: n for n, k, _ in reversed(list(_scan(text)))}


def _line_of(found: dict[Key, int], key: Key) -> int:
    """The line that defines `key`, else the nearest enclosing table or key, else line 1."""
    for length in range(len(key), 0, -1):
        if key[:length] in found:
            return found[key[:length]]
    return 1


def _dotted(key: Key) -> str:
    """A key's path as TOML writes it: bare parts as they are, any other part quoted (and
    shortened), so that a message stays on one line whatever the key holds."""
    out = ""
    for part in key:
        if isinstance(part, int):
            out += f"[{part + 1}]"
            continue
        text = part if _BARE_KEY.fullmatch(part) else _show(part)
        out += f".{text}" if out else text
    return out


# ---------------------------------------------------------------------------------- the loader


@dataclass
class _Doc:
    """One preset's text while it is being checked: places messages and collects them."""

    label: str  # the file as the user named it
    text: str
    folder: Path
    problems: list[PresetError] = field(default_factory=list)
    _found: dict[Key, int] | None = None

    def line(self, key: Key) -> int:
        if self._found is None:
            self._found = _lines(self.text)
        return _line_of(self._found, key)

    def report(self, key: Key, message: str) -> None:
        """Note one problem; the check goes on, and `finish` raises them all."""
        line = self.line(key)
        self.problems.append(
            PresetError(f"{self.label}:{line}: {message}", self.label, line, _dotted(key))
        )

    def check(self, key: Key, value: Any, rule: Callable[[Any], Any]) -> Any:
        """`value` through `rule`, or `_INVALID` after reporting why not."""
        try:
            return rule(value)
        except _Bad as bad:
            self.report(key, f"{_dotted(key)} = {_show(value)} {bad.problem}; use {bad.allowed}.")
            return _INVALID

    def table(
        self, key: Key, value: Any, allowed: list[str] | tuple[str, ...]
    ) -> dict[str, Any] | None:
        """The items of `value` whose keys are in `allowed`; every other key is reported, and
        a value that is not a table is reported and gives None."""
        if not isinstance(value, dict):
            name = _dotted(key)
            header = f"[[{key[0]}]]" if isinstance(key[-1], int) else f"[{name}]"
            self.report(
                key, f"{name} is {_kind(value)}, not a table; write it as a {header} table."
            )
            return None
        for item in value:
            if item not in allowed:
                # a did-you-mean costs a fraction of a millisecond: not for thousands of keys
                many = len(self.problems) >= 10 * MAX_LISTED
                close = [] if many else difflib.get_close_matches(item, allowed, n=1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                self.report(
                    (*key, item),
                    f"unknown key {_dotted((*key, item))}{hint}; "
                    f"allowed here: {', '.join(allowed)}.",
                )
        return {k: v for k, v in value.items() if k in allowed}

    def finish(self) -> None:
        """Raise what was reported: the one problem as it is, or all of them in one error."""
        problems = self.problems
        if len(problems) == 1:
            raise problems[0]
        if problems:  # in the file's order, as the user reads it
            raise _together(self.label, sorted(problems, key=lambda p: p.line or 0))


def _together(label: str, problems: list[PresetError], head: str = "") -> PresetError:
    """One error for several problems: a summary line, then each problem on its own line."""
    listed = [str(p) for p in problems[:MAX_LISTED]]
    if len(problems) > MAX_LISTED:
        listed.append(f"{label}: and {len(problems) - MAX_LISTED} more problems.")
    first = problems[0]
    return PresetError(
        f"{head or label} has {len(problems)} problems:\n" + "\n".join(listed),
        label,
        first.line,
        first.key,
        problems,
    )


def load_preset(path: str | os.PathLike[str]) -> Settings:
    """Read and check one preset file: a new `Settings`, or `PresetError` (nothing changes).
    Whatever the file holds, and whatever is at `path`, no other exception comes out."""
    label = os.fspath(path)
    text = _read(path, label)
    return _parse(_Doc(label, text, Path(path).absolute().parent), Path(path).stem)


def _read(path: str | os.PathLike[str], label: str) -> str:
    """The file's text: at most `MAX_BYTES`, UTF-8 (a byte order mark is allowed)."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        handle = os.open(path, flags)  # never blocks, even on a FIFO
        with os.fdopen(handle, "rb") as stream:
            mode = os.fstat(stream.fileno()).st_mode
            if not stat.S_ISREG(mode):
                what = "a folder" if stat.S_ISDIR(mode) else "a device or a pipe"
                raise PresetError(
                    f"{label}: cannot read the preset (it is {what}, not a file).", label
                )
            data = stream.read(MAX_BYTES + 1)
    except OSError as error:
        raise PresetError(
            f"{label}: cannot read the preset ({error.strerror or error}).", label
        ) from None
    except ValueError:  # a NUL character in the path
        raise PresetError(
            f"{label}: cannot read the preset (the path holds a NUL character).", label
        ) from None
    if len(data) > MAX_BYTES:
        raise PresetError(
            f"{label}: the preset is longer than {MAX_BYTES} bytes; a preset is a short text "
            "file, so check that this is the file you meant.",
            label,
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise PresetError(
            f"{label}:{line}: the preset is not UTF-8 text; save it as UTF-8.", label, line
        ) from None


def _parse(doc: _Doc, default_name: str) -> Settings:
    data = _toml(doc)
    data = doc.table((), data, _TOP_KEYS) or {}

    name = doc.check(("name",), data.get("name", default_name), _text)
    model = _model(doc, data.get("model", Settings.model))
    known = None if model is None else _model_voices(model)
    voices = _voices(doc, data.get("voices", []), model or "", known)
    sections: dict[str, Any] = {}
    for section, (cls, rules) in _SECTIONS.items():
        values = doc.table((section,), data.get(section, {}), tuple(rules)) or {}
        checked = {k: doc.check((section, k), v, rules[k]) for k, v in values.items()}
        sections[section] = cls(**{k: v for k, v in checked.items() if v is not _INVALID})
    learn = _learn(doc, data.get("learn", {}), voices, model or "")
    doc.finish()
    return Settings(name=name, model=model or "", voices=voices, learn=learn, **sections)


_ONE_LINE_PART = r"(?:[A-Za-z0-9_-]+|\"[^\"\n]*\"|'[^'\n]*')"
# Starting only where a bare name starts keeps the search linear on a long run of letters.
_DEEP_KEY = re.compile(
    rf"(?<![A-Za-z0-9_-]){_ONE_LINE_PART}"
    rf"(?:[ \t]*\.[ \t]*{_ONE_LINE_PART}){{{MAX_KEY_PARTS}}}"
)


def _toml(doc: _Doc) -> dict[str, Any]:
    """The parsed document; a file TOML cannot read raises its one problem at once."""
    deep = _DEEP_KEY.search(doc.text)
    if deep:
        line = doc.text.count("\n", 0, deep.start()) + 1
        raise PresetError(
            f"{doc.label}:{line}: a key joins more than {MAX_KEY_PARTS} names with dots; "
            "a preset's keys have at most two, as in sampling.top_p.",
            doc.label,
            line,
        )
    try:
        return tomllib.loads(doc.text)
    except tomllib.TOMLDecodeError as error:
        raise _syntax_error(doc, error) from None
    except RecursionError:
        raise PresetError(
            f"{doc.label}: the TOML nests lists or tables too deeply to read; a preset needs "
            "tables of plain values only.",
            doc.label,
        ) from None
    except ValueError as error:  # a number past Python's limit on the digits of a whole number
        long = re.search(r"(?<![0-9_])[0-9][0-9_]{999,}", doc.text)
        line = doc.text.count("\n", 0, long.start()) + 1 if long else None
        where = f"{doc.label}:{line}" if line else doc.label
        raise PresetError(
            f"{where}: a number is too long to read ({_short_reason(error)}); "
            "write numbers with a few digits.",
            doc.label,
            line,
        ) from None


def _short_reason(error: BaseException) -> str:
    reason = str(error).split(";")[0].split(":")[0].strip().rstrip(".")
    return (reason[:1].lower() + reason[1:])[:80] or type(error).__name__


def _syntax_error(doc: _Doc, error: tomllib.TOMLDecodeError) -> PresetError:
    reason = str(error)
    where = re.search(r"\s*\(at line (\d+), column \d+\)$", reason)
    lines = _text_lines(doc.text)
    line = min(int(where.group(1)), len(lines)) if where else len(lines)
    line = max(line, 1)
    reason = (reason[: where.start()] if where else reason.split(" (at ")[0]).rstrip(".")
    here = [(key, header) for number, key, header in _scan(doc.text) if number == line]
    key = _dotted(here[0][0]) if here else ""
    if here and here[0][1]:
        at = f"in the header of [{key}]"
    elif key:
        at = f"at {key}"
    else:
        at = f"in {_clip(lines[line - 1].strip())!r}" if lines else "here"
    return PresetError(
        f"{doc.label}:{line}: the TOML syntax is invalid {at} ({reason.lower()}); write "
        "key = value, with text in double quotes and [table] headers on their own lines.",
        doc.label,
        line,
        key,
    )


_MODEL_ALLOWED = (
    'use a shipped model name such as "chorale" or the path of a model file, relative to the '
    "preset's folder."
)


def _model(doc: _Doc, value: Any) -> str | None:
    """A shipped model's name, or the absolute path of an existing file; None if reported."""
    model = doc.check(("model",), value, _text)
    if model is _INVALID:
        return None
    if _MODEL_NAME.fullmatch(model):
        if model in _SHIPPED_MODEL_VOICES or _is_file(paths.model_path(model)):
            return model
        names = _shipped_models()
        close = difflib.get_close_matches(model, names, n=1)
        hint = f" (did you mean {_show(close[0])}?)" if close else ""
        doc.report(
            ("model",),
            f"model = {_show(model)} is neither a shipped model nor one of yours in "
            f"{paths.user_models()}{hint}; use "
            f"{' or '.join(map(_show, names)) or 'a shipped model name'}, or the path of a "
            "model file, relative to the preset's folder.",
        )
        return None
    try:
        file = Path(model).expanduser()
        file = Path(os.path.normpath(file if file.is_absolute() else doc.folder / file))
        found = file.is_file()
    except (OSError, RuntimeError, ValueError) as error:  # no such user, too long, a NUL
        reason = error.strerror if isinstance(error, OSError) and error.strerror else None
        doc.report(
            ("model",),
            f"model = {_show(model)} is not a path livegen can use "
            f"({(reason or _short_reason(error)).lower()}); {_MODEL_ALLOWED}",
        )
        return None
    if not found:
        doc.report(
            ("model",),
            f"model = {_show(model)} is not a file ({_show(str(file), 160)[1:-1]} is missing); "
            f"{_MODEL_ALLOWED}",
        )
        return None
    return str(file)


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except (OSError, ValueError):  # a name too long for the file system
        return False


def _shipped_models() -> list[str]:
    try:
        return sorted(
            {p.stem for p in paths.shipped("models").glob("*.pt")} | set(_SHIPPED_MODEL_VOICES)
        )
    except OSError:
        return sorted(_SHIPPED_MODEL_VOICES)


def _voices(
    doc: _Doc, value: Any, model: str, known: tuple[str, ...] | None
) -> list[VoiceSettings]:
    if not isinstance(value, list):
        doc.report(
            ("voices",),
            f"voices is {_kind(value)}, not a list of tables; write "
            "each voice as a [[voices]] table.",
        )
        return []
    voices: list[VoiceSettings] = []
    for index, entry in enumerate(value):
        key: Key = ("voices", index)
        table = doc.table(key, entry, tuple(_VOICE_RULES))
        if table is None:
            continue
        if "name" not in table:
            doc.report(
                key,
                f"{_dotted(key)} has no name; give every [[voices]] table a "
                f'name = "..." line{_of_model(model, known)}.',
            )
            continue
        checked = {k: doc.check((*key, k), v, _VOICE_RULES[k]) for k, v in table.items()}
        checked = {k: v for k, v in checked.items() if v is not _INVALID}
        name = checked.get("name")
        if name is None:
            continue
        name_key: Key = (*key, "name")
        if known is not None and name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" (did you mean {_show(close[0])}?)" if close else ""
            doc.report(
                name_key,
                f"{_dotted(name_key)} = {_show(name)} is not a "
                f"voice of the model{hint}{_of_model(model, known)}.",
            )
        if any(v.name == name for v in voices):
            doc.report(
                name_key,
                f"{_dotted(name_key)} = {_show(name)} appears "
                "twice; give each voice one [[voices]] table.",
            )
            continue
        low, high = checked.get("low"), checked.get("high")
        if low is not None and high is not None and low > high:
            doc.report(
                (*key, "high"),
                f"{_dotted((*key, 'high'))} = {high} is below low = "
                f"{low}; use a high pitch at or above the low one.",
            )
        checked.setdefault("program", DEFAULT_PROGRAMS.get(name, 0))
        voices.append(VoiceSettings(**checked))
    return voices


def _of_model(model: str, known: tuple[str, ...] | None) -> str:
    if not known:
        return ""
    whose = _show(model) if _MODEL_NAME.fullmatch(model) else "the model file"
    return f"; the voices of {whose} are {', '.join(map(_show, known))}"


def _model_voices(model: str) -> tuple[str, ...] | None:
    """The voice names of a preset's model, or None where they cannot be known now: the
    shipped models' from `_SHIPPED_MODEL_VOICES`, any other model file's from its metadata."""
    if model in _SHIPPED_MODEL_VOICES:
        return _SHIPPED_MODEL_VOICES[model]
    return _file_voices(paths.model_path(model))


class _MetaUnpickler(pickle.Unpickler):
    """Unpickles a model file's top-level dict without torch and without running anything in
    the file: torch's tensor rebuilders and storage types become `_nothing` (every tensor reads
    as None) and OrderedDict a plain dict; any other name the file asks for is refused."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("collections", "OrderedDict"):
            return dict
        if module == "torch" or module.startswith("torch."):
            return _nothing
        raise pickle.UnpicklingError(f"{module}.{name} is not allowed")

    def persistent_load(self, pid: Any) -> None:
        return None


def _nothing(*args: Any, **kwargs: Any) -> None:
    return None


_META_BYTES = 1_000_000  # a model file's data.pkl: names and metadata, the tensors elsewhere
_META_ENTRIES = 10_000  # entries in a model file's zip (one per tensor, and a few more)


def _file_voices(file: Path) -> tuple[str, ...] | None:
    """The voice names in a model file's metadata (`livegen/model/modelfile.py` writes them),
    read without torch; None for a file that cannot be read so (the engine then says why)."""
    try:
        with zipfile.ZipFile(file) as archive:
            entries = archive.infolist()
            pickles = [
                i for i in entries[:_META_ENTRIES] if re.fullmatch(r"[^/]+/data\.pkl", i.filename)
            ]
            if len(entries) > _META_ENTRIES or len(pickles) != 1:
                return None
            if pickles[0].file_size > _META_BYTES:
                return None
            with archive.open(pickles[0]) as stream:
                data = stream.read(_META_BYTES + 1)
        payload = _MetaUnpickler(io.BytesIO(data[:_META_BYTES])).load()
        if not isinstance(payload, dict) or payload.get("format") != "livegen-model":
            return None
        names = tuple(voice["name"] for voice in payload["meta"]["voices"])
    except Exception:  # anything unreadable here is the engine's to report, with its reason
        return None
    if names and all(isinstance(n, str) and n for n in names):
        return names
    return None


def learnable_controls(settings: Settings) -> list[str]:
    """Every control a CC can be learned to with these settings (see the module docstring)."""
    names = [v.name for v in settings.voices]
    names += [n for n in _SHIPPED_MODEL_VOICES.get(settings.model, ()) if n not in names]
    return [*LEARNABLE, *(VOICE_PREFIX + n for n in names)]


_CC_KEY = re.compile(r"0*([0-9]{1,3})")  # ASCII digits; leading zeros allowed: "074" is 74


def _learn(doc: _Doc, value: Any, voices: list[VoiceSettings], model: str) -> dict[int, str]:
    if not isinstance(value, dict):
        doc.report(
            ("learn",),
            f"learn is {_kind(value)}, not a table; write it as a [learn] "
            'table of lines such as "74" = "temperature".',
        )
        return {}
    controls = learnable_controls(Settings(model=model, voices=voices))
    learn: dict[int, str] = {}
    first: dict[int, str] = {}  # CC number -> the key that learned it first
    lo, hi = CC_RANGE
    for cc_text, control in value.items():
        key: Key = ("learn", cc_text)
        digits = _CC_KEY.fullmatch(cc_text)
        if digits is None or not lo <= int(digits.group(1)) <= hi:
            doc.report(
                key,
                f"learn.{_show(cc_text)} is not a CC number; use a whole number "
                f'from {lo} to {hi} as the key, e.g. "74" = "temperature".',
            )
            continue
        cc = int(digits.group(1))
        if not isinstance(control, str) or control not in controls:
            close = (
                difflib.get_close_matches(control, controls, n=1)
                if isinstance(control, str)
                else []
            )
            hint = f" (did you mean {_show(close[0])}?)" if close else ""
            doc.report(
                key,
                f"learn.{cc_text} = {_show(control)} is not a learnable control"
                f"{hint}; use one of {', '.join(map(_show, controls))}.",
            )
        elif cc in first:
            earlier = first[cc]
            doc.report(
                key,
                f"learn.{cc_text} = {_show(control)} learns CC {cc} again, after "
                f"learn.{earlier} = {_show(value[earlier])} on line "
                f"{doc.line(('learn', earlier))}; keep one line for each CC number.",
            )
            continue
        else:
            learn[cc] = control
        first.setdefault(cc, cc_text)
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
        if len(error.problems) > 1:
            head = f"{label}: not saved, because the preset it would write"
            raise _together(label, list(error.problems), head) from None
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
