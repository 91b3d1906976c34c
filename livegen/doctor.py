"""`livegen doctor`: can this machine run livegen? One line per check, ✓ or ✗.

Each ✗ line says what is wrong, then in one sentence what to do. The checks that `livegen render`
needs (Python, torch, mido, the shipped default model, the default preset) decide the exit
status: 0 when they all pass, 1 otherwise. The rest (other presets, the MIDI systems and ports,
JACK, the ALSA sequencer, PortAudio and the audio output, the loop test) matter for live play or
the monitor synth only, and their ✗ lines say so; the one exception is a loop the user named with
`--loop IN OUT`: when that loop test fails, the exit status is 1 too. Every check runs inside its
own guard, so a check that fails in an unforeseen way prints a ✗ line with the exception instead
of a traceback, and the other checks still run.

The loop test measures the MIDI round trip on this machine. With a JACK server running (and
`--midi-api` auto or jack), doctor opens its own virtual input ("livegen in") and an output
connected to it through the JACK graph (JACK clients named livegen-doctor-<pid>); with
`--loop IN OUT` it listens on the port matching IN and plays into the port matching OUT (on the
`--midi-api` system), and the user's loop (a MIDI cable from the output back to the input, or a
DAW track that echoes its input) brings the notes back. It sends LOOP_MESSAGES note-ons
LOOP_INTERVAL_S apart, each followed by its note-off at the next send, with a sequence number in
the data bytes (note = n mod 128, velocity = 1 + n div 128), and a reader thread polls the input
as the engine's worker does (`MidiInput.poll`, which stamps each message with perf_counter at
pickup; LOOP_POLL_S between polls). A note's round trip is its pickup time minus its send time;
the line gives p50, p99 and max, the jitter (p99 − p50) and how many notes did not come back
within LOOP_WAIT_S after the last send (lost). Without JACK and without `--loop` the loop line
says how to run it.

Suggested settings, from the loop's jitter J (ms) and the default preset's timing:
- follow_ms ≥ 2·J + HUMAN_LATE_MS (20 ms: how late a player's note may be that the follow
  window waits for), rounded up to a multiple of 5 ms, at most 200 (a preset's limit);
- prewindow ≥ (2·J + HUMAN_EARLY_MS (20 ms: how early a player's note may be and still count for
  the next step)) / the length of a 16th note at the preset's tempo, rounded up to a multiple of
  0.05, at most 1.
A preset value at or above its bound is fine (follow_ms = 0, following off, too); one below gets
a ✗ line naming the value to set. Without a measurement there is no settings line.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from functools import partial
from importlib import metadata
from typing import TYPE_CHECKING, Protocol

from livegen import paths
from livegen.cli import DEFAULT_PRESET

if TYPE_CHECKING:
    from livegen.settings import TimingSettings

SUPPORTED_PYTHONS = ((3, 11), (3, 12))  # pyproject.toml: requires-python >=3.11,<3.13
DEFAULT_MODEL = "chorale"  # the shipped model the default preset plays
ALSA_SEQUENCER = "/dev/snd/seq"
# Model load times, in seconds: up to the first "fine", up to the second "slow but usable";
# the panel gives the engine ENGINE_START_S to start (livegen/process.py, `EngineProcess.start`).
MODEL_LOAD_FINE_S = 5.0
MODEL_LOAD_SLOW_S = 30.0
ENGINE_START_S = 60.0
# The loop test (module docstring).
LOOP_MESSAGES = 200
LOOP_INTERVAL_S = 0.010
LOOP_POLL_S = 0.0002
LOOP_WAIT_S = 0.5
LOOP_CLIENT = "livegen-doctor"
# The suggestion rule (module docstring).
HUMAN_LATE_MS = 20.0
HUMAN_EARLY_MS = 20.0
FOLLOW_STEP_MS = 5
FOLLOW_MAX_MS = 200  # the largest follow_ms a preset accepts (livegen/presets.py)
PREWINDOW_STEP = 0.05
MAX_PORTS_LISTED = 6

HOW_TO_LOOP = ("To measure MIDI timing here, start JACK and run `livegen doctor` again, or loop a "
               "MIDI output back to an input (a cable, or a DAW track that echoes its input) and "
               "run `livegen doctor --loop IN OUT`.")


@dataclass(frozen=True)
class Check:
    """One line of the report: what was found, and for a failure what to do."""

    ok: bool
    text: str
    fix: str = ""
    needed: bool = True  # needed for `livegen render` (decides the exit status)
    name: str = ""  # the check it came from, for the verdict (run_checks fills it in)
    asked: bool = False  # asked for on the command line (--loop): a failure decides it too


def check_python(version: Sequence[int] | None = None) -> Check:
    v = tuple(version if version is not None else sys.version_info[:3])
    text = f"Python {'.'.join(str(n) for n in v)}"
    if tuple(v[:2]) in SUPPORTED_PYTHONS:
        return Check(True, text)
    return Check(False, f"{text} is not supported",
                 "Make the virtual environment with Python 3.11 or 3.12 (for example "
                 "`python3.12 -m venv .venv`) and install livegen into it again.")


def check_torch() -> Check:
    try:
        import torch
    except Exception as exc:  # an ImportError, or an OSError from a broken native library
        return Check(False, f"torch cannot be imported ({_short(exc)})",
                     "Install PyTorch into this environment: `pip install torch` "
                     "(the CPU build is enough).")
    try:
        cuda = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except Exception as exc:  # a driver problem: livegen falls back to the CPU
        cuda = None
        problem = f" ({_short(exc)})"
    else:
        problem = ""
    where = (f"CUDA available: {cuda}" if cuda else
             f"CUDA not available{problem}: the model runs on the CPU, which is fine")
    return Check(True, f"torch {torch.__version__} ({where})")


def check_mido() -> Check:
    try:
        import mido  # noqa: F401
    except Exception as exc:
        return Check(False, f"mido cannot be imported ({_short(exc)})",
                     "Install it into this environment: `pip install mido`.")
    return Check(True, f"mido {metadata.version('mido')} (MIDI files)")


def load_verdict(seconds: float) -> str:
    """How a model load time reads to a user."""
    if seconds <= MODEL_LOAD_FINE_S:
        return "fine"
    if seconds <= MODEL_LOAD_SLOW_S:
        return "slow but usable, the panel waits this long when it starts the engine"
    return (f"very slow, the panel gives the engine {ENGINE_START_S:g} s to start: is the "
            "machine busy, or the disk slow?")


def check_model() -> Check:
    path = paths.model_path(DEFAULT_MODEL)
    if not path.is_file():
        return Check(False, f"shipped model {DEFAULT_MODEL!r}: {path} is missing",
                     "Reinstall livegen (`pip install -e .` in a checkout, after "
                     f"`git checkout models/{DEFAULT_MODEL}.pt`).")
    from livegen.model.modelfile import ModelFileError
    from livegen.model.runtime import Runtime
    try:
        t0 = time.perf_counter()
        runtime = Runtime(path, device="cpu")
        seconds = time.perf_counter() - t0
    except ModelFileError as exc:  # its message names the file and says what to do
        return Check(False, f"shipped model {DEFAULT_MODEL!r} does not load", _short(exc))
    except Exception as exc:
        return Check(False, f"shipped model {DEFAULT_MODEL!r} does not load ({_short(exc)})",
                     "Reinstall livegen, or restore the file from the checkout "
                     f"(`git checkout models/{DEFAULT_MODEL}.pt`).")
    voices = ", ".join(v.name for v in runtime.info.voices)
    return Check(True, f"shipped model {DEFAULT_MODEL!r} loads in {seconds:.1f} s: "
                 f"{load_verdict(seconds)} ({voices}; {path})")


def check_presets() -> list[Check]:
    from livegen.presets import list_presets, load_preset

    found = list_presets()
    checks: list[Check] = []
    good: list[str] = []
    for info in found:
        try:
            load_preset(info.path)
        except Exception as exc:
            default = info.name == DEFAULT_PRESET
            use = "livegen render uses it by default" if default else "until then it cannot load"
            checks.append(Check(False, f"{info.source} preset {info.name!r}: {_short(exc)}",
                                f"Fix or remove {info.path} ({use}).", needed=default))
        else:
            good.append(info.name)
    if not any(info.name == DEFAULT_PRESET for info in found):
        checks.append(Check(False, f"the default preset {DEFAULT_PRESET!r} is missing",
                            "Reinstall livegen (`pip install -e .` in a checkout, after "
                            f"`git checkout presets/{DEFAULT_PRESET}.toml`)."))
    if good:
        checks.insert(0, Check(True, f"{len(good)} preset{'s' if len(good) > 1 else ''} "
                               f"load: {', '.join(good)}"))
    return checks


def check_midi_systems() -> Check:
    try:
        from livegen.midi import ports
    except Exception as exc:
        return Check(False, f"python-rtmidi cannot be imported ({_short(exc)})",
                     "For live play, install it: `pip install python-rtmidi`.", needed=False)
    apis = ports.compiled_apis()
    if not apis:
        return Check(False, "python-rtmidi offers no MIDI system",
                     "For live play, install a python-rtmidi built with JACK, ALSA, CoreMIDI "
                     "or Windows MM support.", needed=False)
    return Check(True, f"MIDI systems python-rtmidi offers: {', '.join(apis)}")


def check_jack() -> Check:
    from livegen.midi import ports

    server = ports.jack_server_name()
    state = ports.jack_server_state(server)
    if state == "up":
        return Check(True, f"JACK server {server!r} is running")
    found = "is not running" if state == "down" else "was not found (no server socket)"
    return Check(False, f"JACK server {server!r} {found}",
                 "For live play over JACK, start it (`jackd -d alsa`, QjackCtl or Cadence; "
                 "with PipeWire run `pw-jack livegen`), or use another MIDI system.",
                 needed=False)


def check_alsa() -> Check:
    if os.path.exists(ALSA_SEQUENCER):
        return Check(True, f"ALSA sequencer {ALSA_SEQUENCER} is present")
    return Check(False, f"ALSA sequencer {ALSA_SEQUENCER} is missing",
                 "For live play over ALSA, load it with `sudo modprobe snd-seq`, or use JACK.",
                 needed=False)


def check_midi_ports(midi_api: str = "auto") -> list[Check]:
    """The MIDI inputs and outputs livegen sees on the chosen system, with what they mean."""
    try:
        from livegen.midi import ports
    except Exception:  # the MIDI systems line says so already
        return []
    try:
        with _quiet_stderr():  # libjack writes its own lines when no server answers
            api = ports.resolve_api(midi_api)
            inputs, outputs = ports.list_ports(api)
    except ports.PortError as exc:
        return [Check(False, f"MIDI ports ({midi_api}): none to list", _sentence(str(exc)),
                      needed=False)]
    system = ports.api_name(api)
    windows = sys.platform == "win32" and system != "jack"
    keyboards = [name for name in inputs if "midi through" not in name.casefold()]
    if keyboards:
        listens = (f"MIDI inputs ({system}): {_names(inputs)}; livegen listens to one with "
                   f"--input NAME")
        listens += "" if windows else f", or creates {ports.VIRTUAL_INPUT_NAME!r} without it"
        checks = [Check(True, listens)]
    elif windows:
        checks = [Check(False, f"MIDI inputs ({system}): none", ports.WINDOWS_VIRTUAL_MESSAGE,
                        needed=False)]
    else:
        only = f"only {_names(inputs)}: " if inputs else "none: "
        checks = [Check(True, f"MIDI inputs ({system}): {only}no MIDI keyboard is connected; "
                        f"livegen will create {ports.VIRTUAL_INPUT_NAME!r} for your keyboard or "
                        "DAW to connect to")]
    if outputs:
        plays = (f"MIDI outputs ({system}): {_names(outputs)}; livegen plays into one with "
                 f"--output NAME")
        plays += "" if windows else f", or creates {ports.VIRTUAL_OUTPUT_NAME!r} without it"
        checks.append(Check(True, plays))
    elif windows:
        checks.append(Check(False, f"MIDI outputs ({system}): none",
                            ports.WINDOWS_VIRTUAL_MESSAGE, needed=False))
    else:
        checks.append(Check(True, f"MIDI outputs ({system}): none: no synth or DAW is listening "
                            f"yet; livegen will create {ports.VIRTUAL_OUTPUT_NAME!r} for one to "
                            "connect to (or hear the voices with --synth)"))
    return checks


def check_portaudio() -> Check:
    try:
        import sounddevice
    except (OSError, ImportError) as exc:
        return Check(False, f"PortAudio does not load ({_short(exc)})",
                     "For --synth (live monitor sound) install PortAudio (Debian and Ubuntu: "
                     "`sudo apt install libportaudio2`; macOS: `brew install portaudio`); "
                     "`render --wav` works without it.", needed=False)
    version = sounddevice.get_portaudio_version()[1].split(",")[0]
    return Check(True, f"PortAudio loads ({version})")


def check_audio_device() -> list[Check]:
    """The default audio output PortAudio offers, where `--synth` plays (livegen/synth.py)."""
    try:
        import sounddevice
    except (OSError, ImportError):  # the PortAudio line says so already
        return []
    try:
        info = sounddevice.query_devices(None, "output")
    except (ValueError, sounddevice.PortAudioError) as exc:
        return [Check(False, f"no default audio output device (PortAudio: {_short(exc)})",
                      "For --synth, connect or enable a sound card or start JACK or PipeWire, "
                      "then run `livegen doctor` again (`python -m sounddevice` lists the "
                      "devices); MIDI output and `render --wav` work without one.",
                      needed=False)]
    hostapi = sounddevice.query_hostapis(info["hostapi"])["name"]
    rate = float(info["default_samplerate"])
    return [Check(True, f"audio output {info['name']!r} ({hostapi}) at {rate:g} Hz: "
                  "--synth plays there")]


# ------------------------------------------------------------------------------ the loop test


class _Sender(Protocol):
    def send(self, message: bytes | bytearray | Sequence[int]) -> bool: ...


class _Receiver(Protocol):
    def poll(self, limit: int = 512) -> list[tuple[bytes, float]]: ...


@dataclass(frozen=True)
class LoopResult:
    """What the loop test measured: the round trips (ms, sorted) of the notes that came back."""

    through: str  # the way the notes went, for the report
    sent: int
    round_trips_ms: tuple[float, ...]

    @property
    def received(self) -> int:
        return len(self.round_trips_ms)

    @property
    def lost(self) -> int:
        return self.sent - self.received

    def percentile(self, q: float) -> float:
        """The nearest-rank q-quantile (0 < q <= 1) of the round trips, in ms."""
        values = self.round_trips_ms
        return values[min(len(values) - 1, max(0, math.ceil(q * len(values)) - 1))]

    @property
    def p50(self) -> float:
        return self.percentile(0.5)

    @property
    def p99(self) -> float:
        return self.percentile(0.99)

    @property
    def max(self) -> float:
        return self.round_trips_ms[-1]

    @property
    def jitter(self) -> float:
        return self.p99 - self.p50


def loop_message(seq: int) -> bytes:
    """The note-on that carries sequence number `seq` (module docstring)."""
    return bytes((0x90, seq % 128, 1 + seq // 128))


def loop_sequence(message: bytes) -> int | None:
    """The sequence number a loop note-on carries; None for any other message."""
    if len(message) != 3 or message[0] != 0x90 or not 1 <= message[2] <= 127:
        return None
    return message[1] + 128 * (message[2] - 1)


def measure_loop(output: _Sender, source: _Receiver, through: str,
                 count: int = LOOP_MESSAGES, interval: float = LOOP_INTERVAL_S,
                 wait: float = LOOP_WAIT_S) -> LoopResult:
    """Send `count` numbered notes on `output`, `interval` apart, and time their return on
    `source` from a polling reader thread (module docstring)."""
    if not 0 < count <= 127 * 128:
        raise ValueError(f"the loop test sends 1 to {127 * 128} notes, not {count}")
    arrivals: dict[int, float] = {}
    sent_at: list[float] = []  # by sequence number
    errors: list[BaseException] = []
    stop = threading.Event()

    def read() -> None:
        try:
            while True:
                done = stop.is_set()  # one more drain after the stop
                for data, at in source.poll():
                    seq = loop_sequence(data)
                    # a note not sent yet is someone else's (a keyboard on a --loop input)
                    if seq is not None and seq < len(sent_at) and seq not in arrivals:
                        arrivals[seq] = at
                if done:
                    return
                time.sleep(LOOP_POLL_S)
        except Exception as exc:  # reported by the caller, never as a thread's traceback
            errors.append(exc)

    reader = threading.Thread(target=read, name="livegen-doctor-loop", daemon=True)
    reader.start()
    try:
        start = time.perf_counter()
        for seq in range(count):
            delay = start + seq * interval - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            if seq:
                last = loop_message(seq - 1)
                output.send(bytes((0x80, last[1], 0)))
            sent_at.append(time.perf_counter())
            output.send(loop_message(seq))
        time.sleep(interval)
        last = loop_message(count - 1)
        output.send(bytes((0x80, last[1], 0)))
        deadline = time.perf_counter() + wait
        while len(arrivals) < count and time.perf_counter() < deadline and not errors:
            time.sleep(0.005)
    finally:
        stop.set()
        reader.join(timeout=2.0)
    if errors:
        raise errors[0]
    trips = sorted((at - sent_at[seq]) * 1000.0 for seq, at in list(arrivals.items()))
    return LoopResult(through, count, tuple(trips))


@dataclass
class _Measured:
    """What one doctor run's loop test found, for the settings check after it."""

    loop: LoopResult | None = None


