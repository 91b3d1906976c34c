"""Monitor synth: hear the machine voices (and the human part) without a DAW or a sound module.

`Synth` is a small polyphonic wavetable/additive synth in numpy. Each channel has a timbre, chosen
by its General MIDI program family when one is given (`program`) and otherwise by channel (1: a
soft flute-like lead, 2-3: a choir pad with vibrato, 4: a round bass). Envelopes rise and fall
with smooth curves a few milliseconds long at the least, stolen voices and panic fade out rather
than cut, and the master bus has a volume, a limiter and a soft clipper, so nothing clicks or clips.

Thread safety: `note_on`, `note_off`, `all_off`, `program`, `control` only append to a deque; the
audio thread drains it at the start of each `render` block and alone touches the voices, so the
PortAudio callback never waits on a lock. `set_volume` writes one float that `render` ramps to.

`MonitorOutput` plays a `Synth` through sounddevice/PortAudio and takes raw MIDI messages (`send`),
the same bytes the engine sends to its MIDI output. `render_parts` and `write_wav` render the same
synth offline (`livegen render --wav`), deterministically: same parts, byte-identical file.
"""

from __future__ import annotations

import math
import time
import wave
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from livegen.midi.midifile import Part

SAMPLE_RATE = 48000
POLYPHONY = 32
VOICE_LEVEL = 0.3  # peak of one voice at velocity 127 and unity channel gain, before volume
TABLE_SIZE = 2048
STEAL_FADE = 0.005  # seconds: a stolen voice fades out over this
RETRIGGER_FADE = 0.03  # seconds at most: the old voice when the same key is struck again
PANIC_FADE = 0.015  # seconds: all_off() and CC 120/123 reach silence after this
LIMIT_CEILING = 0.9  # the limiter keeps block peaks below this ...
CLIP_KNEE = 0.8  # ... and above this knee a soft clipper bends the curve, never past 1.0
LIMIT_RELEASE = 0.25  # seconds: time constant of the limiter's gain recovery
CONTROL_BLOCK = 256  # render() works in blocks of at most this; slow curves are linear within


class SynthError(Exception):
    """The monitor synth cannot play or write audio; the message says what to install or do."""


@dataclass(frozen=True)
class Timbre:
    """One sound: harmonic amplitudes, an envelope, and optional vibrato, ensemble and fading."""

    name: str
    partials: tuple[float, ...]  # amplitudes of harmonics 1, 2, 3 ...
    attack: float  # seconds: raised-cosine rise from silence to full level
    decay: float  # seconds: time constant from full level toward `sustain`
    sustain: float  # 0..1: level while held (0: the tone dies away, like a struck string)
    release: float  # seconds from note-off to silence
    dull: tuple[float, ...] = ()  # harmonics the tone fades toward (struck/plucked); () = none
    brightness_decay: float = 0.3  # seconds: time constant of the fade from bright to dull
    vibrato_rate: float = 0.0  # Hz
    vibrato_cents: float = 0.0  # depth, reached after `vibrato_delay` and a short fade-in
    vibrato_delay: float = 0.0  # seconds
    detune_cents: float = 0.0  # > 0: two oscillators at plus and minus this (ensemble)
    gain: float = 1.0


