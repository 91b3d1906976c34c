"""The settings a preset captures, as plain dataclasses with musician-friendly defaults.

`livegen.presets` reads and validates TOML into these; the engine and the offline render read them.
Voice entries are matched to the model's voices by name; a voice the preset does not mention
keeps the model's range and these defaults.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

KeyLock = str  # "off", "auto", or a fixed key such as "C major", "F# minor", "Bb major"
InputMode = Literal["all", "skyline", "split"]
ClockSource = Literal["internal", "midi", "link"]
StartMode = Literal["now", "first_note"]

# General MIDI programs (0-based) that suit each chorale voice when a DAW or synth plays them.
DEFAULT_PROGRAMS = {"soprano": 52, "alto": 52, "tenor": 52, "bass": 32}


@dataclass
class VoiceSettings:
    name: str
    enabled: bool = True
    channel: int = 2  # 1..16
    program: int = 0  # 0..127, sent as a program change when the engine starts
    low: int | None = None  # MIDI pitch; None = the model's range for this voice
    high: int | None = None
    velocity: int = 80  # 1..127


@dataclass
class InputSettings:
    channel: int | None = None  # 1..16, or None for every channel
    mode: InputMode = "all"  # all notes, top note only ("skyline"), or the notes above `split`
    split: int = 60  # with mode "split": notes at or above this pitch are the human part
    # left-hand chord zone: keys below this pitch (on the input channel) are never melody;
    # the pitch classes held there fix the harmony the voices use (livegen/accompanist.py).
    # None: off, every key may be melody
    chord_zone: int | None = None


@dataclass
class SamplingSettings:
    temperature: float = 0.8
    top_p: float = 0.92
    density: float = 0.0  # -1..1: negative favours REST/HOLD (sparser), positive more onsets
    key_lock: KeyLock = "auto"
    max_leap: int = 12  # semitones between consecutive notes of one voice
    allow_unison: bool = False  # may two voices sound the same pitch at once
    avoid_parallels: bool = True  # forbid parallel perfect fifths and octaves between parts


@dataclass
class TimingSettings:
    clock: ClockSource = "internal"
    bpm: float = 100.0
    beats_per_bar: int = 4
    prewindow: float = 0.5  # share of the previous step whose onsets count for this step
    follow_ms: float = 30.0  # follow window W; 0 turns following off
    follow_threshold: float = 0.5  # lead's onset probability above which the engine waits
    swing: float = 0.0  # 0..0.5: delay of odd 16ths, as a share of a step
    humanize_ms: float = 0.0  # random timing spread of machine notes
    humanize_velocity: int = 0  # random velocity spread of machine notes
    clock_out: bool = False  # send MIDI beat clock when the clock is internal
    # internal clock: "now" starts the grid with the engine, "first_note" on the player's first
    # note (the transport key then arms it again); MIDI clock: the clock's Start and Stop decide
    start: StartMode = "now"
    count_in: int = 0  # bars of clicks before the grid starts, when started with the key
    click_channel: int = 10  # where the count-in clicks go (10: General MIDI drums)


@dataclass
class TakeoverSettings:
    enabled: bool = False
    bars: int = 2  # silent bars before the model carries on the melody
    channel: int = 1  # the lead channel the model plays the melody on
    velocity: int = 90


@dataclass
class Settings:
    name: str = "default"
    model: str = "chorale"  # a shipped model's name, or a path to a model file
    voices: list[VoiceSettings] = field(default_factory=list)
    input: InputSettings = field(default_factory=InputSettings)
    sampling: SamplingSettings = field(default_factory=SamplingSettings)
    timing: TimingSettings = field(default_factory=TimingSettings)
    takeover: TakeoverSettings = field(default_factory=TakeoverSettings)
    learn: dict[int, str] = field(default_factory=dict)  # CC number -> control name

    def voice(self, name: str) -> VoiceSettings | None:
        return next((v for v in self.voices if v.name == name), None)
