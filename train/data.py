"""Training data: pieces on the 16th grid, from the Bach chorales or a folder of MIDI files,
and the folk melodies `livegen eval` validates on.

A `Piece` holds the human part as notes on the grid (it may be polyphonic) and the machine voices
as tokens. The chorales come from music21's corpus (soprano = human part; alto, tenor, bass =
voices), are parsed once and cached as .npz (no pickles), and are split by chorale with a fixed
seed. Batches apply random transpositions that keep every part inside its range.

One chorale, one piece: the corpus holds some chorales in more than one file (bwv277, bwv281 and
bwv366 as .krn and .mxl; bwv18.5 as its Leipzig and Weimar versions, -lz and -w), and a split by
file put the same music on both sides of it. `one_per_bwv` keeps one file per BWV number (the
.mxl, then the file without a variant suffix, then the first by name: bwv277.mxl, bwv281.mxl,
bwv366.mxl, bwv18.5-lz.mxl) before the split is cut. The split itself is the one the shipped model
was trained with, as far as it can be: the same seed shuffles the same list (every file that
parses, duplicates included, sorted by name), the files not kept are taken out of the shuffled
order, and the order is then cut 10% test, 10% validation, the rest training; the few pieces
this shifts across a boundary are listed by `split_changes`.

Phrase ends: the chorales mark them with fermatas on the soprano's notes. `Piece.phrase_ends`
holds, per step, whether the melody sounds a note under a fermata there (the note's onset and
the steps it is held); the trainer weighs the voices' loss on those steps and on the beat before
them (`phrase_weights`), so that the model learns the chords and holds of cadences more strongly
than the average step. The model does not get them as an input: live, nobody marks a phrase end
before it happens (the accompanist's cadence rules guess it from the melody instead).

The folk set is a fixed draw of tunes from Ryan's Mammoth Collection (music21's corpus holds it
as one ABC file per tune): melodies only, never trained on, for `livegen eval` (README,
"Figures"). Each tune is its written melody (top note of any chord, grace notes left out,
repeats not expanded) at its written pitch, on its own bar grid; a tune whose bar is not a whole
number of quarter notes (9/8) is left out, since the grid's beat is the quarter note.
"""

from __future__ import annotations

import hashlib
import random
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
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
# 3: each piece keeps its source file, so that duplicates can be told apart; 4: phrase ends
CACHE_VERSION = 4
# Preferred formats when one chorale is in several files; others come after these.
FORMAT_PREFERENCE = (".mxl", ".musicxml", ".xml", ".krn")
FOLK_SEED = 20250309
# Tunes drawn for the folk validation set (those with a 9/8 bar are then left out): enough for
# figures steady to about a hundredth between seeds, few enough that a full `livegen eval` (every
# shipped preset, 4 seeds, both sets) stays within about 15 minutes on a busy 2-core machine.
FOLK_TUNES = 64


