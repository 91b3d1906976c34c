"""`livegen doctor`: one line per check, a sentence for each problem, exit 1 only when render
cannot work (or a loop named with --loop fails), and never a traceback. The loop test runs
through the session's JACK dummy server (tests/conftest.py, `jack_server`)."""

from __future__ import annotations

import os
import re
import sys
import threading
import time
from collections import deque

import pytest

from livegen import doctor, paths
from livegen.cli import main
from livegen.settings import TimingSettings

# "round trip p50 1.6 ms / p99 3.2 ms / max 5.1 ms, jitter 1.6 ms"
FIGURES = re.compile(r"(\d+) notes, round trip p50 ([\d.]+) ms / p99 ([\d.]+) ms / "
                     r"max ([\d.]+) ms, jitter ([\d.]+) ms")


@pytest.fixture(autouse=True)
def no_loop_unless_asked(request, monkeypatch):
    """Tests about other checks skip the two-second loop test (a JACK server may be up for the
    session); the tests that use the server, or ask for `real_loop`, run it."""
    if {"jack_server", "real_loop"} & set(request.fixturenames):
        return
    monkeypatch.setattr(doctor, "check_loop",
                        lambda *args, **kwargs: doctor.Check(True, "loop test (not run)"))


@pytest.fixture
def real_loop():
    """The real loop check, without a JACK server (see no_loop_unless_asked)."""


@pytest.fixture
def no_user_presets(monkeypatch, tmp_path):
    """Only the shipped presets: the machine's own user presets stay out of the test."""
    monkeypatch.setattr(paths, "user_presets", lambda: tmp_path / "user-presets")
    return tmp_path / "user-presets"


@pytest.fixture
def model_ok(monkeypatch):
    """Tests about other checks do not load the model (the healthy-path test does)."""
    monkeypatch.setattr(doctor, "check_model", lambda: doctor.Check(True, "model (not loaded)"))


def lines(capsys) -> list[str]:
    out = capsys.readouterr()
    assert "Traceback" not in out.err
    return out.out.splitlines()


def one(found: list[str], start: str) -> str:
    matching = [line for line in found if line.startswith(start)]
    assert len(matching) == 1, found
    return matching[0]


def test_healthy_machine_has_the_model_and_presets(capsys, no_user_presets):
    code = main(["doctor"])
    found = lines(capsys)
    model = one(found, "✓ shipped model 'chorale' loads in ")
    assert re.match(r"✓ shipped model 'chorale' loads in \d+\.\d s: (fine|slow but usable|very "
                    r"slow)", model), model
    assert model.endswith("chorale.pt)") and "alto, tenor, bass" in model
    presets = one(found, "✓ 4 presets load: ")
    assert "chorale" in presets and "jam" in presets
    one(found, "✓ Python 3.")
    one(found, "✓ torch ")
    assert code == 0
    assert found[-1].startswith("livegen render")
    assert "does not work" not in found[-1]


def test_a_missing_model_is_a_cross_and_exit_1(capsys, monkeypatch, tmp_path, no_user_presets):
    missing = tmp_path / "gone.pt"
    monkeypatch.setattr(paths, "model_path", lambda name: missing)
    assert main(["doctor"]) == 1
    found = lines(capsys)
    line = one(found, "✗ shipped model 'chorale': ")
    assert f"{missing} is missing. Reinstall livegen" in line
    assert found[-1] == ("livegen render does not work yet: fix the ✗ lines above for shipped "
                         "model, then run `livegen doctor` again.")


def test_a_broken_default_preset_blocks_render_and_another_does_not(capsys, no_user_presets,
                                                                    model_ok):
    no_user_presets.mkdir()
    (no_user_presets / "mine.toml").write_text("[timing]\nbpm = 900\n")
    assert doctor.main() == 0
    line = one(lines(capsys), "✗ user preset 'mine': ")
    assert "bpm" in line and f"Fix or remove {no_user_presets / 'mine.toml'}" in line
    (no_user_presets / "chorale.toml").write_text("[timing\n")
    assert doctor.main() == 1
    found = lines(capsys)
    one(found, "✗ user preset 'chorale': ")
    assert "livegen render uses it by default" in one(found, "✗ user preset 'chorale': ")
    assert "for presets," in found[-1]


