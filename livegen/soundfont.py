"""SoundFont monitor: hear the voices as real instruments through FluidSynth (`--soundfont`).

`SoundFontSynth` has the control and render interface of `livegen.synth.Synth` (channels 1-16,
`note_on`, `note_off`, `program`, `control`, `all_off`, `set_volume`, `render`), so the monitor
path stays the one docs/ARCHITECTURE.md describes under *Threads*: the engine's worker calls
`send`, which only appends to a deque, and PortAudio's callback applies the queued messages and
renders the next block. `SoundFontOutput` is `livegen.synth.MonitorOutput` with this synth in
place of the numpy one; `render_parts` and `render_wav` do the same offline
(`livegen render --wav OUT.wav --soundfont FILE`).

Decisions:

- FluidSynth renders into our buffers; its own audio drivers are not used, so both synths take
  the same way to the sound card (PortAudio) and are tested the same way, through JACK. The
  render call releases the GIL while FluidSynth computes.
- The numpy synth stays the default for `--synth` and `render --wav` (it needs no SoundFont and
  its renders are the same everywhere). `--soundfont auto|FILE` opts in, and implies the
  monitor; `auto` takes the first General MIDI SoundFont found where distributions install one
  (`FONT_PLACES`), then FluidSynth's own default font.
- Programs are General MIDI, bank 0 (the engine sends a program change per voice channel at
  start); channel 10 plays the SoundFont's drum kit, as General MIDI has it.
- FluidSynth's reverb and chorus are off: a monitor's panic must reach silence at once, and a
  reverb tail rings on after every voice has stopped (with FluidSynth 2.3 a system reset left
  audible bursts of it); the instruments' own releases are kept.
- Panic, as in the numpy synth: CC 120 or 123 fades the channel out over `PANIC_FADE` (its CC 7
  stepped down once per FluidSynth block of `BLOCK` samples), then cuts it and restores its
  volume; `all_off()` does so on every channel. Messages for a fading channel wait until its
  fade is over (`PANIC_FADE` rounded up to whole blocks, and at most one block more, 17 ms at
  48 kHz), so that they are not faded with it.
- The master bus is the numpy synth's: a volume ramped over each block, a limiter and a soft
  clipper (`livegen.synth.LIMIT_CEILING`, `CLIP_KNEE`), after FluidSynth's own gain (`GAIN`).

A missing pyfluidsynth, FluidSynth library or SoundFont is a `SoundFontError` (a `SynthError`)
whose message is one sentence naming what to install or give.
"""

from __future__ import annotations

import ctypes
import math
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from livegen import synth as synth_module
from livegen.midi.midifile import Part
from livegen.synth import (
    _CONTROL,
    _OFF,
    _ON,
    _PANIC,
    _PROGRAM,
    CONTROL_BLOCK,
    PANIC_FADE,
    SAMPLE_RATE,
    EventQueue,
    MonitorOutput,
    SynthError,
    _sounddevice,
    limit_and_clip,
    write_wav,
)

# Where distributions install a General MIDI SoundFont, in the order `auto` tries them:
# Debian/Ubuntu fluid-soundfont-gm, its alternatives link, timgm6mb-soundfont and
# musescore-general-soundfont; Fedora fluid-soundfont-gm and Arch soundfont-fluid.
FONT_PLACES = (
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/sounds/sf2/default-GM.sf2",
    "/usr/share/sounds/sf3/default-GM.sf3",
    "/usr/share/sounds/sf2/TimGM6mb.sf2",
    "/usr/share/sounds/sf3/MuseScore_General.sf3",
    "/usr/share/soundfonts/FluidR3_GM.sf2",
    "/usr/share/soundfonts/default.sf2",
)
GAIN = 1.0  # FluidSynth's synth.gain: a four-voice chord then peaks near the numpy synth's level
BLOCK = 64  # FluidSynth computes audio in blocks of this many samples (FLUID_BUFSIZE)
SILENT = 1.0 / 65536.0  # offline: a tail below half a 16-bit step has died away
_INSTALL_FONT = ("Debian/Ubuntu: sudo apt-get install fluid-soundfont-gm; Fedora: sudo dnf "
                 "install fluid-soundfont-gm; Arch: sudo pacman -S soundfont-fluid")
_OR_AUTO = ("give a SoundFont (.sf2) file, or --soundfont auto for the General MIDI SoundFont "
            f"your distribution installs ({_INSTALL_FONT})")
_NO_LIBRARY = ("the SoundFont monitor needs the FluidSynth library, which was not found: install "
               "it (Debian/Ubuntu: sudo apt-get install libfluidsynth3; Fedora: sudo dnf install "
               "fluidsynth-libs; macOS: brew install fluid-synth) or run without --soundfont")