@dataclass
class Piece:
    name: str
    human: list[StepNote]
    voices: np.ndarray  # [T, V] int16 tokens
    beats_per_bar: int = 4
    first_downbeat: int = 0  # step of the first downbeat; earlier steps are a pickup
    source: str = ""  # the file it was read from (its name), where one is known
    # [T] bool: the melody sounds a note under a fermata (a phrase end) at this step; empty
    # where the source marks none (MIDI files, folk tunes)
    phrase_ends: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))

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
    """The four-part Bach chorales of music21's corpus, one file per BWV number, split 80/10/10
    by chorale (module docstring)."""
    pieces = {p.source: p for p in _cached_chorales(cache)}
    test, valid, train = (
        [pieces[f.name] for f in part] for part in split_chorale_files(list(pieces)))
    if limit is not None:
        train, valid, test = train[:limit], valid[:max(1, limit // 4)], test[:max(1, limit // 4)]
    ranges = {"human": CHORALE_RANGES["soprano"]} | {v: CHORALE_RANGES[v] for v in CHORALE_VOICES}
    return Dataset(CHORALE_VOICES, ranges, train, valid, test,
                   "music21 corpus: Bach chorales, one file per BWV number")


def bwv_number(path: str | Path) -> str:
    """The BWV number a chorale file holds: "bwv18.5-lz.mxl" -> "18.5", "bwv277.krn" -> "277"."""
    return Path(path).stem.lower().removeprefix("bwv").split("-")[0]


def _preference(path: Path) -> tuple[int, bool, str]:
    suffix = path.suffix.lower()
    rank = FORMAT_PREFERENCE.index(suffix) if suffix in FORMAT_PREFERENCE \
        else len(FORMAT_PREFERENCE)
    return rank, "-" in path.stem, path.name


def one_per_bwv(paths: Sequence[str | Path]) -> tuple[list[Path], list[Path]]:
    """(kept, dropped): one file per BWV number, in the order given; the kept one is the .mxl,
    then the one without a variant suffix ("-lz", "-a", ...), then the first by name."""
    files = [Path(p) for p in paths]
    best: dict[str, Path] = {}
    for f in files:
        number = bwv_number(f)
        if number not in best or _preference(f) < _preference(best[number]):
            best[number] = f
    kept = set(best.values())
    return [f for f in files if f in kept], [f for f in files if f not in kept]


def split_chorale_files(paths: Sequence[str | Path], seed: int = SPLIT_SEED
                        ) -> tuple[list[Path], list[Path], list[Path]]:
    """(test, valid, train) of the chorale files that parse: the same seed shuffles them all by
    name (duplicates included, as before they were removed), then the files `one_per_bwv`
    drops are taken out and the order is cut 10% / 10% / the rest."""
    order = _shuffled(paths, seed)
    kept = set(one_per_bwv(order)[0])
    return _cut([p for p in order if p in kept])


def split_by_file(paths: Sequence[str | Path], seed: int = SPLIT_SEED
                  ) -> tuple[list[Path], list[Path], list[Path]]:
    """The split before duplicates were removed (a shuffle of every file, cut 10/10/80), which
    the shipped model was trained with; for `split_changes`."""
    return _cut(_shuffled(paths, seed))


def _shuffled(paths: Sequence[str | Path], seed: int) -> list[Path]:
    """The files sorted by name (a .krn before the .mxl of the same name) and shuffled."""
    order = sorted((Path(p) for p in paths), key=lambda p: (p.stem, p.name))
    random.Random(seed).shuffle(order)
    return order


def _cut(order: list[Path]) -> tuple[list[Path], list[Path], list[Path]]:
    n_hold = len(order) // 10
    return order[:n_hold], order[n_hold:2 * n_hold], order[2 * n_hold:]


def split_changes(paths: Sequence[str | Path], seed: int = SPLIT_SEED
                  ) -> list[tuple[str, str, str]]:
    """(file, split before, split now) for every file whose split changed with `one_per_bwv`;
    "none" where a file is no longer used."""
    names = ("test", "valid", "train")
    before = {p.name: n for n, part in zip(names, split_by_file(paths, seed), strict=True)
              for p in part}
    now = {p.name: n for n, part in zip(names, split_chorale_files(paths, seed), strict=True)
           for p in part}
    return [(f, before[f], now.get(f, "none")) for f in sorted(before)
            if before[f] != now.get(f, "none")]


def _cached_chorales(cache: Path | None) -> list[Piece]:
    import music21  # only the trainer needs music21

    from livegen.paths import cache_dir
    folder = cache or cache_dir()
    stamp = hashlib.sha1(f"{music21.__version__}-{CACHE_VERSION}".encode()).hexdigest()[:10]
    path = folder / f"chorales-{stamp}.npz"
    if path.is_file():
        return _load_pieces(path)
    files = _chorale_files()
    pieces = [p for p in (_parse_chorale(f) for f in _parsing(files, "Bach chorales", path))
              if p is not None]
    folder.mkdir(parents=True, exist_ok=True)
    _save_pieces(path, pieces)
    return pieces


def _parsing(files: list[Path], what: str, cache: Path):
    """The files, with a progress bar on stderr: a cold first parse takes minutes, and a
    user should see what happens and that it happens once."""
    import sys

    from tqdm import tqdm

    print(f"parsing the {what} from music21's corpus (once; cached in {cache})",
          file=sys.stderr, flush=True)
    return tqdm(files, desc=what, unit="file", file=sys.stderr, mininterval=1.0)


def _chorale_files() -> list[Path]:
    from music21 import corpus
    return sorted(Path(p) for p in corpus.getComposer("bach") if Path(p).name.startswith("bwv"))


def _parse_chorale(path: Path) -> Piece | None:
    from music21 import converter

    piece = piece_from_score(converter.parse(str(path)), path.stem)
    if piece is not None:
        piece.source = path.name
    return piece


def piece_from_score(score, name: str) -> Piece | None:
    """A four-part music21 score (soprano, alto, tenor, bass) as a Piece; None if it has not
    exactly four parts with notes. Ties are merged; chords in a part give their top note."""
    parts = list(score.parts)
    if len(parts) != 4:
        return None
    lines = [_part_line(part) for part in parts]
    if not all(lines):
        return None
    length = max(n.end for line in lines for n in line)
    bar, first = _bar_grid(score, parts[0])
    voices = np.stack([voice_tokens(line, length) for line in lines[1:]], axis=1)
    melody = skyline(lines[0])
    return Piece(name, melody, voices, max(1, round(bar)), round(first * STEPS_PER_BEAT),
                 phrase_ends=_fermata_steps(parts[0], melody, length))


def melody_from_score(score, name: str) -> Piece | None:
    """The top line of a score's first part as a Piece with no voices; None when it has no
    notes or its bar is not a whole number of quarter notes."""
    parts = list(score.parts)
    if not parts:
        return None
    line = skyline(_part_line(parts[0]))
    bar, first = _bar_grid(score, parts[0])
    if not line or bar != round(bar) or bar < 1:
        return None
    length = max(n.end for n in line)
    return Piece(name, line, np.zeros((length, 0), dtype=np.int16), round(bar),
                 round(first * STEPS_PER_BEAT))


def _part_line(part) -> list[StepNote]:
    """A part's notes on the grid: ties merged, a chord's top note, chord symbols and grace
    notes (no duration) left out."""
    from music21 import harmony

    notes = []
    for n in part.stripTies().flatten().notes:
        if n.duration.quarterLength <= 0 or isinstance(n, harmony.Harmony):
            continue
        pitch = max(p.midi for p in n.pitches)
        start = float(n.offset)
        notes.append(Note(pitch, start, start + float(n.duration.quarterLength)))
    return to_steps(notes)


def _fermata_steps(part, melody: Sequence[StepNote], length: int) -> np.ndarray:
    """[length] bool: the steps where the melody sounds a note that carries a fermata (on any of
    its tied parts)."""
    from music21 import expressions

    marked = np.zeros(length, dtype=bool)
    for n in part.flatten().notes:
        if not any(isinstance(e, expressions.Fermata) for e in n.expressions):
            continue
        step = round(float(n.offset) * STEPS_PER_BEAT)
        for m in melody:
            if m.start <= step < m.end:
                marked[m.start:m.end] = True
    return marked


def phrase_weights(piece: Piece, weight: float) -> np.ndarray:
    """[T] loss weights of a piece's steps: `weight` on the steps of a phrase end (a fermata
    note, `Piece.phrase_ends`) and on the beat before each, 1 elsewhere."""
    out = np.ones(piece.length, dtype=np.float32)
    ends = piece.phrase_ends
    if weight == 1.0 or not ends.any():
        return out
    marked = ends.copy()
    for start in np.flatnonzero(ends & ~np.concatenate([[False], ends[:-1]])):
        marked[max(0, start - STEPS_PER_BEAT):start] = True
    out[marked] = weight
    return out


def _bar_grid(score, part) -> tuple[float, float]:
    """(bar length, offset of the first downbeat) in quarter notes: from the first time
    signature, and the second measure's offset when the first is a pickup."""
    from music21 import meter

    signatures = list(score.recurse().getElementsByClass(meter.TimeSignature))
    bar = float(signatures[0].barDuration.quarterLength) if signatures else 4.0
    measures = list(part.getElementsByClass("Measure"))
    pickup = measures and measures[0].paddingLeft > 0 and len(measures) > 1
    return bar, float(measures[1].offset) if pickup else 0.0


# ---------------------------------------------------------------- folk melodies (music21)

def folk_tunes(cache: Path | None = None, limit: int | None = None) -> list[Piece]:
    """The folk validation set: `FOLK_TUNES` tunes of Ryan's Mammoth Collection drawn once with
    `FOLK_SEED` (`folk_validation_files`), melodies only, those that fit the grid (module
    docstring); parsed once and cached as .npz. With `limit`, the first `limit` of them (parsed
    alone, without writing the cache, when there is none yet)."""
    import music21

    from livegen.paths import cache_dir
    folder = cache or cache_dir()
    key = f"{music21.__version__}-{CACHE_VERSION}-{FOLK_SEED}-{FOLK_TUNES}"
    path = folder / f"folk-{hashlib.sha1(key.encode()).hexdigest()[:10]}.npz"
    if path.is_file():
        return _load_pieces(path)[:limit]
    from music21 import converter, corpus

    files = folk_validation_files(Path(p) for p in corpus.getComposer("ryansMammoth"))
    pieces: list[Piece] = []
    for f in _parsing(list(files), "folk tunes", path):
        if limit is not None and len(pieces) >= limit:
            return pieces
        piece = melody_from_score(converter.parse(str(f)), f.stem)
        if piece is not None:
            piece.source = f.name
            pieces.append(piece)
    folder.mkdir(parents=True, exist_ok=True)
    _save_pieces(path, pieces)
    return pieces[:limit]


def folk_validation_files(paths: Iterable[str | Path], seed: int = FOLK_SEED,
                          count: int = FOLK_TUNES) -> list[Path]:
    """The tunes of the folk validation set: the files sorted by name, shuffled with `seed`,
    the first `count`; the rest are never drawn, so the set does not change."""
    order = sorted((Path(p) for p in paths), key=lambda p: p.name)
    random.Random(seed).shuffle(order)
    return order[:count]


def _save_pieces(path: Path, pieces: Sequence[Piece]) -> None:
    human = [np.array([(n.pitch, n.start, n.end) for n in p.human], dtype=np.int32).reshape(-1, 3)
             for p in pieces]
    np.savez_compressed(
        path,
        names=np.array([p.name for p in pieces]),
        sources=np.array([p.source for p in pieces]),
        meta=np.array([(p.beats_per_bar, p.first_downbeat, p.length, len(h))
                       for p, h in zip(pieces, human, strict=True)], dtype=np.int32),
        human=np.concatenate(human),
        voices=np.concatenate([p.voices for p in pieces]),
        phrase_ends=np.concatenate([_phrase_ends(p) for p in pieces]),
    )


def _phrase_ends(piece: Piece) -> np.ndarray:
    ends = piece.phrase_ends
    return ends if ends.shape == (piece.length,) else np.zeros(piece.length, dtype=bool)


def _load_pieces(path: Path) -> list[Piece]:
    with np.load(path, allow_pickle=False) as z:
        names, meta, human, voices = z["names"], z["meta"], z["human"], z["voices"]
        sources = z["sources"] if "sources" in z else np.array([""] * len(names))
        ends = z["phrase_ends"] if "phrase_ends" in z else np.zeros(len(voices), dtype=bool)
    pieces, h0, v0 = [], 0, 0
    for name, source, (bpb, first, length, n_human) in zip(names, sources, meta, strict=True):
        notes = [StepNote(int(p), int(s), int(e)) for p, s, e in human[h0:h0 + n_human]]
        pieces.append(Piece(str(name), notes, voices[v0:v0 + length], int(bpb), int(first),
                            str(source), ends[v0:v0 + length].astype(bool)))
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
    weights: np.ndarray  # [T] float32: each step's weight in the voices' loss


def arrays(piece: Piece, ranges: Sequence[tuple[int, int]], augment: bool,
           phrase_weight: float = 1.0) -> Arrays:
    """The piece's inputs and targets; `phrase_weight` weighs the voices' loss at its phrase
    ends (`phrase_weights`)."""
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
                  shifts, phrase_weights(piece, phrase_weight))


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
    lead[:n] = transpose_tokens(a.lead[sl], shift)
    voices = np.full((seq_len, a.voices.shape[1]), -100, dtype=np.int64)
    voices[:n] = transpose_tokens(a.voices[sl], shift)
    positions = np.zeros(seq_len, dtype=np.int64)
    positions[:n] = a.positions[sl]
    weights = np.zeros(seq_len, dtype=np.float32)  # padding weighs nothing
    weights[:n] = a.weights[sl]
    return {"human": human, "lead": lead, "voices": voices, "positions": positions,
            "weights": weights}


def transpose_tokens(tokens: np.ndarray, shift: int) -> np.ndarray:
    """Tokens with every pitch moved by `shift` semitones (REST and HOLD stay), as int64."""
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


__all__ = ["HOLD", "Piece", "Dataset", "Role", "chorales", "one_per_bwv", "split_chorale_files",
           "phrase_weights", "transpose_tokens",
           "folk_tunes", "midi_folder", "arrays", "batches", "sequential", "machine_input",
           "describe"]