def check_loop(midi_api: str = "auto", loop: tuple[str, str] | None = None,
               measured: _Measured | None = None) -> Check:
    """The loop test (module docstring): through JACK, or through the ports `loop` names."""
    from livegen.midi import ports

    asked = loop is not None
    client = f"{LOOP_CLIENT}-{os.getpid()}"
    server = ports.jack_server_name()
    if loop is None:
        if midi_api not in ("auto", "jack"):
            return Check(False, f"loop test: not run (its own loop goes through JACK, and "
                         f"--midi-api is {midi_api})",
                         f"To measure MIDI timing on {midi_api}, loop a MIDI output back to an "
                         "input (a cable, or a DAW track that echoes its input) and run "
                         f"`livegen doctor --midi-api {midi_api} --loop IN OUT`.", needed=False)
        if "jack" not in ports.compiled_apis() or ports.jack_server_state(server) == "down":
            return Check(False, f"loop test: not run (no JACK server {server!r} is running)",
                         HOW_TO_LOOP, needed=False)
        wanted: tuple[str | None, str] = (None, f"{client}:{ports.VIRTUAL_INPUT_NAME}")
        api: str | int = "jack"
    else:
        wanted = loop
        try:
            with _quiet_stderr():
                api = ports.resolve_api(midi_api)
        except ports.PortError as exc:
            return Check(False, f"loop test: {exc}",
                         "The loop needs a MIDI system that works: see the MIDI ports line "
                         "above.", needed=False, asked=True)
    source: ports.MidiInput | None = None
    output: ports.MidiOutput | None = None
    try:
        try:
            with _quiet_stderr():
                source = ports.open_input(wanted[0], api=api, client_name=client)
                output = ports.open_output(wanted[1], api=api, client_name=client)
        except ports.PortError as exc:
            if not asked:  # no server answered (no socket to tell beforehand)
                return Check(False, f"loop test: not run (no JACK server {server!r} answers)",
                             HOW_TO_LOOP, needed=False)
            return Check(False, f"loop test: {exc}",
                         "Name ports that exist: IN is one livegen listens to and OUT one it "
                         "plays into (`livegen ports` lists them), and what is played into OUT "
                         "must come back into IN.", needed=False, asked=True)
        through = (f"{output.name!r} back to {source.name!r}" if asked else
                   f"JACK server {server!r}")
        result = measure_loop(output, source, through, LOOP_MESSAGES)
    finally:
        with _quiet_stderr():
            for port in (output, source):
                if port is not None:
                    port.close()
    if measured is not None:
        measured.loop = result
    return loop_verdict(result, asked)


