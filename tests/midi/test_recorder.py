"""Recorder: a valid MIDI file after every flush and after a kill, flushes that write only what is
new, failures that stop the recording with one sentence, and file names no two recordings share.
"""

from __future__ import annotations

import errno
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import mido
import pytest

from livegen.midi.recorder import Recorder, RecorderError, new_recording_path

ROOT = Path(__file__).resolve().parents[2]
PER_S = 960  # ticks per second at 120 BPM


def read(path: Path) -> dict[str, list[tuple[int, str, int, int]]]:
    """Each track's notes by name: (absolute tick, "on"/"off", pitch, channel)."""
    out = {}
    for track in mido.MidiFile(path).tracks:
        tick, notes = 0, []
        for m in track:
            tick += m.time
            if m.type in ("note_on", "note_off"):
                on = m.type == "note_on" and m.velocity > 0
                notes.append((tick, "on" if on else "off", m.note, m.channel))
        out[track.name] = notes
    return out


def session(tmp_path: Path, **kw: Any) -> Recorder:
    rec = Recorder(tmp_path / "take.mid", 120, 4, 100.0, **kw)
    rec.track("human", 1)
    rec.track("alto", 2, 52)
    rec.track("bass", 4, 32)
    rec.track("takeover", 16)
    return rec


def laid_out(rec: Recorder, now: float = 100.0) -> None:
    """The tracks in the file: the helper builds their layout, the next flush takes it over (a
    rename over the recording), the helper closes the old file."""
    rec.flush(now)
    assert rec.wait(5) and rec.moving
    rec.flush(now)
    assert rec.wait(5) and not rec.moving


def test_the_closed_file_holds_every_note_with_its_time_channel_and_track(tmp_path):
    rec = session(tmp_path)
    rec.add("human", 100.5, [0x90, 60, 90])
    rec.add("alto", 100.5, [0x91, 57, 70])
    rec.add("human", 101.0, [0x80, 60, 0])
    rec.add("alto", 101.25, [0x91, 57, 0])  # a note-on at velocity 0 ends the note
    rec.add("bass", 102.0, [0x93, 40, 80])  # still sounding at the end: closed there
    rec.add("human", 102.5, [0x80, 61, 0])  # an off for a note that is not on: dropped
    rec.add("nobody", 102.5, [0x90, 61, 90])  # no such track
    rec.add("human", 102.5, [0xB0, 64, 127])  # not a note
    assert rec.close(103.0) == tmp_path / "take.mid"
    assert rec.wait(5)
    mid = mido.MidiFile(tmp_path / "take.mid")
    assert mid.type == 1 and mid.ticks_per_beat == 480
    assert [t.name for t in mid.tracks] == ["", "human", "alto", "bass", "takeover"]
    assert read(tmp_path / "take.mid") == {
        "": [],
        "human": [(480, "on", 60, 0), (960, "off", 60, 0)],
        "alto": [(480, "on", 57, 1), (1200, "off", 57, 1)],
        "bass": [(1920, "on", 40, 3), (2880, "off", 40, 3)],
        "takeover": [],
    }
    programs = [(m.channel, m.program) for t in mid.tracks for m in t if m.type == "program_change"]
    assert programs == [(1, 52), (3, 32)]
    conductor = mid.tracks[0]
    assert [m.type for m in conductor] == ["time_signature", "set_tempo", "end_of_track"]
    assert conductor[1].tempo == 500_000
    # the final file has no room left in it: every track ends where the recording stopped
    assert not any(m.type == "sequencer_specific" for t in mid.tracks for m in t)
    assert {sum(m.time for m in t) for t in mid.tracks} == {2880}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["take.mid"]
    rec.add("human", 104.0, [0x90, 60, 90])  # after close: ignored
    assert rec.flush(105.0) == tmp_path / "take.mid" and rec.events == 5


def test_the_file_reads_back_after_each_flush_without_closing(tmp_path):
    """What a kill leaves: the file as the last flush wrote it, the notes sounding then closed
    there, nothing recorded after it."""
    rec = session(tmp_path)
    laid_out(rec)
    rec.add("human", 100.5, [0x90, 60, 90])
    rec.add("bass", 100.5, [0x93, 40, 80])
    rec.add("human", 101.0, [0x80, 60, 0])
    rec.flush(102.0)
    assert read(rec.path)["human"] == [(480, "on", 60, 0), (960, "off", 60, 0)]
    assert read(rec.path)["bass"] == [(480, "on", 40, 3), (1920, "off", 40, 3)]
    rec.add("human", 102.5, [0x90, 62, 90])  # not flushed: not in the file
    assert read(rec.path)["human"] == [(480, "on", 60, 0), (960, "off", 60, 0)]
    rec.add("bass", 103.0, [0x83, 40, 0])
    rec.flush(104.0)
    got = read(rec.path)
    assert got["human"] == [(480, "on", 60, 0), (960, "off", 60, 0), (2400, "on", 62, 0),
                            (3840, "off", 62, 0)]
    assert got["bass"] == [(480, "on", 40, 3), (2880, "off", 40, 3)]
    rec.close(104.0)


