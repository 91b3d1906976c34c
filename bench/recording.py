"""Cost of recording in the engine's worker: a simulated session of dense playing, recorded as
the engine records it (livegen.midi.recorder), on a simulated clock.

    python bench/recording.py [--minutes 60] [--voices 4] [--bpm 120] [--idle-us 300]
                              [--folder DIR] [--verify]

Every 16th note at `--bpm`, each voice lets its note go and strikes another and the human
strikes a note on even steps and lets it go on odd ones: 2 x voices + 1 messages a step, about
9 with four voices, 259,000 in an hour at 120 BPM. `maybe_flush` is called once a step (the
engine calls it in each step's quiet moment); it writes every 2 s, and takes over a new layout
as soon as the recorder's helper thread has built it. The worker sleeps `--idle-us` a step, as
the engine's worker sleeps between step events (that is when the helper gets the interpreter's
lock; with `--idle-us 0` the two threads fight for it, which the engine's worker never does).
Python's garbage collector is off during the session, as the engine keeps it off its hot path
(livegen.collector).

Prints the cost of `add` (microseconds, p50/p99) and of a flush (milliseconds, p50/p99/max; the
flushes that began a new layout or took one over counted apart), the last flush of `close` and
the time the helper took for the final file, the events written and the file's size; `--verify`
reads the file back with mido and counts the notes. Writes to a temporary folder (on the disk
that holds the recordings, unless `--folder` says where). Run it on a quiet machine: a flush is
a few system calls, and its maximum is the kernel's scheduling more than the recorder's work.
"""

from __future__ import annotations

import argparse
import gc
import random
import tempfile
import time
from pathlib import Path

from livegen.midi.recorder import Recorder, new_recording_path

VOICES = ("soprano", "alto", "tenor", "bass", "extra1", "extra2", "extra3", "extra4")


def pct(samples: list[float], q: float) -> float:
    s = sorted(samples)
    return s[min(len(s) - 1, int(q * len(s)))] if s else float("nan")


def session(folder: Path, minutes: float, voices: int, bpm: float,
            idle: float) -> tuple[Path, int]:
    rng = random.Random(0)
    path = new_recording_path(folder)
    t0 = 1000.0
    rec = Recorder(path, bpm, 4, t0)
    rec.track("human", 1)
    names = VOICES[:voices]
    for k, name in enumerate(names):
        rec.track(name, 2 + k, 0)
    rec.track("takeover", 16)
    step_s = 60.0 / bpm / 4
    steps = int(minutes * 60 / step_s)
    held = [0] * voices
    human = 0
    adds: list[float] = []
    plain: list[float] = []  # flushes that only appended
    moving: list[float] = []  # flushes that also began a new layout, or took one over
    clock = time.perf_counter
    gc.disable()
    try:
        for step in range(steps):
            t = t0 + step * step_s
            messages: list[tuple[str, float, list[int]]] = []
            if step % 2 == 0:
                human = rng.randrange(60, 80)
                messages.append(("human", t + rng.uniform(-0.003, 0.003), [0x90, human, 90]))
            else:
                messages.append(("human", t, [0x80, human, 0]))
            for k, name in enumerate(names):
                channel = 1 + k
                if held[k]:
                    messages.append((name, t, [0x80 | channel, held[k], 0]))
                held[k] = rng.randrange(36 + 6 * k, 60 + 6 * k)
                messages.append((name, t + 0.0002, [0x90 | channel, held[k], 80]))
            for name, at, message in messages:
                a = clock()
                rec.add(name, at, message)
                adds.append(clock() - a)
            if idle > 0:
                time.sleep(idle)  # the engine's worker sleeps between step events
            now = t + step_s / 2  # the step's quiet moment
            layouts, building = rec.layouts, rec.moving
            a = clock()
            rec.maybe_flush(now)
            took = clock() - a
            if rec.layouts != layouts or rec.moving != building:
                moving.append(took)
            elif rec.last_flush == now:
                plain.append(took)
        a = clock()
        rec.close(t0 + steps * step_s)
        closing = clock() - a
        rec.wait()
        final = clock() - a - closing
    finally:
        gc.enable()
    us = [x * 1e6 for x in adds]
    print(f"session: {minutes:g} min at {bpm:g} BPM, human + {voices} voices, 16th notes; "
          f"{rec.events:,} events written, file {path.stat().st_size / 1e6:.2f} MB")
    print(f"{'add (encode one message)':34} n={len(us):7d}  p50 {pct(us, .5):7.2f} us  "
          f"p99 {pct(us, .99):7.2f} us")
    for label, samples in (("flush (append)", plain), ("flush (+ begin/take over layout)", moving),
                           ("flush (all)", plain + moving)):
        ms = [x * 1e3 for x in samples]
        print(f"{label:34} n={len(ms):7d}  p50 {pct(ms, .5):7.3f} ms  p99 {pct(ms, .99):7.3f} ms"
              f"  max {max(ms, default=float('nan')):7.3f} ms")
    verdict = "ok" if pct([x * 1e3 for x in plain + moving], .99) <= 0.5 else "MISSED"
    print(f"{'':34} {rec.layouts} new layouts; target p99 <= 0.5 ms: {verdict}")
    print(f"{'close (a last flush)':34} {closing * 1e3:.3f} ms; then the helper wrote the final "
          f"file (no room) in {final * 1e3:.1f} ms")
    return path, rec.events


def verify(path: Path, events: int) -> None:
    import mido

    mid = mido.MidiFile(path)
    notes = sum(1 for track in mid.tracks for m in track if m.type in ("note_on", "note_off"))
    names = [track.name for track in mid.tracks]
    print(f"{'mido reads back':34} {notes:,} note messages (recorded {events:,} + the closing "
          f"note-offs); tracks {names}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--voices", type=int, default=4, choices=range(1, len(VOICES) + 1))
    ap.add_argument("--bpm", type=float, default=120.0)
    ap.add_argument("--idle-us", type=float, default=300.0,
                    help="sleep per step, as the engine's worker sleeps between step events")
    ap.add_argument("--folder", type=Path, default=None,
                    help="where to write the recording (default: a temporary folder)")
    ap.add_argument("--verify", action="store_true", help="read the file back with mido")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(dir=args.folder) as tmp:
        path, events = session(Path(tmp), args.minutes, args.voices, args.bpm,
                               args.idle_us / 1e6)
        if args.verify:
            verify(path, events)


if __name__ == "__main__":
    main()
