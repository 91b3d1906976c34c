"""The SoundFont monitor (`--soundfont`): FluidSynth rendering into buffers, the real path through
PortAudio and JACK, the one-sentence errors, `auto`, and the flags.

The sound tests play the General MIDI SoundFont `find_soundfont` finds (FluidR3_GM from Debian's
fluid-soundfont-gm in CI) and are skipped, with the sentence saying what to install, where
FluidSynth or such a font is missing. Clicks are measured as in tests/test_synth.py.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import wave
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from jackserver import JackServer
from test_synth import audio_jack, click_db, demo_parts, rms_db  # noqa: F401 (a fixture)

from livegen import soundfont
from livegen.cli import build_parser, main
from livegen.session import LiveOptions, run_engine, start_monitor
from livegen.soundfont import (
    SoundFontError,
    SoundFontSynth,
    check,
    find_soundfont,
    render_parts,
    render_wav,
    resolve_soundfont,
)
from livegen.synth import MonitorOutput

SR = 48000
FLUID_R3 = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")  # Debian's fluid-soundfont-gm
C_MAJOR = (48, 52, 55)
HEADER = b"RIFF\x04\x00\x00\x00sfbk"  # how a SoundFont file starts


@pytest.fixture(scope="module")
def font() -> Path:
    found = find_soundfont()
    if found is None:
        pytest.skip("no General MIDI SoundFont: apt-get install fluid-soundfont-gm")
    try:
        return check(found)
    except SoundFontError as exc:
        pytest.skip(str(exc))


def one_sentence(text: str) -> bool:
    return "\n" not in text and "Traceback" not in text and text.endswith(".")


def harmonics(audio: np.ndarray, f0: float, count: int = 10) -> np.ndarray:
    """The share of each of the first `count` harmonics of f0 in the audio's energy there."""
    mono = audio.sum(axis=1)
    spectrum = np.abs(np.fft.rfft(mono * np.hanning(len(mono)))) ** 2
    freqs = np.fft.rfftfreq(len(mono), 1.0 / SR)
    energy = np.array([spectrum[np.abs(freqs - k * f0) < 6].sum() for k in range(1, count + 1)])
    return energy / energy.sum()


# ---- FluidSynth into buffers ------------------------------------------------------------------