TIMBRES: dict[str, Timbre] = {
    t.name: t
    for t in (
        Timbre("flute", (1.0, 0.32, 0.12, 0.05, 0.02), attack=0.03, decay=0.15, sustain=0.85,
               release=0.12, vibrato_rate=5.0, vibrato_cents=8.0, vibrato_delay=0.25),
        Timbre("organ", (1.0, 0.7, 0.45, 0.35, 0.0, 0.2, 0.0, 0.15), attack=0.008, decay=0.2,
               sustain=1.0, release=0.04, gain=0.8),
        Timbre("choir", (1.0, 0.5, 0.6, 0.35, 0.2, 0.15, 0.1, 0.06), attack=0.09, decay=0.3,
               sustain=0.9, release=0.25, vibrato_rate=5.5, vibrato_cents=14.0,
               vibrato_delay=0.2, detune_cents=6.0),
        Timbre("strings", tuple(math.exp(-k / 8.0) / k for k in range(1, 17)), attack=0.12,
               decay=0.4, sustain=0.9, release=0.3, vibrato_rate=5.8, vibrato_cents=10.0,
               vibrato_delay=0.15, detune_cents=7.0),
        Timbre("bass", (1.0, 0.6, 0.35, 0.2, 0.12, 0.07), attack=0.006, decay=0.5, sustain=0.7,
               release=0.08, dull=(1.0, 0.25, 0.06), brightness_decay=0.15, gain=1.3),
        Timbre("piano", (1.0, 0.55, 0.35, 0.22, 0.15, 0.1, 0.06, 0.04), attack=0.004, decay=1.2,
               sustain=0.0, release=0.15, dull=(1.0, 0.2, 0.05), brightness_decay=0.3),
        Timbre("bell", (1.0, 0.1, 0.5, 0.0, 0.25, 0.0, 0.1), attack=0.003, decay=0.6,
               sustain=0.0, release=0.2, dull=(1.0, 0.0, 0.1), brightness_decay=0.2),
        Timbre("pluck", (1.0, 0.7, 0.5, 0.35, 0.25, 0.15, 0.1, 0.06), attack=0.004, decay=0.9,
               sustain=0.0, release=0.1, dull=(1.0, 0.3, 0.1), brightness_decay=0.15),
        Timbre("brass", (1.0, 0.8, 0.6, 0.45, 0.3, 0.2, 0.12, 0.08, 0.05), attack=0.04,
               decay=0.3, sustain=0.85, release=0.1, vibrato_rate=5.0, vibrato_cents=5.0,
               vibrato_delay=0.3),
        Timbre("reed", (1.0, 0.05, 0.5, 0.05, 0.3, 0.03, 0.15, 0.02, 0.08), attack=0.025,
               decay=0.2, sustain=0.9, release=0.08, vibrato_rate=5.0, vibrato_cents=6.0,
               vibrato_delay=0.3),
        Timbre("lead", tuple(1.0 / k for k in range(1, 13)), attack=0.005, decay=0.3,
               sustain=0.8, release=0.06, gain=0.7),
        Timbre("pad", tuple(math.exp(-k / 4.0) / k for k in range(1, 11)), attack=0.3,
               decay=0.8, sustain=0.9, release=0.5, vibrato_rate=0.4, vibrato_cents=4.0,
               detune_cents=8.0),
    )
}

# General MIDI program families (program // 8) to timbres.
_FAMILIES = ("piano", "bell", "organ", "pluck", "bass", "strings", "strings", "brass", "reed",
             "flute", "lead", "pad", "pad", "pluck", "bell", "pad")
_CHANNEL_TIMBRES = {1: "flute", 2: "choir", 3: "choir", 4: "bass", 10: "bell"}
_CHANNEL_PANS = {2: -0.3, 3: 0.3}


