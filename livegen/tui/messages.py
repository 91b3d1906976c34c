"""The messages the poller thread posts to the panel."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.message import Message

if TYPE_CHECKING:
    from livegen.tui.poller import EngineHandle


class Snapshot(Message):
    def __init__(self, status: dict, recent: list[tuple[int, int, int]]):
        super().__init__()
        self.status = status
        self.recent = recent


class EngineStarted(Message):
    def __init__(self, engine: EngineHandle):
        super().__init__()
        self.engine = engine


class EngineFailed(Message):
    def __init__(self, reason: str):
        super().__init__()
        self.reason = reason


class EngineDied(Message):
    def __init__(self, reason: str):
        super().__init__()
        self.reason = reason


class Rescued(Message):
    def __init__(self, text: str):
        super().__init__()
        self.text = text


class EngineStopped(Message):
    pass