_NO_BINDING = ("the SoundFont monitor needs pyfluidsynth: pip install 'livegen[soundfont]' "
               "(and the FluidSynth library: Debian/Ubuntu libfluidsynth3), or run without "
               "--soundfont")


class SoundFontError(SynthError):
    """FluidSynth or the SoundFont is missing or unusable; the message says what to do."""


# ---- finding FluidSynth and a SoundFont --------------------------------------------------------

def _fluidsynth() -> Any:
    """pyfluidsynth, imported when a SoundFont is played: its import loads libfluidsynth."""
    try:
        import fluidsynth
    except ModuleNotFoundError as exc:
        if exc.name != "fluidsynth":
            raise
        raise SoundFontError(f"{_NO_BINDING}.") from None
    except (OSError, ImportError) as exc:
        raise SoundFontError(f"{_NO_LIBRARY} ({exc}).") from None
    return fluidsynth


def _write_float(fluidsynth: Any) -> Callable[..., int]:
    """libfluidsynth's fluid_synth_write_float (pyfluidsynth offers only 16-bit output)."""
    write = ctypes.CDLL(fluidsynth.lib).fluid_synth_write_float
    write.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_int,
                      ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
    write.restype = ctypes.c_int
    return write


def is_soundfont(path: str | Path) -> bool:
    """Whether the file starts like a SoundFont 2 (.sf2) or 3 (.sf3): a RIFF 'sfbk' chunk."""
    try:
        with open(path, "rb") as f:
            head = f.read(12)
    except OSError:
        return False
    return len(head) == 12 and head[:4] == b"RIFF" and head[8:] == b"sfbk"


def _fluidsynth_default() -> Path | None:
    """The SoundFont FluidSynth itself was built to load by default, if it is installed."""
    try:
        fluidsynth = _fluidsynth()
        settings = fluidsynth.new_fluid_settings()
    except (SoundFontError, AttributeError):
        return None
    try:
        text = ctypes.create_string_buffer(4096)
        found = fluidsynth.fluid_settings_copystr(settings, b"synth.default-soundfont", text,
                                                  len(text))
        path = text.value.decode(errors="replace") if found == fluidsynth.FLUIDSETTING_EXISTS \
            else ""
    finally:
        fluidsynth.delete_fluid_settings(settings)
    return Path(path) if path else None


def find_soundfont() -> Path | None:
    """The first General MIDI SoundFont in `FONT_PLACES`, then FluidSynth's default; or None."""
    for place in map(Path, FONT_PLACES):
        if place.is_file() and is_soundfont(place):
            return place
    default = _fluidsynth_default()
    if default is not None and default.is_file() and is_soundfont(default):
        return default
    return None


def resolve_soundfont(spec: str | Path) -> Path:
    """`auto` (a General MIDI SoundFont found on this machine) or a SoundFont file, checked."""
    if str(spec) == "auto":
        found = find_soundfont()
        if found is None:
            places = ", ".join(sorted({str(Path(p).parent) for p in FONT_PLACES}))
            raise SoundFontError(f"no General MIDI SoundFont found (looked in {places}): "
                                 f"install one ({_INSTALL_FONT}) or give a file with "
                                 "--soundfont FILE.sf2.")
        return found
    path = Path(spec).expanduser()
    if not path.is_file():
        what = " is a folder, not a SoundFont file" if path.is_dir() else ": no such file"
        raise SoundFontError(f"{spec}{what}; {_OR_AUTO}.")
    if not is_soundfont(path):
        raise SoundFontError(f"{spec} is not a SoundFont (an .sf2 or .sf3 file); {_OR_AUTO}.")
    return path


def check(spec: str | Path) -> Path:
    """The SoundFont `spec` names, after checking that FluidSynth is there to play it."""
    font = resolve_soundfont(spec)
    _fluidsynth()
    return font


# ---- the synth ----------------------------------------------------------------------------------

# Event codes on the queue.
_CC_VOLUME, _CC_PAN, _CC_SUSTAIN = 7, 10, 64


