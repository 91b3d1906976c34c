"""Offline render and the step logic it shares with the live engine (random-weight model: the
constraints must hold whatever the net says)."""

from dataclasses import replace

import mido
import numpy as np
import pytest

from livegen.accompanist import Accompanist
from livegen.frames import LEAD, Frame
from livegen.model.runtime import Runtime
from livegen.render import render
from livegen.settings import SamplingSettings, Settings, VoiceSettings
from livegen.tonality import scale_pitch_classes
from tests.util import scale_melody, tiny_model


@pytest.fixture(scope="module")
def runtime(tmp_path_factory):
    _, path = tiny_model(tmp_path_factory.mktemp("m") / "m.pt", seed=7)
    return Runtime(path, device="cpu", warmup=2)


def settings(**sampling) -> Settings:
    return Settings(voices=[VoiceSettings("alto", channel=2, program=52),
                            VoiceSettings("tenor", channel=3, program=52),
                            VoiceSettings("bass", channel=4, program=32)],
                    sampling=SamplingSettings(**({"temperature": 1.5, "top_p": 1.0} | sampling)))


def run(runtime, tmp_path, s: Settings, seed=0, name="out.mid"):
    runtime.reset()
    acc = Accompanist(runtime, s, seed=seed)
    melody = scale_melody(tmp_path / "melody.mid", bars=4)
    result = render(acc, melody, tmp_path / name)
    return acc, result, mido.MidiFile(tmp_path / name)


def notes_by_track(mid: mido.MidiFile) -> dict[str, list[tuple[int, int, int]]]:
    """track name -> (start tick, end tick, pitch); asserts every note-on is closed."""
    out = {}
    for track in mid.tracks[1:]:
        now, open_, notes = 0, {}, []
        for msg in track:
            now += msg.time
            if msg.type == "note_on" and msg.velocity:
                assert msg.note not in open_, "a voice sounded two notes at once"
                open_[msg.note] = now
            elif msg.type in ("note_off", "note_on"):
                notes.append((open_.pop(msg.note), now, msg.note))
        assert not open_, f"hanging notes in {track.name}"
        out[track.name] = notes
    return out


def test_same_seed_same_file_other_seed_other_file(runtime, tmp_path):
    run(runtime, tmp_path, settings(), seed=5, name="a.mid")
    run(runtime, tmp_path, settings(), seed=5, name="b.mid")
    run(runtime, tmp_path, settings(), seed=6, name="c.mid")
    a, b, c = ((tmp_path / n).read_bytes() for n in ("a.mid", "b.mid", "c.mid"))
    assert a == b and a != c


def test_output_has_the_melody_and_one_track_per_voice(runtime, tmp_path):
    _, result, mid = run(runtime, tmp_path, settings())
    tracks = notes_by_track(mid)
    assert list(tracks) == ["melody", "alto", "tenor", "bass"]
    assert len(tracks["melody"]) == 16
    channels = {t.name: {m.channel for m in t if m.type == "note_on"} for t in mid.tracks[1:]}
    assert channels == {"melody": {0}, "alto": {1}, "tenor": {2}, "bass": {3}}
    programs = [m.program for t in mid.tracks for m in t if m.type == "program_change"]
    assert programs == [0, 52, 52, 32]
    assert result.steps == 64


def test_key_lock_ranges_leaps_and_no_unison(runtime, tmp_path):
    s = settings(key_lock="D major", max_leap=5)
    s.voices[2] = replace(s.voices[2], low=40, high=52)
    acc, result, mid = run(runtime, tmp_path, s)
    scale = scale_pitch_classes(2, "major")
    tracks = notes_by_track(mid)
    for k, name in enumerate(["alto", "tenor", "bass"]):
        pitches = [p for _, _, p in tracks[name]]
        assert pitches, f"{name} never played"
        assert all(p % 12 in scale for p in pitches)
        lo, hi = (40, 52) if name == "bass" else (acc.voices[k].low, acc.voices[k].high)
        assert all(lo <= p <= hi for p in pitches)
        assert all(abs(a - b) <= 5 for a, b in zip(pitches, pitches[1:], strict=False))
    sounding = result.performance.tokens
    from livegen.train.metrics import sounding as sounding_pitches
    per_step = sounding_pitches(sounding)
    for row in per_step:
        playing = [p for p in row if p >= 0]
        assert len(playing) == len(set(playing)), "two voices in unison"


