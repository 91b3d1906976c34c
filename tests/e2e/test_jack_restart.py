"""The JACK server dies and comes back while voices sound: the engine's ports come back, it
answers a note within about a second of the server's return, and the notes that sounded get
their note-offs (then CC64=0/CC123/CC120) once the output is back."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from conftest import JackTestClient
from jackserver import JackServer

from livegen.engine import Engine
from livegen.midi import ports
from livegen.model.runtime import Runtime
from livegen.settings import Settings, TimingSettings, VoiceSettings
from tests.helpers import wait_for

pytestmark = [pytest.mark.jack, pytest.mark.timeout(120)]

MODEL = Path(__file__).resolve().parents[2] / "models" / "chorale.pt"
TRIES = 3  # server deaths at most, for one that the engine sees while a voice sounds


def connected_tester(client: str) -> JackTestClient:
    """A tester listening to the engine's "livegen out" and playing into its "livegen in",
    each connected as soon as the port appears, as a patchbay reconnects: the engine ends the
    notes a restart cut RECONNECT_GRACE_S after its output is back, for a patchbay to be there."""
    tester = JackTestClient("restart")
    try:
        tester.connect_input(f"{client}-01:livegen out", timeout=10)
        tester.connect_output(f"{client}:livegen in", timeout=10)
    except BaseException:
        tester.close()
        raise
    return tester


def play_until_voices_sound(engine: Engine, tester: JackTestClient) -> None:
    """Play melody notes until the engine sounds a voice; returns as soon as it does."""
    pitches = [72, 76, 79, 77]
    deadline = time.monotonic() + 20
    i = 0
    while not engine.ledger.sounding():
        assert time.monotonic() < deadline, "no voice sounded"
        tester.send([0x90, pitches[i % 4], 90])
        i += 1
        wait = time.monotonic() + 0.25
        while not engine.ledger.sounding() and time.monotonic() < wait:
            tester.receive(1000, timeout=0.002)  # read as it comes: the input queue is finite


def test_server_restart_reconnects_answers_and_ends_the_old_notes(
    jack_server: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    server = JackServer(log_path=tmp_path / "jackd.log")
    server.start()
    client = "restart-engine"
    monkeypatch.setenv("JACK_DEFAULT_SERVER", server.name)
    monkeypatch.setenv(ports.CLIENT_NAME_ENV, client)
    settings = Settings(name="test", voices=[VoiceSettings("alto", channel=2),
                                             VoiceSettings("tenor", channel=3),
                                             VoiceSettings("bass", channel=4)],
                        timing=TimingSettings(bpm=120.0, follow_ms=0.0))
    api = ports.resolve_api("jack")
    inp, out = ports.open_input(None, api), ports.open_output(None, api)
    engine = Engine(settings, Runtime(MODEL), inp, out, seed=3,
                    watches=[ports.PortWatch(port, interval=0.1) for port in (inp, out)])
    stop = threading.Event()
    thread = threading.Thread(target=engine.run, args=(stop.is_set,))
    thread.start()
    tester = None
    try:
        tester = connected_tester(client)
        sounding: set[tuple[int, int]] = set()
        for _ in range(TRIES):
            play_until_voices_sound(engine, tester)
            server.kill()  # at once, while the voices sound (the tester's client dies with it)
            wait_for(lambda: engine.port_state["out"] == "error", 5, "the engine to see the loss")
            # what sounded when the engine saw the loss: on a loaded machine every voice may
            # have ended before its next look (every 0.1 s here); then the server dies again
            sounding = set(engine.unresolved)
            tester.close()  # abandons its clients of the dead server (conftest.JackTestClient)
            server.start()
            back = time.monotonic()
            tester = connected_tester(client)
            wait_for(lambda: engine.port_state == {"in": "open", "out": "open"}, 5, "the ports")
            print(f"ports back {time.monotonic() - back:.2f} s after the server came back")
            if sounding:
                break
        assert sounding, f"no voice was sounding when the engine saw the server die ({TRIES} tries)"
        after: list[bytes] = []
        wait_for(lambda: after.extend(m for m, _ in tester.receive(1000, timeout=0.05))
                 or any(m[0] & 0xF0 == 0xB0 and m[1] == 120 for m in after), 10,
                 "the note-offs of the notes the restart cut")
        offs = {(m[0] & 15) + 1 for m in after if m[0] & 0xF0 == 0x80}
        assert {ch for ch, _ in sounding} <= offs
        ccs = {(m[0] & 15, m[1], m[2]) for m in after if m[0] & 0xF0 == 0xB0}
        assert {(ch - 1, 123, 0) for ch, _ in sounding} <= ccs

        answered = time.monotonic()
        while not any(m[0] & 0xF0 == 0x90 and m[2] for m in after):
            assert time.monotonic() - answered < 10, "no answer after the restart"
            tester.send([0x90, 74, 90])
            after += [m for m, _ in tester.receive(1000, timeout=0.1)]
        print(f"first answer {time.monotonic() - back:.2f} s after the server came back")
    finally:
        stop.set()
        thread.join(10)
        if tester is not None:
            tester.close()
        inp.close()
        out.close()
        server.stop()