class SoundFontSynth(EventQueue):
    """FluidSynth with one SoundFont; `render(frames)` gives stereo float32 audio, (frames, 2).

    Channels are 1-16. Call the control methods from any thread (they only queue); call
    `render` from one thread only (the audio callback, or the offline renderer); `close` frees
    FluidSynth and the font once nothing renders any more.
    """

    def __init__(self, font: str | Path, sample_rate: int = SAMPLE_RATE,
                 volume: float = 0.5) -> None:
        if not 8000 <= sample_rate <= 96000:
            raise SoundFontError(f"FluidSynth cannot play at {sample_rate} Hz; use 44100 or "
                                 "48000.")
        self.font = resolve_soundfont(font)
        fluidsynth = _fluidsynth()
        self._write = _write_float(fluidsynth)
        self.sample_rate = int(sample_rate)
        self._fs: Any = fluidsynth.Synth(gain=GAIN, samplerate=float(self.sample_rate),
                                         channels=16, **{"synth.reverb.active": 0,
                                                         "synth.chorus.active": 0})
        if self._fs.sfload(str(self.font), 1) < 0:  # 1: every channel gets its preset now
            self._fs.delete()
            self._fs = None
            raise SoundFontError(f"{self.font}: FluidSynth cannot load this SoundFont "
                                 f"(damaged, or in a format it does not read); {_OR_AUTO}.")
        self.volume = 0.5
        self.set_volume(volume)
        self._applied_volume = self.volume
        self._limit_gain = 1.0
        self._events: deque[tuple[int, ...]] = deque()
        self._volumes = dict.fromkeys(range(1, 17), 100)  # CC 7 of each channel
        self._fade_blocks = max(1, math.ceil(PANIC_FADE * self.sample_rate / BLOCK))
        self._fading: dict[int, int] = {}  # channel -> blocks left of its panic fade
        self.frames_rendered = 0

    def set_volume(self, volume: float) -> None:
        """Master volume, 0..1 (linear gain); ramped over the next block, so it never clicks."""
        self.volume = min(1.0, max(0.0, float(volume)))

    @property
    def active_voices(self) -> int:
        """FluidSynth's voices still sounding or releasing."""
        return 0 if self._fs is None else int(self._fs.get_active_voice_count())

    def close(self) -> None:
        """Free FluidSynth and the SoundFont; `render` gives silence afterwards."""
        fs, self._fs = self._fs, None
        if fs is not None:
            fs.delete()

    # ---- audio, from the audio thread -----------------------------------------------------------

    def render(self, frames: int) -> np.ndarray:
        """The next `frames` samples, applying the queued events on the way; float32, (n, 2)."""
        out = np.zeros((max(0, frames), 2), dtype=np.float32)
        for start in range(0, len(out), CONTROL_BLOCK):
            block = out[start:start + CONTROL_BLOCK]
            self._synthesize(block)
            self._master(block)
        return out

    def _synthesize(self, out: np.ndarray) -> None:
        """FluidSynth's samples into `out` (C-contiguous), in pieces that end where FluidSynth's
        blocks end, so that an event or a fade step always applies from the next block on."""
        fs = self._fs
        if fs is None:
            return
        address, stride = out.ctypes.data, out.strides[0]
        pos, frames = 0, len(out)
        while pos < frames:
            self._drain()
            offset = self.frames_rendered % BLOCK
            if offset == 0 and self._fading:
                self._fade_step()
            n = min(BLOCK - offset, frames - pos)
            here = address + pos * stride
            self._write(fs.synth, n, here, 0, 2, here, 1, 2)
            pos += n
            self.frames_rendered += n
            if self._fading and self.frames_rendered % BLOCK == 0:
                self._fade_end()

    def _fade_step(self) -> None:
        """One step down of each fading channel's volume, for the block about to be computed
        (FluidSynth ramps a voice's amplitude across a block, so the steps join smoothly)."""
        for channel, left in self._fading.items():
            left -= 1
            self._fading[channel] = left
            level = round(self._volumes[channel] * left / self._fade_blocks)
            self._fs.cc(channel - 1, _CC_VOLUME, level)

    def _fade_end(self) -> None:
        """At the end of a block: cut the channels whose fade is over, and give them back their
        volume, with the sustain pedal up."""
        for channel in [ch for ch, left in self._fading.items() if left <= 0]:
            del self._fading[channel]
            self._fs.all_sounds_off(channel - 1)
            self._fs.cc(channel - 1, _CC_SUSTAIN, 0)
            self._fs.cc(channel - 1, _CC_VOLUME, self._volumes[channel])

    def _master(self, out: np.ndarray) -> None:
        """Volume ramp, limiter and soft clipper, as the numpy synth's master bus."""
        n = len(out)
        target = self.volume
        if target == self._applied_volume:
            out *= target
        else:
            out *= np.linspace(self._applied_volume, target, n, endpoint=False,
                               dtype=np.float32)[:, None]
            self._applied_volume = target
        self._limit_gain = limit_and_clip(out, self._limit_gain, self.sample_rate)

    # ---- events -------------------------------------------------------------------------------

    def _drain(self) -> None:
        """Apply the queued events in order; stop at one for a channel that is fading out."""
        events = self._events
        fs = self._fs
        while events:
            event = events[0]
            kind, channel = event[0], event[1]
            if channel in self._fading and not _is_panic(event):
                return
            events.popleft()
            if kind == _ON:
                fs.noteon(channel - 1, event[2], event[3])
            elif kind == _OFF:
                fs.noteoff(channel - 1, event[2])
            elif kind == _PANIC:
                for ch in range(1, 17) if channel == 0 else (channel,):
                    self._fading.setdefault(ch, self._fade_blocks)
            elif kind == _PROGRAM:
                fs.program_change(channel - 1, event[2])
            elif kind == _CONTROL:
                self._control(channel, event[2], event[3])

    def _control(self, channel: int, controller: int, value: int) -> None:
        if controller in (120, 123):
            self._fading.setdefault(channel, self._fade_blocks)
            return
        if controller == 121:  # as the numpy synth: volume and pan too, and the pedal up
            self._fs.cc(channel - 1, 121, 0)
            self._volumes[channel] = 100
            for number, default in ((_CC_VOLUME, 100), (_CC_PAN, 64), (_CC_SUSTAIN, 0)):
                self._fs.cc(channel - 1, number, default)
            return
        if controller == _CC_VOLUME:
            self._volumes[channel] = value
        self._fs.cc(channel - 1, controller, value)


