"""The critical path with and without a left-hand chord (the chord zone: livegen/accompanist.py,
"The left-hand chord"), measured as `bench/core.py` measures it, the two interleaved step by
step in one run so that the machine's noise falls on both alike.

    python bench/chordzone.py [--model models/chorale.pt] [--calls 5000]

Two accompanists play the same random melody (the one `bench/core.py` plays): one with no
chord, one under a left-hand chord that changes every bar (C, F, G7, A minor). Prints p50/p99
in microseconds of `emit` (a step's voices computed on arrival) and of emitting a frame proposed
ahead, and how much of the chord's harmony the voices kept. Wall-clock times are what the
engine waits; on a machine shared with other work their p99 is the scheduler's, so the thread's
CPU time of the same calls is printed too (`time.thread_time`: what the call itself costs).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from core import report  # bench/core.py, beside this file

from livegen.accompanist import Accompanist
from livegen.frames import Frame
from livegen.model.runtime import Runtime
from livegen.model.tokens import STEPS_PER_BEAT
from livegen.paths import model_path
from livegen.presets import find_preset, load_preset

CHORDS = ((0, 4, 7), (5, 0, 9), (7, 2, 5, 11), (9, 0, 4))  # a bar each, the bass first


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=model_path("chorale"))
    ap.add_argument("--preset", default="chorale")
    ap.add_argument("--calls", type=int, default=5000)
    args = ap.parse_args()
    settings = load_preset(find_preset(args.preset))
    plain_rt = Runtime(args.model, device="cpu")
    chord_rt = Runtime(args.model, device="cpu")
    plain = Accompanist(plain_rt, settings, seed=0)
    chorded = Accompanist(chord_rt, settings, seed=0)
    rng = np.random.default_rng(0)
    melody = rng.integers(62, 78, size=args.calls + 200)
    times: dict[str, list[float]] = {"plain": [], "chord": [], "plain ahead": [],
                                     "chord ahead": []}
    cpu: dict[str, list[float]] = {name: [] for name in times}
    redrawn = {"plain": 0, "chord": 0}  # emits whose own draw broke a rule
    inside = voices = 0
    last = -1
    for i, p in enumerate(melody):
        onsets = (int(p),) if i % 2 == 0 else ()
        held = () if onsets else (int(melody[i - 1]),)
        pos, nxt = i % 16, (i + 1) % 16
        chord = CHORDS[(i // 16) % len(CHORDS)]
        ahead = i % 4 == 2  # every other onset step is answered from frames proposed ahead
        for name, acc, frame in (("plain", plain, Frame(onsets, held)),
                                 ("chord", chorded, Frame(onsets, held, chord))):
            if ahead:
                for likely in acc.likely_frames(last, held, frame.chord):
                    acc.propose(likely, pos)
                hit = acc.known(frame, pos)
            redraws = acc.runtime.heads.redraws
            c0 = time.thread_time()
            t0 = time.perf_counter()
            acc.emit(frame, pos)
            t1 = time.perf_counter()
            c1 = time.thread_time()
            acc.advance(frame, pos, nxt)
            if i >= 200 and (not ahead or hit):
                times[f"{name} ahead" if ahead else name].append(t1 - t0)
                cpu[f"{name} ahead" if ahead else name].append(c1 - c0)
                if not ahead:
                    redrawn[name] += acc.runtime.heads.redraws != redraws
        if i >= 200 and pos % STEPS_PER_BEAT == 0:
            for pitch in chorded.sounding:
                if pitch >= 0:
                    voices += 1
                    inside += pitch % 12 in chord
        last = onsets[0] if onsets else last
    report("emit, no chord", times["plain"], 300)
    report("emit, a chord held", times["chord"], 300)
    report("emit proposed ahead, no chord", times["plain ahead"])
    report("emit proposed ahead, a chord held", times["chord ahead"])
    print("the same calls, thread CPU time:")
    report("emit, no chord", cpu["plain"], 300)
    report("emit, a chord held", cpu["chord"], 300)
    report("emit proposed ahead, no chord", cpu["plain ahead"])
    report("emit proposed ahead, a chord held", cpu["chord ahead"])
    print(f"{'':34} voices on beats inside the chord: {inside} of {voices}")
    print(f"{'':34} emits whose own draw broke a rule (candidates drawn): no chord "
          f"{redrawn['plain']} of {len(times['plain'])}, a chord held {redrawn['chord']} of "
          f"{len(times['chord'])}")


if __name__ == "__main__":
    main()