def test_maybe_flush_writes_every_flush_every_seconds(tmp_path):
    rec = session(tmp_path, flush_every=2.0)
    rec.maybe_flush(100.1)  # tracks were added: a new layout at once
    rec.wait(5)
    rec.maybe_flush(100.2)  # it is ready: taken over at once
    rec.wait(5)
    assert read(rec.path)["human"] == []
    rec.add("human", 100.5, [0x90, 60, 90])
    rec.maybe_flush(101.0)
    assert read(rec.path)["human"] == []
    rec.maybe_flush(102.2)
    assert read(rec.path)["human"] == [(480, "on", 60, 0), (2112, "off", 60, 0)]
    rec.close(103.0)


def test_tempo_changes_go_to_the_conductor_track_and_time_the_notes(tmp_path):
    rec = session(tmp_path)
    rec.add("human", 101.0, [0x90, 60, 90])  # tick 960 at 120 BPM
    rec.set_bpm(102.0, 60.0)  # from tick 1920 on, 480 ticks a second
    rec.set_bpm(102.0, 60.0)  # no change: nothing recorded
    rec.add("human", 103.0, [0x80, 60, 0])
    rec.close(103.0)
    rec.wait(5)
    assert read(rec.path)["human"] == [(960, "on", 60, 0), (2400, "off", 60, 0)]
    tempos = []
    tick = 0
    for m in mido.MidiFile(rec.path).tracks[0]:
        tick += m.time
        if m.type == "set_tempo":
            tempos.append((tick, m.tempo))
    assert tempos == [(0, 500_000), (1920, 1_000_000)]
    assert mido.MidiFile(rec.path).length == pytest.approx(3.0, abs=0.01)


def test_new_layouts_give_more_room_and_every_flush_stays_readable(tmp_path):
    rec = session(tmp_path, room=64)
    rec.move = 40  # the helper copies 40 bytes a write
    laid_out(rec)
    rng = random.Random(1)
    expected: list[tuple[int, str, int, int]] = []
    t = 100.0
    for i in range(300):
        pitch = rng.randrange(40, 80)
        rec.add("alto", t, [0x91, pitch, 80])
        expected.append((round((t - 100) * PER_S), "on", pitch, 1))
        t += 0.125
        rec.add("alto", t, [0x81, pitch, 0])
        expected.append((round((t - 100) * PER_S), "off", pitch, 1))
        rec.maybe_flush(t)
        if i % 25 == 0:
            rec.flush(t)
            rec.wait(5)  # the helper's renames done: the file at the name is the latest
            assert read(rec.path)["alto"] == expected
    assert rec.layouts >= 4
    rec.close(t)
    rec.wait(5)
    assert read(rec.path)["alto"] == expected
    assert sorted(p.name for p in tmp_path.iterdir()) == ["take.mid"]


def test_a_flood_that_outruns_the_room_lays_the_file_out_at_once(tmp_path):
    rec = session(tmp_path, room=64)
    laid_out(rec)
    for i in range(500):  # far more than 64 bytes in one flush
        rec.add("human", 100 + i / 1000, [0x90, 60 + i % 2, 90])
    layouts = rec.layouts
    rec.flush(101.0)
    assert rec.layouts == layouts + 1
    rec.wait(5)
    assert sum(n[1] == "on" for n in read(rec.path)["human"]) == 500
    rec.close(101.0)