def loop_verdict(result: LoopResult, asked: bool = False) -> Check:
    """The loop test's line for what it measured."""
    head = f"loop test through {result.through}"
    if not result.received:
        fix = ("Check that what is played into OUT comes back into IN (a MIDI cable from the "
               "output to the input, or a DAW track that records IN with its input echoed to "
               "OUT), then run `livegen doctor --loop IN OUT` again." if asked else
               "Run `livegen doctor` again; if this line stays, JACK is not passing MIDI "
               "between clients: restart the server and look at its log.")
        return Check(False, f"{head}: none of the {result.sent} notes came back", fix,
                     needed=False, asked=asked)
    figures = (f"{result.sent} notes, round trip p50 {result.p50:.1f} ms / p99 "
               f"{result.p99:.1f} ms / max {result.max:.1f} ms, jitter {result.jitter:.1f} ms")
    if result.lost:
        fix = ("Check the loop's cable or the DAW track's echo, and that nothing else on the "
               "way drops notes, then run `livegen doctor --loop IN OUT` again." if asked else
               "MIDI is being dropped on this machine: run JACK with realtime scheduling "
               "(jackd without --no-realtime, or realtime on in QjackCtl) and close busy "
               "programs, then run `livegen doctor` again.")
        return Check(False, f"{head}: {figures}, {result.lost} lost", fix, needed=False,
                     asked=asked)
    return Check(True, f"{head}: {figures}, none lost")