def test_a_check_that_breaks_is_a_cross_not_a_traceback(capsys, monkeypatch, no_user_presets,
                                                        model_ok):
    import livegen.presets

    def broken() -> list:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(livegen.presets, "list_presets", broken)
    assert doctor.main() == 1
    line = one(lines(capsys), "✗ presets: ")
    assert "the check itself failed (disk on fire)" in line


def test_without_portaudio_render_still_works(capsys, monkeypatch, no_user_presets, model_ok):
    monkeypatch.setitem(sys.modules, "sounddevice", None)  # the import raises ImportError
    assert doctor.main() == 0
    found = lines(capsys)
    line = one(found, "✗ PortAudio does not load")
    assert "`render --wav` works without it" in line
    assert found[-1].startswith("livegen render works; the ✗ lines above matter for live play")


def test_python_and_torch_failures_say_what_to_do(monkeypatch):
    old = doctor.check_python((3, 10, 4))
    assert not old.ok and old.needed and "3.11 or 3.12" in old.fix
    assert doctor.check_python((3, 12, 1)).ok
    monkeypatch.setitem(sys.modules, "torch", None)
    torch = doctor.check_torch()
    assert not torch.ok and torch.needed and "pip install torch" in torch.fix


def test_alsa_and_jack_are_for_live_play_only(monkeypatch):
    monkeypatch.setattr(doctor, "ALSA_SEQUENCER", "/nonexistent/snd/seq")
    alsa = doctor.check_alsa()
    assert not alsa.ok and not alsa.needed and "modprobe snd-seq" in alsa.fix
    from livegen.midi import ports
    monkeypatch.setattr(ports, "jack_server_state", lambda server=None: "down")
    jack = doctor.check_jack()
    assert not jack.ok and not jack.needed and "is not running" in jack.text


def test_the_model_load_time_reads_plainly():
    assert doctor.load_verdict(0.4) == "fine"
    assert doctor.load_verdict(12.0).startswith("slow but usable")
    assert doctor.load_verdict(45.0).startswith("very slow, the panel gives the engine 60 s")


# ------------------------------------------------------------------------------- MIDI ports


def fake_ports(monkeypatch, inputs: list[str], outputs: list[str], api: int = 3) -> None:
    from livegen.midi import ports
    monkeypatch.setattr(ports, "resolve_api", lambda choice="auto": api)
    monkeypatch.setattr(ports, "list_ports", lambda api="auto", client_name=None:
                        (list(inputs), list(outputs)))


def test_midi_ports_without_a_keyboard_say_livegen_makes_its_own(monkeypatch):
    fake_ports(monkeypatch, [], [])
    inputs, outputs = doctor.check_midi_ports("jack")
    assert inputs.ok and inputs.text == (
        "MIDI inputs (jack): none: no MIDI keyboard is connected; livegen will create "
        "'livegen in' for your keyboard or DAW to connect to")
    assert outputs.ok and "no synth or DAW is listening yet; livegen will create 'livegen out'" \
        in outputs.text


def test_midi_ports_name_what_is_connected(monkeypatch):
    fake_ports(monkeypatch, ["Midi Through:Midi Through Port-0 14:0"], ["Midi Through:Port"], 2)
    inputs, _ = doctor.check_midi_ports("alsa")
    assert inputs.text.startswith("MIDI inputs (alsa): only 'Midi Through:Midi Through Port-0 "
                                  "14:0': no MIDI keyboard is connected")
    fake_ports(monkeypatch, ["Keystation:out", *(f"p{i}" for i in range(8))], ["Synth:in"])
    inputs, outputs = doctor.check_midi_ports("jack")
    assert inputs.text.startswith("MIDI inputs (jack): 'Keystation:out', 'p0',")
    assert "'p4' and 3 more; livegen listens to one with --input NAME" in inputs.text
    assert outputs.text == ("MIDI outputs (jack): 'Synth:in'; livegen plays into one with "
                            "--output NAME, or creates 'livegen out' without it")


