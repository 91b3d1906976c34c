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
    from music21 import expressions
    s.parts[0].flatten().notes[1].expressions.append(expressions.Fermata())  # on the C5
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


def test_a_fermata_marks_its_notes_steps_as_a_phrase_end():
    piece = D.piece_from_score(small_chorale(), "tiny")
    assert list(np.flatnonzero(piece.phrase_ends)) == list(range(4, 12))  # the C5, held


def test_a_tied_fermata_marks_the_whole_note():
    from music21 import expressions, tie
    s = small_chorale()
    soprano = s.parts[0].flatten().notes
    soprano[1].expressions.clear()
    soprano[2].expressions.append(expressions.Fermata())  # on the B4, then tied into the A4
    soprano[2].tie, soprano[3].tie = tie.Tie("start"), tie.Tie("stop")
    soprano[3].pitch = soprano[2].pitch
    piece = D.piece_from_score(s, "tied")
    assert list(np.flatnonzero(piece.phrase_ends)) == list(range(12, 20))


def test_phrase_ends_and_the_beat_before_weigh_more_in_the_loss():
    piece = D.piece_from_score(small_chorale(), "tiny")
    w = D.phrase_weights(piece, 3.0)
    assert list(np.flatnonzero(w == 3.0)) == list(range(0, 12)) and (w[12:] == 1.0).all()
    assert (D.phrase_weights(piece, 1.0) == 1.0).all()
    window = D._window(D.arrays(piece, [(0, 127)] * 4, augment=False, phrase_weight=3.0), 32,
                       None)
    assert (window["weights"][:12] == 3.0).all() and (window["weights"][20:] == 0.0).all()


def test_the_weighted_loss_counts_a_phrase_ends_mistakes_more():
    import torch

    from livegen.train.trainer import _loss
    voices = torch.tensor([[[5], [5]]])  # [B=1, T=2, V=1]
    right = torch.full((1, 2, 1, 8), -10.0)
    right[0, :, 0, 5] = 10.0
    wrong_first, wrong_second = right.clone(), right.clone()
    wrong_first[0, 0, 0] = right[0, 0, 0].flip(0)
    wrong_second[0, 1, 0] = right[0, 1, 0].flip(0)
    lead = torch.zeros(1, 2, 8)
    batch = {"lead": torch.zeros(1, 2, dtype=torch.long), "voices": voices,
             "weights": torch.tensor([[3.0, 1.0]])}
    base = _loss(lead, right, batch)
    cost_first = _loss(lead, wrong_first, batch) - base
    cost_second = _loss(lead, wrong_second, batch) - base
    assert torch.isclose(cost_first, 3 * cost_second)  # the step weighed 3 costs 3 times more
    batch["weights"] = torch.tensor([[1.0, 1.0]])
    assert torch.isclose(_loss(lead, wrong_first, batch), _loss(lead, wrong_second, batch))


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


# ---------------------------------------------------------------- one file per chorale


def test_bwv_number_ignores_format_and_variant():
    assert D.bwv_number("corpus/bach/bwv277.krn") == "277"
    assert D.bwv_number("bwv18.5-lz.mxl") == D.bwv_number("bwv18.5-w.mxl") == "18.5"
    assert D.bwv_number("bwv1.6.mxl") != D.bwv_number("bwv16.mxl")


def test_one_per_bwv_prefers_mxl_then_no_variant_then_the_first_name():
    files = ["bwv277.krn", "bwv277.mxl", "bwv18.5-w.mxl", "bwv18.5-lz.mxl", "bwv69.6.xml",
             "bwv69.6-a.mxl", "bwv190.7-inst.mxl", "bwv190.7.mxl", "bwv1.6.mxl"]
    kept, dropped = D.one_per_bwv(files)
    assert [f.name for f in kept] == ["bwv277.mxl", "bwv18.5-lz.mxl", "bwv69.6-a.mxl",
                                      "bwv190.7.mxl", "bwv1.6.mxl"]  # in the order given
    assert sorted(f.name for f in dropped) == ["bwv18.5-w.mxl", "bwv190.7-inst.mxl",
                                              "bwv277.krn", "bwv69.6.xml"]