# ------------------------------------------------------------------------ suggested settings


@dataclass(frozen=True)
class Suggestion:
    """The least follow_ms and prewindow that cover a measured jitter (module docstring)."""

    follow_ms: int
    prewindow: float
    bpm: float


def suggest(jitter_ms: float, bpm: float) -> Suggestion:
    """The suggestion rule of the module docstring, for jitter `jitter_ms` at `bpm`."""
    follow = _round_up(2.0 * jitter_ms + HUMAN_LATE_MS, FOLLOW_STEP_MS)
    step_ms = 60_000.0 / bpm / 4.0  # a 16th note: one step of the grid
    share = _round_up((2.0 * jitter_ms + HUMAN_EARLY_MS) / step_ms, PREWINDOW_STEP)
    return Suggestion(int(min(follow, FOLLOW_MAX_MS)), round(min(share, 1.0), 2), bpm)


def _round_up(value: float, step: float) -> float:
    """`value` rounded up to a multiple of `step` (a hair's float error does not add a step)."""
    return math.ceil(value / step - 1e-9) * step


def settings_verdict(result: LoopResult, timing: TimingSettings, source: str) -> Check:
    """The settings line: the preset's follow_ms and prewindow against the suggestion."""
    wanted = suggest(result.jitter, timing.bpm)
    head = (f"settings for this machine: a MIDI round trip takes at most {result.p99:.1f} ms "
            f"(p99) with {result.jitter:.1f} ms jitter")
    follow_ok = timing.follow_ms == 0 or timing.follow_ms >= wanted.follow_ms
    prewindow_ok = timing.prewindow >= wanted.prewindow - 1e-9
    if timing.follow_ms == 0:
        follow = f"follow_ms = 0 ({source}) turns the follow window off"
    elif follow_ok:
        follow = (f"follow_ms = {timing.follow_ms:g} ({source}) is plenty "
                  f"({wanted.follow_ms} would do)")
    else:
        follow = (f"follow_ms = {timing.follow_ms:g} ({source}) is short: "
                  f"{wanted.follow_ms} covers it")
    tempo = f"at {timing.bpm:g} BPM"
    if prewindow_ok:
        prewindow = (f"prewindow {timing.prewindow:g} is fine {tempo} "
                     f"({wanted.prewindow:g} would do)")
    else:
        prewindow = (f"prewindow {timing.prewindow:g} is short {tempo}: "
                     f"{wanted.prewindow:g} covers it")
    text = f"{head}: {follow}; {prewindow}"
    if follow_ok and prewindow_ok:
        return Check(True, text)
    values = [f"follow_ms = {wanted.follow_ms}"] if not follow_ok else []
    values += [f"prewindow = {wanted.prewindow:g}"] if not prewindow_ok else []
    return Check(False, text,
                 f"Set {' and '.join(values)} in the [timing] section of your preset (copy "
                 f"{source} into your presets folder; `livegen presets` says where it is).",
                 needed=False)