def test_no_midi_system_is_a_sentence_not_a_failure(monkeypatch):
    from livegen.midi import ports

    def nothing(choice="auto"):
        raise ports.PortError("no MIDI system found (tried: alsa, jack): start JACK")

    monkeypatch.setattr(ports, "resolve_api", nothing)
    (line,) = doctor.check_midi_ports()
    assert not line.ok and not line.needed
    assert line.fix == "No MIDI system found (tried: alsa, jack): start JACK."


# ----------------------------------------------------------------------------- audio output


def test_the_default_audio_output_is_named_or_missing(monkeypatch):
    import sounddevice

    def none(device=None, kind=None):
        raise sounddevice.PortAudioError("Error querying device -1")

    monkeypatch.setattr(sounddevice, "query_devices", none)
    (line,) = doctor.check_audio_device()
    assert not line.ok and not line.needed
    assert line.text == "no default audio output device (PortAudio: Error querying device -1)"
    assert "For --synth, connect or enable a sound card" in line.fix
    monkeypatch.setattr(sounddevice, "query_devices", lambda device=None, kind=None: {
        "name": "Built-in Output", "hostapi": 0, "default_samplerate": 44100.0})
    monkeypatch.setattr(sounddevice, "query_hostapis", lambda index=None: {"name": "ALSA"})
    (line,) = doctor.check_audio_device()
    assert line.ok and line.text == ("audio output 'Built-in Output' (ALSA) at 44100 Hz: "
                                     "--synth plays there")
    monkeypatch.setitem(sys.modules, "sounddevice", None)
    assert doctor.check_audio_device() == []  # the PortAudio line says it


# -------------------------------------------------------------------------------- loop test


class Wire:
    """An in-process loop: what is sent comes back on the next poll, except every `drop`-th
    note-on."""

    def __init__(self, drop: int = 0) -> None:
        self.queue: deque[tuple[bytes, float]] = deque()
        self.drop = drop
        self.ons = 0

    def send(self, message) -> bool:
        data = bytes(message)
        if data[0] == 0x90:
            self.ons += 1
            if self.drop and self.ons % self.drop == 0:
                return True
        self.queue.append((data, 0.0))
        return True

    def poll(self, limit: int = 512) -> list[tuple[bytes, float]]:
        out = []
        while self.queue and len(out) < limit:
            out.append((self.queue.popleft()[0], time.perf_counter()))
        return out


def test_loop_messages_carry_their_sequence_number():
    for seq in (0, 1, 127, 128, 199, 127 * 128 - 1):
        message = doctor.loop_message(seq)
        assert message[0] == 0x90 and 1 <= message[2] <= 127
        assert doctor.loop_sequence(message) == seq
    assert doctor.loop_sequence(b"\x80\x10\x00") is None
    assert doctor.loop_sequence(b"\x90\x10\x00") is None  # a note-on at velocity 0 is an off
    assert doctor.loop_sequence(b"\xf8") is None


def test_measure_loop_counts_round_trips_and_losses():
    wire = Wire(drop=10)
    result = doctor.measure_loop(wire, wire, "a wire", count=50, interval=0.002, wait=0.05)
    assert result.sent == 50 and result.received == 45 and result.lost == 5
    assert 0 <= result.p50 <= result.p99 <= result.max < 50
    assert result.jitter == pytest.approx(result.p99 - result.p50)
    line = doctor.loop_verdict(result)
    assert not line.ok and not line.needed and not line.asked
    assert line.text.startswith("loop test through a wire: 50 notes, round trip p50 ")
    assert line.text.endswith(", 5 lost") and "realtime scheduling" in line.fix


def test_a_reader_that_breaks_is_reported_not_a_thread_traceback():
    class Broken(Wire):
        def poll(self, limit: int = 512):
            raise RuntimeError("port gone")

    with pytest.raises(RuntimeError, match="port gone"):
        doctor.measure_loop(Wire(), Broken(), "x", count=5, interval=0.001, wait=0.01)