def timbre_for_program(program: int) -> Timbre:
    """The timbre for a General MIDI program (0-127): by family; choir programs 52-54 sing."""
    program = min(127, max(0, int(program)))
    if 52 <= program <= 54:
        return TIMBRES["choir"]
    return TIMBRES[_FAMILIES[program // 8]]


def timbre_for_channel(channel: int) -> Timbre:
    """The timbre a channel (1-16) has before any program change."""
    return TIMBRES[_CHANNEL_TIMBRES.get(channel, "organ")]


def midi_frequency(pitch: float) -> float:
    return 440.0 * 2.0 ** ((pitch - 69.0) / 12.0)


class _Channel:
    __slots__ = ("timbre", "volume", "pan", "sustain", "gains", "applied")

    def __init__(self, channel: int) -> None:
        self.timbre = timbre_for_channel(channel)
        self.volume = 100  # CC 7; 100 is unity, as in General MIDI
        self.pan = _CHANNEL_PANS.get(channel, 0.0)  # -1 left .. +1 right (CC 10)
        self.sustain = False  # CC 64
        self.gains = self._target()
        self.applied = self.gains  # the gains the last block ended with (ramped toward `gains`)

    def _target(self) -> tuple[float, float]:
        level = (self.volume / 100.0) ** 2
        angle = (self.pan + 1.0) * math.pi / 4.0  # equal-power pan, unity in the centre
        return (level * math.sqrt(2.0) * math.cos(angle), level * math.sqrt(2.0) * math.sin(angle))

    def update(self) -> None:
        self.gains = self._target()


class _Voice:
    __slots__ = ("channel", "pitch", "timbre", "freq", "amp", "ratios", "phases", "tables",
                 "age", "released", "rel_start", "rel_level", "rel_len", "sustained", "stolen",
                 "order", "vib_rate")

    def __init__(self, channel: int, pitch: int, timbre: Timbre, amp: float,
                 tables: tuple[int, int], order: int) -> None:
        self.channel = channel
        self.pitch = pitch
        self.timbre = timbre
        self.freq = midi_frequency(pitch)
        self.amp = amp
        if timbre.detune_cents > 0:
            spread = 2.0 ** (timbre.detune_cents / 1200.0)
            self.ratios: tuple[float, ...] = (1.0 / spread, spread)
            self.phases = [0.0, 0.25]  # fixed, so that renders are deterministic
        else:
            self.ratios = (1.0,)
            self.phases = [0.0]
        self.tables = tables  # offsets of the bright and the dull table in the bank (-1: none)
        self.age = 0  # samples since note-on
        self.released = False
        self.rel_start = 0.0  # seconds after note-on
        self.rel_level = 0.0
        self.rel_len = 0.0
        self.sustained = False  # note-off arrived while the sustain pedal was down
        self.stolen = False
        self.order = order
        # Neighbouring pitches vibrate at slightly different rates, as singers do.
        self.vib_rate = timbre.vibrato_rate * (1.0 + 0.025 * ((pitch * 7) % 5 - 2))


def _held_envelope(timbre: Timbre, t: np.ndarray) -> np.ndarray:
    """Level while the key is held, at `t` seconds after note-on (0..1)."""
    rise = 0.5 - 0.5 * np.cos(np.pi * np.minimum(t / timbre.attack, 1.0))
    body = timbre.sustain + (1.0 - timbre.sustain) * np.exp(
        -np.maximum(t - timbre.attack, 0.0) / timbre.decay)
    return rise * body


def _release_curve(u: np.ndarray, length: float) -> np.ndarray:
    """Gain `u` seconds after the release began: a cubic fall that reaches exactly 0."""
    return np.clip(1.0 - u / length, 0.0, 1.0) ** 3


# Event codes on the queue.
_ON, _OFF, _PANIC, _PROGRAM, _CONTROL = range(5)


class EventQueue:
    """The control side every monitor synth shares: MIDI-like calls from any thread only queue
    an event (`_events`, a deque) that the one rendering thread applies."""

    _events: deque[tuple[int, ...]]

    def note_on(self, channel: int, pitch: int, velocity: int = 100) -> None:
        if velocity <= 0:
            self.note_off(channel, pitch)
        else:
            self._events.append((_ON, _channel(channel), int(pitch) & 0x7F,
                                 min(127, int(velocity))))

    def note_off(self, channel: int, pitch: int) -> None:
        self._events.append((_OFF, _channel(channel), int(pitch) & 0x7F))

    def all_off(self, channel: int | None = None) -> None:
        """Panic: every voice (of one channel, if given) fades to silence within PANIC_FADE."""
        self._events.append((_PANIC, 0 if channel is None else _channel(channel)))

    def program(self, channel: int, program: int) -> None:
        """Pick the channel's General MIDI program (0-127); sounding notes keep theirs."""
        self._events.append((_PROGRAM, _channel(channel), int(program) & 0x7F))

    def control(self, channel: int, controller: int, value: int) -> None:
        """A MIDI control change: 7 volume, 10 pan, 64 sustain, 120/123 panic, 121 reset."""
        self._events.append((_CONTROL, _channel(channel), int(controller) & 0x7F,
                             int(value) & 0x7F))


class Synth(EventQueue):
    """A polyphonic monitor synth; `render(frames)` gives stereo float32 audio, shape (frames, 2).

    Channels are 1-16. Call the note methods from any thread; call `render` from one thread only
    (the audio callback, or the offline renderer).
    """

    def __init__(self, sample_rate: int = SAMPLE_RATE, volume: float = 0.5,
                 polyphony: int = POLYPHONY) -> None:
        if sample_rate < 8000:
            raise SynthError(f"sample rate {sample_rate} Hz is too low; use 44100 or 48000.")
        self.sample_rate = int(sample_rate)
        self.polyphony = max(1, int(polyphony))
        self.volume = 0.5
        self.set_volume(volume)
        self._applied_volume = self.volume
        self._limit_gain = 1.0
        self._events: deque[tuple[int, ...]] = deque()
        self._voices: list[_Voice] = []
        self._channels = {ch: _Channel(ch) for ch in range(1, 17)}
        self._tables: dict[tuple[str, bool, int], int] = {}  # key -> offset in the bank
        self._norms: dict[str, float] = {}
        self._bank = np.zeros(0, dtype=np.float64)  # every table used so far, end to end
        self._order = 0
        self._index = np.arange(CONTROL_BLOCK, dtype=np.float64)
        self.dropped = 0  # notes not played: too high to sound, or too many fading voices at once
        self.frames_rendered = 0

    def set_volume(self, volume: float) -> None:
        """Master volume, 0..1 (linear gain); ramped over the next block, so it never clicks."""
        self.volume = min(1.0, max(0.0, float(volume)))

    @property
    def active_voices(self) -> int:
        """Voices still sounding or fading (as of the last rendered block)."""
        return len(self._voices)

    # ---- audio, from the audio thread ---------------------------------------------------------

    def render(self, frames: int) -> np.ndarray:
        """The next `frames` samples, after applying every queued event; float32, (frames, 2)."""
        self._drain()
        if frames <= 0:
            return np.zeros((0, 2), dtype=np.float32)
        if frames <= CONTROL_BLOCK:
            return self._block(frames)
        return np.concatenate([self._block(min(CONTROL_BLOCK, frames - start))
                               for start in range(0, frames, CONTROL_BLOCK)])

    def _block(self, n: int) -> np.ndarray:
        out = np.zeros((n, 2), dtype=np.float64)
        if self._voices:
            self._mix(n, out)
            self._voices = [v for v in self._voices if not self._finished(v)]
        else:
            for state in self._channels.values():
                state.applied = state.gains
        self._master(out)
        self.frames_rendered += n
        return out.astype(np.float32)

    def _mix(self, n: int, out: np.ndarray) -> None:
        """All voices at once: one row per voice (envelope, pitch), one per oscillator (wave).

        Slow curves (the decay toward sustain, vibrato, the bright-to-dull fade) are exact at
        block edges and linear within a block of at most CONTROL_BLOCK samples; the attack and
        the release, which can be a few milliseconds long, are exact at every sample.
        """
        voices = self._voices
        count = len(voices)
        sr = self.sample_rate
        index = self._index[:n]
        ramp = index / n

        def column(values: Any) -> np.ndarray:
            return np.fromiter(values, dtype=np.float64, count=count)

        timbres = [v.timbre for v in voices]
        t0 = column(v.age for v in voices) / sr  # seconds since note-on, at the block's start
        t1 = t0 + n / sr
        attack = column(tm.attack for tm in timbres)
        sustain = column(tm.sustain for tm in timbres)
        decay = column(tm.decay for tm in timbres)
        body0 = sustain + (1.0 - sustain) * np.exp(-np.maximum(t0 - attack, 0.0) / decay)
        body1 = sustain + (1.0 - sustain) * np.exp(-np.maximum(t1 - attack, 0.0) / decay)
        env = body0[:, None] + (body1 - body0)[:, None] * ramp
        rising = np.flatnonzero(t0 < attack)
        if rising.size:
            t = t0[rising, None] + index / sr
            env[rising] *= 0.5 - 0.5 * np.cos(np.pi * np.minimum(t / attack[rising, None], 1.0))
        released = [k for k, v in enumerate(voices) if v.released]
        if released:  # releases begin at block edges, so a released voice falls all block long
            gone = [voices[k] for k in released]
            u = (t0[released] - np.array([v.rel_start for v in gone]))[:, None] + index / sr
            env[released] = np.array([v.rel_level for v in gone])[:, None] * _release_curve(
                u, np.array([v.rel_len for v in gone])[:, None])
        env *= column(v.amp / len(v.ratios) for v in voices)[:, None]

        step0 = column(v.freq for v in voices) / sr  # cycles per sample
        step1 = step0
        if any(tm.vibrato_cents > 0 for tm in timbres):
            cents = column(tm.vibrato_cents for tm in timbres)
            delay = column(tm.vibrato_delay for tm in timbres)
            rate = column(v.vib_rate for v in voices)

            def vibrato(t: np.ndarray) -> np.ndarray:
                depth = cents * np.clip((t - delay) / 0.4, 0.0, 1.0)
                return np.exp2(depth / 1200.0 * np.sin(2.0 * np.pi * rate * t))

            step0, step1 = step0 * vibrato(t0), step0 * vibrato(t1)

        # Oscillator rows (a detuned timbre has two per voice); the phase integrates a step that
        # moves linearly across the block: phase(i) = p0 + s0 i + (s1 - s0) i (i - 1) / 2n.
        owner = np.fromiter((k for k, v in enumerate(voices) for _ in v.ratios), np.intp)
        rows = len(owner)
        ratio = np.fromiter((r for v in voices for r in v.ratios), np.float64, rows)
        phase0 = np.fromiter((p for v in voices for p in v.phases), np.float64, rows)
        first = step0[owner] * ratio
        slope = (step1 - step0)[owner] * ratio
        phase = phase0[:, None] + first[:, None] * index + slope[:, None] * (
            index * (index - 1.0) / (2.0 * n))
        ends = (phase0 + first * n + slope * ((n - 1) / 2.0)) % 1.0
        x = (phase - np.floor(phase)) * TABLE_SIZE
        i = x.astype(np.intp)
        x -= i  # now the fraction between table samples
        bank = self._bank
        offsets = np.fromiter((v.tables[0] for v in voices for _ in v.ratios), np.intp, rows)
        where = i + offsets[:, None]
        below = bank[where]
        signal = below + (bank[where + 1] - below) * x
        dull = np.fromiter((v.tables[1] for v in voices for _ in v.ratios), np.intp, rows)
        dull_rows = np.flatnonzero(dull >= 0)
        if dull_rows.size:  # struck and plucked tones lose their upper harmonics as they sound
            where = i[dull_rows] + dull[dull_rows, None]
            below = bank[where]
            low = below + (bank[where + 1] - below) * x[dull_rows]
            tau = column(tm.brightness_decay if tm.dull else 1.0 for tm in timbres)
            w0, w1 = np.exp(-t0 / tau), np.exp(-t1 / tau)
            fade = (w0[:, None] + (w1 - w0)[:, None] * ramp)[owner[dull_rows]]
            signal[dull_rows] = low + (signal[dull_rows] - low) * fade
        signal *= env[owner]

        # Write the state back, then mix the rows into stereo through the channels' gains.
        row = 0
        for v in voices:
            for k in range(len(v.ratios)):
                v.phases[k] = float(ends[row])
                row += 1
            v.age += n
        members: dict[int, list[int]] = {}
        for row, k in enumerate(owner):
            members.setdefault(voices[k].channel, []).append(row)
        states = self._channels
        for ch, chosen in members.items():
            bus = signal[chosen[0]] if len(chosen) == 1 else signal[chosen].sum(axis=0)
            state = states[ch]
            for side in (0, 1):
                start, end = state.applied[side], state.gains[side]
                gain = start if start == end else np.linspace(start, end, n, endpoint=False)
                out[:, side] += bus * gain
        for state in states.values():
            state.applied = state.gains

    def _finished(self, voice: _Voice) -> bool:
        now = voice.age / self.sample_rate
        if voice.released:
            return now >= voice.rel_start + voice.rel_len
        if voice.timbre.sustain == 0.0:  # a struck tone that has died away while held
            return float(_held_envelope(voice.timbre, np.float64(now))) < 1e-4
        return False

    def _master(self, out: np.ndarray) -> None:
        n = len(out)
        target = self.volume
        if target == self._applied_volume:
            out *= target
        else:
            out *= np.linspace(self._applied_volume, target, n, endpoint=False)[:, None]
            self._applied_volume = target
        self._limit_gain = limit_and_clip(out, self._limit_gain, self.sample_rate)

    # ---- events -------------------------------------------------------------------------------

    def _drain(self) -> None:
        events = self._events
        while events:
            try:
                event = events.popleft()
            except IndexError:
                break
            kind = event[0]
            if kind == _ON:
                self._start(event[1], event[2], event[3])
            elif kind == _OFF:
                self._stop(event[1], event[2])
            elif kind == _PANIC:
                self._panic(event[1])
            elif kind == _PROGRAM:
                self._channels[event[1]].timbre = timbre_for_program(event[2])
            elif kind == _CONTROL:
                self._control(event[1], event[2], event[3])

    def _start(self, channel: int, pitch: int, velocity: int) -> None:
        timbre = self._channels[channel].timbre
        freq = midi_frequency(pitch)
        # Harmonics that fit below 0.45 x the sample rate with the widest vibrato and detune.
        headroom = 2.0 ** ((timbre.vibrato_cents + timbre.detune_cents) / 1200.0)
        harmonics = min(len(timbre.partials), int(0.45 * self.sample_rate / (freq * headroom)))
        if harmonics < 1:
            self.dropped += 1
            return
        for voice in self._voices:
            if voice.channel == channel and voice.pitch == pitch and not voice.released:
                self._release(voice, min(RETRIGGER_FADE, voice.timbre.release))
        live = [v for v in self._voices if not v.stolen]
        if len(live) >= self.polyphony:
            victim = min(live, key=lambda v: (not v.released, v.order))
            victim.stolen = True
            self._release(victim, STEAL_FADE)
        if len(self._voices) >= 2 * self.polyphony:  # a burst faster than the fades: skip it
            self.dropped += 1
            return
        tables = (self._table(timbre, False, harmonics),
                  self._table(timbre, True, harmonics) if timbre.dull else -1)
        amp = VOICE_LEVEL * (velocity / 127.0) ** 1.6 * timbre.gain
        self._order += 1
        self._voices.append(_Voice(channel, pitch, timbre, amp, tables, self._order))

    def _stop(self, channel: int, pitch: int) -> None:
        pedal = self._channels[channel].sustain
        for voice in self._voices:
            if voice.channel == channel and voice.pitch == pitch and not voice.released:
                if pedal:
                    voice.sustained = True
                else:
                    self._release(voice, voice.timbre.release)

    def _panic(self, channel: int) -> None:
        for voice in self._voices:
            if channel == 0 or voice.channel == channel:
                self._release(voice, PANIC_FADE)
        for ch, state in self._channels.items():
            if channel == 0 or ch == channel:
                state.sustain = False

    def _control(self, channel: int, controller: int, value: int) -> None:
        state = self._channels[channel]
        if controller == 7:
            state.volume = value
        elif controller == 10:
            state.pan = max(-1.0, (value - 64) / 63.0)
        elif controller == 64:
            down = value >= 64
            if state.sustain and not down:
                for voice in self._voices:
                    if voice.channel == channel and voice.sustained and not voice.released:
                        self._release(voice, voice.timbre.release)
            state.sustain = down
        elif controller in (120, 123):
            self._panic(channel)
        elif controller == 121:
            state.volume, state.pan = 100, _CHANNEL_PANS.get(channel, 0.0)
            self._control(channel, 64, 0)
        state.update()

    def _release(self, voice: _Voice, seconds: float) -> None:
        """Start (or shorten) a voice's release from its present level; never lengthen one."""
        now = voice.age / self.sample_rate
        seconds = max(seconds, 0.002)
        if voice.released:
            if voice.rel_start + voice.rel_len <= now + seconds:
                return
            level = voice.rel_level * float(
                _release_curve(np.float64(now - voice.rel_start), voice.rel_len))
        else:
            level = float(_held_envelope(voice.timbre, np.float64(now)))
        voice.released = True
        voice.rel_start = now
        voice.rel_level = level
        voice.rel_len = seconds

    def _table(self, timbre: Timbre, dull: bool, harmonics: int) -> int:
        """The offset in the bank of one cycle of the timbre with at most `harmonics` partials
        (plus two guard samples), scaled by the full bright cycle's peak so that all of a
        timbre's tables match. A new table is built once, on the first note that needs it."""
        key = (timbre.name, dull, harmonics)
        offset = self._tables.get(key)
        if offset is None:
            norm = self._norms.get(timbre.name)
            if norm is None:
                norm = self._norms[timbre.name] = float(np.max(np.abs(_cycle(timbre.partials))))
            cycle = _cycle((timbre.dull if dull else timbre.partials)[:harmonics]) / norm
            offset = len(self._bank)
            self._bank = np.concatenate([self._bank, cycle, cycle[:2]])
            self._tables[key] = offset
        return offset


def _cycle(partials: Sequence[float]) -> np.ndarray:
    x = np.arange(TABLE_SIZE, dtype=np.float64) * (2.0 * np.pi / TABLE_SIZE)
    cycle = np.zeros(TABLE_SIZE)
    for k, amplitude in enumerate(partials, start=1):
        if amplitude:
            cycle += amplitude * np.sin(k * x)
    return cycle


def limit_and_clip(out: np.ndarray, previous: float, sample_rate: int) -> float:
    """The monitor's output stage, in place on a (frames, 2) block: a limiter that pulls the
    peak down to LIMIT_CEILING at once and recovers over LIMIT_RELEASE, then a soft clip above
    CLIP_KNEE. Returns the limiter's gain to carry into the next block."""
    n = len(out)
    peak = float(np.max(np.abs(out))) if n else 0.0
    need = LIMIT_CEILING / peak if peak > LIMIT_CEILING else 1.0
    if need < previous:
        gain = need
    else:
        recover = 1.0 - math.exp(-n / (LIMIT_RELEASE * sample_rate))
        gain = min(need, previous + (1.0 - previous) * recover)
    if gain != 1.0 or previous != 1.0:
        if gain == previous:
            out *= gain
        else:
            out *= np.linspace(previous, gain, n)[:, None]
    magnitude = np.abs(out)
    over = magnitude > CLIP_KNEE
    if over.any():
        bent = CLIP_KNEE + (1.0 - CLIP_KNEE) * np.tanh(
            (magnitude[over] - CLIP_KNEE) / (1.0 - CLIP_KNEE))
        out[over] = np.sign(out[over]) * bent
    return gain


def _channel(channel: int) -> int:
    channel = int(channel)
    if not 1 <= channel <= 16:
        raise ValueError(f"MIDI channel {channel} is out of range 1-16")
    return channel


# ---- live output ------------------------------------------------------------------------------

_NO_PORTAUDIO = ("the monitor synth needs the PortAudio library, which was not found: install it "
                 "(Debian/Ubuntu: sudo apt-get install libportaudio2; Fedora: sudo dnf install "
                 "portaudio; macOS: brew install portaudio) or run without --synth")


def _sounddevice() -> Any:
    """sounddevice, imported only when audio is wanted: the import fails without PortAudio."""
    try:
        import sounddevice
    except (OSError, ImportError) as exc:
        raise SynthError(f"{_NO_PORTAUDIO} ({exc}).") from None
    return sounddevice


class MonitorOutput:
    """Plays a Synth on an audio output through sounddevice/PortAudio.

    `send(message)` takes raw MIDI bytes: note on/off, program change, CC 7/10/64/120/121/123.
    `device` is a PortAudio device index or a substring of its name (None: the default output).
    """

    def __init__(self, synth: Synth | None = None, device: int | str | None = None,
                 blocksize: int = 256, latency: float | str = "low") -> None:
        self.synth = synth
        self.device = device
        self.blocksize = blocksize
        self.latency = latency
        self.underflows = 0  # blocks PortAudio reported as late (audible dropouts)
        self.device_name = ""
        self._stream: Any = None

    @property
    def running(self) -> bool:
        return self._stream is not None

    def start(self) -> None:
        if self._stream is not None:
            return
        sd = _sounddevice()
        try:
            info = sd.query_devices(self.device, "output")
        except (ValueError, sd.PortAudioError) as exc:
            which = "no default audio output" if self.device is None else \
                f"no audio output device {self.device!r}"
            raise SynthError(
                f"{which} ({exc}): connect or enable a sound card or start JACK/PipeWire, "
                "choose a device from `python -m sounddevice`, or run without --synth."
            ) from None
        hostapi = sd.query_hostapis(info["hostapi"])["name"]
        self.device_name = f"{info['name']} ({hostapi})"
        if self.synth is None:
            self.synth = Synth(sample_rate=int(info["default_samplerate"]))
        synth = self.synth

        def callback(outdata: np.ndarray, frames: int, when: Any, status: Any) -> None:
            if status.output_underflow:
                self.underflows += 1
            outdata[:] = synth.render(frames)

        try:
            stream = sd.OutputStream(samplerate=synth.sample_rate, blocksize=self.blocksize,
                                     device=info["index"], channels=2, dtype="float32",
                                     latency=self.latency, callback=callback)
            stream.start()
        except (ValueError, sd.PortAudioError) as exc:
            raise SynthError(
                f"cannot play on {self.device_name} at {synth.sample_rate} Hz ({exc}): choose "
                "another device or sample rate, or run without --synth."
            ) from None
        self._stream = stream

    def stop(self, fade: bool = True) -> None:
        """Silence every note (a short fade, unless `fade` is False), then close the stream."""
        stream, self._stream = self._stream, None
        if stream is None:
            return
        if self.synth is not None:
            self.synth.all_off()
            if fade:
                time.sleep(PANIC_FADE + 2 * self.blocksize / self.synth.sample_rate + 0.01)
        try:
            stream.stop()
        finally:
            stream.close()

    def send(self, message: Sequence[int] | bytes) -> None:
        """Play one raw MIDI message (what the engine sends to its MIDI output)."""
        synth = self.synth
        if synth is None or len(message) < 2:
            return
        status = message[0]
        kind, channel = status & 0xF0, (status & 0x0F) + 1
        if kind == 0xC0:
            synth.program(channel, message[1])
        elif len(message) < 3:
            return
        elif kind == 0x90:
            synth.note_on(channel, message[1], message[2])
        elif kind == 0x80:
            synth.note_off(channel, message[1])
        elif kind == 0xB0:
            synth.control(channel, message[1], message[2])

    def __enter__(self) -> MonitorOutput:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


# ---- offline ----------------------------------------------------------------------------------

def render_parts(parts: Sequence[Part], bpm: float, sample_rate: int = SAMPLE_RATE,
                 volume: float = 1.0, max_tail: float = 5.0,
                 progress: Callable[[float], None] | None = None, synth: Any = None,
                 silence: float | None = None) -> np.ndarray:
    """Render parts (times in beats at `bpm`) to stereo float32 audio, shape (frames, 2), until
    the last release has died away (at most `max_tail` seconds after the last note-off).

    Deterministic: the same parts give the same samples. Note events land on the exact sample.
    `synth`: another synth with the same methods (the SoundFont one); `silence`: the tail also
    ends only once a block's peak is below it (a synth whose voices end before their sound).
    """
    if not bpm > 0:
        raise SynthError(f"cannot render audio at {bpm} BPM; give a positive tempo.")
    synth = synth if synth is not None else Synth(sample_rate, volume)
    seconds_per_beat = 60.0 / bpm
    events: list[tuple[int, int, int, int, int]] = []  # (frame, is_on, channel, pitch, velocity)
    for part in parts:
        if part.program is not None:
            synth.program(part.channel, part.program)
        for note in part.notes:
            start = round(max(0.0, note.start) * seconds_per_beat * sample_rate)
            end = max(start + 1, round(note.end * seconds_per_beat * sample_rate))
            events.append((start, 1, part.channel, note.pitch, note.velocity))
            events.append((end, 0, part.channel, note.pitch, 0))
    events.sort()  # at one instant, note-offs before note-ons, as in the MIDI file
    blocks: list[np.ndarray] = []
    now = 0
    last = events[-1][0] if events else 0
    for frame, is_on, channel, pitch, velocity in events:
        if frame > now:
            blocks.append(synth.render(frame - now))
            now = frame
            if progress is not None and last:
                progress(now / last)
        if is_on:
            synth.note_on(channel, pitch, velocity)
        else:
            synth.note_off(channel, pitch)
    tail_end = now + round(max_tail * sample_rate)
    while events and now < tail_end:  # the last note-off is still queued: render at least once
        blocks.append(synth.render(min(CONTROL_BLOCK, tail_end - now)))
        now += len(blocks[-1])
        if synth.active_voices == 0 and (silence is None
                                         or float(np.max(np.abs(blocks[-1]))) < silence):
            break
    if not blocks:
        return np.zeros((0, 2), dtype=np.float32)
    return np.concatenate(blocks)


def write_wav(path: str | Path, audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    """Write float audio in -1..1, shape (frames,) or (frames, channels), as 16-bit PCM WAV."""
    path = Path(path)
    data = np.asarray(audio, dtype=np.float64)
    if data.ndim == 1:
        data = data[:, None]
    pcm = np.clip(np.round(data * 32767.0), -32768, 32767).astype("<i2")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with wave.open(str(path), "wb") as out:
            out.setnchannels(pcm.shape[1])
            out.setsampwidth(2)
            out.setframerate(int(sample_rate))
            out.writeframes(pcm.tobytes())
    except OSError as exc:
        raise SynthError(f"{path}: cannot write the WAV file ({exc.strerror or exc}).") from None


def render_wav(parts: Sequence[Part], bpm: float, path: str | Path,
               sample_rate: int = SAMPLE_RATE, volume: float = 1.0) -> float:
    """`render_parts` into a WAV file (`livegen render --wav`); returns its length in seconds."""
    audio = render_parts(parts, bpm, sample_rate, volume)
    write_wav(path, audio, sample_rate)
    return len(audio) / sample_rate
