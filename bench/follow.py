"""Does a late note get its accompaniment after it? (the follow window, livegen/follow.py)

The live engine on a simulated clock (the same code as live, deterministic), the shipped model
and preset, melodies played with human timing: every note 0-3 ms early or 0-`--late` ms late;
the grid starts on the player's first note (timing.start = "first_note"), so the others are
early or late against the grid the first one set. Melodies: the sopranos of the chorale test
split (`--set chorales`), or the folk tunes `livegen eval` validates on (`--set folk`, Ryan's
Mammoth Collection), played with the preset as it is (72 bpm, 4/4).

For the late notes inside the follow window: the share whose step's voices were sent after the
note (followed) rather than before it, and where the others fell (on a beat, an 8th off the
beat, a 16th). The cost, on steps where the player starts no note: the share the engine waited
in vain (played more than 1 ms after the boundary), and of those steps where the voices sent
notes, how many went out late and by how much (p50/p99 of those late).

    python bench/follow.py [--set chorales] [--pieces 36] [--late 20] [--seed 0] [--jobs 2]

Compares, in one run, the model's probability alone, with the player's rhythm by bar position
(beats, positions the player keeps playing), and with the player's note values and timing too
(the engine as it is; livegen/follow.py). Needs music21's corpus cache (built by
`livegen train`/`eval` or on first use).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
from dataclasses import replace
from functools import cache
from multiprocessing import Pool
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from livegen.engine import Engine  # noqa: E402
from livegen.model.runtime import Runtime  # noqa: E402
from livegen.model.tokens import STEPS_PER_BEAT  # noqa: E402
from livegen.paths import model_path  # noqa: E402
from livegen.presets import find_preset, load_preset  # noqa: E402
from tests.fakes import FakeOut, SimTime  # noqa: E402

EXPECTATIONS = {  # name: (the player's rhythm by position, the player's note values and timing)
    "model probability alone": (False, False),
    "+ rhythm by position": (True, False),
    "+ note values, timing": (True, True),
}
PLACES = ("beat", "8th off", "16th")


class ScheduledIn:
    """In-process input: messages scheduled at times, handed over when due (as FakeIn in
    tests/fakes.py, which scans its whole queue on every poll: too slow for whole pieces)."""

    def __init__(self, clock: SimTime, messages: list[tuple[float, list[int]]]) -> None:
        self.clock = clock
        self.queue = sorted(messages, key=lambda m: m[0])
        self.next = 0

    def poll(self, limit: int = 512) -> list[tuple[list[int], float]]:
        due = []
        queue, now = self.queue, self.clock.t
        while self.next < len(queue) and queue[self.next][0] <= now and len(due) < limit:
            t, message = queue[self.next]
            due.append((message, t))
            self.next += 1
        return due


@cache
def melodies(name: str) -> list:
    from livegen.train import data as data_mod

    return data_mod.chorales().test if name == "chorales" else data_mod.folk_tunes()


def place(step: int) -> str:
    sub = step % STEPS_PER_BEAT
    return "beat" if sub == 0 else "8th off" if sub == STEPS_PER_BEAT // 2 else "16th"


def play(runtime: Runtime, piece, late_ms: float, seed: int, expectation: str) -> dict:
    by_position, values = EXPECTATIONS[expectation]
    settings = load_preset(find_preset("chorale"))
    # as the panel starts: the grid waits for the player's first note and starts on it
    settings = replace(settings, timing=replace(settings.timing, start="first_note"))
    step = 60.0 / settings.timing.bpm / 4
    clock = SimTime()
    rng = random.Random(seed)
    first = min(n.start for n in piece.human)
    t0 = clock.t + 0.5 - first * step  # the player's grid: the first note comes 0.5 s in
    onsets: dict[int, float] = {}
    messages = []
    for n in piece.human:
        shift = rng.uniform(0, late_ms / 1000.0) if rng.random() < 0.5 else -rng.uniform(0, 0.003)
        at = t0 + n.start * step + shift
        onsets.setdefault(n.start, at)
        messages.append((at, [0x90, n.pitch, 90]))
        messages.append((t0 + n.end * step - 0.002, [0x80, n.pitch, 0]))
    inp, out = ScheduledIn(clock, messages), FakeOut(clock)
    runtime.reset()
    eng = Engine(settings, runtime, inp, out, now=clock.now, sleep=clock.sleep, seed=seed)
    if not by_position:
        eng.rhythm.expects = lambda position: False
    if not values:
        eng.rhythm.may_play = lambda: False
    played_at: dict[int, float] = {}  # engine step: when it was played
    eng.on_play = lambda s, frame: played_at.setdefault(s, clock.t)
    eng.transport.start(clock.t)
    end = t0 + (piece.length + 2) * step
    while clock.t < end:
        eng.tick()
    t0 = eng.transport.clock.step_time(-first)  # the engine's grid, started by the first note
    voice_ons = [t for t, m in out.sent if m[0] & 0xF0 == 0x90 and m[2] and
                 (m[0] & 15) + 1 != settings.takeover.channel]
    by_step: dict[int, float] = {}
    for t in voice_ons:
        s = round((t - t0) / step - 0.49)  # the step whose window the send falls in
        by_step.setdefault(s, t)
    window = settings.timing.follow_ms / 1000.0
    got: dict = {"followed": 0, "missed": dict.fromkeys(PLACES, 0), "empty": 0, "waited": 0,
                 "voiced": 0, "delays": []}
    for s, at in onsets.items():
        beat = t0 + s * step
        if not (beat < at <= beat + window) or s not in by_step:
            continue
        if by_step[s] >= at:
            got["followed"] += 1
        else:
            got["missed"][place(s - first)] += 1
    for s in range(piece.length):
        if s in onsets or s - first not in played_at:
            continue
        got["empty"] += 1
        got["waited"] += played_at[s - first] - (t0 + s * step) > 0.001
        if s in by_step:
            got["voiced"] += 1
            got["delays"].append(by_step[s] - (t0 + s * step))
    return got


_runtime: Runtime | None = None


def job(args: tuple) -> dict:
    global _runtime
    melody_set, index, late, seed, expectation = args
    if _runtime is None:
        _runtime = Runtime(model_path("chorale"))
    return play(_runtime, melodies(melody_set)[index], late, seed, expectation)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", choices=("chorales", "folk"), default="chorales",
                        dest="melodies", help="the melodies played")
    parser.add_argument("--pieces", type=int, default=36, help="the first this many melodies")
    parser.add_argument("--late", type=float, default=20.0, help="latest a note is played, ms")
    parser.add_argument("--seed", type=int, default=0, help="piece i is timed with seed + i")
    parser.add_argument("--jobs", type=int, default=1, help="processes playing pieces")
    parser.add_argument("--only", choices=list(EXPECTATIONS), action="append",
                        help="run only this expectation (repeatable)")
    args = parser.parse_args()
    count = min(args.pieces, len(melodies(args.melodies)))
    for name in args.only or list(EXPECTATIONS):
        runs = [(args.melodies, i, args.late, args.seed + i, name) for i in range(count)]
        if args.jobs > 1:
            with Pool(args.jobs) as pool:
                results = pool.map(job, runs, chunksize=1)
        else:
            results = [job(r) for r in runs]
        total: dict = {"followed": 0, "missed": dict.fromkeys(PLACES, 0), "empty": 0,
                       "waited": 0, "voiced": 0, "delays": []}
        for got in results:
            for key, value in got.items():
                if key == "missed":
                    for where, n in value.items():
                        total["missed"][where] += n
                else:
                    total[key] += value
        missed = sum(total["missed"].values())
        late = total["followed"] + missed
        where = ", ".join(f"{n} {p}" for p, n in total["missed"].items())
        delayed = sorted(d for d in total["delays"] if d > 0.001)
        p99 = delayed[int(0.99 * (len(delayed) - 1))] if delayed else 0.0
        p50 = statistics.median(delayed) if delayed else 0.0
        mean = statistics.fmean(total["delays"]) if total["delays"] else 0.0
        print(f"{name:24}: late notes followed {total['followed']}/{late} "
              f"({total['followed'] / max(1, late):.1%}; missed {where}); "
              f"steps without a note {total['empty']}: waited in vain "
              f"{total['waited'] / max(1, total['empty']):.1%}; with voices {total['voiced']}: "
              f"{len(delayed) / max(1, total['voiced']):.1%} sent late, by p50 "
              f"{p50 * 1000:.1f} / p99 {p99 * 1000:.1f} ms (mean over all {mean * 1000:.2f} ms)",
              flush=True)


if __name__ == "__main__":
    main()
