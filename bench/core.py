"""Speed of the musical core on one CPU thread: the critical path (`accompany` with sampling;
apart, the steps whose own draw broke a rule of voice leading, so that the other candidate
frames were drawn: livegen/model/heads.py), `advance`, proposing a step's likely frames ahead
and emitting one of them (as the live engine does), the offline render, and the shipped model's
training speed (from its card).

    python bench/core.py [--model models/chorale.pt] [--calls 5000]

Prints p50/p99 in microseconds over many calls; run it on a quiet machine and compare ratios
within one run rather than across days.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from livegen.accompanist import Accompanist
from livegen.frames import Frame
from livegen.model.runtime import Runtime
from livegen.paths import demo_melody, model_path
from livegen.presets import find_preset, load_preset
from livegen.render import render


def pct(samples: list[float], q: float) -> float:
    s = sorted(samples)
    return s[min(len(s) - 1, int(q * len(s)))]


def report(name: str, samples: list[float], target_us: float | None = None) -> None:
    us = [x * 1e6 for x in samples]
    line = (f"{name:34} n={len(us):5d}  p50 {pct(us, .5):7.1f} us  p99 {pct(us, .99):7.1f} us"
            f"  p99.9 {pct(us, .999):7.1f} us")
    if target_us is not None:
        verdict = "ok" if pct(us, .99) <= target_us else "MISSED"
        line += f"   (target p99 <= {target_us:g} us: {verdict})"
    print(line)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=model_path("chorale"))
    ap.add_argument("--preset", default="chorale")
    ap.add_argument("--calls", type=int, default=5000)
    args = ap.parse_args()
    settings = load_preset(find_preset(args.preset))
    rt = Runtime(args.model, device="cpu")
    print(f"model {args.model} ({args.model.stat().st_size / 1e6:.2f} MB), loaded and warmed in "
          f"{rt.load_seconds * 1000:.0f} ms; torch threads = 1")
    acc = Accompanist(rt, settings, seed=0)
    rng = np.random.default_rng(0)
    melody = rng.integers(62, 78, size=args.calls + 200)
    t_emit: list[float] = []
    t_redrawn: list[float] = []
    t_adv: list[float] = []
    for i, p in enumerate(melody):
        onsets = (int(p),) if i % 2 == 0 else ()
        held = () if onsets else (int(melody[i - 1]),)
        pos, nxt = i % 16, (i + 1) % 16
        redraws = rt.heads.redraws
        t0 = time.perf_counter()
        acc.emit(Frame(onsets, held), pos)
        t1 = time.perf_counter()
        acc.advance(Frame(onsets, held), pos, nxt)
        t2 = time.perf_counter()
        if i >= 200:  # after warm-up
            t_emit.append(t1 - t0)
            t_adv.append(t2 - t1)
            if rt.heads.redraws != redraws:
                t_redrawn.append(t1 - t0)
    report("emit (accompany + sampling)", t_emit, 300)
    if t_redrawn:
        report("  of which candidates were drawn", t_redrawn)
    report("advance (+ lead, key)", t_adv, 2000)
    # as the live engine plays a melody: the step's likely frames proposed ahead, then the
    # onset's frame committed from them
    t_ahead: list[float] = []
    t_hit: list[float] = []
    misses = 0
    last = -1
    for i, p in enumerate(melody):
        onsets = (int(p),) if i % 2 == 0 else ()
        held = () if onsets else (int(melody[i - 1]),)
        pos, nxt = i % 16, (i + 1) % 16
        t0 = time.perf_counter()
        for frame in acc.likely_frames(last, held):
            acc.propose(frame, pos)
        t1 = time.perf_counter()
        known = acc.known(Frame(onsets, held), pos)
        acc.emit(Frame(onsets, held), pos)
        t2 = time.perf_counter()
        acc.advance(Frame(onsets, held), pos, nxt)
        last = onsets[0] if onsets else last
        if i >= 200 and onsets:
            t_ahead.append(t1 - t0)
            if known:
                t_hit.append(t2 - t1)
            else:
                misses += 1
    report("propose ahead (a step's frames)", t_ahead)
    report("emit of a frame proposed ahead", t_hit)
    print(f"{'':34} onsets not foreseen: {misses} of {misses + len(t_hit)}")
    rates = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(5):
            rt.reset()
            res = render(Accompanist(rt, settings, seed=seed), demo_melody(), Path(tmp) / "o.mid")
            rates.append(res.performance.steps_per_second)
    print(f"{'offline render (demo, 256 steps)':34} median {statistics.median(rates):,.0f} steps/s"
          f" over 5 renders (target >= 2000)")
    extra = rt.info.extra
    if "frames_per_second" in extra:
        print(f"{'training (from the model card)':34} {extra['frames_per_second']:,} frames/s; "
              f"the shipped model took {extra['train_seconds']:.0f} s ({extra.get('machine')})")


if __name__ == "__main__":
    main()
