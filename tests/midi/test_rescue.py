"""Where a dead engine's notes went: `livegen.midi.rescue.OutputConnections` remembers the
destinations of a "livegen out" port that vanished between two readings of the graph."""

import time

import rtmidi

from livegen.midi.rescue import RECENT_S, OutputConnections, release_messages


def connections(readings: list[dict[str, list[str]]]) -> OutputConnections:
    """Connections on JACK whose reading of the graph now gives `readings` in turn."""
    conn = OutputConnections(rtmidi.API_UNIX_JACK)
    queue = list(readings)
    conn.scan = lambda: queue.pop(0) if len(queue) > 1 else queue[0]  # type: ignore[method-assign]
    return conn


def test_an_engine_that_died_just_before_a_reading_is_still_rescued():
    conn = connections([{}])
    now = time.monotonic()
    conn.record({"lgeng:livegen out": ["synth:midi in", "daw:in 1"]}, now - 1.0)
    conn.record({}, now - 0.2)  # the background reading after the death, before the rescue
    assert conn.lost_destinations(0.2) == ["synth:midi in", "daw:in 1"]


def test_an_engine_that_dies_now_is_found_gone_at_the_rescue():
    conn = connections([{"other:livegen out": ["x:in"]}])
    conn.record({"lgeng:livegen out": ["synth:midi in"], "other:livegen out": ["x:in"]},
                time.monotonic())
    assert conn.lost_destinations(0.2) == ["synth:midi in"]


def test_a_port_gone_long_ago_is_not_taken_for_the_engine():
    conn = connections([{}])
    now = time.monotonic()
    conn.record({"old:livegen out": ["synth:midi in"]}, now - RECENT_S - 10)
    conn.record({}, now - RECENT_S - 5)
    assert conn.lost_destinations(0.2) == []


def test_a_port_that_came_back_is_not_gone():
    conn = connections([{"lgeng:livegen out": ["synth:midi in"]}])
    now = time.monotonic()
    conn.record({"lgeng:livegen out": ["synth:midi in"]}, now - 2)
    conn.record({}, now - 1)
    conn.record({"lgeng:livegen out": ["synth:midi in"]}, now - 0.5)
    assert conn.vanished == {}
    assert conn.lost_destinations(0.2) == []


def test_without_a_snapshot_every_channel_is_silenced():
    messages, channels = release_messages(None)
    assert channels == list(range(1, 17))
    assert [0xB0, 123, 0] in messages and [0xBF, 120, 0] in messages
