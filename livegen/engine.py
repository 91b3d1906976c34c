"""The live engine: the one worker that owns the ports, the model, the transport and every note
(docs/ARCHITECTURE.md, "The hot path" and "Threads").

The loop polls the input (the port only timestamps and queues; on JACK no Python runs in the
real-time callback), applies queued controls, runs the step machine, sends what is due and,
in quiet moments only, does the housekeeping. Per step:

1. collect: onsets that arrive in the pre-window (the last `prewindow` of step t-1) belong to t;
2. decide: at the boundary T_t play at once if t has onsets; else, if the follow window is on
   and the model expects the player, wait for an onset or T_t + W and play on arrival;
3. play: take the step's frame, look up (or compute) its proposal, commit it, send the changes
   (offs before ons), shifted by swing/humanize;
4. advance: when the next pre-window opens, the model moves past step t with its final frame.

Between advance and the boundary the worker proposes the step's voices ahead for the frames the
player is likely to bring (`_propose_ahead`), so that an onset is answered by a lookup and the
sends; Python's garbage collector runs only in quiet moments (`livegen.collector`).

Time, sleeping and the ports are passed in, so tests drive the engine on a simulated clock with
in-process ports, and the same code runs on real ports. `NoteLedger` owns every sounding note;
`shutdown` (on stop, error, signal and exit) sends note-offs, then CC64=0, CC123 and CC120.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

from livegen.accompanist import Accompanist
from livegen.collector import QuietCollector
from livegen.controls import ControlMessage
from livegen.desk import Desk
from livegen.follow import PlayerRhythm
from livegen.frames import HUMAN, LEAD, Frame, NoteChange, Proposal
from livegen.midi.clock import TICK, ClockEvent, Step
from livegen.midi.inputfilter import InputFilter, Onset
from livegen.midi.ledger import NoteLedger, note_off_message
from livegen.model.runtime import Runtime
from livegen.model.tokens import STEPS_PER_BEAT
from livegen.report import Stats, snapshot
from livegen.settings import Settings
from livegen.status import ROLL_KEPT, RollEvent, Status
from livegen.transport import Transport

POLL_S = 0.0005  # longest wait between two passes of the loop
YIELD_S = 0.00005  # sleep between input polls while waiting (plus the kernel's timer slack)
PROPOSE_S = 0.0015  # speculate only until this long before a boundary, then keep it free
QUIET_S = 0.004  # housekeeping only when the next step event is at least this far away
QUEUE_LIMIT = 4096  # input messages taken per poll at most; the rest count as dropped
CLICK, CLICK_ACCENT = 37, 76  # General MIDI side stick; high wood block on the bar's first beat
RECONNECT_GRACE_S = 0.5  # a returned output's lost notes are ended this long after it is back


class InPort(Protocol):
    def poll(self, limit: int = ...) -> list[tuple[Any, float]]: ...


class OutPort(Protocol):
    def send(self, message: Any) -> Any: ...


class Engine:
    def __init__(self, settings: Settings, runtime: Runtime, inp: InPort, out: OutPort, *,
                 now: Callable[[], float] = time.perf_counter,
                 sleep: Callable[[float], None] = time.sleep, seed: int | None = None,
                 on_status: Callable[[Status], None] | None = None, status_hz: float = 30.0,
                 watches: list | None = None):
        self.settings = settings
        self.runtime = runtime
        self.acc = Accompanist(runtime, settings, seed=seed)
        self.filter = InputFilter(settings.input)
        self.ledger = NoteLedger()
        self.inp, self.out = inp, out
        self.now, self.sleep = now, sleep
        self.on_status = on_status
        self.on_play: Callable[[int, Frame], None] | None = None  # (step, frame): an observer
        self.status_every = 1.0 / status_hz
        self.watches = watches or []
        self.port_state: dict[str, str] = {"in": "open", "out": "open"}
        self.unresolved: set[tuple[int, int]] = set()  # notes a lost output could not end
        self.resolve_at: float | None = None  # when to end them, once the output is back
        self.messages: deque[tuple[int, str]] = deque(maxlen=20)  # (serial, text) to show
        self.message_serial = 0
        self.desk = Desk(self)  # controls, MIDI learn, recording
        self.stats = Stats()
        self.stopping = False
        self.transport = Transport(settings.timing, now())
        self.follow_until: float | None = None
        self.rhythm = PlayerRhythm(settings.timing.beats_per_bar * STEPS_PER_BEAT)
        self.onset_at: float | None = None  # arrival of the first onset not yet played
        self.frame = Frame()  # the frame the current step was played with
        # frames the boundary may bring, still to be proposed ahead (None: not planned yet)
        self.plan: list[Frame] | None = None
        self.plan_ahead = True  # False: propose ahead only the frame as it stands
        self.preview: tuple[int, Proposal] | None = None  # (step, the frame as it stands)
        self.last_human = -1  # the latest human onset's pitch, around which the plan looks
        self.scheduled: list[tuple[float, float, list[NoteChange]]] = []  # (at, ideal, changes)
        self.clicks: list[tuple[float, bool]] = []  # count-in clicks due: (at, downbeat)
        self.silent_steps = 0
        self.takeover = False
        self.last_status = 0.0
        self.roll: deque[RollEvent] = deque(maxlen=ROLL_KEPT)
        self.roll_serial = 0
        self.monitors: list = []  # objects with send(message): the monitor synth hears all
        self.collector: QuietCollector | None = None  # while `run` runs

    # ------------------------------------------------------------------ the loop

    def run(self, should_stop: Callable[[], bool] = lambda: False) -> None:
        """Run until `should_stop()` or a quit control; always ends with every note resolved.
        Python's garbage collector runs only in quiet moments meanwhile (livegen.collector)."""
        with QuietCollector() as self.collector:
            try:
                self._program_changes()
                self.transport.start(self.now())
                while not (self.stopping or should_stop()):
                    self.tick()
            finally:
                self.shutdown()
                self.transport.close()
                self.collector = None

    def tick(self) -> None:
        """One pass: input, controls, the step machine, scheduled sends, status; then wait."""
        now = self.now()
        self._poll(now)
        self.desk.apply(now)
        ccs = self.filter.drain_cc()
        if ccs:
            self.desk.knobs(ccs, now)
        if self.transport.link is not None:  # the Link session's tempo, phase, start and stop
            change = self.transport.follow_link(now)
            if change == "stop":
                self._transport_stop()
            elif change == "start":
                self.acc.runtime.reset()
        if self.transport.running:
            self._step_machine(now)
        self._send_due(now)
        if self.clicks:
            self._send_clicks(now)
        for _ in range(self.transport.clock_ticks_due(now)):
            self._send([0xF8])
        if self._quiet(now):  # work that may take milliseconds, away from any boundary
            self._housekeeping(now)
        self._wait()

    def _housekeeping(self, now: float) -> None:
        if any(watch.due(now) for watch in self.watches):
            self._supervise(now)
        if self.resolve_at is not None and now >= self.resolve_at:
            self._resolve_lost_notes()
        self.desk.flush(now)
        if now - self.last_status >= self.status_every:
            self.last_status = now
            if self.on_status is not None:
                self.on_status(self.status(now))
        if self.collector is not None:
            self.collector.quiet(self.now())

    def _quiet(self, now: float) -> bool:
        """True when nothing is due for a while: not waiting for a note, and the next step
        event more than QUIET_S away. Status, port supervision and recording flushes wait for
        such a moment (each step has one, between playing and advancing)."""
        if self.follow_until is not None:
            return False
        return self._next_event() - now > QUIET_S

    def _wait(self) -> None:
        # Poll the input every YIELD_S until the next step event, for at most POLL_S per pass,
        # in a follow window too. A real sleep, never a busy-wait (sleep(0) was used before: on
        # Linux it sleeps for the timer slack, ~50 us, but elsewhere it can be a pure spin): the
        # processor and the GIL go to the other threads and programs between polls, the JACK
        # client threads on a 2-core machine included, while a note or a tick is picked up
        # within about 0.1 ms of its arrival (docs/ARCHITECTURE.md, "The hot path").
        deadline = min(self.now() + POLL_S, self._next_event())
        while self.now() < deadline:
            if self._poll(self.now()):
                return
            self.sleep(YIELD_S)

    def _next_event(self) -> float:
        """When the step machine next has something to do (inf: nothing scheduled)."""
        tr = self.transport
        times = [float("inf")]
        if tr.running:
            if not tr.emitted:
                times.append(self.follow_until if self.follow_until is not None
                             else tr.boundary)
            else:
                times.append(tr.advance_time())
        if self.scheduled:
            times.append(self.scheduled[0][0])
        if self.clicks:
            times.append(self.clicks[0][0])
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
            if (self.desk.recorder is not None and counters.echo == echoes and message
                    and message[0] & 0xE0 == 0x80):
                self.desk.recorder.add("human", t, message)
            if event is None:
                continue
            got = True
            if isinstance(event, Onset):
                self.stats.onsets += 1
                self.last_human = event.pitch
                if self.transport.armed:  # the player's first note starts the grid
                    self._start_grid(t)
                if self.onset_at is None:
                    self.onset_at = t
                self._roll(HUMAN, event.pitch)
                if self.takeover:  # the player is back: hand over at once
                    self._end_takeover()
            elif isinstance(event, ClockEvent):
                self._clock_event(event)
        return got

    def _clock_event(self, event: ClockEvent) -> None:
        if event.kind == TICK and self.transport.midi:
            self.stats.ticks += 1
        result = self.transport.on_clock(event)
        if result == "stop":
            self._transport_stop()
        elif result == "start":
            self.acc.runtime.reset()
        elif isinstance(result, Step):
            tr = self.transport
            if (not tr.emitted and result.index == tr.step + 1
                    and tr.boundary != float("inf")):
                # the step began but is not played yet (its ticks and the next step's came in
                # one poll, or the follow window still waited): it plays now, late, rather
                # than never
                self._play_step(event.time, by_onset=False)
            if tr.emitted:  # the next boundary came before the advance was due
                self._advance(event.time, event.time - tr.timing.prewindow * tr.step_length())
            tr.begin(result.index, result.time, event.time)
            self.follow_until = None

    def _transport_stop(self) -> None:
        self.transport.stop()
        self.release_all()
        self.follow_until = None
        self.clicks.clear()

    def _start_grid(self, t: float) -> None:
        """The internal grid starts from step 0 at `t`, the model from a fresh state."""
        self.acc.runtime.reset()
        self.plan = None
        self.frame = Frame()
        self.transport.start_at(t)

    def transport_control(self, value: str, now: float) -> None:
        """Start or stop the internal transport (the key, OSC, a learned CC). Starting counts
        in first when the preset asks for it, else waits for the player's first note or starts
        at once, as the preset's `start` says; starting while it waits starts at once."""
        tr = self.transport
        if tr.midi:
            self.note("the MIDI clock's Start and Stop drive the transport")
            return
        playing = tr.running or bool(self.clicks)
        if value == "toggle":
            value = "stop" if playing or tr.armed else "start"
        if value == "stop" and (playing or tr.armed):
            self._transport_stop()
            self.note("transport stopped: every note ended")
        elif value == "start" and not playing:  # armed and told to start: start now
            timing = self.settings.timing
            if timing.count_in:
                self.acc.runtime.reset()
                self.clicks = [(t, k % timing.beats_per_bar == 0) for k, t in
                               enumerate(tr.count_in(now, timing.count_in))]
                self.note(f"counting in {timing.count_in} bar{'s' * (timing.count_in > 1)}")
            elif timing.start == "first_note" and not tr.armed:
                tr.arm()
                self.note("waiting for your first note")
            else:
                self._start_grid(now + 0.05)
                self.note("transport started")

    def _send_clicks(self, now: float) -> None:
        """Count-in clicks due now: a short side stick (the bar's first: a higher wood block),
        note-off at once, on the preset's click channel."""
        channel = self.settings.timing.click_channel - 1
        while self.clicks and self.clicks[0][0] <= now:
            _, downbeat = self.clicks.pop(0)
            note = CLICK_ACCENT if downbeat else CLICK
            self._send([0x90 | channel, note, 100])
            self._send([0x80 | channel, note, 0])

    # ------------------------------------------------------------------ the step machine

    def _step_machine(self, now: float) -> None:
        tr = self.transport
        if tr.midi:
            if tr.silent(now):  # the clock went silent: stopped
                self._transport_stop()
                return
            if not tr.follower.running:
                return
        if tr.emitted:
            due = tr.advance_time()
            if now >= due:
                self._advance(now, due)
        elif now >= tr.boundary:
            if tr.overran(now):
                self._skip_step(now)  # the machine stalled past a whole step: do not play late
            else:
                self._decide(now)
        else:
            boundary = tr.next_boundary()
            if boundary is not None:
                self._propose_ahead(now, boundary)

    def _frame_now(self) -> Frame:
        onsets = self.filter.peek_onsets()
        return Frame(tuple(onsets), tuple(sorted(self.filter.held() - set(onsets))),
                     self.filter.chord(self.now()))

    def _propose_ahead(self, now: float, boundary: float) -> None:
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
        pos = self.transport.pos(self.transport.step)
        frame = self._frame_now()
        if not self.acc.known(frame, pos):
            self.preview = (self.transport.step, self.acc.propose(frame, pos))
            return
        if boundary - now < PROPOSE_S:
            return
        if self.plan is None:
            self.plan = (self.acc.likely_frames(self.last_human, frame.held, frame.chord)
                         if self.plan_ahead else [])
        while self.plan:
            likely = self.plan.pop(0)
            if not self.acc.known(likely, pos):
                self.acc.propose(likely, pos)
                return

    def _decide(self, now: float) -> None:
        """At or after the boundary of a step not yet played."""
        tr = self.transport
        if self.onset_at is not None and tr.in_prewindow(self.onset_at):
            late = self.onset_at - tr.boundary
            self._play_step(now, by_onset=True)
            self.rhythm.timed(late)  # how late this player comes, for the follow window
            return
        timing = self.settings.timing
        if self.follow_until is None:
            wait = 0.0
            if timing.follow_ms > 0 and not self.takeover:
                # the follow window's expectation: livegen/follow.py
                wait = self.rhythm.wait(tr.step, timing.follow_ms / 1000.0,
                                        self.acc.onset_probability, timing.follow_threshold)
            if wait > 0.0:
                self.follow_until = tr.boundary + wait
                return
            self._play_step(now, by_onset=False)
        elif now >= self.follow_until:
            self.stats.waited_in_vain += 1
            self._play_step(now, by_onset=False)

    def _play_step(self, now: float, by_onset: bool) -> None:
        """The hot path: take the step's frame, play it at the step's position, send the
        changes (docs/ARCHITECTURE.md, "The hot path")."""
        tr = self.transport
        frame, lead_changes = self._take_frame()
        pos = tr.pos(tr.step)
        ready = self.acc.known(frame, pos)
        changes = lead_changes + self.acc.commit(self.acc.propose(frame, pos))
        self.frame = frame
        if self.on_play is not None:
            self.on_play(tr.step, frame)
        offset = self.acc.timing_offset(tr.step, tr.step_length())
        ideal = tr.boundary + offset
        if offset > 0 and not by_onset:
            self.scheduled.append((ideal, ideal, changes))
            self.scheduled.sort(key=lambda s: s[0])
        else:
            sent_at = self._send_changes(changes)
            if by_onset and self.onset_at is not None:
                # from when the worker had both the note and the step (README, *Figures*)
                start = max(self.onset_at, tr.boundary, tr.known_at)
                self.stats.count_latency(sent_at - start, ready)
            elif self.follow_until is None:
                self.stats.emission.append(sent_at - ideal)
        self.onset_at = None
        self.follow_until = None
        tr.emitted = True
        self.stats.steps += 1

    def _take_frame(self) -> tuple[Frame, list[NoteChange]]:
        """The player's frame for this step; in takeover, the model's own melody's frame and
        its note changes, under the player's left-hand chord. Counts silence towards takeover
        (a left-hand chord alone is silence: the model may take the melody over it)."""
        onsets = self.filter.take_onsets(float("inf"))
        frame = Frame(tuple(onsets), tuple(sorted(self.filter.held() - set(onsets))),
                      self.filter.chord(self.now()))
        if onsets:
            self.silent_steps = 0
            if self.takeover:
                self._end_takeover()
            return frame, []
        self.silent_steps += 1
        to = self.settings.takeover
        bar = self.settings.timing.beats_per_bar * STEPS_PER_BEAT
        if (to.enabled and not self.takeover and not frame.held
                and self.silent_steps >= to.bars * bar):
            self.takeover = True
            self.note(f"takeover: no melody for {to.bars} bars, the model plays it")
        if self.takeover:
            lead, changes = self.acc.lead_step()
            return (lead._replace(chord=frame.chord) if frame.chord else lead), changes
        return frame, []

    def _advance(self, now: float, cutoff: float | None = None) -> None:
        """Move past the played step with its final frame: onsets that arrived after it was
        played and before `cutoff` (the next step's pre-window; `now` by default) join it."""
        tr = self.transport
        late = self.filter.take_onsets(now if cutoff is None else cutoff)
        frame = self.frame
        if late:
            frame = Frame(tuple(sorted(set(frame.onsets) | set(late))),
                          tuple(p for p in frame.held if p not in late), frame.chord)
            if not self.filter.peek_onsets():
                self.onset_at = None
        self.acc.advance(frame, tr.pos(tr.step), tr.pos(tr.step + 1))
        if not self.takeover:
            self.rhythm.played(tr.step, bool(frame.onsets))
        self.plan = None
        tr.moved_on()

    def _skip_step(self, now: float) -> None:
        self.stats.skipped_steps += 1
        self.frame = Frame((), tuple(sorted(self.filter.held())), self.filter.chord(now))
        self.transport.emitted = True
        self._advance(now)

    # ------------------------------------------------------------------ sending

    def _send_changes(self, changes: list[NoteChange]) -> float:
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
                self._roll(c.voice, c.pitch)
        return first_on if first_on is not None else self.now()

    def _roll(self, voice: int, pitch: int) -> None:
        self.roll_serial += 1
        self.roll.append(RollEvent(self.roll_serial, self.transport.step, voice, pitch))

    def _channel(self, voice: int) -> int:
        if voice == LEAD:
            return self.settings.takeover.channel
        return self.acc.voices[voice].channel

    def _send(self, message: list[int]) -> float:
        try:
            self.out.send(message)
        except Exception as exc:  # a port that fails mid-send: say so, keep the engine up
            self.note(f"could not send to the output port: {exc}")
        t = self.now()
        self.filter.sent(message, t)
        self.stats.sent += 1
        for monitor in self.monitors:
            monitor.send(message)
        if self.desk.recorder is not None and message[0] & 0xE0 == 0x80:
            self.desk.recorder.add(self._track_of(message[0] & 15), t, message)
        return t

    def _track_of(self, channel0: int) -> str:
        for v in self.acc.voices:
            if v.channel - 1 == channel0:
                return v.name
        return "takeover"

    def _send_due(self, now: float) -> None:
        while self.scheduled and self.scheduled[0][0] <= now:
            _, ideal, changes = self.scheduled.pop(0)
            sent_at = self._send_changes(changes)
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
        self._send_changes(self.acc.stop_lead())
        self.note("takeover: the player is back")

    def release_all(self) -> None:
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
        self.desk.close(self.now())

    # ------------------------------------------------------------------ controls

    def control(self, message: ControlMessage) -> None:
        """Queue a control from any thread; the worker applies it on its next pass."""
        self.desk.queue.append(message)

    def switch_model(self, path: str) -> None:
        """Load another model file; on failure the current one stays and the reason is shown."""
        try:
            runtime = Runtime(path, device=self.runtime.device)
        except Exception as exc:
            self.note(str(exc))
            return
        self.release_all()
        self.runtime = runtime
        self.acc = Accompanist(runtime, self.settings)
        self.note(f"model {runtime.path.name} loaded")

    def switch_settings(self, settings: Settings) -> None:
        """A new preset or a changed control: voices that change channel or go quiet are
        released first, so nothing is left hanging."""
        old = {(v.name, v.channel, v.enabled) for v in self.acc.voices}
        old.add(("lead", self.settings.takeover.channel, True))
        self.transport.configure(settings.timing, self.now())
        self.rhythm.resize(settings.timing.beats_per_bar * STEPS_PER_BEAT)
        self.settings = settings
        self.plan = None
        self.filter.configure(settings.input)
        self.acc.configure(settings)
        new = {(v.name, v.channel, v.enabled) for v in self.acc.voices}
        new.add(("lead", settings.takeover.channel, True))
        if old != new:
            self.release_all()
        for v in self.acc.voices:
            if v.enabled:
                self.ledger.use_channel(v.channel)

    # ------------------------------------------------------------------ ports, status

    def _supervise(self, now: float) -> None:
        """Port supervision. When the output goes (a pulled cable, the JACK server dying), the
        notes that sounded cannot be ended there; they are remembered, and when the output is
        back (after RECONNECT_GRACE_S, for a patchbay or session manager to connect it again)
        their note-offs go out, then CC64=0, CC123 and CC120 on every channel in use, so a synth
        that lived through it is left with nothing hanging."""
        events = [(name, watch.check(now))
                  for name, watch in zip(("in", "out"), self.watches, strict=False)]
        if any(name == "out" and event is not None and event.kind != "returned"
               for name, event in events):
            self.unresolved |= set(self.ledger.sounding())
        for name, event in events:
            if event is None:
                continue
            self.port_state[name] = {"vanished": "missing", "returned": "open",
                                     "error": "error"}[event.kind]
            self.note(event.message)
            if event.kind in ("vanished", "error"):
                self.filter.reset()
                self.release_all()
            elif name == "out" and self.unresolved:
                self.resolve_at = now + RECONNECT_GRACE_S

    def _resolve_lost_notes(self) -> None:
        """The output is back (and a patchbay has had a moment to reconnect it): end the notes
        it lost."""
        self.resolve_at = None
        for channel, pitch in sorted(self.unresolved):
            self._send(note_off_message(channel, pitch))
        self.unresolved.clear()
        self.panic()

    def note(self, text: str) -> None:
        """A message for whoever watches (the panel's log, the status line)."""
        self.message_serial += 1
        self.messages.append((self.message_serial, text))

    def status(self, now: float | None = None) -> Status:
        """A snapshot of everything a UI shows; changes nothing (livegen.report)."""
        return snapshot(self, self.now() if now is None else now)