def test_a_loop_where_nothing_comes_back_says_to_check_the_loop():
    line = doctor.loop_verdict(doctor.LoopResult("'a' back to 'b'", 200, ()), asked=True)
    assert not line.ok and line.asked
    assert line.text == "loop test through 'a' back to 'b': none of the 200 notes came back"
    assert "a MIDI cable from the output to the input" in line.fix


def test_percentiles_are_nearest_rank():
    result = doctor.LoopResult("x", 100, tuple(float(n) for n in range(1, 101)))
    assert (result.p50, result.p99, result.max, result.jitter) == (50.0, 99.0, 100.0, 49.0)


# ----------------------------------------------------------------------- suggested settings


def test_the_suggestion_rule():
    # follow_ms >= 2 J + 20 ms in steps of 5; prewindow >= (2 J + 20 ms) / a 16th, steps of 0.05
    assert doctor.suggest(0.5, 120.0) == doctor.Suggestion(25, 0.2, 120.0)  # 21 ms; 21/125
    assert doctor.suggest(0.0, 120.0) == doctor.Suggestion(20, 0.2, 120.0)  # 20/125 = 0.16
    assert doctor.suggest(10.0, 72.0) == doctor.Suggestion(40, 0.2, 72.0)  # 40/208.3 = 0.19
    assert doctor.suggest(5.0, 300.0) == doctor.Suggestion(30, 0.6, 300.0)  # 30/50
    assert doctor.suggest(500.0, 300.0) == doctor.Suggestion(200, 1.0, 300.0)  # the limits


def test_settings_say_plenty_or_what_to_set():
    steady = doctor.LoopResult("x", 100, (1.0,) * 98 + (2.1, 2.1))
    line = doctor.settings_verdict(steady, TimingSettings(bpm=72, prewindow=0.5, follow_ms=30),
                                   "preset 'chorale'")
    assert line.ok and line.text == (
        "settings for this machine: a MIDI round trip takes at most 2.1 ms (p99) with 1.1 ms "
        "jitter: follow_ms = 30 (preset 'chorale') is plenty (25 would do); prewindow 0.5 is "
        "fine at 72 BPM (0.15 would do)")
    shaky = doctor.LoopResult("x", 100, (1.0,) * 50 + (14.0,) * 50)
    line = doctor.settings_verdict(shaky, TimingSettings(bpm=200, prewindow=0.25, follow_ms=30),
                                   "preset 'jam'")
    assert not line.ok and not line.needed
    assert "follow_ms = 30 (preset 'jam') is short: 50 covers it" in line.text
    assert "prewindow 0.25 is short at 200 BPM: 0.65 covers it" in line.text
    assert line.fix.startswith("Set follow_ms = 50 and prewindow = 0.65 in the [timing] section")


def test_no_settings_line_without_a_measurement():
    assert doctor.check_settings(doctor._Measured()) == []


# ---------------------------------------------------------------------- through JACK, or not


def test_the_loop_test_through_jack_reports_latency_and_suggests_settings(
        jack_server, capsys, no_user_presets, model_ok):
    from livegen.midi import ports

    assert main(["doctor", "--midi-api", "jack"]) == 0
    found = lines(capsys)
    assert one(found, "✓ MIDI inputs (jack): ")
    loops = [line for line in found
             if line[2:].startswith(f"loop test through JACK server {jack_server!r}: ")]
    assert len(loops) == 1, found
    loop = loops[0]
    figures = FIGURES.search(loop)
    # the JACK dummy server without realtime scheduling drops a message now and then when the
    # machine is loaded (its log counts the xruns): doctor must then say how many, with a ✗
    lost = re.search(r", (\d+) lost\b", loop)
    assert figures and (loop.startswith("✓") and loop.endswith(", none lost")
                        or loop.startswith("✗") and lost and int(lost.group(1)) <= 4), loop
    sent, p50, p99, peak, jitter = (float(v) for v in figures.groups())
    assert sent == doctor.LOOP_MESSAGES
    assert 0 < p50 <= p99 <= peak < 100 and jitter == pytest.approx(p99 - p50, abs=0.11)
    settings = [line for line in found if line[2:].startswith("settings for this machine: ")]
    assert len(settings) == 1, found
    assert f"takes at most {p99:.1f} ms (p99)" in settings[0]
    assert "follow_ms = 30 (preset 'chorale')" in settings[0]
    assert "prewindow 0.5 " in settings[0]
    assert found[-1].startswith("livegen render works")
    inputs, outputs = ports.list_ports("jack")  # the loop's ports are gone
    assert not [name for name in inputs + outputs if doctor.LOOP_CLIENT in name]