def test_a_muted_voice_plays_nothing(runtime, tmp_path):
    s = settings()
    s.voices[0] = replace(s.voices[0], enabled=False)
    _, _, mid = run(runtime, tmp_path, s)
    assert "alto" not in notes_by_track(mid)


def test_density_moves_the_number_of_onsets(runtime, tmp_path):
    counts = []
    for density in (-1.0, 1.0):
        _, result, _ = run(runtime, tmp_path, settings(density=density), name=f"{density}.mid")
        counts.append(int((result.performance.tokens >= 2).sum()))
    assert counts[0] < counts[1]


def test_takeover_plays_the_melody_in_key_and_in_range(runtime):
    runtime.reset()
    acc = Accompanist(runtime, settings(key_lock="G major"), seed=1)
    pitches, sounding = [], -1
    for t in range(64):
        frame, changes = acc.lead_step()
        for c in changes:
            assert c.voice == LEAD
            if c.velocity:
                assert sounding < 0
                sounding = c.pitch
                pitches.append(c.pitch)
            else:
                assert c.pitch == sounding
                sounding = -1
        acc.emit(frame, t % 16)
        acc.advance(frame, t % 16, (t + 1) % 16)
    assert pitches
    assert all(59 <= p <= 81 and p % 12 in scale_pitch_classes(7, "major") for p in pitches)
    offs = acc.release()
    assert {c.pitch for c in offs if c.voice == LEAD} == ({sounding} if sounding >= 0 else set())
    assert acc.sounding == [-1, -1, -1]


def test_onset_probability_is_a_probability(runtime):
    runtime.reset()
    acc = Accompanist(runtime, settings(), seed=0)
    acc.emit(Frame((60,)), 0)
    acc.advance(Frame((60,)), 0, 1)
    assert 0.0 <= acc.onset_probability <= 1.0
    assert np.isfinite(acc.onset_probability)


@pytest.mark.parametrize("avoid", [True, False])
def test_parallel_fifths_and_octaves_are_avoided_on_request(runtime, tmp_path, avoid):
    """With a random net, parallels happen unless the rule forbids them; with it, none at all
    (counted by the evaluation's own metric, melody included)."""
    from livegen.grid import human_frames
    from livegen.model.tokens import lead_token
    from livegen.render import perform
    from livegen.train.metrics import Score, measure

    melody = [60, 62, 64, 65, 67, 65, 64, 62] * 8
    from livegen.grid import StepNote
    notes = [StepNote(p, 2 * i, 2 * i + 2) for i, p in enumerate(melody)]
    onsets, held = human_frames(notes, 2 * len(melody))
    total = 0
    for seed in range(3):
        runtime.reset()
        acc = Accompanist(runtime, settings(avoid_parallels=avoid, temperature=1.0), seed=seed)
        perf = perform(acc, onsets, held, [t % 16 for t in range(len(onsets))])
        lead = np.array([lead_token(o, h) for o, h in zip(onsets, held, strict=False)])
        ranges = [(v.low, v.high) for v in acc.voices]
        total += measure(Score(lead, perf.tokens, ranges)).parallels
    assert (total == 0) if avoid else (total > 0)


def test_render_command_with_wav_is_deterministic(tmp_path, capsys):
    from livegen.cli import main
    for name in ("a", "b"):
        assert main(["render", "-o", str(tmp_path / f"{name}.mid"), "--wav",
                     str(tmp_path / f"{name}.wav"), "--seed", "4"]) == 0
    assert (tmp_path / "a.wav").read_bytes() == (tmp_path / "b.wav").read_bytes()
    assert (tmp_path / "a.mid").read_bytes() == (tmp_path / "b.mid").read_bytes()
    assert (tmp_path / "a.wav").stat().st_size > 48000 * 2 * 2 * 10  # stereo 16-bit, > 10 s
    assert "melody + alto, tenor, bass" in capsys.readouterr().out


# A 37-byte file: at 1 tick a beat, one note held for 2^28 - 1 beats (the longest delta time).
LONG_NOTE = bytes.fromhex("4d546864000000060000000100014d54726b0000000f00903c40ffffff7f803c0000"
                          "ff2f00")


def test_a_note_of_absurd_length_is_refused_before_any_step_is_allocated(runtime, tmp_path):
    import tracemalloc

    from livegen.midi.midifile import MidiFileError

    path = tmp_path / "long.mid"
    path.write_bytes(LONG_NOTE)
    runtime.reset()
    acc = Accompanist(runtime, settings(), seed=0)
    tracemalloc.start()
    try:
        with pytest.raises(MidiFileError) as info:
            render(acc, path, tmp_path / "out.mid")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert str(info.value) == (
        f"{path}: its note 60 at beat 0 lasts 268,435,455 beats (37,282.7 hours at 120 BPM), "
        "more than the 25,000 beats (100,000 16th steps) a render covers; end that note where "
        "it should or choose another --track/--channel.")
    assert peak < 10 * 2**20
    assert not (tmp_path / "out.mid").exists()