def test_a_flush_writes_only_the_new_bytes_and_the_tails(tmp_path, monkeypatch):
    rec = session(tmp_path, room=1 << 19)
    t = 100.0
    for i in range(8000):  # a big recording already on disk
        rec.add("human", t, [0x90, 60 + i % 12, 90])
        rec.add("human", t + 0.05, [0x80, 60 + i % 12, 0])
        t += 0.1
        if i % 20 == 0:
            rec.flush(t)
    rec.flush(t)
    rec.wait(5)
    assert not rec.moving and rec.path.stat().st_size > 30_000
    written: list[int] = []
    real = os.pwrite

    def counting(fd: int, data, at: int) -> int:
        written.append(len(data))
        return real(fd, data, at)

    monkeypatch.setattr(os, "pwrite", counting)
    rec.add("human", t, [0x90, 64, 90])  # 4 bytes: delta, status, pitch, velocity
    rec.add("alto", t, [0x91, 57, 80])
    rec.add("human", t + 0.05, [0x80, 64, 0])
    rec.flush(t + 1.0)
    new = 4 + 6 + 4  # the three messages (alto's first delta, 800 s, takes three bytes)
    tails = 2 * 16  # a tail is a note-off or none and a padding event's head
    assert new <= sum(written) <= new + tails
    assert len(written) <= 4  # two writes for each of the two tracks that changed
    written.clear()
    rec.flush(t + 2.0)  # alto still sounds: only its tail moves
    assert 0 < sum(written) <= 16
    monkeypatch.undo()
    rec.close(t + 2.0)


def test_a_full_disk_stops_the_recording_with_one_sentence(tmp_path, monkeypatch):
    rec = session(tmp_path)
    laid_out(rec)
    rec.add("human", 100.5, [0x90, 60, 90])
    rec.flush(101.0)

    def full(fd: int, data, at: int) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "pwrite", full)
    rec.add("human", 101.5, [0x80, 60, 0])
    with pytest.raises(RecorderError) as caught:
        rec.maybe_flush(103.5)
    sentence = str(caught.value)
    assert sentence == f"recording stopped, could not write {rec.path}: the disk is full."
    assert rec.failed == sentence
    rec.add("human", 104.0, [0x90, 62, 90])  # stopped: nothing more, and nothing raised
    rec.maybe_flush(110.0)
    assert rec.flush(111.0) == rec.path and rec.close(112.0) == rec.path
    monkeypatch.undo()
    rec.wait(5)
    # the file keeps what the last flush wrote
    assert read(rec.path)["human"] == [(480, "on", 60, 0), (960, "off", 60, 0)]


def test_a_failed_rename_stops_the_recording(tmp_path, monkeypatch):
    rec = session(tmp_path)
    rec.flush(100.5)  # the tracks' new layout is built by the helper
    rec.wait(5)

    def refused(src, dst) -> None:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

    monkeypatch.setattr(os, "replace", refused)
    with pytest.raises(RecorderError, match="could not write .*take.mid: permission denied"):
        rec.flush(100.6)  # takes it over: the rename fails
    assert rec.failed is not None
    monkeypatch.undo()
    rec.wait(5)
    assert [t.name for t in mido.MidiFile(rec.path).tracks] == [""]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["take.mid"]


def test_a_failure_on_the_helper_stops_the_recording_at_the_next_flush(tmp_path, monkeypatch):
    rec = session(tmp_path, room=64)
    laid_out(rec)

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fdatasync", full)
    t, played = 100.0, 0
    while not rec.moving:  # until the room is half used: a new layout, built by the helper
        rec.add("human", t, [0x90, 60, 90])
        rec.add("human", t + 0.05, [0x80, 60, 0])
        played += 1
        t += 0.1
        rec.flush(t)
    rec.wait(5)
    with pytest.raises(RecorderError, match="could not write .*take.mid: the disk is full"):
        rec.flush(t + 0.1)
    monkeypatch.undo()
    rec.wait(5)
    assert sum(kind == "on" for _, kind, _, _ in read(rec.path)["human"]) == played
    assert sorted(p.name for p in tmp_path.iterdir()) == ["take.mid"]


def test_a_file_where_the_folder_should_be_fails_at_once(tmp_path):
    blocker = tmp_path / "recordings"
    blocker.write_text("not a folder")
    with pytest.raises(RecorderError) as caught:
        Recorder(blocker / "take.mid", 120, 4, 0.0)
    assert str(caught.value) == (f"cannot record to {blocker / 'take.mid'}: {blocker} is a file, "
                                 f"not a folder.")
    with pytest.raises(RecorderError) as caught:
        new_recording_path(blocker / "deeper")
    assert str(caught.value) == (f"cannot record in {blocker / 'deeper'}: {blocker} is a file, "
                                 f"not a folder.")
    with pytest.raises(RecorderError, match=f"cannot record in {blocker}: {blocker} is a file"):
        new_recording_path(blocker)


def test_a_read_only_folder_fails_at_once(tmp_path, monkeypatch):
    real = os.open

    def read_only(path, flags, *args):
        if flags & os.O_CREAT:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real(path, flags, *args)

    monkeypatch.setattr(os, "open", read_only)
    with pytest.raises(RecorderError) as caught:
        Recorder(tmp_path / "take.mid", 120, 4, 0.0)
    assert str(caught.value) == (f"cannot record to {tmp_path / 'take.mid'}: the file system is "
                                 f"read-only.")
    with pytest.raises(RecorderError, match="the file system is read-only"):
        new_recording_path(tmp_path)


