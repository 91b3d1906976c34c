"""The monitor synth: what a listener hears offline, and the real path through PortAudio and JACK.

Clicks are measured as a listener hears them: the share of energy above 10 kHz in a 21 ms window
around an event, for notes whose harmonics all lie below 4 kHz. A hard cut scores about -25 to
-40 dB; the synth's fades score below -75 dB; the tests allow -60 dB.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest
from jackserver import NO_JACK_ENV, JackServer, JackServerError, jackd_path

from livegen.midi.midifile import Note, Part
from livegen.synth import (
    PANIC_FADE,
    MonitorOutput,
    Synth,
    SynthError,
    render_parts,
    render_wav,
    timbre_for_channel,
    timbre_for_program,
    write_wav,
)

SR = 48000
CLICK_DB = -60.0
C_MAJOR = (48, 52, 55)  # C3 E3 G3: every timbre's harmonics stay below 4 kHz
PROGRAMS = [None, 0, 11, 19, 25, 33, 48, 52, 56, 66, 73, 81, 89]  # None: channel 2's own timbre


def rms_db(audio: np.ndarray) -> float:
    power = float(np.mean(np.square(audio, dtype=np.float64))) if audio.size else 0.0
    return 10.0 * np.log10(power) if power > 0 else -np.inf


def click_db(audio: np.ndarray, at: int, half: int = 512) -> float:
    """Energy above 10 kHz relative to all, in a Hann window centred on sample `at`."""
    segment = audio[at - half:at + half].astype(np.float64)
    if segment.ndim == 2:
        segment = segment.sum(axis=1)
    spectrum = np.abs(np.fft.rfft(segment * np.hanning(len(segment)))) ** 2
    freqs = np.fft.rfftfreq(len(segment), 1.0 / SR)
    total = spectrum.sum()
    return 10.0 * np.log10(spectrum[freqs > 10000].sum() / total) if total > 0 else -np.inf


def held_chord(program: int | None, hold: float = 0.5, after: float = 1.0,
               channel: int = 2) -> tuple[np.ndarray, int, int]:
    """Silence, a C major chord held `hold` s, then `after` s; (audio, note-on, note-off)."""
    synth = Synth(SR)
    if program is not None:
        synth.program(channel, program)
    lead_in = synth.render(4800)
    for pitch in C_MAJOR:
        synth.note_on(channel, pitch, 110)
    held = synth.render(int(hold * SR))
    for pitch in C_MAJOR:
        synth.note_off(channel, pitch)
    tail = synth.render(int(after * SR))
    assert synth.active_voices == 0
    return np.concatenate([lead_in, held, tail]), 4800, 4800 + len(held)


# ---- offline ----------------------------------------------------------------------------------

@pytest.mark.parametrize("program", PROGRAMS)
def test_chord_sounds_while_held_and_dies_after_release(program: int | None) -> None:
    audio, on, off = held_chord(program)
    timbre = timbre_for_channel(2) if program is None else timbre_for_program(program)
    assert rms_db(audio[:on]) == -np.inf  # nothing before the note-on
    assert rms_db(audio[on + SR // 10:off]) > -35.0
    silent_from = off + int((timbre.release + 0.01) * SR)
    assert rms_db(audio[silent_from:]) < -60.0
    assert np.max(np.abs(audio[silent_from:])) < 1e-4


@pytest.mark.parametrize("program", PROGRAMS)
def test_notes_start_and_end_without_clicks(program: int | None) -> None:
    audio, on, off = held_chord(program)
    assert click_db(audio, on) < CLICK_DB
    assert click_db(audio, off) < CLICK_DB
    assert np.max(np.abs(audio[on])) < 1e-3  # the first sample starts from silence


def test_click_measure_hears_a_hard_cut_and_a_hard_start() -> None:
    audio, on, off = held_chord(52)
    cut = audio.copy()
    cut[off:] = 0.0
    assert click_db(cut, off) > -45.0
    late = audio.copy()  # the same sound switched on a quarter of a second into the note
    late[:on + SR // 4] = 0.0
    assert click_db(late, on + SR // 4) > -45.0


def test_panic_reaches_silence_within_20_ms_without_a_click() -> None:
    synth = Synth(SR, volume=0.8)
    synth.program(5, 89)  # a pad with a half-second release
    for channel, pitches in ((1, (72,)), (2, (64, 67)), (3, (55, 60)), (4, (36,)), (5, C_MAJOR)):
        for pitch in pitches:
            synth.note_on(channel, pitch, 100)
    held = synth.render(SR // 2)
    synth.all_off()
    after = synth.render(SR // 10)
    assert rms_db(held[SR // 4:]) > -30.0
    assert np.max(np.abs(after[: int(0.005 * SR)])) > 0.01  # a fade, not a cut ...
    assert np.max(np.abs(after[int(0.020 * SR):])) == 0.0  # ... that is over by 20 ms
    assert PANIC_FADE <= 0.02
    assert synth.active_voices == 0
    assert click_db(np.concatenate([held, after]), len(held)) < CLICK_DB


def test_volume_scales_the_level_and_changes_without_a_click() -> None:
    def level(volume: float) -> float:
        synth = Synth(SR, volume=volume)
        synth.note_on(1, 69, 100)
        return rms_db(synth.render(SR // 2)[SR // 4:])

    assert level(0.25) - level(0.5) == pytest.approx(-6.02, abs=0.1)
    assert level(0.0) == -np.inf
    steady, turned = Synth(SR, volume=0.8), Synth(SR, volume=0.8)
    for synth in (steady, turned):
        synth.note_on(2, 48, 100)  # a choir note: its level swells as its two voices beat
    before = turned.render(SR // 2)
    steady.render(SR // 2)
    turned.set_volume(0.1)
    after, reference = turned.render(SR // 2), steady.render(SR // 2)
    assert rms_db(after[SR // 10:]) - rms_db(reference[SR // 10:]) == pytest.approx(-18.06,
                                                                                  abs=0.1)
    assert click_db(np.concatenate([before, after]), len(before)) < CLICK_DB


def test_twelve_loud_notes_never_clip() -> None:
    synth = Synth(SR, volume=1.0)
    lead_in = synth.render(4800)
    for k, pitch in enumerate(range(48, 72, 2)):
        synth.note_on(1 + k % 4, pitch, 127)
    audio = np.concatenate([lead_in, synth.render(SR)])
    peak = float(np.max(np.abs(audio)))
    assert 0.5 < peak <= 1.0
    assert rms_db(audio[SR // 2:]) > -12.0  # still loud: limited, not muted
    assert click_db(audio, 4800) < CLICK_DB


def test_polyphony_limit_fades_the_oldest_voice_out() -> None:
    synth = Synth(SR, polyphony=8)
    synth.program(1, 19)  # an organ: held notes do not die away by themselves
    blocks = []
    for pitch in range(48, 60):  # twelve notes, held, one every 50 ms
        synth.note_on(1, pitch, 100)
        blocks.append(synth.render(SR // 20))
    audio = np.concatenate(blocks)
    assert synth.active_voices == 8
    for k in range(8, 12):  # each of these stole the oldest voice
        assert click_db(audio, k * SR // 20) < CLICK_DB
    synth.all_off()
    synth.render(SR // 20)
    assert synth.active_voices == 0


def test_timbres_differ_by_channel_and_program() -> None:
    def note(channel: int, program: int | None = None, pitch: int = 45) -> np.ndarray:
        synth = Synth(SR)
        if program is not None:
            synth.program(channel, program)
        synth.note_on(channel, pitch, 100)
        return synth.render(SR // 2)[SR // 4:]

    def fundamental_share(audio: np.ndarray, freq: float = 110.0) -> float:
        spectrum = np.abs(np.fft.rfft(audio.sum(axis=1) * np.hanning(len(audio)))) ** 2
        freqs = np.fft.rfftfreq(len(audio), 1.0 / SR)
        return float(spectrum[np.abs(freqs - freq) < 6].sum() / spectrum.sum())

    bass, choir = note(4), note(2)
    assert fundamental_share(bass) > 0.5
    assert fundamental_share(bass) > fundamental_share(choir) + 0.1
    # A bass program on another centred channel sounds exactly like the bass channel.
    np.testing.assert_array_equal(note(5, program=33), bass)
    # The alto sits left of centre, the tenor right.
    alto, tenor = note(2, pitch=64), note(3, pitch=60)
    assert rms_db(alto[:, 0]) > rms_db(alto[:, 1]) + 3
    assert rms_db(tenor[:, 1]) > rms_db(tenor[:, 0]) + 3


def demo_parts() -> list[Part]:
    melody = [Note(72, 1.0, 2.0, 90), Note(74, 2.0, 3.0, 90), Note(76, 3.0, 5.0, 90)]
    alto = [Note(67, 1.0, 3.0, 72), Note(69, 3.0, 5.0, 72)]
    tenor = [Note(64, 1.0, 5.0, 70)]
    bass = [Note(48, 1.0, 3.0, 96), Note(41, 3.0, 5.0, 96)]
    return [Part("melody", 1, 0, melody), Part("alto", 2, 52, alto),
            Part("tenor", 3, 52, tenor), Part("bass", 4, 33, bass)]


def test_wav_render_is_deterministic_and_on_time(tmp_path: Path) -> None:
    first, second = tmp_path / "a.wav", tmp_path / "b.wav"
    seconds = render_wav(demo_parts(), 120.0, first)
    render_wav(demo_parts(), 120.0, second)
    assert first.read_bytes() == second.read_bytes()
    with wave.open(str(first), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (2, 2, SR)
        assert wav.getnframes() == round(seconds * SR)
        pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").reshape(-1, 2)
    # Beat 1 at 120 BPM is 0.5 s: silence exactly up to it, sound right after it.
    assert not pcm[: SR // 2].any()
    assert np.abs(pcm[SR // 2: SR // 2 + 480]).max() > 0
    assert rms_db(pcm[SR: 2 * SR] / 32768.0) > -35.0
    # Beat 5 (2.5 s) ends every note; the file ends once the choir's release has died away.
    assert 2.5 + timbre_for_program(52).release <= seconds < 2.5 + 0.3
    assert not pcm[-SR // 100:].any()


def test_write_wav_converts_without_wrapping_and_reports_bad_paths(tmp_path: Path) -> None:
    path = tmp_path / "mono.wav"
    write_wav(path, np.array([0.0, 1.0, -1.0, 1.5, -1.5], dtype=np.float32), SR)
    with wave.open(str(path), "rb") as wav:
        assert wav.getnchannels() == 1
        pcm = np.frombuffer(wav.readframes(5), dtype="<i2")
    assert pcm.tolist() == [0, 32767, -32767, 32767, -32768]
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(SynthError, match="cannot write the WAV file"):
        write_wav(blocker / "out.wav", np.zeros(10), SR)
    with pytest.raises(SynthError, match="BPM"):
        render_parts(demo_parts(), 0.0)
    assert render_parts([], 120.0).shape == (0, 2)


def test_send_plays_raw_midi_as_a_daw_would() -> None:
    synth = Synth(SR)
    monitor = MonitorOutput(synth)  # not started: send() only feeds the synth
    monitor.send([0x90, 60, 100])  # note on, channel 1
    assert rms_db(synth.render(SR // 4)[SR // 8:]) > -35.0
    monitor.send([0x90, 60, 0])  # velocity 0 is a note-off
    synth.render(SR // 2)
    assert synth.active_voices == 0
    monitor.send(bytes([0xB1, 64, 127]))  # sustain pedal down on channel 2
    monitor.send([0x91, 64, 100])
    monitor.send([0x81, 64, 0])
    assert rms_db(synth.render(SR // 2)[SR // 4:]) > -35.0  # held by the pedal
    monitor.send([0xB1, 64, 0])
    synth.render(SR // 2)
    assert synth.active_voices == 0
    reference = Synth(SR)
    for target in (synth, reference):
        target.note_on(4, 45, 100)
        target.render(SR // 4)
    monitor.send([0xB3, 7, 50])  # channel volume: half of the default 100 ...
    quiet = rms_db(synth.render(SR // 4)[SR // 20:])  # after a short ramp
    loud = rms_db(reference.render(SR // 4)[SR // 20:])
    assert quiet - loud == pytest.approx(-12.04, abs=0.1)  # ... is a quarter of the amplitude
    monitor.send([0xB3, 120, 0])  # all sound off: silence within 20 ms
    assert not synth.render(SR // 20)[int(0.02 * SR):].any()
    monitor.send([0xC5, 33])  # program change to a bass; junk and short messages are ignored
    monitor.send([0xF8])
    monitor.send([0x96, 45])
    monitor.send([0x95, 45, 100])
    assert synth.render(SR // 4).any()
    monitor.send([0xB5, 123, 0])
    assert not synth.render(SR // 10)[int(0.02 * SR):].any()


def test_missing_portaudio_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import ctypes.util

    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)
    monkeypatch.delitem(sys.modules, "sounddevice", raising=False)
    with pytest.raises(SynthError, match="libportaudio2"):
        MonitorOutput(Synth(SR)).start()


# ---- the real path: PortAudio into a private JACK dummy server ---------------------------------

# Runs in its own process, because PortAudio picks the JACK server (JACK_DEFAULT_SERVER) when
# sounddevice is imported. It plays through MonitorOutput on the JACK device, records the same
# JACK graph with a sounddevice InputStream, and patches the monitor's output ports (the ones
# PortAudio connected to system:playback_*) into the recorder's input ports with jack_connect.
_CHILD = r"""
import json, subprocess, sys, time
import numpy as np
import sounddevice as sd
from livegen.synth import MonitorOutput, Synth, SynthError