def corpus_like(n: int = 60) -> list[str]:
    """n chorale file names, three of them also as .krn (as in music21's corpus)."""
    names = [f"bwv{200 + i}.mxl" for i in range(n)]
    return names + ["bwv203.krn", "bwv217.krn", "bwv241.krn"]


def test_the_split_counts_each_chorale_once_and_keeps_the_shuffled_order():
    files = corpus_like()
    test, valid, train = D.split_chorale_files(files)
    chosen = test + valid + train
    assert len(chosen) == 60 and len({D.bwv_number(f) for f in chosen}) == 60
    assert not any(f.suffix == ".krn" for f in chosen)
    assert len(test) == len(valid) == 6
    # the same seed shuffles the same list as before: the order is the old one less the .krn
    before = [f for part in D.split_by_file(files) for f in part]
    assert chosen == [f for f in before if f.suffix != ".krn"]
    assert D.split_chorale_files(list(reversed(files))) == (test, valid, train)


def test_split_changes_name_the_dropped_files_and_the_pieces_that_moved():
    files = corpus_like()
    changes = D.split_changes(files)
    assert {f for f, _, now in changes if now == "none"} == {"bwv203.krn", "bwv217.krn",
                                                             "bwv241.krn"}
    before = {p.name: k for k, part in enumerate(D.split_by_file(files)) for p in part}
    now = {p.name: k for k, part in enumerate(D.split_chorale_files(files)) for p in part}
    moved = {f for f in now if now[f] != before[f]}
    assert moved == {f for f, _, split in changes if split != "none"}


def test_the_cache_keeps_each_pieces_source_and_melody_only_pieces(tmp_path):
    piece = D.piece_from_score(small_chorale(), "tiny")
    piece.source = "tiny.mxl"
    tune = D.Piece("tune", piece.human, np.zeros((20, 0), dtype=np.int16), 3, 2, "tune.abc")
    D._save_pieces(tmp_path / "chorales.npz", [piece, piece])
    D._save_pieces(tmp_path / "tunes.npz", [tune])
    back = D._load_pieces(tmp_path / "chorales.npz") + D._load_pieces(tmp_path / "tunes.npz")
    assert [(p.name, p.source, p.voices.shape) for p in back] == [
        ("tiny", "tiny.mxl", (20, 3)), ("tiny", "tiny.mxl", (20, 3)), ("tune", "tune.abc", (20, 0))]
    assert (back[1].voices == piece.voices).all() and back[2].first_downbeat == 2
    assert (back[1].phrase_ends == piece.phrase_ends).all() and back[1].phrase_ends.any()
    assert not back[2].phrase_ends.any() and back[2].phrase_ends.shape == (20,)


# ---------------------------------------------------------------- folk tunes

TUNE = """X:1
T:Test Reel
M:2/4
L:1/8
K:G
"G"D|G>A {c}Bd|[GB]2 g2|]
"""


def test_a_folk_tune_becomes_a_melody_on_its_own_bar_grid():
    from music21 import converter
    piece = D.melody_from_score(converter.parse(TUNE, format="abc"), "reel")
    # an eighth-note pickup (2 steps); 2/4 bars; the grace note and chord symbol are left out;
    # the chord [GB] gives its top note
    assert (piece.beats_per_bar, piece.first_downbeat, piece.length) == (2, 2, 18)
    assert [(n.pitch, n.start, n.end) for n in piece.human] == [
        (62, 0, 2), (67, 2, 5), (69, 5, 6), (71, 6, 8), (74, 8, 10), (71, 10, 14), (79, 14, 18)]
    assert piece.voices.shape == (18, 0)


def test_a_tune_whose_bar_is_not_whole_quarters_is_left_out():
    from music21 import converter
    assert D.melody_from_score(converter.parse(TUNE.replace("M:2/4", "M:9/8"), format="abc"),
                               "slip jig") is None


def test_the_folk_validation_set_is_one_fixed_draw():
    files = [f"tune{i:03}.abc" for i in range(500)]
    chosen = D.folk_validation_files(files)
    assert len(chosen) == D.FOLK_TUNES and len(set(chosen)) == D.FOLK_TUNES
    assert D.folk_validation_files(reversed(files)) == chosen  # does not depend on the order
    assert D.folk_validation_files(files, seed=1) != chosen
