"""Training data: pieces on the 16th grid, from the Bach chorales or a folder of MIDI files.

A `Piece` holds the human part as notes on the grid (it may be polyphonic) and the machine voices
as tokens. The chorales come from music21's corpus (soprano = human part; alto, tenor, bass =
voices), are parsed once and cached as .npz (no pickles), and are split by chorale with a fixed
seed. Batches apply random transpositions that keep every part inside its range.
"""

from __future__ import annotations

import hashlib
import random
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from livegen.grid import StepNote, human_frames, skyline, to_steps, voice_tokens
from livegen.midi.midifile import MidiFileError, Note, read_notes
from livegen.model.tokens import HOLD, PITCH0, STEPS_PER_BEAT, lead_token, position_index

CHORALE_VOICES = ("alto", "tenor", "bass")
# Inclusive MIDI ranges: the usual SATB compass, a step wider each side (Bach's own lines sit
# inside these more than 99% of the time; checked by tests/test_data.py on the corpus cache).
CHORALE_RANGES = {"soprano": (59, 81), "alto": (53, 77), "tenor": (46, 69), "bass": (34, 64)}
SPLIT_SEED = 20240917
CACHE_VERSION = 2


@dataclass
class Piece:
    name: str
    human: list[StepNote]
    voices: np.ndarray  # [T, V] int16 tokens
    beats_per_bar: int = 4
    first_downbeat: int = 0  # step of the first downbeat; earlier steps are a pickup

    @property
    def length(self) -> int:
        return int(self.voices.shape[0])

    def positions(self) -> np.ndarray:
        bar = self.beats_per_bar * STEPS_PER_BEAT
        return np.array([position_index((t - self.first_downbeat) % bar)
                         for t in range(self.length)], dtype=np.int64)

    def pitch_span(self) -> list[tuple[int, int]]:
        """(lowest, highest) pitch of the human part, then of each voice."""
        spans = [(min(n.pitch for n in self.human), max(n.pitch for n in self.human))]
        for v in range(self.voices.shape[1]):
            pitches = self.voices[:, v][self.voices[:, v] >= PITCH0] - PITCH0
            spans.append((int(pitches.min()), int(pitches.max())) if len(pitches) else (60, 60))
        return spans


@dataclass
class Dataset:
    voices: tuple[str, ...]
    ranges: dict[str, tuple[int, int]]  # by part name, "human" or a voice name
    train: list[Piece]
    valid: list[Piece]
    test: list[Piece]
    source: str


# ---------------------------------------------------------------- the Bach chorales (music21)

