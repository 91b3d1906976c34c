"""Live control values as the panel shows and steps them."""

from __future__ import annotations

import re

from livegen.controls import current
from livegen.presets import (
    CONTROL_RANGES,
)
from livegen.settings import Settings

# Every key, for the help screen and the README (one source of truth).
KEYMAP: list[tuple[str, str]] = [
    ("? / F1", "this help"),
    ("↑ ↓", "select a control"),
    ("← → / - +", "change it by a step"),
    ("Shift+← →", "change it by 5 steps"),
    ("Enter", "type a value; flip a switch"),
    ("Space", "flip a switch or key lock"),
    ("l", "MIDI learn: move a knob"),
    ("Esc", "cancel MIDI learn"),
    ("t T", "temperature − / +"),
    ("d D", "density − / +"),
    ("f F", "follow window − / +"),
    ("w W", "swing − / +"),
    ("h H", "humanize − / +"),
    ("[ ] / { }", "tempo −/+ 1 BPM, 5 BPM"),
    ("1 … 9", "voice 1…9 on/off"),
    ("k", "key lock off→auto→detected"),
    ("K", "type a key lock (G, F#m)"),
    ("o", "takeover on/off"),
    ("p", "load a preset"),
    ("s", "save as a user preset"),
    ("m", "switch model"),
    ("r", "record on/off"),
    ("x", "panic: all notes off"),
    ("q / Ctrl-C", "quit (every note ends)"),
]
HINTS = "? help  ↑↓ select  ←→ change  l learn  p preset  r rec  x panic  q quit"

# Numeric live controls: step per key press and display format (ranges: CONTROL_RANGES).
NUMERIC: dict[str, tuple[float, str]] = {
    "temperature": (0.05, "{:.2f}"),
    "top_p": (0.01, "{:.2f}"),
    "density": (0.1, "{:+.1f}"),
    "follow_ms": (5.0, "{:.0f} ms"),
    "swing": (0.02, "{:.2f}"),
    "humanize_ms": (1.0, "{:.0f} ms"),
    "bpm": (1.0, "{:.1f}"),
}
LABELS = {
    "temperature": "temperature",
    "top_p": "top-p",
    "density": "density",
    "follow_ms": "follow window",
    "swing": "swing",
    "humanize_ms": "humanize",
    "bpm": "tempo BPM",
    "key_lock": "key lock",
    "takeover": "takeover",
}
BASE_CONTROLS = ("temperature", "top_p", "density", "follow_ms", "swing", "humanize_ms", "bpm",
                 "key_lock", "takeover")

HUMAN, LEAD = -2, -1
VOICE_COLOURS = ("cyan", "green", "yellow", "red", "blue", "bright_magenta")
NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
_PRESET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


def step_value(settings: Settings, control: str, steps: float) -> float:
    """The control's value `steps` steps away, clamped to its live range."""
    step, _ = NUMERIC[control]
    lo, hi = CONTROL_RANGES[control]
    value = float(current(settings, control)) + steps * step
    return round(min(hi, max(lo, value)), 4)


def next_key_lock(key_lock: str, detected: str | None) -> str:
    """off → auto → the detected key (fixed) → off; auto goes back to off with no key yet."""
    if key_lock == "off":
        return "auto"
    if key_lock == "auto" and detected:
        return detected
    return "off"


def format_value(settings: Settings, control: str) -> str:
    value = current(settings, control)
    if control in NUMERIC:
        return NUMERIC[control][1].format(value)
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def note_label(pitch: int) -> str:
    return f"{NOTE_NAMES[pitch % 12]}{pitch // 12 - 1}"


# ---------------------------------------------------------------------- engine death: notes