@pytest.mark.skipif(os.geteuid() == 0, reason="permissions do not stop root")
def test_a_folder_without_write_permission_fails_at_once(tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(RecorderError, match="permission denied"):
            new_recording_path(folder)
        with pytest.raises(RecorderError, match="permission denied"):
            Recorder(folder / "take.mid", 120, 4, 0.0)
    finally:
        folder.chmod(0o700)


def test_recordings_started_in_the_same_second_get_their_own_files(tmp_path):
    now = datetime(2024, 5, 1, 12, 30, 15)
    first = new_recording_path(tmp_path / "recordings", now)
    second = new_recording_path(tmp_path / "recordings", now)
    third = new_recording_path(tmp_path / "recordings", now)
    assert [p.name for p in (first, second, third)] == [
        "livegen-20240501-123015.mid", "livegen-20240501-123015-2.mid",
        "livegen-20240501-123015-3.mid"]
    assert all(p.is_file() for p in (first, second, third))
    # another process's file of that name is left alone, and so is a recording in progress
    rec = Recorder(second, 120, 4, 0.0)
    assert new_recording_path(tmp_path / "recordings", now).name == "livegen-20240501-123015-4.mid"
    rec.close(1.0)
    assert new_recording_path(tmp_path / "recordings").name.startswith("livegen-")


def test_recordings_started_at_the_same_moment_never_share_a_file(tmp_path):
    now = datetime(2024, 5, 1, 12, 30, 15)
    with ThreadPoolExecutor(8) as pool:
        paths = list(pool.map(lambda _: new_recording_path(tmp_path, now), range(16)))
    assert len(set(paths)) == 16
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in paths)


def test_every_room_size_gets_a_padding_event_that_fills_it_exactly():
    from livegen.midi.recorder import _pad, _varlen

    for delta in (0, 100, 1000):
        least = len(_varlen(delta)) + 3
        for space in [*range(least, 20_000), *range(2**21 - 40, 2**21 + 40)]:
            head = _pad(delta, space)
            assert head is not None, (delta, space)
            n, at, events = 0, 0, 0
            while at < len(head):  # meta events (delta, FF 7F, length) ending exactly at space
                value, at = _read_varlen(head, at)
                assert head[at:at + 2] == b"\xff\x7f"
                n, at = _read_varlen(head, at + 2)
                events += 1
                if at < len(head):
                    assert n == 0
            assert len(head) + n == space and events <= 2
        assert _pad(delta, least - 1) is None


def _read_varlen(data: bytes, at: int) -> tuple[int, int]:
    value = 0
    while True:
        byte = data[at]
        at += 1
        value = value << 7 | byte & 0x7F
        if byte < 0x80:
            return value, at


KILLED = textwrap.dedent("""
    import sys
    from pathlib import Path
    from livegen.midi.recorder import Recorder

    rec = Recorder(Path(sys.argv[1]), 120, 4, 0.0, room=256)
    rec.track("human", 1)
    rec.track("alto", 2)
    t, i = 0.0, 0
    while True:
        for name, status in (("human", 0x90), ("alto", 0x91)):
            rec.add(name, t, [status, 60 + i % 12, 90])
            rec.add(name, t + 0.0625, [status & 0xEF, 60 + i % 12, 0])
        i += 1
        t += 0.125
        rec.flush(t)
        if i == 50:
            print("recording", flush=True)
""")


@pytest.mark.parametrize("delay", [0.05, 0.13, 0.31])
def test_a_killed_recording_reads_back_up_to_its_last_flush(tmp_path, delay):
    """SIGKILL in the middle of flushes and new layouts: the file reads back, and holds a
    prefix of what was played."""
    path = tmp_path / "take.mid"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen([sys.executable, "-c", KILLED, str(path)], env=env,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline() == "recording\n"
        child.stdout.close()
        time.sleep(delay)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    got = read(path)
    for name, channel in (("human", 0), ("alto", 1)):
        notes = got[name]
        assert len(notes) >= 100 and len(notes) % 2 == 0
        for k, (tick, kind, pitch, ch) in enumerate(notes):
            i = k // 2
            assert (tick, kind, pitch, ch) == (i * 120 + (60 if kind == "off" else 0),
                                               "on" if k % 2 == 0 else "off", 60 + i % 12,
                                               channel)
    assert abs(len(got["human"]) - len(got["alto"])) <= 2
