"""Live controls: the one table of every control a player can change while playing, and the one
place that turns a control name and value into new settings (docs/ARCHITECTURE.md, "How a
change flows").

Presets (ranges for MIDI learn and the `[learn]` table), MIDI learn in the engine, the panel
(labels, steps, formats, keys) and the command line all read `CONTROLS`; adding a control is one
row here plus the settings field it drives. Besides the table, every voice has an on/off toggle
named "voice.<name>" (`VOICE_PREFIX`).

Control messages travel from the panel (or any thread) to the engine as `ControlMessage` values;
the engine's worker applies them on its next pass.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

from livegen.settings import Settings, VoiceSettings

VOICE_PREFIX = "voice."


@dataclass(frozen=True)
class Control:
    """One live control. `span` is the range a CC sweeps and a key press is clamped to (None:
    a toggle, on at CC >= 64, or a choice such as the key lock)."""

    name: str
    section: str  # the Settings section that holds it
    field: str  # the field in that section
    label: str
    span: tuple[float, float] | None = None
    step: float = 0.0  # per key press
    fmt: str = "{}"
    learnable: bool = True
    keys: tuple[str, str] | None = None  # Textual key names: one step down, one step up
    big_keys: tuple[str, str] | None = None  # five steps down, up
    keys_shown: str = ""  # how the help screen writes the keys


CONTROLS: tuple[Control, ...] = (
    Control("temperature", "sampling", "temperature", "temperature", (0.1, 2.0), 0.05, "{:.2f}",
            keys=("t", "T"), keys_shown="t T"),
    Control("top_p", "sampling", "top_p", "top-p", (0.5, 1.0), 0.01, "{:.2f}"),
    Control("density", "sampling", "density", "density", (-1.0, 1.0), 0.1, "{:+.1f}",
            keys=("d", "D"), keys_shown="d D"),
    Control("follow_ms", "timing", "follow_ms", "follow window", (0.0, 200.0), 5.0,
            "{:.0f} ms", keys=("f", "F"), keys_shown="f F"),
    Control("swing", "timing", "swing", "swing", (0.0, 0.5), 0.02, "{:.2f}",
            keys=("w", "W"), keys_shown="w W"),
    Control("humanize_ms", "timing", "humanize_ms", "humanize", (0.0, 50.0), 1.0, "{:.0f} ms",
            keys=("h", "H"), keys_shown="h H"),
    Control("bpm", "timing", "bpm", "tempo BPM", (20.0, 300.0), 1.0, "{:.1f}",
            keys=("left_square_bracket", "right_square_bracket"),
            big_keys=("left_curly_bracket", "right_curly_bracket"), keys_shown="[ ] / { }"),
    Control("key_lock", "sampling", "key_lock", "key lock", learnable=False),
    Control("takeover", "takeover", "enabled", "takeover"),
)
BY_NAME: dict[str, Control] = {c.name: c for c in CONTROLS}
NUMERIC: tuple[str, ...] = tuple(c.name for c in CONTROLS if c.span is not None)
# Learnable actions besides the settings: "transport" starts (CC >= 64) or stops the transport.
ACTIONS: tuple[str, ...] = ("transport",)
LEARNABLE: tuple[str, ...] = (*(c.name for c in CONTROLS if c.learnable), *ACTIONS)


@dataclass(frozen=True)
class ControlMessage:
    """A request to the engine. `kind` is "set" (a control `name` to `value`), "settings" (a
    whole new Settings in `value`), "learn" (`name` waits for a knob; None cancels), "record"
    (`value` on/off), "model" (`value` a model file), "transport" (`value` "start", "stop" or
    "toggle"), "note" (`value` a sentence to show, from another thread), "panic", "mute" or
    "quit"."""

    kind: Literal["set", "settings", "learn", "record", "model", "panic", "mute", "quit",
                  "transport", "note"]
    name: str | None = None
    value: Any = None


def label(name: str) -> str:
    control = BY_NAME.get(name)
    return control.label if control else name.removeprefix(VOICE_PREFIX)


def current(settings: Settings, name: str) -> Any:
    if name.startswith(VOICE_PREFIX):
        voice = settings.voice(name[len(VOICE_PREFIX):])
        return voice.enabled if voice else False
    control = BY_NAME[name]
    return getattr(getattr(settings, control.section), control.field)


def clamp(name: str, value: float) -> float:
    lo, hi = BY_NAME[name].span or (value, value)
    return min(hi, max(lo, float(value)))


def apply_control(settings: Settings, name: str, value: Any) -> Settings:
    """A copy of `settings` with one control changed; numbers are clamped to the control's
    span. Raises KeyError for an unknown control."""
    if name.startswith(VOICE_PREFIX):
        voice_name = name[len(VOICE_PREFIX):]
        voices = list(settings.voices)
        for i, v in enumerate(voices):
            if v.name == voice_name:
                voices[i] = replace(v, enabled=bool(value))
                break
        else:
            voices.append(VoiceSettings(voice_name, enabled=bool(value), channel=2 + len(voices)))
        return replace(settings, voices=voices)
    control = BY_NAME[name]
    if control.span is not None:
        value = clamp(name, value)
    part = replace(getattr(settings, control.section), **{control.field: value})
    return replace(settings, **{control.section: part})


def step_value(settings: Settings, name: str, steps: float) -> float:
    """The control's value `steps` key presses away, clamped to its span."""
    value = float(current(settings, name)) + steps * BY_NAME[name].step
    return round(clamp(name, value), 4)


def format_value(settings: Settings, name: str) -> str:
    value = current(settings, name)
    if name in NUMERIC:
        return BY_NAME[name].fmt.format(value)
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def from_cc(name: str, cc_value: int) -> Any:
    """What a learned knob at `cc_value` (0..127) sets: a point of the control's span, or
    on/off at 64 for toggles."""
    span = BY_NAME[name].span if name in BY_NAME else None
    if span is not None:
        lo, hi = span
        return lo + (hi - lo) * cc_value / 127.0
    return cc_value >= 64