def links():
    text = subprocess.run(["jack_lsp", "-c"], capture_output=True, text=True, check=True).stdout
    pairs, port = [], None
    for line in text.splitlines():
        if line[:1].isspace():
            pairs.append((port, line.strip()))
        else:
            port = line.strip()
    return pairs

jack = next(h for h in sd.query_hostapis() if h["name"].startswith("JACK"))
try:
    MonitorOutput(Synth(48000), device="no such sound card").start()
    missing = ""
except SynthError as exc:
    missing = str(exc)
monitor = MonitorOutput(Synth(48000, volume=0.5), device=jack["default_output_device"])
monitor.start()
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
time.sleep(0.3)
marks = {"a4": count[0]}
monitor.send([0x90, 69, 100])                      # A4 on the lead channel
time.sleep(0.5)
marks["chord"] = count[0]
for message in ([0x91, 64, 80], [0x92, 61, 80], [0x93, 45, 100]):
    monitor.send(message)                          # alto, tenor, bass join
time.sleep(0.5)
marks["panic"] = count[0]
for channel in range(4):
    monitor.send([0xB0 | channel, 123, 0])
    monitor.send([0xB0 | channel, 120, 0])
time.sleep(0.5)
marks["end"] = count[0]
recorder.stop()
recorder.close()
monitor.stop()
np.save(sys.argv[1], np.concatenate(blocks))
print(json.dumps({"marks": marks, "outs": outs, "ins": sorted(ins), "missing": missing,
                  "device": monitor.device_name, "underflows": monitor.underflows}))