def check_settings(measured: _Measured) -> list[Check]:
    """Suggested follow_ms and prewindow from the loop test's jitter; nothing without one."""
    result = measured.loop
    if result is None or not result.received:
        return []
    from livegen.settings import TimingSettings

    try:
        from livegen.presets import find_preset, load_preset
        timing = load_preset(find_preset(DEFAULT_PRESET)).timing
        source = f"preset {DEFAULT_PRESET!r}"
    except Exception:  # the presets line says what is wrong with it
        timing, source = TimingSettings(), "the default"
    return [settings_verdict(result, timing, source)]


# ------------------------------------------------------------------------------- the report


_Entry = tuple[str, bool, bool, Callable[[], Check | list[Check]]]


def _checks(midi_api: str = "auto", loop: tuple[str, str] | None = None) -> list[_Entry]:
    """(name, needed for `livegen render`, asked for on the command line, check), in the order
    they print."""
    measured = _Measured()
    checks: list[_Entry] = [
        ("Python", True, False, check_python),
        ("torch", True, False, check_torch),
        ("mido", True, False, check_mido),
        ("shipped model", True, False, check_model),
        ("presets", True, False, check_presets),
        ("MIDI systems", False, False, check_midi_systems),
        ("JACK", False, False, check_jack),
    ]
    if sys.platform.startswith("linux"):
        checks.append(("ALSA sequencer", False, False, check_alsa))
    checks += [
        ("MIDI ports", False, False, partial(check_midi_ports, midi_api)),
        ("PortAudio", False, False, check_portaudio),
        ("audio output", False, False, check_audio_device),
        ("loop test", False, loop is not None, partial(check_loop, midi_api, loop, measured)),
        ("settings", False, False, partial(check_settings, measured)),
    ]
    return checks


