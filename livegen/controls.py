"""Live controls: one place that turns a control name and value into new settings.

The TUI's keys, MIDI learn and the engine all go through `apply_control`, so a knob and a key
change the same field the same way. Control names are those of `livegen.presets`
(`LEARNABLE_CONTROLS`, `key_lock`, and `voice.<name>` on/off toggles).
"""

from __future__ import annotations

from dataclasses import replace

from livegen.presets import CONTROL_RANGES, VOICE_CONTROL_PREFIX
from livegen.settings import Settings, VoiceSettings

FIELDS: dict[str, tuple[str, str]] = {
    "temperature": ("sampling", "temperature"),
    "top_p": ("sampling", "top_p"),
    "density": ("sampling", "density"),
    "key_lock": ("sampling", "key_lock"),
    "follow_ms": ("timing", "follow_ms"),
    "swing": ("timing", "swing"),
    "humanize_ms": ("timing", "humanize_ms"),
    "bpm": ("timing", "bpm"),
    "takeover": ("takeover", "enabled"),
}


def current(settings: Settings, name: str):
    if name.startswith(VOICE_CONTROL_PREFIX):
        voice = settings.voice(name[len(VOICE_CONTROL_PREFIX):])
        return voice.enabled if voice else False
    section, key = FIELDS[name]
    return getattr(getattr(settings, section), key)


def apply_control(settings: Settings, name: str, value) -> Settings:
    """A copy of `settings` with one control changed; numbers are clamped to the control's
    range. Raises KeyError for an unknown control."""
    if name.startswith(VOICE_CONTROL_PREFIX):
        voice_name = name[len(VOICE_CONTROL_PREFIX):]
        voices = list(settings.voices)
        for i, v in enumerate(voices):
            if v.name == voice_name:
                voices[i] = replace(v, enabled=bool(value))
                break
        else:
            voices.append(VoiceSettings(voice_name, enabled=bool(value), channel=2 + len(voices)))
        return replace(settings, voices=voices)
    section, key = FIELDS[name]
    if name in CONTROL_RANGES:
        lo, hi = CONTROL_RANGES[name]
        value = min(hi, max(lo, float(value)))
    part = replace(getattr(settings, section), **{key: value})
    return replace(settings, **{section: part})


def from_cc(name: str, cc_value: int):
    """What a learned knob at `cc_value` (0..127) sets: a point of the control's range, or
    on/off at 64 for toggles."""
    if name in CONTROL_RANGES:
        lo, hi = CONTROL_RANGES[name]
        return lo + (hi - lo) * cc_value / 127.0
    return cc_value >= 64