def _is_panic(event: tuple[int, ...]) -> bool:
    return event[0] == _PANIC or (event[0] == _CONTROL and event[2] in (120, 123))



# ---- live output ------------------------------------------------------------------------------

class SoundFontOutput(MonitorOutput):
    """`MonitorOutput` playing a `SoundFontSynth`, made at `start` at the device's sample rate.

    `font`: a SoundFont file or "auto" (`resolve_soundfont`); checked here, loaded at `start`.
    """

    def __init__(self, font: str | Path, device: int | str | None = None,
                 blocksize: int = 256, latency: float | str = "low",
                 volume: float = 0.5) -> None:
        super().__init__(None, device, blocksize, latency)
        self.font = resolve_soundfont(font)
        self.volume = volume

    def start(self) -> None:
        if self.running:
            return
        try:
            if self.synth is None:
                self.synth = SoundFontSynth(self.font, self._device_rate(), self.volume)
            super().start()
        except SynthError as exc:
            self._close_synth()
            raise SoundFontError(str(exc).replace("--synth", "--soundfont")) from None

    def stop(self, fade: bool = True) -> None:
        """Fade everything out (unless `fade` is False), close the stream, free FluidSynth."""
        super().stop(fade)
        self._close_synth()

    def describe(self) -> str:
        return f"FluidSynth with {self.font.name} on {self.device_name or 'no device'}"

    def _device_rate(self) -> int:
        sd = _sounddevice()
        try:
            return int(sd.query_devices(self.device, "output")["default_samplerate"])
        except (ValueError, sd.PortAudioError):
            return SAMPLE_RATE  # MonitorOutput.start then says what is wrong with the device

    def _close_synth(self) -> None:
        synth, self.synth = self.synth, None
        if isinstance(synth, SoundFontSynth):
            synth.close()

    def __enter__(self) -> SoundFontOutput:
        self.start()
        return self


# ---- offline ----------------------------------------------------------------------------------

def render_parts(parts: Sequence[Part], bpm: float, font: str | Path,
                 sample_rate: int = SAMPLE_RATE, volume: float = 1.0, max_tail: float = 5.0,
                 progress: Callable[[float], None] | None = None) -> np.ndarray:
    """Render parts (times in beats at `bpm`) through FluidSynth to stereo float32 audio, shape
    (frames, 2), until the last release and the reverb have died away (at most `max_tail`
    seconds after the last note-off). Each part's channel gets its program first.

    The same parts, font and FluidSynth version give the same samples. A note starts at the
    first FluidSynth block (BLOCK samples) that begins at or after its time.
    """
    if not bpm > 0:
        raise SynthError(f"cannot render audio at {bpm} BPM; give a positive tempo.")
    synth = SoundFontSynth(font, sample_rate, volume)
    try:
        return synth_module.render_parts(parts, bpm, sample_rate, volume, max_tail, progress,
                                         synth=synth, silence=SILENT)
    finally:
        synth.close()


def render_wav(parts: Sequence[Part], bpm: float, path: str | Path, font: str | Path,
               sample_rate: int = SAMPLE_RATE, volume: float = 1.0) -> float:
    """`render_parts` into a WAV file (`livegen render --wav --soundfont`); its length in s."""
    audio = render_parts(parts, bpm, font, sample_rate, volume)
    write_wav(path, audio, sample_rate)
    return len(audio) / sample_rate


__all__ = ["FONT_PLACES", "SoundFontError", "SoundFontOutput", "SoundFontSynth", "check",
           "find_soundfont", "is_soundfont", "render_parts", "render_wav", "resolve_soundfont"]