def test_without_jack_the_loop_line_says_how_to_run_it(capsys, monkeypatch, no_user_presets,
                                                       model_ok, real_loop):
    from livegen.midi import ports
    monkeypatch.setattr(ports, "jack_server_state", lambda server=None: "down")
    assert main(["doctor"]) == 0
    found = lines(capsys)
    line = one(found, "✗ loop test: not run (no JACK server ")
    assert line.endswith("start JACK and run `livegen doctor` again, or loop a MIDI output back "
                         "to an input (a cable, or a DAW track that echoes its input) and run "
                         "`livegen doctor --loop IN OUT`.")
    assert not [line for line in found if "settings for this machine" in line]
    assert found[-1].startswith("livegen render works; the ✗ lines above matter for live play")


def test_a_loop_through_a_port_that_does_not_exist_is_exit_1(jack_server, capsys,
                                                            no_user_presets, model_ok):
    assert main(["doctor", "--midi-api", "jack", "--loop", "no such in", "no such out"]) == 1
    found = lines(capsys)
    line = one(found, "✗ loop test: no MIDI input port matches 'no such in' (jack)")
    assert line.endswith("what is played into OUT must come back into IN.")
    assert found[-1] == ("livegen render works, but the loop test you asked for failed: see its "
                         "✗ line above.")


class Echo:
    """A JACK client that plays back whatever reaches its input: a DAW track echoing its input,
    or a MIDI cable from an output back to an input."""

    def __init__(self) -> None:
        import rtmidi
        self.name = f"echo-{os.getpid()}"  # each rtmidi object is a JACK client: two names
        self.inp = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, f"{self.name}-a")
        self.inp.open_virtual_port("echo in")
        self.out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, f"{self.name}-b")
        self.out.open_virtual_port("echo out")
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            item = self.inp.get_message()
            if item is None:
                time.sleep(0.0002)
            else:
                self.out.send_message(item[0])

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        time.sleep(0.05)  # a JACK graph change settles before its port closes (tests/conftest)
        for rt in (self.inp, self.out):
            rt.close_port()
            rt.delete()


def test_a_loop_through_named_ports(jack_server, capsys, monkeypatch, no_user_presets,
                                    model_ok):
    monkeypatch.setattr(doctor, "LOOP_MESSAGES", 100)
    echo = Echo()
    try:
        code = main(["doctor", "--midi-api", "jack", "--loop", "echo out", "echo in"])
    finally:
        echo.close()
    found = lines(capsys)
    start = f"loop test through '{echo.name}-a:echo in' back to '{echo.name}-b:echo out': "
    (line,) = [line for line in found if line[2:].startswith(start)]
    figures = FIGURES.search(line)
    assert figures and figures.group(1) == "100", line
    assert [line for line in found if line[2:].startswith("settings for this machine: ")]
    # a JACK server without realtime scheduling on a busy machine drops a message now and then
    # (README, Figures: run D); the line and the exit status then say so, as --loop was asked
    if line.startswith("✓"):
        assert line.endswith(", none lost") and code == 0
    else:
        assert re.search(r", [1-9] lost\. Check the loop's cable", line), line
        assert code == 1 and found[-1].startswith("livegen render works, but the loop test")


def test_a_loop_without_a_midi_system_fails_in_one_line(monkeypatch, real_loop):
    from livegen.midi import ports

    def nothing(choice="auto"):
        raise ports.PortError("no MIDI system found (tried: alsa, jack): start JACK")

    monkeypatch.setattr(ports, "resolve_api", nothing)
    line = doctor.check_loop("auto", ("in", "out"))
    assert not line.ok and line.asked and not line.needed
    assert line.text == "loop test: no MIDI system found (tried: alsa, jack): start JACK"