def run_checks(midi_api: str = "auto", loop: tuple[str, str] | None = None) -> list[Check]:
    results: list[Check] = []
    for name, needed, asked, check in _checks(midi_api, loop):
        try:
            found = check()
        except Exception as exc:
            found = Check(False, f"{name}: the check itself failed ({_short(exc)})",
                          "Run `livegen doctor` again; if this line stays, report it with the "
                          "line as written.", needed=needed, asked=asked)
        found = found if isinstance(found, list) else [found]
        results.extend(replace(r, name=name) for r in found)
    return results


def main(write: Callable[[str], None] = print, midi_api: str = "auto",
         loop: tuple[str, str] | None = None) -> int:
    """Print one line per check and a verdict; 0 when `livegen render` works (and a loop named
    with --loop passed), 1 otherwise."""
    good, bad = _marks()
    results = run_checks(midi_api, loop)
    for r in results:
        write(f"{good} {r.text}" if r.ok else f"{bad} {r.text}. {r.fix}")
    blocking = list(dict.fromkeys(r.name for r in results if not r.ok and r.needed))
    if blocking:
        write(f"livegen render does not work yet: fix the {bad} lines above for "
              f"{', '.join(blocking)}, then run `livegen doctor` again.")
        return 1
    if any(not r.ok and r.asked for r in results):
        write(f"livegen render works, but the loop test you asked for failed: see its {bad} "
              "line above.")
        return 1
    if any(not r.ok for r in results):
        write(f"livegen render works; the {bad} lines above matter for live play or the "
              "monitor synth only.")
    else:
        write("livegen render and live play have what they need.")
    return 0


