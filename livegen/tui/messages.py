"""The messages the poller thread and the engine starter post to the panel (Textual calls
`Message.__post_init__` from a dataclass's generated `__init__`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from textual.message import Message

from livegen.status import RollEvent, Status

if TYPE_CHECKING:
    from livegen.tui.poller import EngineHandle


@dataclass
class Snapshot(Message):
    status: Status
    recent: list[RollEvent]  # piano-roll events since the previous Snapshot


@dataclass
class EngineStarted(Message):
    engine: EngineHandle


@dataclass
class EngineFailed(Message):
    reason: str


@dataclass
class EngineDied(Message):
    reason: str


@dataclass
class Rescued(Message):
    text: str


@dataclass
class EngineStopped(Message):
    pass
