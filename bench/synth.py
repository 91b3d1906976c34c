"""Speed of the monitor synth on one CPU thread: one audio block at several voice counts (against
the block's real-time budget), and the offline `--wav` render (as a multiple of real time).

    python bench/synth.py [--blocksize 256] [--blocks 2000]

Prints p50/p99 in microseconds; run it on a quiet machine and compare ratios within one run.
"""

from __future__ import annotations

import argparse
import statistics
import time

from livegen.midi.midifile import Note, Part
from livegen.synth import SAMPLE_RATE, Synth, render_parts


def pct(samples: list[float], q: float) -> float:
    s = sorted(samples)
    return s[min(len(s) - 1, int(q * len(s)))]


def block_times(voices: int, blocksize: int, blocks: int) -> list[float]:
    """Seconds per render(blocksize) with `voices` notes held across channels 1-4."""
    synth = Synth(SAMPLE_RATE)
    synth.program(1, 0)  # piano on the lead: a struck tone, with its bright-to-dull fade
    for k in range(voices):
        synth.note_on(1 + k % 4, 40 + (k * 5) % 48, 100)
    synth.render(blocksize)
    times = []
    for _ in range(blocks):
        if synth.active_voices < voices:  # struck notes die away: strike them again
            for k in range(voices):
                synth.note_on(1 + k % 4, 40 + (k * 5) % 48, 100)
        start = time.perf_counter()
        synth.render(blocksize)
        times.append(time.perf_counter() - start)
    return times


def chorale(bars: int) -> list[Part]:
    """Four parts, a chord a beat: roughly what `livegen render` produces."""
    chords = [(72, 67, 64, 48), (74, 67, 62, 43), (76, 69, 60, 45), (74, 65, 62, 41)]
    parts: list[list[Note]] = [[], [], [], []]
    for beat in range(bars * 4):
        for voice, pitch in enumerate(chords[beat % 4]):
            parts[voice].append(Note(pitch, float(beat), beat + 0.95, 80))
    return [Part("melody", 1, 0, parts[0]), Part("alto", 2, 52, parts[1]),
            Part("tenor", 3, 52, parts[2]), Part("bass", 4, 33, parts[3])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocksize", type=int, default=256)
    parser.add_argument("--blocks", type=int, default=2000)
    args = parser.parse_args()
    budget = args.blocksize / SAMPLE_RATE * 1e6
    print(f"one block of {args.blocksize} frames at {SAMPLE_RATE} Hz: budget {budget:.0f} us")
    for voices in (1, 4, 8, 16, 32):
        times = [t * 1e6 for t in block_times(voices, args.blocksize, args.blocks)]
        p50, p99 = statistics.median(times), pct(times, 0.99)
        print(f"  {voices:2d} voices: p50 {p50:6.0f} us  p99 {p99:6.0f} us  "
              f"({100 * p50 / budget:4.1f}% of the budget at p50)")
    parts = chorale(bars=16)
    start = time.perf_counter()
    audio = render_parts(parts, bpm=96.0)
    seconds = time.perf_counter() - start
    length = len(audio) / SAMPLE_RATE
    print(f"offline render: {length:.1f} s of four-part audio in {seconds:.2f} s "
          f"({length / seconds:.0f}x real time)")


if __name__ == "__main__":
    main()