def _marks() -> tuple[str, str]:
    """✓ and ✗, or + and x where stdout cannot write them (a legacy Windows console)."""
    try:
        "✓✗".encode(sys.stdout.encoding or "ascii")
    except (UnicodeEncodeError, LookupError):
        return "+", "x"
    return "✓", "✗"


def _short(exc: BaseException) -> str:
    """An exception as one line: its message, or its type when the message is empty."""
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def _sentence(text: str) -> str:
    """`text` as a sentence: a capital first letter and a full stop."""
    text = text.strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else f"{text}."


def _names(names: Sequence[str]) -> str:
    """Port names for a line: quoted, the first MAX_PORTS_LISTED, then how many more."""
    shown = ", ".join(repr(name) for name in names[:MAX_PORTS_LISTED])
    more = len(names) - MAX_PORTS_LISTED
    return f"{shown} and {more} more" if more > 0 else shown


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Send the process's stderr (file descriptor 2) to the null device meanwhile: libjack and
    RtMidi write their own lines there when a MIDI system does not answer, and the report's
    lines already say what happened."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no stderr to quiet
        yield
        return
    try:
        null = os.open(os.devnull, os.O_WRONLY)
    except OSError:
        os.close(saved)
        yield
        return
    try:
        os.dup2(null, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


__all__ = ["Check", "LoopResult", "Suggestion", "main", "measure_loop", "run_checks", "suggest"]
