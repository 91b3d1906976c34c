"""In-process ports and a simulated clock (isobar-style): the engine runs deterministically."""

from __future__ import annotations


class SimTime:
    """now() creeps forward a little on every call (so spin-waits end); sleep() jumps."""

    def __init__(self, start: float = 100.0, creep: float = 2e-5):
        self.t = start
        self.creep = creep

    def now(self) -> float:
        self.t += self.creep
        return self.t

    def sleep(self, dt: float) -> None:
        self.t += max(dt, 0.0)


class FakeIn:
    """Messages scheduled at times; `poll` hands over those due, stamped with their time."""

    def __init__(self, clock: SimTime):
        self.clock = clock
        self.queue: list[tuple[float, list[int]]] = []

    def at(self, t: float, message: list[int]) -> None:
        self.queue.append((t, message))
        self.queue.sort(key=lambda x: x[0])

    def poll(self, limit: int = 512) -> list[tuple[list[int], float]]:
        now = self.clock.t
        due = [(m, t) for t, m in self.queue if t <= now][:limit]
        self.queue = self.queue[len(due):]
        return due


class FakeOut:
    def __init__(self, clock: SimTime):
        self.clock = clock
        self.sent: list[tuple[float, list[int]]] = []

    def send(self, message) -> bool:
        self.sent.append((self.clock.t, list(message)))
        return True

    def note_ons(self, channel: int | None = None) -> list[tuple[float, int, int]]:
        return [(t, m[0] & 15, m[1]) for t, m in self.sent
                if m[0] & 0xF0 == 0x90 and m[2] > 0
                and (channel is None or m[0] & 15 == channel - 1)]

    def hanging(self) -> set[tuple[int, int]]:
        """(channel 1..16, pitch) left sounding."""
        on: set[tuple[int, int]] = set()
        for _, m in self.sent:
            kind, ch = m[0] & 0xF0, (m[0] & 15) + 1
            if kind == 0x90 and m[2] > 0:
                on.add((ch, m[1]))
            elif kind == 0x80 or (kind == 0x90 and m[2] == 0):
                on.discard((ch, m[1]))
            elif kind == 0xB0 and m[1] in (120, 123):
                on = {n for n in on if n[0] != ch}
        return on
