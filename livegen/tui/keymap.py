"""The panel's keys, hints and colours (the controls themselves: livegen.controls)."""

from __future__ import annotations

import re

from livegen.controls import CONTROLS

# Every key, for the help screen and the README (one source of truth); the nudge keys come from
# the controls table.
KEYMAP: list[tuple[str, str]] = [
    ("? / F1", "this help"),
    ("↑ ↓", "select a control"),
    ("← → / - +", "change it by a step"),
    ("Shift+← →", "change it by 5 steps"),
    ("Enter", "type a value; flip a switch"),
    ("Space", "flip a switch or key lock"),
    ("l", "MIDI learn: move a knob"),
    ("Esc", "cancel MIDI learn"),
    *[(c.keys_shown, f"{c.label} − / +" + (", ×5" if c.big_keys else ""))
      for c in CONTROLS if c.keys and c.span is not None],
    ("1 … 9", "voice 1…9 on/off"),
    ("k", "key lock off→auto→detected"),
    ("K", "type a key lock (G, F#m)"),
    ("o", "takeover on/off"),
    ("p", "load a preset"),
    ("s", "save as a user preset"),
    ("m", "switch model"),
    ("r", "record on/off"),
    ("g", "transport start / stop"),
    ("x", "panic: all notes off"),
    ("q / Ctrl-C", "quit (every note ends)"),
]
HINTS = "? help  ↑↓ select  ←→ change  l learn  p preset  r rec  x panic  q quit"

VOICE_COLOURS = ("cyan", "green", "yellow", "red", "blue", "bright_magenta")
PRESET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


def next_key_lock(key_lock: str, detected: str | None) -> str:
    """off → auto → the detected key (fixed) → off; auto goes back to off with no key yet."""
    if key_lock == "off":
        return "auto"
    if key_lock == "auto" and detected:
        return detected
    return "off"
