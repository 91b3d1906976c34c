"""The live engine: one worker that owns the ports, the model, the clock and every note.

The loop polls the input (the port only timestamps and queues, as in python-rtmidi's midifilter
example; on JACK no Python runs in the real-time callback), then per step (DESIGN §4):

1. collect: onsets that arrive in the pre-window (the last `prewindow` of step t-1) belong to t;
2. decide: at the boundary T_t emit at once if t has onsets; else, if the follow window is on
   and `lead` expects the player, wait for an onset or T_t + W and emit on arrival;
3. emit: the Accompanist's note changes go out (offs before ons), shifted by swing/humanize;
4. advance: when the next pre-window opens, the model moves past step t with its final frame.

Between advance and the boundary the worker proposes step t's voices ahead for the frames the
player is likely to bring (`_maybe_propose`), so that an onset is answered by a lookup and the
sends; Python's garbage collector runs only in quiet moments (`livegen.collector`).

Time, sleeping and the ports are passed in, so tests drive the engine on a simulated clock with
in-process ports, and the same code runs on real ports. `NoteLedger` owns every sounding note;
`shutdown` (on stop, error, signal and exit) sends note-offs, then CC64=0, CC123 and CC120.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from itertools import islice
from typing import Any, Protocol

import numpy as np

from livegen.accompanist import LEAD, Accompanist, NoteChange
from livegen.collector import QuietCollector
from livegen.controls import apply_control, from_cc
from livegen.midi.clock import (
    CONTINUE,
    POSITION,
    START,
    STOP,
    TICK,
    ClockEvent,
    ClockOut,
    InternalClock,
    MidiClockFollower,
)
from livegen.midi.inputfilter import InputFilter, Onset
from livegen.midi.ledger import NoteLedger
from livegen.midi.recorder import Recorder
from livegen.model.runtime import Runtime
from livegen.model.tokens import STEPS_PER_BEAT, position_index
from livegen.paths import user_data
from livegen.settings import Settings
from livegen.tonality import key_name

POLL_S = 0.0005  # longest sleep between input polls
SPIN_S = 0.0008  # busy-wait this close to a deadline, for sub-millisecond timing
PROPOSE_S = 0.0015  # speculate only until this long before a boundary, then keep it free
QUIET_S = 0.004  # housekeeping only when the next step event is at least this far away
QUEUE_LIMIT = 4096  # input messages taken per poll at most; the rest count as dropped


class InPort(Protocol):
    def poll(self, limit: int = ...) -> list[tuple[Any, float]]: ...


class OutPort(Protocol):
    def send(self, message: Any) -> Any: ...


@dataclass
class Stats:
    latency: deque = field(default_factory=lambda: deque(maxlen=100_000))  # onset -> note sent
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


def percentile_ms(values, q: float) -> float | None:
    if not values:
        return None
    return float(np.percentile(np.fromiter(values, float), q)) * 1000.0


class Engine:
    def __init__(self, settings: Settings, runtime: Runtime, inp: InPort, out: OutPort, *,
                 now: Callable[[], float] = time.perf_counter,
                 sleep: Callable[[float], None] = time.sleep, seed: int | None = None,
                 on_status: Callable[[dict], None] | None = None, status_hz: float = 30.0,
                 watches: list | None = None):
        self.settings = settings
        self.runtime = runtime
        self.acc = Accompanist(runtime, settings, seed=seed)
        self.filter = InputFilter(settings.input)
        self.ledger = NoteLedger()
        self.inp, self.out = inp, out
        self.now, self.sleep = now, sleep
        self.on_status = on_status
        self.status_every = 1.0 / status_hz
        self.watches = watches or []
        self.port_state: dict[str, str] = {"in": "open", "out": "open"}
        self.messages: deque[tuple[int, str]] = deque(maxlen=20)  # (serial, text) to show
        self.message_serial = 0
        self.controls: deque = deque()  # (name, value) from any thread; deque is thread-safe
        self.stats = Stats()
        self.stopping = False
        t0 = now()
        self.clock = InternalClock(settings.timing.bpm, t0 + 0.05)
        self.follower = MidiClockFollower()
        self.clock_out = ClockOut(self.clock, t0) if settings.timing.clock_out else None
        self.running = settings.timing.clock == "internal"
        self.step = 0  # the step being emitted or the next one
        self.emitted = False  # step `self.step` has been emitted, waiting to advance
        # T of `self.step`; with MIDI clock, set by the tick that starts the step
        self.boundary = self.clock.step_time(0) if self.running else float("inf")
        self.follow_until: float | None = None
        self.onset_at: float | None = None  # arrival of the first onset not yet emitted
        self.frame: tuple[list[int], list[int]] = ([], [])
        # frames the boundary may bring, still to be proposed ahead (None: not planned yet)
        self.plan: list[tuple[tuple[int, ...], tuple[int, ...]]] | None = None
        self.last_human = -1  # the latest human onset's pitch, around which the plan looks
        self.scheduled: list[tuple[float, float, list[NoteChange]]] = []  # (at, ideal, changes)
        self.silent_steps = 0
        self.takeover = False
        self.last_status = 0.0
        self.recent: list[tuple[int, int, int]] = []  # (step, voice or LEAD or -2 human, pitch)
        self.monitors: list = []  # objects with send(message): the monitor synth hears all
        self.recorder: Recorder | None = None
        self.learning: str | None = None  # a control waiting for a knob to be moved
        self.collector: QuietCollector | None = None  # while `run` runs

    # ------------------------------------------------------------------ the loop

    def run(self, should_stop: Callable[[], bool] = lambda: False) -> None:
        """Run until `should_stop()` or a quit control; always ends with every note resolved.
        Python's garbage collector runs only in quiet moments meanwhile (livegen.collector)."""
        with QuietCollector() as self.collector:
            try:
                self._program_changes()
                if self.settings.timing.clock == "internal":  # the grid starts with the loop
                    self.clock.restart(self.now() + 0.05)
                    self.boundary = self.clock.step_time(self.step)
                while not (self.stopping or should_stop()):
                    self.tick()
            finally:
                self.shutdown()
                self.collector = None

    def tick(self) -> None:
        """One pass: input, controls, the step machine, scheduled sends, status; then wait."""
        now = self.now()
        self._poll(now)
        self._apply_controls(now)
        ccs = self.filter.drain_cc()
        if ccs:
            self._knobs(ccs)
        if self.running:
            if self.settings.timing.clock == "internal":
                self._internal_step(now)
            else:
                self._midi_step(now)
        self._send_due(now)
        if self.clock_out is not None and self.running:
            for _ in range(self.clock_out.due(now)):
                self._send([0xF8])
        if self._quiet(now):  # work that may take milliseconds, away from any boundary
            if self.watches and self.watches[0].due(now):
                self._supervise(now)
            if self.recorder is not None:
                self.recorder.maybe_flush(now)
            if now - self.last_status >= self.status_every:
                self.last_status = now
                if self.on_status is not None:
                    self.on_status(self.status(now))
            if self.collector is not None:
                self.collector.quiet(self.now())
        self._wait()

    def _quiet(self, now: float) -> bool:
        """True when nothing is due for a while: not waiting for a note, and the next step
        event more than QUIET_S away. Status, port supervision and recording flushes wait for
        such a moment (each step has one, between emitting and advancing)."""
        if self.follow_until is not None:
            return False
        return self._next_event() - now > QUIET_S

    def _wait(self) -> None:
        deadline = self._next_deadline()
        # waiting for an expected note (follow window): spin, so that the note is answered
        # by a warm processor the moment it arrives
        spin = self.follow_until is not None
        while True:
            left = deadline - self.now()
            if left <= 0:
                return
            if left > SPIN_S and not spin:
                self.sleep(min(POLL_S, left - SPIN_S))
                return  # back to poll the input
            # spin: the deadline is near; keep the input polled while spinning, and yield the
            # processor (and the GIL) between polls
            if self._poll(self.now()):
                return
            self.sleep(0)

    def _next_deadline(self) -> float:
        return min(self.now() + POLL_S, self._next_event())

    def _next_event(self) -> float:
        """When the step machine next has something to do (inf: nothing scheduled)."""
        times = [float("inf")]
        if self.running:
            if not self.emitted:
                times.append(self.follow_until if self.follow_until is not None
                             else self.boundary)
            else:
                times.append(self._advance_time())
        if self.scheduled:
            times.append(self.scheduled[0][0])
        return min(times)

    # ------------------------------------------------------------------ input

    def _poll(self, now: float) -> bool:
        """Take queued input; True if it brought an event for the step machine (a human onset,
        a clock message), so that a wait ends at once."""
        got = False
        messages = self.inp.poll(QUEUE_LIMIT)
        if len(messages) >= QUEUE_LIMIT:
            self.filter.counters.dropped_queue += 1
        counters = self.filter.counters
        for message, t in messages:
            echoes = counters.echo
            event = self.filter.feed(message, t)
            if (self.recorder is not None and counters.echo == echoes and message
                    and message[0] & 0xE0 == 0x80):
                self.recorder.add("human", t, message)
            if event is None:
                continue
            if isinstance(event, Onset):
                self.stats.onsets += 1
                got = True
                self.last_human = event.pitch
                if self.onset_at is None:
                    self.onset_at = t
                self.recent.append((self.step, -2, event.pitch))
                if self.takeover:  # the player is back: hand over at once
                    self._end_takeover()
            elif isinstance(event, ClockEvent):
                got = True
                self._clock_event(event)
        return got

    # ------------------------------------------------------------------ internal clock

    def _internal_step(self, now: float) -> None:
        if self.emitted:
            due = self._advance_time()
            if now >= due:
                self._advance(now, due)
            return
        if now < self.boundary:
            self._maybe_propose(now, self.boundary)
            return
        if now >= self.clock.step_time(self.step + 1):
            self._skip_step(now)  # the machine stalled past a whole step: do not play late
            return
        self._decide(now)

    def _frame_now(self) -> tuple[list[int], list[int]]:
        onsets = self.filter.peek_onsets()
        return onsets, sorted(self.filter.held() - set(onsets))

    def _maybe_propose(self, now: float, boundary: float) -> None:
        """Before a boundary, propose the step's voices ahead, one frame per call (input is
        polled in between): first the frame as it stands, then the frames the player is likely
        to bring: one new note, with the held notes kept or released. An onset then only has
        to look its frame up and send; a frame not foreseen (a chord, a far leap) is computed
        when it comes. One frame per pass of the loop, which sleeps between passes: a burst of
        work would starve the MIDI transport's own threads on a small machine (measured: the
        JACK client then misses cycles and clock ticks are lost). Nothing is proposed ahead in
        the last PROPOSE_S before the boundary except the frame as it stands, so that the
        boundary finds the processor free."""
        if self.takeover:
            return
        pos = self._pos(self.step)
        onsets, held = self._frame_now()
        if not self.acc.known(onsets, held, pos):
            self.acc.propose(onsets, held, pos)
            return
        if boundary - now < PROPOSE_S:
            return
        if self.plan is None:
            self.plan = self._plan(held)
        while self.plan:
            f_onsets, f_held = self.plan.pop(0)
            if not self.acc.known(f_onsets, f_held, pos):
                self.acc.propose(f_onsets, f_held, pos)
                return

    def _plan(self, held: list[int]) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
        return self.acc.likely_frames(self.last_human, held)

    def _decide(self, now: float) -> None:
        """At or after the boundary of a step not yet emitted."""
        if self.onset_at is not None and self._onset_belongs(self.onset_at):
            self._emit(now, by_onset=True)
            return
        timing = self.settings.timing
        if self.follow_until is None:
            if (timing.follow_ms > 0 and not self.takeover
                    and self.acc.onset_probability >= timing.follow_threshold):
                self.follow_until = self.boundary + timing.follow_ms / 1000.0
                return
            self._emit(now, by_onset=False)
        elif now >= self.follow_until:
            self.stats.waited_in_vain += 1
            self._emit(now, by_onset=False)

    def _onset_belongs(self, t: float) -> bool:
        return t >= self.boundary - self.settings.timing.prewindow * self._step_length()

    def _step_length(self) -> float:
        if self.settings.timing.clock == "internal":
            return self.clock.step_length
        return self.follower.step_length or 60.0 / (self.settings.timing.bpm * STEPS_PER_BEAT)

    def _advance_time(self) -> float:
        """When the frame of the emitted step is final: the next step's pre-window opens."""
        length = self._step_length()
        if self.settings.timing.clock == "internal":
            nxt = self.clock.step_time(self.step + 1)
        else:
            upcoming = self.follower.next_step()
            nxt = upcoming.time if upcoming else self.boundary + length
        return nxt - self.settings.timing.prewindow * length

    # ------------------------------------------------------------------ MIDI clock

    def _clock_event(self, event: ClockEvent) -> None:
        if self.settings.timing.clock != "midi":
            return
        if event.kind in (STOP,):
            self.follower.feed(event)
            self._transport_stop()
            return
        if event.kind in (START, CONTINUE, POSITION):
            self.follower.feed(event)
            if event.kind == START:
                self.acc.runtime.reset()
            return
        if event.kind == TICK:
            self.stats.ticks += 1
            step = self.follower.feed(event)
            if step is None:
                return
            if self.emitted:  # the next boundary came before the advance was due
                self._advance(event.time, event.time - self.settings.timing.prewindow
                              * self._step_length())
            if step.index != self.step:
                self.step = step.index
            self.running = True
            self.boundary = step.time
            self.follow_until = None

    def _midi_step(self, now: float) -> None:
        if self.follower.poll(now):  # the clock went silent: stopped
            self._transport_stop()
            return
        if not self.follower.running:
            return
        if self.emitted:
            due = self._advance_time()
            if now >= due:
                self._advance(now, due)
            return
        if self.boundary <= now and self.boundary >= 0:
            self._decide(now)
        elif self.boundary == float("inf"):
            upcoming = self.follower.next_step()
            if upcoming is not None and upcoming.index == self.step:
                self._maybe_propose(now, upcoming.time)

    def _transport_stop(self) -> None:
        self.running = False
        self._release_all()
        self.emitted = False
        self.follow_until = None
        self.boundary = float("inf")

    # ------------------------------------------------------------------ emit and advance

    def _emit(self, now: float, by_onset: bool) -> None:
        onsets = self.filter.take_onsets(float("inf"))
        held = sorted(self.filter.held() - set(onsets))
        pos = self._pos(self.step)
        lead_changes: list[NoteChange] = []
        if onsets:
            self.silent_steps = 0
            if self.takeover:
                self._end_takeover()
        else:
            self.silent_steps += 1
            to = self.settings.takeover
            bar = self.settings.timing.beats_per_bar * STEPS_PER_BEAT
            if to.enabled and not self.takeover and not held and self.silent_steps >= to.bars * bar:
                self.takeover = True
                self._note(f"takeover: no melody for {to.bars} bars, the model plays it")
            if self.takeover:
                lead_onsets, lead_held, lead_changes = self.acc.lead_step()
                onsets, held = list(lead_onsets), list(lead_held)
        ready = self.acc.known(onsets, held, pos)
        changes = lead_changes + self.acc.commit(self.acc.propose(onsets, held, pos))
        self.frame = (list(onsets), list(held))
        offset = self.acc.timing_offset(self.step, self._step_length())
        ideal = self.boundary + offset
        if offset > 0 and not by_onset:
            self.scheduled.append((ideal, ideal, changes))
            self.scheduled.sort(key=lambda s: s[0])
        else:
            sent_at = self._play(changes)
            if by_onset and self.onset_at is not None:
                latency = sent_at - max(self.onset_at, self.boundary)
                self.stats.latency.append(latency)
                if ready:
                    self.stats.ready += 1
                else:
                    self.stats.computed += 1
                    self.stats.latency_computed.append(latency)
            elif self.follow_until is None:
                self.stats.emission.append(sent_at - ideal)
        self.onset_at = None
        self.follow_until = None
        self.emitted = True
        self.stats.steps += 1

    def _advance(self, now: float, cutoff: float | None = None) -> None:
        """Move past the emitted step with its final frame: onsets that arrived after it was
        emitted and before `cutoff` (the next step's pre-window; `now` by default) join it."""
        late = self.filter.take_onsets(now if cutoff is None else cutoff)
        onsets, held = self.frame
        if late:
            onsets = sorted(set(onsets) | set(late))
            held = [p for p in held if p not in late]
            if not self.filter.peek_onsets():
                self.onset_at = None
        pos = self._pos(self.step)
        self.acc.advance(onsets, held, pos, self._pos(self.step + 1))
        self.plan = None
        self.step += 1
        self.boundary = self.clock.step_time(self.step) if self.settings.timing.clock == \
            "internal" else float("inf")
        self.emitted = False

    def _skip_step(self, now: float) -> None:
        self.stats.skipped_steps += 1
        self.frame = ([], sorted(self.filter.held()))
        self.emitted = True
        self._advance(now)

    def _pos(self, step: int) -> int:
        bar = self.settings.timing.beats_per_bar * STEPS_PER_BEAT
        return position_index(step % bar)

    # ------------------------------------------------------------------ sending

    def _play(self, changes: list[NoteChange]) -> float:
        """Send note changes now, through the ledger; returns the time the first note-on went."""
        first_on = None
        for c in changes:
            channel, owner = self._channel(c.voice), c.voice
            if c.velocity:
                messages = self.ledger.note_on(channel, c.pitch, c.velocity, owner)
            else:
                messages = self.ledger.note_off(channel, c.pitch, owner)
            for m in messages:
                t = self._send(m)
                if c.velocity and first_on is None:
                    first_on = t
            if c.velocity:
                self.recent.append((self.step, c.voice, c.pitch))
        return first_on if first_on is not None else self.now()

    def _channel(self, voice: int) -> int:
        if voice == LEAD:
            return self.settings.takeover.channel
        return self.acc.voices[voice].channel

    def _send(self, message: list[int]) -> float:
        try:
            self.out.send(message)
        except Exception as exc:  # a port that fails mid-send: say so, keep the engine up
            self._note(f"could not send to the output port: {exc}")
        t = self.now()
        self.filter.sent(message, t)
        self.stats.sent += 1
        for monitor in self.monitors:
            monitor.send(message)
        if self.recorder is not None and message[0] & 0xE0 == 0x80:
            self.recorder.add(self._track_of(message[0] & 15), t, message)
        return t

    def _track_of(self, channel0: int) -> str:
        for v in self.acc.voices:
            if v.channel - 1 == channel0:
                return v.name
        return "takeover"

    def _send_due(self, now: float) -> None:
        while self.scheduled and self.scheduled[0][0] <= now:
            _, ideal, changes = self.scheduled.pop(0)
            sent_at = self._play(changes)
            self.stats.emission.append(sent_at - ideal)

    def _program_changes(self) -> None:
        for v in self.acc.voices:
            if v.enabled:
                self.ledger.use_channel(v.channel)
                self._send([0xC0 | (v.channel - 1), v.program])

    # ------------------------------------------------------------------ takeover, release

    def _end_takeover(self) -> None:
        self.takeover = False
        self.silent_steps = 0
        self._play(self.acc.stop_lead())
        self._note("takeover: the player is back")

    def _release_all(self) -> None:
        """Every note off: the accompanist's voices rest, the ledger sends the offs."""
        self.scheduled.clear()
        self.plan = None
        self.acc.release()
        self.takeover = False
        for m in self.ledger.release():
            self._send(m)

    def panic(self) -> None:
        self.scheduled.clear()
        self.plan = None
        self.acc.release()
        self.takeover = False
        channels = {v.channel for v in self.acc.voices} | {self.settings.takeover.channel}
        for m in self.ledger.panic(sorted(channels)):
            self._send(m)

    def shutdown(self) -> None:
        """Resolve every note: explicit note-offs, then CC64=0, CC123 and CC120; and close
        the recording so the file holds everything played."""
        self.panic()
        if self.recorder is not None:
            self._record(False, self.now())

    # ------------------------------------------------------------------ controls

    def control(self, name: str, value: Any = None) -> None:
        """Queue a control from any thread; the worker applies it on its next pass."""
        self.controls.append((name, value))

    def _apply_controls(self, now: float) -> None:
        while self.controls:
            name, value = self.controls.popleft()
            if name == "quit":
                self.stopping = True
            elif name == "panic":
                self.panic()
            elif name == "settings":
                self._switch_settings(value)
            elif name == "mute":
                self._release_all()
            elif name == "set":  # (control name, value): see livegen.controls
                control, val = value
                self._switch_settings(apply_control(self.settings, control, val))
            elif name == "learn":
                self.learning = value
                if value:
                    self._note(f"MIDI learn: move a knob for {value}")
            elif name == "record":
                self._record(bool(value), now)
            elif name == "model":
                self._switch_model(value)
            else:
                self._note(f"unknown control {name!r} ignored")

    def _knobs(self, ccs: dict[tuple[int, int], int]) -> None:
        """Coalesced CC changes: bind one to the control being learned, or drive the controls
        the preset's learn map names."""
        if self.learning is not None:
            (channel, cc), _ = next(iter(ccs.items()))
            learn = {k: v for k, v in self.settings.learn.items() if v != self.learning}
            learn[cc] = self.learning
            self._note(f"MIDI learn: CC {cc} now drives {self.learning}")
            self.learning = None
            self.settings = replace(self.settings, learn=learn)
            return
        settings = self.settings
        for (_, cc), value in ccs.items():
            control = settings.learn.get(cc)
            if control is not None:
                settings = apply_control(settings, control, from_cc(control, value))
        if settings is not self.settings:
            self._switch_settings(settings)

    def _record(self, on: bool, now: float) -> None:
        if on and self.recorder is None:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            path = user_data() / "recordings" / f"livegen-{stamp}.mid"
            rec = Recorder(path, self.settings.timing.bpm, self.settings.timing.beats_per_bar,
                           now)
            rec.track("human", 1)
            for v in self.acc.voices:
                rec.track(v.name, v.channel, v.program)
            rec.track("takeover", self.settings.takeover.channel)
            self.recorder = rec
            self._note(f"recording to {path}")
        elif not on and self.recorder is not None:
            path = self.recorder.flush(now)
            self.recorder = None
            self._note(f"recording saved: {path}")

    def _switch_model(self, path: str) -> None:
        """Load another model file; on failure the current one stays and the reason is shown."""
        try:
            runtime = Runtime(path, device=self.runtime.device)
        except Exception as exc:
            self._note(str(exc))
            return
        self._release_all()
        self.runtime = runtime
        self.acc = Accompanist(runtime, self.settings)
        self._note(f"model {runtime.path.name} loaded")

    def _switch_settings(self, settings: Settings) -> None:
        """A new preset or a changed control: voices that change channel or go quiet are
        released first, so nothing is left hanging."""
        old = {(v.name, v.channel, v.enabled) for v in self.acc.voices}
        old.add(("lead", self.settings.takeover.channel, True))
        if settings.timing.bpm != self.settings.timing.bpm:
            self.clock.set_bpm(settings.timing.bpm, self.now())
            if self.running and not self.emitted:
                self.boundary = self.clock.step_time(self.step)
        self.settings = settings
        self.plan = None
        self.filter.configure(settings.input)
        self.acc.configure(settings)
        new = {(v.name, v.channel, v.enabled) for v in self.acc.voices}
        new.add(("lead", settings.takeover.channel, True))
        if old != new:
            self._release_all()
        for v in self.acc.voices:
            if v.enabled:
                self.ledger.use_channel(v.channel)

    # ------------------------------------------------------------------ ports, status

    def _supervise(self, now: float) -> None:
        for name, watch in zip(("in", "out"), self.watches, strict=False):
            event = watch.check(now)
            if event is None:
                continue
            self.port_state[name] = {"vanished": "missing", "returned": "open",
                                     "error": "error"}[event.kind]
            self._note(event.message)
            if event.kind in ("vanished", "error"):
                self.filter.reset()
                self._release_all()

    def _note(self, text: str) -> None:
        self.message_serial += 1
        self.messages.append((self.message_serial, text))

    def _shown_percentiles(self, now: float) -> dict:
        """Latency figures over the last 1000 samples, recomputed at most twice a second so
        the status snapshot stays cheap for the worker."""
        st = self.stats
        if now - st.shown_at >= 0.5:
            st.shown_at = now
            lat = list(islice(reversed(st.latency), 1000))
            emi = list(islice(reversed(st.emission), 1000))
            st.shown = {"latency_p50_ms": percentile_ms(lat, 50),
                        "latency_p99_ms": percentile_ms(lat, 99),
                        "emission_p99_ms": percentile_ms(emi, 99)}
        return st.shown

    def status(self, now: float | None = None) -> dict:
        now = self.now() if now is None else now
        bar_len = self.settings.timing.beats_per_bar * STEPS_PER_BEAT
        bpm = self.clock.bpm if self.settings.timing.clock == "internal" else self.follower.bpm
        recent, self.recent = self.recent, []
        c = self.filter.counters
        return {
            "time": now, "preset": self.settings.name, "running": self.running,
            "clock": self.settings.timing.clock, "bpm": bpm, "step": self.step,
            "bar": self.step // bar_len + 1, "beat": (self.step % bar_len) // STEPS_PER_BEAT + 1,
            "key": key_name(*self.acc.key) if self.acc.key else None,
            "takeover": self.takeover,
            "sounding": sorted(self.ledger.sounding()),
            **self._shown_percentiles(now),
            "drops": {"queue": c.dropped_queue, "malformed": c.malformed, "sysex": c.sysex,
                      "sensing": c.sensing, "echo": c.echo, "skipped_steps":
                      self.stats.skipped_steps},
            "ports": dict(self.port_state), "messages": list(self.messages), "recent": recent,
            "voices": [(v.name, v.enabled, v.channel) for v in self.acc.voices],
            "recording": str(self.recorder.path) if self.recorder else None,
            "learning": self.learning, "learn": dict(self.settings.learn),
            "settings": self.settings,
        }
