"""The data path: a small four-part score made here goes to frames, tokens, positions, windows."""

import numpy as np
import pytest

from livegen.model.tokens import HOLD, PITCH0, REST, position_index
from livegen.train import data as D

music21 = pytest.importorskip("music21")


def small_chorale():
    """4/4 with a one-beat pickup; soprano G4 | C5 (half, tied over) B4 A4; three lower voices."""
    from music21 import meter, note, stream

    def part(name, notes):
        p = stream.Part(id=name)
        p.partName = name
        m0 = stream.Measure(number=0)
        m0.append(meter.TimeSignature("4/4"))
        m0.paddingLeft = 3.0
        m0.append(note.Note(notes[0], quarterLength=1))
        m1 = stream.Measure(number=1)
        for pitch, ql in notes[1:]:
            m1.append(note.Note(pitch, quarterLength=ql))
        p.append([m0, m1])
        return p

    s = stream.Score()
    s.insert(0, part("Soprano", ["G4", ("C5", 2), ("B4", 1), ("A4", 1)]))
    s.insert(0, part("Alto", ["D4", ("E4", 2), ("D4", 1), ("F4", 1)]))
    s.insert(0, part("Tenor", ["B3", ("G3", 2), ("G3", 1), ("C4", 1)]))
    s.insert(0, part("Bass", ["G2", ("C3", 2), ("G2", 1), ("F2", 1)]))
    return s


def test_a_score_becomes_human_notes_and_voice_tokens():
    piece = D.piece_from_score(small_chorale(), "tiny")
    assert piece.length == 20 and piece.first_downbeat == 4 and piece.beats_per_bar == 4
    assert [(n.pitch, n.start, n.end) for n in piece.human] == [
        (67, 0, 4), (72, 4, 12), (71, 12, 16), (69, 16, 20)]
    bass = piece.voices[:, 2]
    assert bass[0] == PITCH0 + 43 and list(bass[1:4]) == [HOLD] * 3
    assert bass[4] == PITCH0 + 48 and bass[12] == PITCH0 + 43
    # the pickup sits on beat 4; the first downbeat is position 0
    pos = piece.positions()
    assert pos[0] == position_index(12) and pos[4] == 0 and pos[8] == position_index(4)


def test_windows_transpose_every_part_together_within_ranges():
    piece = D.piece_from_score(small_chorale(), "tiny")
    ranges = [D.CHORALE_RANGES[v] for v in ("soprano", "alto", "tenor", "bass")]
    arr = D.arrays(piece, ranges, augment=True)
    assert 0 in arr.shifts and len(arr.shifts) > 3
    rng = np.random.default_rng(0)
    for _ in range(20):
        w = D._window(arr, 20, rng)
        onset_pitches = np.nonzero(w["human"][:, :128])[1]
        lead_pitches = w["lead"][w["lead"] >= PITCH0] - PITCH0
        assert sorted(set(onset_pitches)) == sorted(set(lead_pitches))
        shift = int(lead_pitches[0]) - 67
        assert shift in arr.shifts
        assert w["voices"][0, 2] == PITCH0 + 43 + shift
        for k, (lo, hi) in enumerate(ranges[1:]):
            v = w["voices"][:, k]
            assert ((v[v >= PITCH0] - PITCH0 >= lo) & (v[v >= PITCH0] - PITCH0 <= hi)).all()


def test_a_score_without_four_parts_is_skipped():
    from music21 import stream
    s = small_chorale()
    three = stream.Score()
    for p in list(s.parts)[:3]:
        three.insert(0, p)
    assert D.piece_from_score(three, "three") is None


def test_padding_is_ignored_and_fed_back_as_rest():
    piece = D.piece_from_score(small_chorale(), "tiny")
    w = D._window(D.arrays(piece, [(0, 127)] * 4, augment=False), 32, None)
    assert (w["voices"][20:] == -100).all()
    import torch
    assert (D.machine_input(torch.from_numpy(w["voices"]))[20:] == REST).all()