def chorales(cache: Path | None = None, limit: int | None = None) -> Dataset:
    """The four-part Bach chorales of music21's corpus, split 80/10/10 by chorale."""
    pieces = _cached_chorales(cache)
    rng = random.Random(SPLIT_SEED)
    order = sorted(pieces, key=lambda p: p.name)
    rng.shuffle(order)
    n_valid = n_test = len(order) // 10
    test, valid, train = order[:n_test], order[n_test:n_test + n_valid], order[n_test + n_valid:]
    if limit is not None:
        train, valid, test = train[:limit], valid[:max(1, limit // 4)], test[:max(1, limit // 4)]
    ranges = {"human": CHORALE_RANGES["soprano"]} | {v: CHORALE_RANGES[v] for v in CHORALE_VOICES}
    return Dataset(CHORALE_VOICES, ranges, train, valid, test, "music21 corpus: Bach chorales")


def _cached_chorales(cache: Path | None) -> list[Piece]:
    import music21  # only the trainer needs music21

    from livegen.paths import cache_dir
    folder = cache or cache_dir()
    stamp = hashlib.sha1(f"{music21.__version__}-{CACHE_VERSION}".encode()).hexdigest()[:10]
    path = folder / f"chorales-{stamp}.npz"
    if path.is_file():
        return _load_pieces(path)
    pieces = [p for p in (_parse_chorale(f) for f in _chorale_files()) if p is not None]
    folder.mkdir(parents=True, exist_ok=True)
    _save_pieces(path, pieces)
    return pieces


def _chorale_files() -> list[Path]:
    from music21 import corpus
    return sorted(Path(p) for p in corpus.getComposer("bach") if Path(p).name.startswith("bwv"))


def _parse_chorale(path: Path) -> Piece | None:
    from music21 import converter

    return piece_from_score(converter.parse(str(path)), path.stem)


def piece_from_score(score, name: str) -> Piece | None:
    """A four-part music21 score (soprano, alto, tenor, bass) as a Piece; None if it has not
    exactly four parts with notes. Ties are merged; chords in a part give their top note."""
    from music21 import meter

    parts = list(score.parts)
    if len(parts) != 4:
        return None
    lines: list[list[StepNote]] = []
    for part in parts:
        notes = []
        for n in part.stripTies().flatten().notes:
            if n.duration.quarterLength <= 0:
                continue
            pitch = max(p.midi for p in n.pitches)
            start = float(n.offset)
            notes.append(Note(pitch, start, start + float(n.duration.quarterLength)))
        lines.append(to_steps(notes))
    if not all(lines):
        return None
    length = max(n.end for line in lines for n in line)
    signatures = list(score.recurse().getElementsByClass(meter.TimeSignature))
    bar = signatures[0].barDuration.quarterLength if signatures else 4.0
    measures = list(parts[0].getElementsByClass("Measure"))
    pickup = measures and measures[0].paddingLeft > 0 and len(measures) > 1
    first = float(measures[1].offset) if pickup else 0.0
    voices = np.stack([voice_tokens(line, length) for line in lines[1:]], axis=1)
    return Piece(name, skyline(lines[0]), voices, max(1, round(bar)),
                 round(first * STEPS_PER_BEAT))


def _save_pieces(path: Path, pieces: Sequence[Piece]) -> None:
    human = [np.array([(n.pitch, n.start, n.end) for n in p.human], dtype=np.int32).reshape(-1, 3)
             for p in pieces]
    np.savez_compressed(
        path,
        names=np.array([p.name for p in pieces]),
        meta=np.array([(p.beats_per_bar, p.first_downbeat, p.length, len(h))
                       for p, h in zip(pieces, human, strict=True)], dtype=np.int32),
        human=np.concatenate(human),
        voices=np.concatenate([p.voices for p in pieces]),
    )


def _load_pieces(path: Path) -> list[Piece]:
    with np.load(path, allow_pickle=False) as z:
        names, meta, human, voices = z["names"], z["meta"], z["human"], z["voices"]
    pieces, h0, v0 = [], 0, 0
    for name, (bpb, first, length, n_human) in zip(names, meta, strict=True):
        notes = [StepNote(int(p), int(s), int(e)) for p, s, e in human[h0:h0 + n_human]]
        pieces.append(Piece(str(name), notes, voices[v0:v0 + length], int(bpb), int(first)))
        h0, v0 = h0 + n_human, v0 + length
    return pieces


# ---------------------------------------------------------------- a folder of MIDI files

@dataclass(frozen=True)
class Role:
    """Which notes of a file form a part: a track index or a MIDI channel (1..16)."""

    kind: str  # "track" or "channel"
    number: int

    @classmethod
    def parse(cls, text: str) -> Role:
        kind, _, number = text.partition(":")
        if kind not in ("track", "channel") or not number.isdigit():
            raise ValueError(f"role {text!r} is not understood; write track:N or channel:N.")
        return cls(kind, int(number))

    def select(self, notes: Sequence[Note]) -> list[Note]:
        key = "track" if self.kind == "track" else "channel"
        return [n for n in notes if getattr(n, key) == self.number]


def midi_folder(folder: Path, human: Role, voices: dict[str, Role], seed: int = SPLIT_SEED,
                log=print) -> Dataset:
    """Pieces from every .mid/.midi file under `folder`: the human part from one role (reduced to
    its top line), one voice per named role. Unusable files are skipped with a one-line reason."""
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".mid", ".midi"))
    pieces, skipped = [], 0
    for path in files:
        try:
            piece = _midi_piece(path, human, voices)
        except (MidiFileError, ValueError) as exc:
            log(f"skipped {path}: {exc}")
            skipped += 1
            continue
        pieces.append(piece)
    log(f"{len(pieces)} of {len(files)} MIDI files used, {skipped} skipped.")
    if len(pieces) < 3:
        raise ValueError(f"{folder}: only {len(pieces)} usable MIDI files; at least 3 are needed "
                         "(one each for training, validation and test).")
    rng = random.Random(seed)
    rng.shuffle(pieces)
    n_hold = max(1, len(pieces) // 10)
    test, valid, train = pieces[:n_hold], pieces[n_hold:2 * n_hold], pieces[2 * n_hold:]
    ranges = {"human": _span([p.pitch_span()[0] for p in pieces])}
    for i, name in enumerate(voices):
        ranges[name] = _span([p.pitch_span()[i + 1] for p in pieces])
    return Dataset(tuple(voices), ranges, train, valid, test, f"MIDI files in {folder}")


def _span(spans: Sequence[tuple[int, int]]) -> tuple[int, int]:
    return min(s[0] for s in spans), max(s[1] for s in spans)


def _midi_piece(path: Path, human: Role, voices: dict[str, Role]) -> Piece:
    midi = read_notes(path)
    melody = skyline(to_steps(human.select(midi.notes)))
    if not melody:
        raise ValueError(f"no notes in the human part ({human.kind} {human.number})")
    lines = []
    for name, role in voices.items():
        line = to_steps(role.select(midi.notes))
        if not line:
            raise ValueError(f"no notes for voice {name!r} ({role.kind} {role.number})")
        lines.append(line)
    length = max(n.end for line in [melody, *lines] for n in line)
    tokens = np.stack([voice_tokens(skyline(line), length) for line in lines], axis=1)
    return Piece(path.stem, melody, tokens, midi.beats_per_bar, 0)


# ---------------------------------------------------------------- tensors for training

@dataclass
class Arrays:
    """One piece as the model's inputs and targets (transposition applied at batch time)."""

    onsets: np.ndarray  # [T, K] int16 pitches, -1 padded
    held: np.ndarray  # [T, K]
    lead: np.ndarray  # [T] lead tokens
    voices: np.ndarray  # [T, V]
    positions: np.ndarray  # [T]
    shifts: tuple[int, ...]  # transpositions that keep every part in range


def arrays(piece: Piece, ranges: Sequence[tuple[int, int]], augment: bool) -> Arrays:
    onsets, held = human_frames(piece.human, piece.length)
    width = max(1, max(len(o) for o in onsets), max(len(h) for h in held))
    pad = np.full((piece.length, 2, width), -1, dtype=np.int16)
    for t, (o, h) in enumerate(zip(onsets, held, strict=True)):
        pad[t, 0, :len(o)] = o
        pad[t, 1, :len(h)] = h
    lead = np.array([lead_token(o, h) for o, h in zip(onsets, held, strict=True)], np.int16)
    spans = piece.pitch_span()
    shifts = (0,)
    if augment:
        shifts = tuple(s for s in range(-6, 6)
                       if all(lo <= a + s and b + s <= hi
                              for (a, b), (lo, hi) in zip(spans, ranges, strict=True))) or (0,)
    return Arrays(pad[:, 0], pad[:, 1], lead, piece.voices.astype(np.int16), piece.positions(),
                  shifts)


def batches(items: Sequence[Arrays], batch: int, seq_len: int, rng: np.random.Generator,
            device: torch.device | str = "cpu") -> Iterator[dict[str, torch.Tensor]]:
    """Random windows of `seq_len` steps, one transposition each, `batch` at a time. One pass
    yields about as many windows as the data has steps / seq_len."""
    lengths = np.array([len(a.lead) for a in items])
    n_windows = max(1, int(lengths.sum() // seq_len))
    weights = lengths / lengths.sum()
    for _ in range(0, n_windows, batch):
        picks = rng.choice(len(items), size=batch, p=weights)
        yield _stack([_window(items[i], seq_len, rng) for i in picks], device)


def sequential(items: Sequence[Arrays], seq_len: int, device: torch.device | str = "cpu"
               ) -> Iterator[dict[str, torch.Tensor]]:
    """Each piece whole, untransposed, one at a time (validation and test)."""
    for a in items:
        yield _stack([_window(a, len(a.lead), None)], device)


def _window(a: Arrays, seq_len: int, rng: np.random.Generator | None) -> dict[str, np.ndarray]:
    length = len(a.lead)
    start = int(rng.integers(0, max(1, length - seq_len + 1))) if rng is not None else 0
    shift = int(rng.choice(a.shifts)) if rng is not None else 0
    sl = slice(start, start + seq_len)
    human = np.zeros((seq_len, 256), dtype=np.float32)
    n = min(seq_len, length - start)
    for col, grid in ((0, a.onsets[sl]), (128, a.held[sl])):
        t_idx, k_idx = np.nonzero(grid >= 0)
        human[t_idx, col + grid[t_idx, k_idx] + shift] = 1.0
    lead = np.full(seq_len, -100, dtype=np.int64)  # -100: ignored by the loss (padding)
    lead[:n] = _transpose(a.lead[sl], shift)
    voices = np.full((seq_len, a.voices.shape[1]), -100, dtype=np.int64)
    voices[:n] = _transpose(a.voices[sl], shift)
    positions = np.zeros(seq_len, dtype=np.int64)
    positions[:n] = a.positions[sl]
    return {"human": human, "lead": lead, "voices": voices, "positions": positions}


def _transpose(tokens: np.ndarray, shift: int) -> np.ndarray:
    out = tokens.astype(np.int64)
    out[out >= PITCH0] += shift
    return out


def _stack(windows: list[dict[str, np.ndarray]], device) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(np.stack([w[k] for w in windows])).to(device)
            for k in windows[0]}


def machine_input(voices: torch.Tensor) -> torch.Tensor:
    """Targets with padding (-100) made into REST so they can be fed back as inputs."""
    return voices.clamp(min=0)


def describe(ds: Dataset, out=sys.stdout) -> None:
    steps = sum(p.length for p in ds.train)
    print(f"{ds.source}: {len(ds.train)} train / {len(ds.valid)} validation / {len(ds.test)} test"
          f" pieces, {steps} training steps; voices {', '.join(ds.voices)}", file=out)


__all__ = ["HOLD", "Piece", "Dataset", "Role", "chorales", "midi_folder", "arrays", "batches",
           "sequential", "machine_input", "describe"]
