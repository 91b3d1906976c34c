"""OSC control: every live control and the transport, addressable over Open Sound Control (UDP),
through the one entry point the panel and MIDI learn use, `ControlMessage` -> `Engine.control`
(docs/ARCHITECTURE.md, "Threads" and "How a change flows").

`livegen run --osc-port N` (headless or with the panel) listens on UDP port N of 127.0.0.1,
this machine only; `--osc-host ADDR` names another interface (0.0.0.0: every network this
machine is on, with no password). The address space:

    /livegen/<control> <value>       one per row of `livegen.controls.CONTROLS`:
        /livegen/temperature 0.9         numbers (temperature, top_p, density, follow_ms, swing,
        /livegen/bpm 96                  humanize_ms, bpm) are clamped to the control's span,
                                         as the panel's keys are
        /livegen/key_lock "G major"      "off", "auto" or a key ("F# minor", "Bb", "Am")
        /livegen/takeover 1              a switch: 1/0, true/false or "on"/"off"
    /livegen/voice/<name> 0|1        a voice of the model on or off (e.g. /livegen/voice/bass 0)
    /livegen/transport start|stop|toggle
                                     also 1 (start) or 0 (stop), so a toggle button works; no
                                     value toggles
    /livegen/panic                   every note off now; a value of 0 (a push button's release)
                                     does nothing
    /livegen/record 0|1              record to a MIDI file in the user data folder, or stop
    /livegen/preset <name or path>   load a preset (a name as `livegen presets` lists it, or a
                                     .toml file on the engine's machine); a bad one leaves the
                                     running preset as it is
    /livegen/learn <control>         MIDI learn: the next knob moved drives the control (a name
                                     above, "transport" or "voice.<name>"); no value or "off"
                                     cancels

Every value is checked where it arrives: an unknown address or control, a missing value or a
value of the wrong type is ignored, and one sentence saying so shows where the engine's
messages show (the panel's log, the headless status line); the same sentence is not repeated
within `REPEAT_S`. Nothing is sent back to the sender.

Threads. One thread of its own reads a blocking UDP socket with a timeout of `POLL_S`: it holds
no GIL while it waits and never busy-waits (an idle pass is one `recvfrom` that times out, ten
times a second). python-osc's `Dispatcher` parses each datagram (a message or a bundle; a
bundle's time tag never makes it wait), and the messages of a fader sweep are handled one at a
time, in the order they came, so the last value sent is the one that stays (python-osc's
socketserver-based servers were not used: the threading one starts a thread per datagram, with
no order, and the blocking one builds a new selector for every wait). The handler only checks
the message and builds `ControlMessage`s for `Engine.control` (a thread-safe deque the worker
drains on its next pass); it reads the engine's model voices and model file but changes
nothing of the engine's.
A preset is read and checked in this thread, so the worker only ever receives good `Settings`
(as from the panel, which reads presets in its own process). Refusals reach the engine's
messages through the worker itself (`start_osc`), since `Engine.note` belongs to the worker.

A port that cannot be opened (in use, no permission, an address not of this machine) is said
in one sentence as an engine message, and the engine plays on without OSC, like the monitor
synth without an audio device: the music is never held up for a remote control.
"""

from __future__ import annotations

import errno
import math
import socket
import threading
import time
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pythonosc.dispatcher import Dispatcher

from livegen.controls import BY_NAME, CONTROLS, LEARNABLE, VOICE_PREFIX, ControlMessage, clamp
from livegen.settings import Settings
from livegen.tonality import key_name, parse_key

if TYPE_CHECKING:
    from livegen.engine import Engine

PREFIX = "/livegen/"
DEFAULT_HOST = "127.0.0.1"
POLL_S = 0.1  # the longest the server thread waits on the socket before checking for stop
MAX_DATAGRAM = 65535
REPEAT_S = 2.0  # the same refusal is said once in this long (a fader sending a bad value)
STOP_S = 1.0  # how long `stop` waits for the server thread
TRANSPORT_WORDS = ("start", "stop", "toggle")
KEYS = '"off", "auto" or a key such as "G major", "F# minor", "Bb" or "Am"'
_SWITCH_WORDS = {"on": True, "off": False, "true": True, "false": False, "1": True, "0": False}
_KINDS = {c.name: type(getattr(getattr(Settings(), c.section), c.field)) for c in CONTROLS}


