"""Does a late note get its accompaniment after it? The live engine on a simulated clock (the
same code as live, deterministic), the shipped model and preset, the sopranos of the chorale
test split played with human timing: every note 0–3 ms early or 0–`--late` ms late; the grid
starts on the player's first note (timing.start = "first_note"). For the
late notes inside the follow window: the share whose step's voices were sent after the note
(followed) rather than before it. The cost, on steps where the player starts no note: the share
of those steps the engine waited in vain, and how late their voices went out.

    python bench/follow.py [--pieces 20] [--late 20] [--seed 0]

Compares the engine's expectation (the model's onset probability or the player's recent rhythm,
livegen/follow.py) with the model's probability alone, in one run. Needs music21's corpus cache
(built by `livegen train`/`eval` or on first use).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from livegen.engine import Engine  # noqa: E402
from livegen.model.runtime import Runtime  # noqa: E402
from livegen.paths import model_path  # noqa: E402
from livegen.presets import find_preset, load_preset  # noqa: E402
from tests.fakes import FakeIn, FakeOut, SimTime  # noqa: E402


def play(runtime: Runtime, piece, late_ms: float, seed: int, rhythm: bool) -> dict:
    settings = load_preset(find_preset("chorale"))
    # as the panel starts: the grid waits for the player's first note and starts on it
    settings = replace(settings, timing=replace(settings.timing, start="first_note"))
    step = 60.0 / settings.timing.bpm / 4
    clock = SimTime()
    inp, out = FakeIn(clock), FakeOut(clock)
    runtime.reset()
    eng = Engine(settings, runtime, inp, out, now=clock.now, sleep=clock.sleep, seed=seed)
    if not rhythm:
        eng.rhythm.expects = lambda position: False  # the model's probability alone
    eng.transport.start(clock.t)
    rng = random.Random(seed)
    first = min(n.start for n in piece.human)
    t0 = clock.t + 0.5 - first * step  # the player's grid: the first note comes 0.5 s in
    onsets: dict[int, float] = {}
    for n in piece.human:
        shift = rng.uniform(0, late_ms / 1000.0) if rng.random() < 0.5 else -rng.uniform(0, 0.003)
        at = t0 + n.start * step + shift
        onsets.setdefault(n.start, at)
        inp.at(at, [0x90, n.pitch, 90])
        inp.at(t0 + n.end * step - 0.002, [0x80, n.pitch, 0])
    end = t0 + (piece.length + 2) * step
    while clock.t < end:
        eng.tick()
    t0 = eng.transport.clock.step_time(-first)  # the engine's grid, started by the first note
    voice_ons = [(t, m[1]) for t, m in out.sent if m[0] & 0xF0 == 0x90 and m[2] and
                 (m[0] & 15) + 1 != settings.takeover.channel]
    by_step: dict[int, float] = {}
    for t, _ in voice_ons:
        s = round((t - t0) / step - 0.49)  # the step whose window the send falls in
        by_step.setdefault(s, t)
    window = settings.timing.follow_ms / 1000.0
    followed = before = 0
    for s, at in onsets.items():
        beat = t0 + s * step
        if not (beat < at <= beat + window) or s not in by_step:
            continue
        if by_step[s] >= at:
            followed += 1
        else:
            before += 1
    empty = [s for s in range(piece.length) if s not in onsets and s in by_step]
    delays = [by_step[s] - (t0 + s * step) for s in empty]
    return {"followed": followed, "before": before, "empty": len(empty),
            "waited": eng.stats.waited_in_vain, "delays": delays}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pieces", type=int, default=20)
    parser.add_argument("--late", type=float, default=20.0, help="latest a note is played, ms")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    from livegen.train import data as data_mod

    pieces = data_mod.chorales().test[:args.pieces]
    runtime = Runtime(model_path("chorale"))
    for name, rhythm in (("model probability alone", False), ("model or player rhythm", True)):
        total: dict = {"followed": 0, "before": 0, "empty": 0, "waited": 0, "delays": []}
        for i, piece in enumerate(pieces):
            got = play(runtime, piece, args.late, args.seed + i, rhythm)
            for key in total:
                total[key] += got[key]
        late = total["followed"] + total["before"]
        delays = sorted(total["delays"])
        p99 = delays[int(0.99 * (len(delays) - 1))] if delays else 0.0
        print(f"{name:24}: late notes followed {total['followed']}/{late} "
              f"({total['followed'] / max(1, late):.1%}); steps without a note: "
              f"{total['empty']}, waited in vain {total['waited']}, their voices late by "
              f"p50 {statistics.median(delays) * 1000 if delays else 0:.1f} ms / "
              f"p99 {p99 * 1000:.1f} ms")


if __name__ == "__main__":
    main()
