"""Helpers the test files share, written once: which notes a stream of MIDI messages leaves
sounding, and waiting for a condition with a deadline (sync and async).

Waiting, not sleeping: a test that needs something to have happened waits until it has, with a
deadline generous enough for a loaded 2-core machine, and fails with what it waited for. A test
that needs something NOT to have happened waits for a positive marker that comes after it (a
sentinel message, the engine's step counter moving past) and then checks.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Container, Iterable, Sequence
from typing import TypeVar

T = TypeVar("T")

NOTE_OFF, NOTE_ON, CONTROL = 0x80, 0x90, 0xB0
ALL_SOUND_OFF, ALL_NOTES_OFF = 120, 123


def left_sounding(messages: Iterable[Sequence[int] | bytes],
                  channels: Container[int] | None = None) -> set[tuple[int, int]]:
    """(channel 1..16, pitch) left sounding after `messages`, as a listening synth sees them:
    a note-on with velocity > 0 starts a note; a note-off or a note-on with velocity 0 ends it;
    CC123 (all notes off) and CC120 (all sound off) end every note of their channel. Only the
    `channels` given count (all when None); messages shorter than three bytes are ignored."""
    on: set[tuple[int, int]] = set()
    for m in messages:
        if len(m) < 3:
            continue
        kind, ch = m[0] & 0xF0, (m[0] & 0x0F) + 1
        if channels is not None and ch not in channels:
            continue
        if kind == NOTE_ON and m[2] > 0:
            on.add((ch, m[1]))
        elif kind in (NOTE_OFF, NOTE_ON):
            on.discard((ch, m[1]))
        elif kind == CONTROL and m[1] in (ALL_SOUND_OFF, ALL_NOTES_OFF):
            on = {n for n in on if n[0] != ch}
    return on


def channels_with_cc(messages: Iterable[Sequence[int] | bytes], cc: int) -> set[int]:
    """The channels (1..16) on which controller `cc` was sent."""
    return {(m[0] & 0x0F) + 1 for m in messages
            if len(m) >= 3 and m[0] & 0xF0 == CONTROL and m[1] == cc}


def _failed(what: str | Callable[..., object], timeout: float) -> AssertionError:
    name = what if isinstance(what, str) else getattr(what, "__name__", repr(what))
    return AssertionError(f"timed out after {timeout:g} s waiting for {name}")


def wait_for(predicate: Callable[[], T], timeout: float = 10.0, what: str = "",
             interval: float = 0.01) -> T:
    """Call `predicate` until it returns something true, and return that; AssertionError naming
    `what` when `timeout` seconds pass first."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise _failed(what or predicate, timeout)
        time.sleep(interval)


async def until(predicate: Callable[[], T], timeout: float = 10.0, what: str = "",
                interval: float = 0.02) -> T:
    """`wait_for` for a coroutine: awaits between calls, so the event loop (a Textual app under
    test) goes on running."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise _failed(what or predicate, timeout)
        await asyncio.sleep(interval)


async def pick(app, pilot, name: str) -> None:
    """In the panel, open the preset list with `p` and load `name` with Enter."""
    from livegen.tui.screens import PickScreen

    await pilot.press("p")
    screen = await until(lambda: isinstance(app.screen, PickScreen) and app.screen,
                         what="the preset list")
    index = next(i for i, (label, _) in enumerate(screen.options) if label.split()[0] == name)
    screen.query_one("OptionList").highlighted = index
    await pilot.press("enter")
    await until(lambda: not isinstance(app.screen, PickScreen), what="the list to close")