class OscError(Exception):
    """The OSC port could not be opened; the message is one sentence for the player."""


class Refused(Exception):
    """A message that is ignored; the text says why and `ending` what follows (the sentence
    said is "OSC ADDRESS: TEXT; ENDING")."""

    def __init__(self, text: str, ending: str = "ignored") -> None:
        super().__init__(text)
        self.ending = ending


class Controllable(Protocol):
    def control(self, message: ControlMessage) -> None: ...


# ------------------------------------------------------------------------------ reading values


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"the text {value[:40]!r}"
    if isinstance(value, bytes | bytearray):
        return "a blob"
    if value is None:
        return "nil"
    return str(value)[:40]


def _one(args: Sequence[Any]) -> Any:
    if not args:
        raise Refused("needs a value")
    if len(args) > 1:
        raise Refused(f"takes one value, not {len(args)}")
    return args[0]


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Refused(f"{_shown(value)} is not a number")
    if not math.isfinite(value):
        raise Refused(f"{value} is not a number")
    if isinstance(value, float):  # OSC floats are 32-bit: 0.9 arrives as 0.8999999761...
        value = float(f"{value:.7g}")
    return clamp(name, value)


def _switch(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and math.isfinite(value):
        return value >= 0.5
    if isinstance(value, str) and value.strip().lower() in _SWITCH_WORDS:
        return _SWITCH_WORDS[value.strip().lower()]
    raise Refused(f"{_shown(value)} is not on or off: give 1 or 0")


def _key_lock(value: Any) -> str:
    if not isinstance(value, str):
        raise Refused(f"{_shown(value)} is not a key")
    if value.strip() in ("off", "auto"):
        return value.strip()
    try:
        return key_name(*parse_key(value))
    except ValueError:
        raise Refused(f"{_shown(value)} is not a key: give {KEYS}") from None


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise Refused(f"{_shown(value)} is not a name")
    return value.strip()


def _transport(args: Sequence[Any]) -> str:
    if not args:
        return "toggle"
    value = _one(args)
    if isinstance(value, str) and value.strip().lower() in TRANSPORT_WORDS:
        return value.strip().lower()
    try:
        return "start" if _switch(value) else "stop"
    except Refused:
        raise Refused(f"{_shown(value)} is not start, stop or toggle (nor 1 or 0)") from None


def _learn(args: Sequence[Any], voices: Collection[str] | None) -> str | None:
    if not args:
        return None
    name = _text(_one(args))
    if name == "off":
        return None
    known = [*LEARNABLE, *(VOICE_PREFIX + v for v in voices or ())]
    if name in known or (voices is None and name.startswith(VOICE_PREFIX)):
        return name
    raise Refused(f"{name!r} cannot be learned (these can: {', '.join(known)})")


def read_message(address: str, args: Sequence[Any],
                 voices: Collection[str] | None = None) -> ControlMessage | None:
    """The control an OSC message asks for (None: nothing to do), without the preset: checks
    the address and the values and raises `Refused` with the reason. `voices`: the model's
    voice names (None: any name is taken)."""
    if not address.startswith(PREFIX):
        raise Refused(f"not a livegen address (they start with {PREFIX})")
    name = address[len(PREFIX):]
    if name.startswith("voice/"):
        voice = name[len("voice/"):]
        if not voice or (voices is not None and voice not in voices):
            raise Refused(f"the model has no voice {voice!r} (it has "
                          f"{', '.join(voices or ())})")
        return ControlMessage("set", name=VOICE_PREFIX + voice, value=_switch(_one(args)))
    if name in BY_NAME:
        value = _one(args)
        control = BY_NAME[name]
        if control.span is not None:
            return ControlMessage("set", name=name, value=_number(name, value))
        if name == "key_lock":
            return ControlMessage("set", name=name, value=_key_lock(value))
        if _KINDS[name] is bool:
            return ControlMessage("set", name=name, value=_switch(value))
        return ControlMessage("set", name=name, value=_text(value))
    match name:
        case "transport":
            return ControlMessage("transport", value=_transport(args))
        case "panic":
            if len(args) == 1 and not isinstance(args[0], str) and not _switch(args[0]):
                return None  # a push button's release
            return ControlMessage("panic")
        case "record":
            return ControlMessage("record", value=_switch(_one(args)))
        case "learn":
            return ControlMessage("learn", name=_learn(args, voices))
    names = ", ".join([*BY_NAME, "voice/<name>", "transport", "panic", "record", "preset",
                       "learn"])
    raise Refused(f"livegen has no control {name!r} (it has {names})")


def read_preset(args: Sequence[Any]) -> Settings:
    """The preset `/livegen/preset` names, read and checked; `Refused` with its error."""
    from livegen.presets import PresetError, find_preset, load_preset

    name = _text(_one(args))
    try:
        return load_preset(find_preset(name))
    except PresetError as exc:
        raise Refused(str(exc).rstrip("."), ending="the running preset stays") from None


# ------------------------------------------------------------------------------------- server


def _bind_error(exc: BaseException, host: str, port: int) -> OscError:
    where = f"UDP port {port} on {host}"
    if isinstance(exc, socket.gaierror):
        return OscError(f"OSC off: cannot find the address {host!r} ({exc.strerror}); give "
                        f"an address of this machine, such as {DEFAULT_HOST}")
    code = getattr(exc, "errno", None)
    if code == errno.EADDRINUSE:
        return OscError(f"OSC off: {where} is in use by another program; choose another port "
                        "with --osc-port")
    if code == errno.EACCES:
        return OscError(f"OSC off: no permission to open {where} (ports below 1024 need "
                        "root); choose a port from 1024 up")
    if code == errno.EADDRNOTAVAIL:
        return OscError(f"OSC off: {host} is not an address of this machine; give one of its "
                        f"addresses, {DEFAULT_HOST} (this machine only) or 0.0.0.0 (every "
                        "network)")
    reason = getattr(exc, "strerror", None) or str(exc)
    return OscError(f"OSC off: cannot open {where}: {reason}")


class OscServer:
    """Listens for OSC on UDP `host`:`port` (0: any free port; `address` says which) and sends
    the controls it reads to `target.control`. `say` takes the sentence for each ignored
    message and must be safe to call from the server's thread; `voices` gives the model's
    voice names and `model` the model file now loaded (so a preset naming another model
    switches to it, as the panel does); both are only read."""

    def __init__(self, target: Controllable, host: str = DEFAULT_HOST, port: int = 0, *,
                 say: Callable[[str], None],
                 voices: Callable[[], Collection[str]] | None = None,
                 model: Callable[[], Path | None] | None = None) -> None:
        self.target = target
        self.host, self.port = host, port
        self.say = say
        self.voices = voices
        self.model = model
        self._socket: socket.socket | None = None
        self._dispatcher = Dispatcher(strict_timing=False)  # a time tag never makes it wait
        self._dispatcher.set_default_handler(self._handle)
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._last_said: tuple[str, float] = ("", float("-inf"))

    @property
    def address(self) -> tuple[str, int]:
        """The address and port listened on (the port found, when 0 was asked for)."""
        if self._socket is None:
            return self.host, self.port
        host, port = self._socket.getsockname()[:2]
        return str(host), int(port)

    def start(self) -> None:
        """Open the port and start the server's thread; `OscError` when the port cannot be
        opened."""
        if not 0 <= self.port <= 65535:
            raise OscError(f"OSC off: {self.port} is not a UDP port: give 1 to 65535")
        try:
            family, _, _, _, where = socket.getaddrinfo(self.host, self.port,
                                                        type=socket.SOCK_DGRAM)[0]
            sock = socket.socket(family, socket.SOCK_DGRAM)
            try:
                sock.bind(where)
            except OSError:
                sock.close()
                raise
        except OSError as exc:
            raise _bind_error(exc, self.host, self.port) from None
        sock.settimeout(POLL_S)
        self._socket = sock
        self._stopping.clear()
        self._thread = threading.Thread(target=self._serve, name="livegen-osc", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and close the port (at once: a datagram to itself wakes it)."""
        sock, thread = self._socket, self._thread
        if sock is None or thread is None:
            return
        self._stopping.set()
        self._wake(sock)
        thread.join(STOP_S)
        sock.close()
        self._socket = self._thread = None

    def __enter__(self) -> OscServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _serve(self) -> None:
        sock = self._socket
        assert sock is not None
        while not self._stopping.is_set():
            try:
                data, sender = sock.recvfrom(MAX_DATAGRAM)  # waits at most POLL_S, no GIL held
            except TimeoutError:
                continue
            except OSError as exc:  # the socket closed under it
                if not self._stopping.is_set():
                    self._say(f"OSC off: the port failed: {exc.strerror or exc}")
                return
            try:  # handlers catch their own errors; a datagram that is not OSC is dropped
                self._dispatcher.call_handlers_for_packet(data, sender)
            except Exception as exc:
                self._say(f"OSC: a datagram that could not be read ({exc}); ignored")

    @staticmethod
    def _wake(sock: socket.socket) -> None:
        host, port = sock.getsockname()[:2]
        family = sock.family
        if host in ("0.0.0.0", "::", ""):
            host = "::1" if family == socket.AF_INET6 else "127.0.0.1"
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as wake:
                wake.sendto(b"", (host, port))  # not OSC: the server drops it
        except OSError:
            pass  # the thread still sees the stop within POLL_S

    def _handle(self, address: str, *args: Any) -> None:
        """One OSC message, in the server's thread: controls for the engine, or a sentence."""
        try:
            for message in self._messages(address, args):
                self.target.control(message)
        except Refused as exc:
            self._say(f"OSC {address[:80]}: {exc}; {exc.ending}")
        except Exception as exc:  # a sender can never stop the server
            self._say(f"OSC {address[:80]}: {exc or type(exc).__name__}; ignored")

    def _messages(self, address: str, args: Sequence[Any]) -> list[ControlMessage]:
        if address == PREFIX + "preset":
            settings = read_preset(args)
            messages = [ControlMessage("settings", value=settings)]
            file = self._preset_model(settings)
            if file is not None:
                messages.append(ControlMessage("model", value=str(file)))
            return messages
        voices = self.voices() if self.voices is not None else None
        message = read_message(address, args, voices)
        return [message] if message is not None else []

    def _preset_model(self, settings: Settings) -> Path | None:
        """The preset's model file when it is not the one loaded (None: keep the model)."""
        if self.model is None:
            return None
        from livegen.paths import model_path

        loaded = self.model()
        wanted = model_path(settings.model)
        if loaded is not None and wanted.resolve() == loaded.resolve():
            return None
        return wanted

    def _say(self, text: str) -> None:
        now = time.monotonic()
        last, at = self._last_said
        if text == last and now - at < REPEAT_S:
            return
        self._last_said = (text, now)
        self.say(text)


# ------------------------------------------------------------------------------ the engine


def start_osc(engine: Engine, host: str = DEFAULT_HOST, port: int = 0) -> OscServer | None:
    """Call before `engine.run`, in the thread that will run it: OSC control of `engine` on
    UDP `host`:`port`, said as an engine message; None (and the reason said) when the port
    cannot be opened, and the engine plays on without it."""
    def say(text: str) -> None:  # the engine's messages are the worker's: queue it there
        engine.control(ControlMessage("note", value=text))

    server = OscServer(engine, host, port, say=say,
                       voices=lambda: [v.name for v in engine.acc.voices],
                       model=lambda: engine.runtime.path)
    try:
        server.start()
    except OscError as exc:
        engine.note(str(exc))
        return None
    where, number = server.address
    network = "" if where.startswith("127.") or where == "::1" else " (open to the network)"
    engine.note(f"OSC control on UDP {where}:{number}{network}: /livegen/<control> <value>")
    return server