def test_a_melody_longer_than_a_render_covers_is_refused(runtime, tmp_path):
    from livegen.midi.midifile import MidiFileError, Note, Part, write_parts

    path = tmp_path / "long.mid"
    write_parts(path, [Part("melody", 1, 0, [Note(60, 0, 1), Note(62, 30_000, 30_001)])], 100.0)
    with pytest.raises(MidiFileError, match=r"long.mid: its melody, to the end of its last bar, "
                       r"lasts 30,004 beats \(5.0 hours at 100 BPM\), more than the 25,000 beats"):
        render(Accompanist(runtime, settings(), seed=0), path, tmp_path / "out.mid")


def test_a_long_note_under_a_higher_line_is_cut_at_the_end_of_the_render(runtime, tmp_path):
    """The top line cuts the low note short; in the output the low note ends with the render."""
    from livegen.midi.midifile import Note, Part, read_notes, write_parts

    path = tmp_path / "stuck.mid"
    write_parts(path, [Part("melody", 1, 0, [Note(48, 0, 1_000_000), Note(72, 1, 2)])], 120.0)
    runtime.reset()
    result = render(Accompanist(runtime, settings(), seed=0), path, tmp_path / "out.mid")
    assert result.steps == 16
    melody = [n for n in read_notes(tmp_path / "out.mid").notes if n.track == 1]
    assert [(n.pitch, n.start, n.end) for n in melody] == [(48, 0.0, 4.0), (72, 1.0, 2.0)]


def drums_and_melody(path):
    """Channel 10 plays high drum notes on every 8th; channel 1 a scale in quarter notes."""
    from livegen.midi.midifile import Note, Part, write_parts

    drums = [Note(81 - (i % 2) * 5, i / 2, i / 2 + 0.1, 100, 10) for i in range(32)]
    melody = [Note(p, i, i + 0.9, 90, 1) for i, p in enumerate([60, 62, 64, 65] * 4)]
    write_parts(path, [Part("drums", 10, None, drums), Part("melody", 1, 0, melody)], 120.0)
    return path


@pytest.mark.parametrize("channel, pitches", [(None, {60, 62, 64, 65}), (10, {76, 81})])
def test_the_drum_channel_is_not_the_melody_unless_chosen(runtime, tmp_path, channel, pitches):
    path = drums_and_melody(tmp_path / "band.mid")
    runtime.reset()
    result = render(Accompanist(runtime, settings(), seed=0), path, tmp_path / "out.mid",
                    channel=channel)
    assert {n.pitch for n in result.melody} == pitches
    assert {n.pitch for n in result.parts[0].notes} == pitches


def test_a_file_of_drums_alone_says_how_to_use_them(runtime, tmp_path):
    from livegen.midi.midifile import MidiFileError, Note, Part, write_parts

    path = tmp_path / "drums.mid"
    write_parts(path, [Part("drums", 10, None, [Note(36, 0, 0.5, 100, 10)])], 120.0)
    with pytest.raises(MidiFileError) as info:
        render(Accompanist(runtime, settings(), seed=0), path, tmp_path / "out.mid")
    assert str(info.value) == (f"{path}: only drum notes (channel 10), which are not taken as "
                               "the melody unless you give --channel 10.")


def test_a_file_with_no_notes_says_so(runtime, tmp_path):
    from livegen.midi.midifile import MidiFileError, write_parts

    path = tmp_path / "silent.mid"
    write_parts(path, [], 120.0)
    with pytest.raises(MidiFileError) as info:
        render(Accompanist(runtime, settings(), seed=0), path, tmp_path / "out.mid")
    assert str(info.value) == f"{path}: the file has no notes; choose another file."


def test_render_command_answers_a_hostile_file_with_one_line(tmp_path, capsys):
    from livegen.cli import main

    path = tmp_path / "long.mid"
    path.write_bytes(LONG_NOTE)
    assert main(["render", str(path), "-o", str(tmp_path / "out.mid")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"livegen: {path}: its note 60 at beat 0 lasts 268,435,455 beats")
    assert err.count("\n") == 1 and "Traceback" not in err