"""


@pytest.fixture(scope="module")
def audio_jack(tmp_path_factory: pytest.TempPathFactory):
    if os.environ.get(NO_JACK_ENV) == "1":
        pytest.skip(f"{NO_JACK_ENV}=1: JACK tests skipped")
    if jackd_path() is None:
        pytest.fail("jackd is not installed: install jackd2 (apt-get install jackd2), "
                    f"or set {NO_JACK_ENV}=1 to skip the JACK tests")
    server = JackServer(period=256, log_path=tmp_path_factory.mktemp("jack") / "jackd.log")
    try:
        server.start()
    except JackServerError as exc:
        pytest.fail(f"could not start a JACK dummy server: {exc}")
    try:
        yield server
    finally:
        server.stop()


def test_monitor_through_portaudio_and_jack_sounds_then_panic_silences(
        audio_jack: JackServer, tmp_path: Path) -> None:
    env = dict(os.environ, JACK_DEFAULT_SERVER=audio_jack.name, JACK_NO_START_SERVER="1")
    capture = tmp_path / "capture.npy"
    result = subprocess.run([sys.executable, "-c", _CHILD, str(capture)], env=env,
                            capture_output=True, text=True, timeout=60,
                            cwd=Path(__file__).resolve().parent.parent)
    assert result.returncode == 0, result.stderr[-3000:] + audio_jack.log_tail()
    info = json.loads(result.stdout.strip().splitlines()[-1])
    assert info["device"] == "system (JACK Audio Connection Kit)"
    assert len(info["outs"]) == len(info["ins"]) == 2
    assert "no audio output device 'no such sound card'" in info["missing"]
    audio = np.load(capture).astype(np.float64)
    marks = info["marks"]
    slack = SR // 20  # PortAudio and JACK buffering between sending and hearing, generously
    assert not audio[: marks["a4"]].any()  # the recorder hears nothing but the synth
    a4 = audio[marks["a4"] + slack: marks["chord"]].sum(axis=1)
    assert rms_db(a4 / 2) > -40.0
    spectrum = np.abs(np.fft.rfft(a4 * np.hanning(len(a4))))
    peak_hz = np.fft.rfftfreq(len(a4), 1.0 / SR)[np.argmax(spectrum)]
    assert abs(peak_hz - 440.0) < 5.0  # the note sent is the pitch heard
    chord = audio[marks["chord"] + slack: marks["panic"]]
    assert rms_db(chord) > rms_db(a4 / 2) + 1.0  # more voices, louder
    assert rms_db(chord[:, 0]) > -40.0 and rms_db(chord[:, 1]) > -40.0  # both speakers
    after = audio[marks["panic"] + slack:]
    assert len(after) > SR // 4
    assert np.max(np.abs(after)) < 1e-4  # silent after the panic
