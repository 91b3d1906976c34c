"""How long starting and stopping take, as a player meets them: `livegen --help`, the engine
process from spawn to ready and to its first status, and quitting (quit sent → process gone).

    python bench/startstop.py [--runs 5]

Starts its own JACK dummy server (jackd2 must be installed), like the tests.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))


def show(name: str, values: list[float]) -> None:
    print(f"{name:34} p50 {statistics.median(values):6.2f} s   max {max(values):6.2f} s"
          f"   (n={len(values)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    from jackserver import JackServer, unique_server_name

    from livegen.controls import ControlMessage
    from livegen.process import EngineProcess
    from livegen.session import LiveOptions

    helps = []
    for _ in range(args.runs):
        began = time.monotonic()
        subprocess.run([sys.executable, "-m", "livegen", "--help"], capture_output=True,
                       check=True)
        helps.append(time.monotonic() - began)
    server = JackServer(unique_server_name("bench-ss"))
    server.start()
    os.environ["JACK_DEFAULT_SERVER"] = server.name
    os.environ["JACK_NO_START_SERVER"] = "1"
    ready, first, quits, codes = [], [], [], []
    try:
        for _ in range(args.runs):
            began = time.monotonic()
            engine = EngineProcess(LiveOptions(midi_api="jack", seed=1))
            engine.start()
            ready.append(time.monotonic() - began)
            while engine.latest() is None:
                time.sleep(0.005)
            first.append(time.monotonic() - began)
            began = time.monotonic()
            engine.send(ControlMessage("quit"))
            engine.proc.join(10)
            quits.append(time.monotonic() - began)
            codes.append(engine.proc.exitcode)
    finally:
        server.stop()
    show("livegen --help", helps)
    show("engine process ready", ready)
    show("engine's first status", first)
    show("quit -> engine process gone", quits)
    print(f"exit codes {codes}")


if __name__ == "__main__":
    main()
