"""What the worker reports: its counters (`Stats`) and the `Status` snapshot every UI reads
(docs/ARCHITECTURE.md, "Processes"). Building a snapshot reads the engine and changes nothing."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from itertools import islice
from typing import TYPE_CHECKING

import numpy as np

from livegen.model.tokens import HOLD, PITCH0, STEPS_PER_BEAT
from livegen.status import Drops, Status, VoiceState
from livegen.tonality import key_name

if TYPE_CHECKING:
    from livegen.engine import Engine

SHOWN_EVERY_S = 0.5  # the latency figures a UI shows are recomputed this often at most
SHOWN_OVER = 1000  # ... over this many recent samples


@dataclass
class Stats:
    # onset -> note sent: from the later of the onset's pickup and the moment the step was known
    # to begin (with MIDI clock its tick's pickup: the tick's delay behind the grid is the
    # transport's, measured from outside by bench/external.py)
    latency: deque = field(default_factory=lambda: deque(maxlen=100_000))
    emission: deque = field(default_factory=lambda: deque(maxlen=100_000))  # sent - ideal
    # the latency of the onsets whose frame was not proposed ahead (computed on arrival)
    latency_computed: deque = field(default_factory=lambda: deque(maxlen=100_000))
    shown: dict = field(default_factory=dict)  # percentiles for status, refreshed twice a second
    shown_at: float = float("-inf")
    steps: int = 0
    skipped_steps: int = 0
    sent: int = 0
    waited_in_vain: int = 0  # follow windows that ended without a note
    onsets: int = 0  # human onsets received
    ticks: int = 0  # MIDI clock ticks received
    ready: int = 0  # onsets whose frame had been proposed ahead (answered by a lookup)
    computed: int = 0  # onsets whose frame had to be computed on arrival (a chord, a far leap)

    def count_latency(self, latency: float, ready: bool) -> None:
        self.latency.append(latency)
        if ready:
            self.ready += 1
        else:
            self.computed += 1
            self.latency_computed.append(latency)

    def shown_percentiles(self, now: float) -> dict:
        """Latency figures over the last SHOWN_OVER samples, recomputed at most every
        SHOWN_EVERY_S so that a snapshot stays cheap for the worker."""
        if now - self.shown_at >= SHOWN_EVERY_S:
            self.shown_at = now
            lat = list(islice(reversed(self.latency), SHOWN_OVER))
            emi = list(islice(reversed(self.emission), SHOWN_OVER))
            self.shown = {"latency_p50_ms": percentile_ms(lat, 50),
                          "latency_p99_ms": percentile_ms(lat, 99),
                          "emission_p99_ms": percentile_ms(emi, 99)}
        return self.shown


def percentile_ms(values, q: float) -> float | None:
    if not values:
        return None
    return float(np.percentile(np.fromiter(values, float), q)) * 1000.0


def drops(eng: Engine) -> Drops:
    c = eng.filter.counters
    return Drops(queue=c.dropped_queue, malformed=c.malformed, sysex=c.sysex,
                 sensing=c.sensing, echo=c.echo, skipped_steps=eng.stats.skipped_steps,
                 missed_ticks=getattr(eng.transport.follower, "missed_ticks", 0),
                 stale_keys=c.stale)


def coming(eng: Engine) -> tuple[list[tuple[int, int]], int | None]:
    """The voices proposed for the step about to be played, and the melody note the model
    expects there, for the panel's plan lane."""
    tr, acc = eng.transport, eng.acc
    plan: list[tuple[int, int]] = []
    if eng.preview is not None and eng.preview[0] == tr.step and not tr.emitted:
        for k, token in enumerate(eng.preview[1].tokens):
            if token >= PITCH0:
                plan.append((k, token - PITCH0))
            elif token == HOLD and acc.sounding[k] >= 0:
                plan.append((k, acc.sounding[k]))
    expected = None
    if tr.running and acc.onset_probability >= 0.5:
        likely = acc.likely_onsets(eng.last_human)
        expected = likely[0] if likely else None
    return plan, expected


def snapshot(eng: Engine, now: float) -> Status:
    """A snapshot of everything a UI shows."""
    tr, settings, desk = eng.transport, eng.settings, eng.desk
    bar_len = settings.timing.beats_per_bar * STEPS_PER_BEAT
    plan, expected = coming(eng)
    return Status(
        time=now, preset=settings.name, running=tr.running,
        armed=tr.armed or bool(eng.clicks),
        clock=settings.timing.clock, bpm=tr.bpm, step=tr.step,
        bar=tr.step // bar_len + 1, beat=(tr.step % bar_len) // STEPS_PER_BEAT + 1,
        key=key_name(*eng.acc.key) if eng.acc.key else None, takeover=eng.takeover,
        settings=settings, sounding=sorted(eng.ledger.sounding()),
        **eng.stats.shown_percentiles(now), drops=drops(eng), ports=dict(eng.port_state),
        messages=list(eng.messages), recent=list(eng.roll),
        voices=[VoiceState(v.name, v.enabled, v.channel) for v in eng.acc.voices],
        recording=str(desk.recorder.path) if desk.recorder else None,
        learning=desk.learning, learn=dict(settings.learn), plan=plan, expected=expected)
