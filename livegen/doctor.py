"""`livegen doctor`: can this machine run livegen? One line per check, ✓ or ✗.

Each ✗ line says what is wrong, then in one sentence what to do. The checks that `livegen render`
needs (Python, torch, mido, the shipped default model, the default preset) decide the exit
status: 0 when they all pass, 1 otherwise. The rest (other presets, the MIDI systems, JACK, the ALSA
sequencer, PortAudio) matter for live play or the monitor synth only, and their ✗ lines say so.
Every check runs inside its own guard, so a check that fails in an unforeseen way prints a ✗
line with the exception instead of a traceback, and the other checks still run.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from importlib import metadata

from livegen import paths
from livegen.cli import DEFAULT_PRESET

SUPPORTED_PYTHONS = ((3, 11), (3, 12))  # pyproject.toml: requires-python >=3.11,<3.13
DEFAULT_MODEL = "chorale"  # the shipped model the default preset plays
ALSA_SEQUENCER = "/dev/snd/seq"


@dataclass(frozen=True)
class Check:
    """One line of the report: what was found, and for a failure what to do."""

    ok: bool
    text: str
    fix: str = ""
    needed: bool = True  # needed for `livegen render` (decides the exit status)
    name: str = ""  # the check it came from, for the verdict (run_checks fills it in)


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
    return Check(True, f"shipped model {DEFAULT_MODEL!r} loads in {seconds:.2f} s "
                 f"({voices}; {path})")


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


def _checks() -> list[tuple[str, bool, Callable[[], Check | list[Check]]]]:
    """(name, needed for `livegen render`, check), in the order they print."""
    checks: list[tuple[str, bool, Callable[[], Check | list[Check]]]] = [
        ("Python", True, check_python),
        ("torch", True, check_torch),
        ("mido", True, check_mido),
        ("shipped model", True, check_model),
        ("presets", True, check_presets),
        ("MIDI systems", False, check_midi_systems),
        ("JACK", False, check_jack),
    ]
    if sys.platform.startswith("linux"):
        checks.append(("ALSA sequencer", False, check_alsa))
    checks.append(("PortAudio", False, check_portaudio))
    return checks


def run_checks() -> list[Check]:
    results: list[Check] = []
    for name, needed, check in _checks():
        try:
            found = check()
        except Exception as exc:
            found = Check(False, f"{name}: the check itself failed ({_short(exc)})",
                          "Run `livegen doctor` again; if this line stays, report it with the "
                          "line as written.", needed=needed)
        found = found if isinstance(found, list) else [found]
        results.extend(replace(r, name=name) for r in found)
    return results


def main(write: Callable[[str], None] = print) -> int:
    """Print one line per check and a verdict; 0 when `livegen render` works, 1 otherwise."""
    good, bad = _marks()
    results = run_checks()
    for r in results:
        write(f"{good} {r.text}" if r.ok else f"{bad} {r.text}. {r.fix}")
    blocking = list(dict.fromkeys(r.name for r in results if not r.ok and r.needed))
    if blocking:
        write(f"livegen render does not work yet: fix the {bad} lines above for "
              f"{', '.join(blocking)}, then run `livegen doctor` again.")
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


__all__ = ["Check", "main", "run_checks"]