def test_a_note_sounds_while_held_and_ends_after_its_release(font: Path) -> None:
    synth = SoundFontSynth(font, SR)
    try:
        synth.program(1, 0)  # acoustic grand piano
        lead_in = synth.render(4800)
        synth.note_on(1, 60, 110)
        held = synth.render(SR // 2)
        synth.note_off(1, 60)
        tail = synth.render(SR * 3 // 2)
        assert synth.active_voices == 0
    finally:
        synth.close()
    assert not lead_in.any()  # nothing before the note-on
    assert rms_db(held[SR // 10:]) > -40.0
    assert rms_db(tail[: SR // 20]) > -60.0  # a release, not a cut ...
    assert np.max(np.abs(tail[SR:])) < 1e-4  # ... that is over a second after the note-off
    assert click_db(np.concatenate([lead_in, held]), 4800) < -45.0


def test_general_midi_programs_sound_different(font: Path) -> None:
    programs = {1: 0, 2: 19, 3: 52, 4: 56, 5: 73}  # piano, church organ, choir, trumpet, flute
    synth = SoundFontSynth(font, SR)
    profiles = {}
    try:
        for channel, program in programs.items():
            synth.program(channel, program)
        for channel, program in programs.items():
            synth.note_on(channel, 57, 100)  # A3, 220 Hz
            profiles[program] = harmonics(synth.render(SR // 2)[SR // 4:], 220.0)
            synth.all_off()
            assert not synth.render(SR // 20)[int(0.02 * SR):].any()
    finally:
        synth.close()
    for a, b in itertools.combinations(programs.values(), 2):
        assert np.abs(profiles[a] - profiles[b]).sum() > 0.25, (a, b)
    assert profiles[73][0] > 0.5  # the flute's fundamental leads ...
    assert profiles[19][0] < 0.3  # ... the organ's does not


def test_raw_midi_plays_as_the_engine_sends_it(font: Path) -> None:
    synth, reference = SoundFontSynth(font, SR), SoundFontSynth(font, SR)
    try:
        monitor = MonitorOutput(synth)  # not started: send() only feeds the synth
        monitor.send([0xC1, 73])  # the program change the engine sends at start (channel 2)
        monitor.send([0x91, 69, 100])
        reference.program(2, 73)
        reference.note_on(2, 69, 100)
        played = synth.render(SR // 4)
        np.testing.assert_array_equal(played, reference.render(SR // 4))
        assert rms_db(played[SR // 8:]) > -40.0
        monitor.send([0x91, 69, 0])  # velocity 0 is a note-off
        monitor.send(bytes([0xB1, 64, 127]))  # sustain pedal down on channel 2
        monitor.send([0x91, 72, 100])
        monitor.send([0x81, 72, 0])
        assert rms_db(synth.render(SR // 2)[SR // 4:]) > -45.0  # held by the pedal
        monitor.send([0xB1, 64, 0])
        synth.render(SR)
        assert synth.active_voices == 0
        monitor.send([0xF8])  # junk and short messages are ignored
        monitor.send([0x96, 45])
        monitor.send([0x95, 45, 100])
        assert synth.render(SR // 4).any()
        for message in ([0xB5, 64, 0], [0xB5, 123, 0], [0xB5, 120, 0]):  # the engine's panic
            monitor.send(message)
        assert not synth.render(SR // 10)[int(0.02 * SR):].any()
    finally:
        synth.close()
        reference.close()


def test_panic_fades_to_silence_within_20_ms_without_a_click(font: Path) -> None:
    synth = SoundFontSynth(font, SR, volume=0.8)
    try:
        for channel, program, pitch in zip((1, 2, 3), (0, 48, 73), C_MAJOR, strict=True):
            synth.program(channel, program)  # piano, strings, flute
            synth.note_on(channel, pitch, 110)
        held = synth.render(SR // 2)
        synth.all_off()
        after = synth.render(SR // 10)
    finally:
        synth.close()
    assert rms_db(held[SR // 4:]) > -30.0
    assert np.max(np.abs(after[: int(0.005 * SR)])) > 0.01  # a fade, not a cut ...
    assert not after[int(0.020 * SR):].any()  # ... that is over by 20 ms
    cut = np.concatenate([held, np.zeros_like(after)])
    faded = click_db(np.concatenate([held, after]), len(held))
    assert faded < click_db(cut, len(held)) - 20.0
    assert faded < -55.0


def test_a_channel_panic_leaves_the_others_and_then_plays_on(font: Path) -> None:
    synth = SoundFontSynth(font, SR)
    try:
        synth.program(2, 48)  # strings
        synth.program(4, 32)  # acoustic bass
        synth.note_on(2, 64, 100)  # E4
        synth.note_on(4, 38, 100)  # D2
        synth.render(SR // 2)
        synth.control(2, 7, 80)
        synth.control(2, 120, 0)  # all sound off on channel 2 only ...
        synth.note_on(2, 67, 100)  # ... and a new note there (G4) right after it
        fading = synth.render(int(0.03 * SR))
        later = synth.render(SR // 2)[SR // 4:].sum(axis=1)
    finally:
        synth.close()
    assert rms_db(fading) > -45.0
    spectrum = np.abs(np.fft.rfft(later * np.hanning(len(later))))
    freqs = np.fft.rfftfreq(len(later), 1.0 / SR)

    def near(hz: float) -> float:
        return float(spectrum[np.abs(freqs - hz) < 4].max() / spectrum.max())

    assert near(73.42) > 0.3  # the bass sounds on throughout
    assert near(392.0) > 0.05  # the note sent after the panic plays ...
    assert near(329.63) < 0.2 * near(392.0)  # ... and the note the panic cut does not


def test_twelve_loud_notes_never_clip(font: Path) -> None:
    synth = SoundFontSynth(font, SR, volume=1.0)
    try:
        for channel, program in ((1, 0), (2, 48), (3, 19), (4, 33)):
            synth.program(channel, program)
        for k, pitch in enumerate(range(48, 72, 2)):
            synth.note_on(1 + k % 4, pitch, 127)
        audio = synth.render(SR)
    finally:
        synth.close()
    assert 0.5 < float(np.max(np.abs(audio))) <= 1.0
    assert rms_db(audio[SR // 2:]) > -15.0  # still loud: limited, not muted


def test_wav_render_is_deterministic_and_on_time(font: Path, tmp_path: Path) -> None:
    first, second = tmp_path / "a.wav", tmp_path / "b.wav"
    seconds = render_wav(demo_parts(), 120.0, first, font)
    render_wav(demo_parts(), 120.0, second, font)
    assert first.read_bytes() == second.read_bytes()
    with wave.open(str(first), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (2, 2, SR)
        pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").reshape(-1, 2)
    # Beat 1 at 120 BPM is 0.5 s: silence up to it, sound within a FluidSynth block after it.
    assert not pcm[: SR // 2].any()
    assert np.abs(pcm[SR // 2: SR // 2 + 480]).max() > 0
    assert rms_db(pcm[SR: 2 * SR] / 32768.0) > -35.0
    # Beat 5 (2.5 s) ends every note; the file ends once the releases have died away.
    assert 2.5 < seconds < 2.5 + 5.0
    assert not pcm[-SR // 100:].any()
    assert render_parts([], 120.0, font).shape == (0, 2)


# ---- errors: one sentence each, never a traceback --------------------------------------------

def test_a_missing_or_wrong_font_is_one_sentence(tmp_path: Path) -> None:
    with pytest.raises(SoundFontError, match="no such file") as missing:
        resolve_soundfont(tmp_path / "missing.sf2")
    text = tmp_path / "notes.txt"
    text.write_text("not a font")
    with pytest.raises(SoundFontError, match="is not a SoundFont") as wrong:
        SoundFontSynth(text, SR)
    with pytest.raises(SoundFontError, match="is a folder") as folder:
        resolve_soundfont(tmp_path)
    for error in (missing, wrong, folder):
        assert one_sentence(str(error.value))
        assert "fluid-soundfont-gm" in str(error.value)


def test_auto_without_a_font_names_the_package(monkeypatch: pytest.MonkeyPatch,
                                               tmp_path: Path) -> None:
    monkeypatch.setattr(soundfont, "FONT_PLACES", (str(tmp_path / "none.sf2"),))
    monkeypatch.setattr(soundfont, "_fluidsynth_default", lambda: None)
    assert find_soundfont() is None
    with pytest.raises(SoundFontError, match="no General MIDI SoundFont found") as error:
        resolve_soundfont("auto")
    assert one_sentence(str(error.value))
    assert "apt-get install fluid-soundfont-gm" in str(error.value)
    fake, other = tmp_path / "fake.sf2", tmp_path / "other.sf2"
    other.write_text("not a font")  # skipped: not a SoundFont
    fake.write_bytes(HEADER)
    monkeypatch.setattr(soundfont, "FONT_PLACES", (str(tmp_path / "none.sf2"), str(other),
                                                   str(fake)))
    assert resolve_soundfont("auto") == fake


@pytest.mark.skipif(not FLUID_R3.is_file(),
                    reason="fluid-soundfont-gm is not installed (apt-get install "
                           "fluid-soundfont-gm)")
def test_auto_finds_the_general_midi_font_debian_installs() -> None:
    assert find_soundfont() == FLUID_R3
    assert resolve_soundfont("auto") == FLUID_R3


def test_missing_fluidsynth_library_is_one_sentence(monkeypatch: pytest.MonkeyPatch,
                                                   tmp_path: Path) -> None:
    import ctypes.util

    fake = tmp_path / "fake.sf2"
    fake.write_bytes(HEADER)
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)
    monkeypatch.delitem(sys.modules, "fluidsynth", raising=False)
    monkeypatch.delenv("HOMEBREW_PREFIX", raising=False)
    with pytest.raises(SoundFontError, match="libfluidsynth3") as error:
        SoundFontSynth(fake, SR)
    assert one_sentence(str(error.value))


def test_missing_pyfluidsynth_is_one_sentence(monkeypatch: pytest.MonkeyPatch,
                                             tmp_path: Path) -> None:
    fake = tmp_path / "fake.sf2"
    fake.write_bytes(HEADER)
    monkeypatch.setitem(sys.modules, "fluidsynth", None)  # as if it were not installed
    with pytest.raises(SoundFontError, match=r"livegen\[soundfont\]") as error:
        check(fake)
    assert one_sentence(str(error.value))


@dataclass
class NoteTaker:
    """The parts of the engine the monitor uses."""

    notes: list[str] = field(default_factory=list)
    monitors: list = field(default_factory=list)

    def note(self, text: str) -> None:
        self.notes.append(text)

    def run(self, should_stop) -> None:
        assert should_stop()


def test_the_engine_runs_on_without_sound_when_the_font_is_missing(tmp_path: Path) -> None:
    engine = NoteTaker()
    assert start_monitor(engine, str(tmp_path / "missing.sf2")) is None  # type: ignore[arg-type]
    assert engine.monitors == []
    (note,) = engine.notes
    assert note.startswith("monitor synth off: ") and "no such file" in note
    assert one_sentence(note)
    # --soundfont alone turns the monitor on (no --synth needed)
    engine = NoteTaker()
    opts = LiveOptions(soundfont=str(tmp_path / "missing.sf2"))
    run_engine(engine, [], opts, lambda: True)  # type: ignore[arg-type]
    assert len(engine.notes) == 1 and "no such file" in engine.notes[0]


# ---- the flag -----------------------------------------------------------------------------------

def test_the_flag_reaches_the_live_options() -> None:
    parser = build_parser()
    assert LiveOptions.from_args(parser.parse_args(["run", "--soundfont", "auto"])).soundfont \
        == "auto"
    assert LiveOptions.from_args(parser.parse_args(["run", "--synth"])).soundfont is None


def test_a_missing_font_file_is_refused_at_parsing(capsys: pytest.CaptureFixture[str],
                                                   tmp_path: Path) -> None:
    for argv in (["run", "--headless"], ["render", "-o", str(tmp_path / "x.mid")]):
        with pytest.raises(SystemExit) as stop:
            main([*argv, "--soundfont", str(tmp_path / "none.sf2")])
        assert stop.value.code == 2
        err = capsys.readouterr().err
        assert "argument --soundfont:" in err and "no such file" in err
        assert "Traceback" not in err
    assert main(["render", "-o", str(tmp_path / "x.mid"), "--soundfont", "auto"]) == 2
    assert "give --wav FILE too" in capsys.readouterr().err


def test_render_wav_through_a_soundfont(font: Path, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    out, wav = tmp_path / "x.mid", tmp_path / "x.wav"
    assert main(["render", "-o", str(out), "--wav", str(wav), "--soundfont", str(font),
                 "--bpm", "240"]) == 0
    assert f"audio through FluidSynth with {font}" in capsys.readouterr().out
    with wave.open(str(wav), "rb") as audio:
        assert (audio.getnchannels(), audio.getframerate()) == (2, SR)
        pcm = np.frombuffer(audio.readframes(audio.getnframes()), dtype="<i2")
    assert rms_db(pcm / 32768.0) > -40.0


# ---- the real path: PortAudio into a private JACK dummy server ---------------------------------

# As in tests/test_synth.py: a child process (PortAudio picks the JACK server when sounddevice is
# imported) plays through SoundFontOutput on the JACK device and records the same JACK graph.
_CHILD = r"""
import json, subprocess, sys, time
import numpy as np
import sounddevice as sd
from livegen.soundfont import SoundFontError, SoundFontOutput

def links():
    text = subprocess.run(["jack_lsp", "-c"], capture_output=True, text=True, check=True).stdout
    pairs, port = [], None
    for line in text.splitlines():
        if line[:1].isspace():
            pairs.append((port, line.strip()))
        else:
            port = line.strip()
    return pairs

font = sys.argv[2]
jack = next(h for h in sd.query_hostapis() if h["name"].startswith("JACK"))
try:
    SoundFontOutput(font, device="no such sound card").start()
    missing = ""
except SoundFontError as exc:
    missing = str(exc)
monitor = SoundFontOutput(font, device=jack["default_output_device"])
monitor.start()
rate = monitor.synth.sample_rate
outs = sorted({b for a, b in links() if a.startswith("system:playback_")})
blocks, count = [], [0]
def record(indata, frames, when, status):
    blocks.append(indata.copy())
    count[0] += frames
recorder = sd.InputStream(samplerate=48000, blocksize=256, channels=2, dtype="float32",
                          device=jack["default_input_device"], callback=record)
recorder.start()
ins = []
for a, b in links():
    if a.startswith("system:capture_"):
        subprocess.run(["jack_disconnect", a, b], check=True)
        ins.append(b)
for out, inp in zip(outs, sorted(ins)):
    subprocess.run(["jack_connect", out, inp], check=True)
for channel, program in ((0, 73), (1, 52), (2, 52), (3, 32)):
    monitor.send([0xC0 | channel, program])        # as the engine does at start
time.sleep(0.3)
marks = {"a4": count[0]}
monitor.send([0x90, 69, 100])                      # A4 on the flute
time.sleep(0.5)
marks["chord"] = count[0]
for message in ([0x91, 64, 80], [0x92, 61, 80], [0x93, 45, 100]):
    monitor.send(message)                          # two choir voices and a bass join
time.sleep(0.5)
marks["panic"] = count[0]
for channel in range(4):                           # the engine's panic
    for controller in (64, 123, 120):
        monitor.send([0xB0 | channel, controller, 0])
time.sleep(0.5)
marks["end"] = count[0]
recorder.stop()
recorder.close()
monitor.stop()
np.save(sys.argv[1], np.concatenate(blocks))
print(json.dumps({"marks": marks, "outs": outs, "ins": sorted(ins), "missing": missing,
                  "device": monitor.device_name, "rate": rate, "closed": monitor.synth is None}))
"""


@pytest.mark.jack
def test_soundfont_monitor_through_portaudio_and_jack(
        font: Path, audio_jack: JackServer, tmp_path: Path) -> None:  # noqa: F811
    env = dict(os.environ, JACK_DEFAULT_SERVER=audio_jack.name, JACK_NO_START_SERVER="1")
    capture = tmp_path / "capture.npy"
    result = subprocess.run([sys.executable, "-c", _CHILD, str(capture), str(font)], env=env,
                            capture_output=True, text=True, timeout=90,
                            cwd=Path(__file__).resolve().parent.parent)
    assert result.returncode == 0, result.stderr[-3000:] + audio_jack.log_tail()
    info = json.loads(result.stdout.strip().splitlines()[-1])
    assert info["device"] == "system (JACK Audio Connection Kit)"
    assert info["rate"] == SR and info["closed"]
    assert len(info["outs"]) == len(info["ins"]) == 2
    assert "no audio output device 'no such sound card'" in info["missing"]
    assert "--soundfont" in info["missing"] and "--synth" not in info["missing"]
    audio = np.load(capture).astype(np.float64)
    marks = info["marks"]
    slack = SR // 20  # PortAudio and JACK buffering between sending and hearing, generously
    assert not audio[: marks["a4"]].any()  # the recorder hears nothing but the monitor
    a4 = audio[marks["a4"] + slack: marks["chord"]]
    assert rms_db(a4.sum(axis=1) / 2) > -40.0
    spectrum = np.abs(np.fft.rfft(a4.sum(axis=1) * np.hanning(len(a4))))
    peak_hz = np.fft.rfftfreq(len(a4), 1.0 / SR)[np.argmax(spectrum)]
    assert abs(peak_hz - 440.0) < 5.0  # the note sent is the pitch heard
    chord = audio[marks["chord"] + slack: marks["panic"]]
    assert rms_db(chord) > rms_db(a4) + 1.0  # more voices, louder
    assert rms_db(chord[:, 0]) > -45.0 and rms_db(chord[:, 1]) > -45.0  # both speakers
    after = audio[marks["panic"] + slack:]
    assert len(after) > SR // 4
    assert np.max(np.abs(after)) < 1e-4  # silent after the panic
