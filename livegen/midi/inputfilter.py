"""Input hygiene and the human part (docs/ARCHITECTURE.md, "The hot path").

``InputFilter`` runs in the engine's worker thread. It takes raw MIDI messages as python-rtmidi
delivers them (a list of byte values) with the time they arrived, and:

- returns an ``Onset`` at once for every key that starts a note of the human part (the engine
  reacts to it immediately when it is waiting in the follow window), and a ``ClockEvent`` for
  beat clock, Start, Stop, Continue and Song Position Pointer; everything else returns None;
- keeps the human part's sounding keys (with the sustain pedal), so that the engine can ask per
  step for the onsets since the last step (``take_onsets``) and the held set (``held``);
- with a chord zone (``InputSettings.chord_zone``), keeps the left-hand chord apart from the
  melody: ``chord`` gives the pitch classes held below the split point (rules below);
- coalesces control changes: ``drain_cc`` gives the latest value of each (channel, cc) that
  changed since the last drain (for MIDI learn);
- drops and counts what it must not act on: SysEx, active sensing, malformed messages, and the
  engine's own output arriving back at the input (``sent`` tells it what went out).

Channels are 1..16 in the API (as in the settings); pitches are MIDI note numbers.

Decisions where the design is silent:

- Channel filter and input mode apply to notes only. Control changes from every channel are
  reported (a knob box often sits on its own channel; learn maps by CC number).
- CC 64 (pedal) and the channel-mode controllers 120..127 are never reported by ``drain_cc``.
  All Sound Off (120) and All Notes Off (123) from the input release the human keys of that
  channel, pedal included; Reset All Controllers (121) lifts that channel's pedal.
- Echoes: an incoming message is dropped as our own output only when it matches something we
  sent (``sent``), and how closely it must match depends on whether a loop from our output back
  to our input has been seen. A keyboard playing in unison with a voice, on its channel, is not
  a loop, and its notes must reach the model.

  - An *exact echo* is a message byte-identical to one we sent (note-on with the same
    velocity, note-off spelled the same way with the same release velocity, CC with the same
    value, all on the same channel) arriving within ``loop_window`` of it (``LOOP_S`` = 10 ms:
    room for a loop through MIDI cables and a synth's thru, or for a JACK connection at
    periods up to 256 frames at 48 kHz). Exact echoes are always dropped: a player's key
    matches our velocity to the unit within a few milliseconds only by rare chance.
  - Loop evidence is a score: every note-on or CC we send lowers it by one (not below 0), and
    every exact echo of a note-on or CC raises it by two (up to ``LOOP_SCORE_MAX`` = 8). A
    loop is *seen* while the score is at least ``LOOP_PROOF`` = 3, which takes two exact
    echoes at least, and holds while more than half of what we send comes back exactly; once
    the loop is gone, a few sends without echoes forget it. A player's chance matches cannot
    build the score up unless they match more than half of our notes. Note-offs neither add
    evidence (a release within a few milliseconds of ours, at the common release velocity, is
    not rare) nor spend it.
  - While a loop is seen, a looser match applies as well: a note-on or note-off in
    either spelling, any velocity, on the same channel and pitch (a CC with the same value)
    within ``echo_window`` (50 ms) of one we sent is dropped, so an echo delayed by a busy
    cable or re-spelled by a MIDI interface (note-off as a note-on with velocity 0) is caught,
    at the price of a unison key played within the window. Without a loop, only exact echoes
    are dropped: the keyboard's unison note, at another velocity or later than
    ``loop_window``, is heard. Nor, without a loop, is a note-off for a key the player holds
    down ever an echo: the player releasing a unison key together with the voice must not
    leave it held (the echo of our note-on never got in, so our note-off's echo finds the
    key up).
  - One echo cancels one sent message; ``counters.echo`` counts every message dropped as an
    echo. ``reset`` (port lost or changed) forgets the loop evidence, not what was sent.
- Skyline reduces the human part to one melodic line. A key starts a line note if no higher
  key of the human part is physically held down (keys only ringing through the pedal do not
  block it, so a descending melody under the pedal is still heard). When the line note ends
  and other keys are still down, the highest of them carries the line as a held note, not a
  new onset. Per step, ``take_onsets`` gives only the highest onset. A key whose note-off got
  lost (a busy transport drops messages) would block every lower note for good, so a held key
  under which ``STALE_UNDER`` lower keys have been struck and let go in turn counts as
  released (``counters.stale``): the lower line, which keeps moving, is the melody now.
- A note-on for a key that is already down is a new onset (re-strike); a note-off for a key
  that is not down is ignored.
- The chord zone (the left hand; README, "Presets"): on the accepted channels, a key below
  ``chord_zone`` never starts an onset and is never in ``held``, whatever the mode (skyline
  ignores it, and with mode "split" too the chord zone is taken first), nor is it counted as
  filtered. The keys held there, down or under the pedal, are the chord: ``chord`` gives their
  pitch classes, the lowest key's first (the chord's bass as played, which the accompanist's
  lowest voice favours), then the others ascending, so two voicings with the same bass are the
  same chord. A hand lifted between two chords must not leave the voices without a harmony for
  a step: when the zone's last key is released, the chord it held (the keys released within
  ``CHORD_SPREAD_S`` of the last one, so a staggered release keeps the whole chord) is kept for
  ``CHORD_HOLD_S``, or until a key is pressed in the zone, which starts the next chord at once.
  A key held alone is a chord of one pitch class, which the accompanist takes as a bass note.
  All Notes Off and All Sound Off drop the chord without keeping it.
- Program change, aftertouch, pitch bend, MTC quarter frame, song select, tune request and
  system reset are valid and ignored (counted as ``ignored``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from livegen.midi.clock import CONTINUE, POSITION, START, STOP, TICK, ClockEvent
from livegen.settings import InputSettings

MAX_PENDING = 256  # onsets kept while nobody collects them (e.g. transport stopped)

LOOP_S = 0.010  # an exact echo arrives within this of what we sent
LOOP_PROOF = 3  # the loop score at which a loop counts as seen
LOOP_SCORE_MAX = 8

STALE_UNDER = 3  # skyline: lower keys struck and let go under a held key before it counts as up
CHORD_HOLD_S = 0.3  # the left-hand chord is kept this long after its last key is released
CHORD_SPREAD_S = 0.1  # keys released within this before the zone's last one are its chord

_NOTE_ON = 1 << 20  # echo keys: kind << 20 | channel << 14 | data1 << 7 | data2 (CC value)
_NOTE_OFF = 2 << 20
_CC = 3 << 20
_KIND = 3 << 20  # the kind's bits of an echo key

_CLOCK_KINDS = {0xF8: TICK, 0xFA: START, 0xFB: CONTINUE, 0xFC: STOP}
_IGNORED_SYSTEM_LENGTHS = {0xF1: 2, 0xF3: 2, 0xF6: 1, 0xFF: 1}


def _chord_of(keys: Sequence[int]) -> tuple[int, ...]:
    """The chord of some keys: their pitch classes, the lowest key's first, then ascending."""
    if not keys:
        return ()
    pitches = [k & 127 for k in keys]
    bass = min(pitches) % 12
    return (bass, *sorted({p % 12 for p in pitches} - {bass}))


class Onset(NamedTuple):
    """A key that starts a note of the human part."""

    time: float
    channel: int  # 1..16
    pitch: int
    velocity: int


@dataclass(slots=True)
class InputCounters:
    """What the input has seen and dropped, for the engine's status."""

    messages: int = 0  # every message fed in
    notes: int = 0  # onsets of the human part
    filtered: int = 0  # note-ons outside the input channel, split or skyline (not chord keys)
    malformed: int = 0  # wrong length, data byte > 127, lone data byte, unknown status
    sysex: int = 0
    sensing: int = 0  # active sensing (0xFE)
    echo: int = 0  # our own output coming back
    ignored: int = 0  # valid messages livegen has no use for
    cc_coalesced: int = 0  # CC values overwritten by a later one before a drain
    dropped_queue: int = 0  # incremented by the engine when its bounded input queue is full
    stale: int = 0  # held keys let go because lower keys kept coming under them (skyline)


class InputFilter:
    def __init__(
        self,
        settings: InputSettings | None = None,
        echo_window: float = 0.05,
        loop_window: float = LOOP_S,
    ) -> None:
        self.counters = InputCounters()
        self.echo_window = echo_window
        self.loop_window = loop_window
        # per echo key, what we sent lately: (time, status << 7 | data2), oldest first
        self._echo: dict[int, deque[tuple[float, int]]] = {}
        self._loop_score = 0
        self._cc: dict[tuple[int, int], int] = {}
        self._down: set[int] = set()  # keys physically down: channel0 << 7 | pitch (all input)
        self._sust: set[int] = set()  # keys released while their channel's pedal is down
        self._pedal = [False] * 16
        self._pending: list[tuple[float, int]] = []  # (time, pitch) onsets not yet taken
        self._line: int | None = None  # skyline: key carrying the melodic line
        self._blocked: dict[int, int] = {}  # skyline: key down -> the higher key that blocked it
        self._under: dict[int, int] = {}  # higher key -> keys struck and let go under it
        self._channel: int | None = None  # 0-based, None = all
        self._split: int | None = None
        self._skyline = False
        self._zone: int | None = None  # chord zone: keys below this pitch are the left hand's
        self._chord: tuple[int, ...] = ()  # the chord the zone's held keys make now
        self._released: dict[int, float] = {}  # zone keys released since a zone press: time
        self._latched: tuple[int, ...] = ()  # the chord kept after the zone emptied...
        self._latched_until = 0.0  # ...until this time
        self.configure(settings or InputSettings())

    # -- settings ----------------------------------------------------------------------------

    def configure(self, settings: InputSettings) -> None:
        """Apply input channel and mode. Keys already down keep their state; the human part is
        re-derived from them at once (pending onsets are kept as they were accepted)."""
        ch = settings.channel
        if ch is not None and not 1 <= ch <= 16:
            raise ValueError(f"input channel must be 1..16 or None, not {ch}")
        if settings.mode not in ("all", "skyline", "split"):
            raise ValueError(f"unknown input mode {settings.mode!r}")
        zone = settings.chord_zone
        if zone is not None and not 1 <= zone <= 127:
            raise ValueError(f"chord zone must be 1..127 or None, not {zone}")
        self._channel = None if ch is None else ch - 1
        self._split = settings.split if settings.mode == "split" else None
        self._skyline = settings.mode == "skyline"
        self._zone = zone
        self._line = self._top(self._down | self._sust) if self._skyline else None
        self._released = {}
        self._latched = ()
        self._chord = self._zone_chord()

    # -- the hot path ------------------------------------------------------------------------

    def feed(self, message: Sequence[int], t: float) -> Onset | ClockEvent | None:
        """Take one raw message that arrived at time ``t``. Never raises on bad input."""
        c = self.counters
        c.messages += 1
        try:
            n = len(message)
            status = message[0]
            if status >> 7 != 1:  # a data byte where a status belongs, or not a byte
                c.malformed += 1
                return None
            if status < 0xF0:
                kind = status & 0xF0
                need = 2 if kind == 0xC0 or kind == 0xD0 else 3
                if n != need:
                    c.malformed += 1
                    return None
                d1 = message[1]
                d2 = message[2] if need == 3 else 0
                if (d1 | d2) & ~0x7F:
                    c.malformed += 1
                    return None
            else:
                return self._system(message, n, status, t)
        except (TypeError, IndexError):
            c.malformed += 1
            return None

        ch = status & 0x0F
        if kind == 0x90 and d2:
            key = ch << 7 | d1
            if self._echo and self._is_echo(_NOTE_ON | key << 7, status << 7 | d2, t, True):
                return None
            return self._note_on(ch, d1, d2, t)
        if kind == 0x80 or kind == 0x90:
            key = ch << 7 | d1
            if (
                self._echo
                and (key not in self._down or self._loop_score >= LOOP_PROOF)
                and self._is_echo(_NOTE_OFF | key << 7, status << 7 | d2, t, False)
            ):
                return None
            self._note_off(key, t)
            return None
        if kind == 0xB0:
            echo_key = _CC | ch << 14 | d1 << 7 | d2
            if self._echo and self._is_echo(echo_key, status << 7 | d2, t, True):
                return None
            self._control(ch, d1, d2, t)
            return None
        c.ignored += 1
        return None

    def _system(self, message: Sequence[int], n: int, status: int, t: float) -> ClockEvent | None:
        c = self.counters
        if status == 0xF8 or status == 0xFA or status == 0xFB or status == 0xFC:
            if n != 1:
                c.malformed += 1
                return None
            return ClockEvent(_CLOCK_KINDS[status], t)
        if status == 0xFE:
            c.sensing += 1
            return None
        if status == 0xF0:
            c.sysex += 1
            return None
        if status == 0xF2:
            if n != 3:
                c.malformed += 1
                return None
            lsb = message[1]
            msb = message[2]
            if (lsb | msb) & ~0x7F:
                c.malformed += 1
                return None
            return ClockEvent(POSITION, t, msb << 7 | lsb)
        need = _IGNORED_SYSTEM_LENGTHS.get(status)
        if need is None or n != need or (n > 1 and message[1] & ~0x7F):
            c.malformed += 1  # 0xF4, 0xF5, 0xF9, 0xFD, a stray 0xF7, or a wrong length
            return None
        c.ignored += 1
        return None

    def _accept(self, ch: int, pitch: int) -> bool:
        """Whether a key belongs to the human part (the melody)."""
        chan = self._channel
        if chan is not None and ch != chan:
            return False
        zone = self._zone
        if zone is not None and pitch < zone:
            return False
        split = self._split
        return split is None or pitch >= split

    def _in_zone(self, ch: int, pitch: int) -> bool:
        """Whether a key belongs to the left-hand chord."""
        zone = self._zone
        if zone is None or pitch >= zone:
            return False
        chan = self._channel
        return chan is None or ch == chan

    def _zone_chord(self) -> tuple[int, ...]:
        """The chord of the zone's keys held now, down or under the pedal."""
        if self._zone is None:
            return ()
        inside = self._in_zone
        return _chord_of([k for k in self._down | self._sust if inside(k >> 7, k & 127)])

    def _zone_released(self, keys: Iterable[int], t: float) -> None:
        """Zone keys released at `t`: the chord now, and the chord kept when none is left."""
        released = self._released
        for k in keys:
            released[k] = t
        chord = self._zone_chord()
        if not chord:
            since = t - CHORD_SPREAD_S
            self._latched = _chord_of([k for k, when in released.items() if when >= since])
            self._latched_until = t + CHORD_HOLD_S
            self._released = {}
        self._chord = chord

    def _top(self, keys: Iterable[int]) -> int | None:
        """The highest key of the human part among ``keys``."""
        best: int | None = None
        for k in keys:
            if (best is None or (k & 127) > (best & 127)) and self._accept(k >> 7, k & 127):
                best = k
        return best

    def _note_on(self, ch: int, pitch: int, velocity: int, t: float) -> Onset | None:
        key = ch << 7 | pitch
        down = self._down
        self._under.pop(key, None)  # (re)struck: it is played, not stale
        if not self._accept(ch, pitch):
            down.add(key)
            self._sust.discard(key)
            if self._zone is not None and self._in_zone(ch, pitch):
                self._released = {}  # a zone press starts the next chord: nothing is kept
                self._latched = ()
                self._chord = self._zone_chord()
            else:
                self.counters.filtered += 1
            return None
        if self._skyline:
            above = self._top(down)
            if above is not None and above != key and (above & 127) > pitch:
                down.add(key)
                self._sust.discard(key)
                self._blocked[key] = above
                self.counters.filtered += 1
                return None
            self._line = key
        down.add(key)
        self._sust.discard(key)
        pending = self._pending
        if len(pending) >= MAX_PENDING:
            del pending[0]
        pending.append((t, pitch))
        self.counters.notes += 1
        return Onset(t, ch + 1, pitch, velocity)

    def _note_off(self, key: int, t: float) -> None:
        if key not in self._down:
            return
        self._down.remove(key)
        self._under.pop(key, None)
        above = self._blocked.pop(key, None)
        if above is not None and above in self._down:
            self._under[above] = under = self._under.get(above, 0) + 1
            if under >= STALE_UNDER:  # its note-off must have been lost: let it go
                self.counters.stale += 1
                self._note_off(above, t)
        if self._pedal[key >> 7]:
            self._sust.add(key)
        elif key == self._line:
            self._line = self._top(self._down)
        elif self._zone is not None and self._in_zone(key >> 7, key & 127):
            self._zone_released((key,), t)

    def _control(self, ch: int, cc: int, value: int, t: float) -> None:
        if cc == 64:
            self._set_pedal(ch, value >= 64, t)
            return
        if cc >= 120:
            if cc == 120 or cc == 123:
                self._down = {k for k in self._down if k >> 7 != ch}
                self._sust = {k for k in self._sust if k >> 7 != ch}
                self._pedal[ch] = False
                if self._skyline:
                    self._line = self._top(self._down | self._sust)
                if self._zone is not None:  # the chord goes at once, nothing kept
                    self._chord = self._zone_chord()
                    self._latched = ()
            elif cc == 121:
                self._set_pedal(ch, False, t)
            else:
                self.counters.ignored += 1
            return
        pending = self._cc
        k = (ch + 1, cc)
        if k in pending:
            self.counters.cc_coalesced += 1
        pending[k] = value

    def _set_pedal(self, ch: int, down: bool, t: float) -> None:
        if self._pedal[ch] == down:
            return  # no threshold crossing: a pedal flood costs nothing
        self._pedal[ch] = down
        if down:
            return
        if self._sust:
            if self._zone is not None:
                inside = self._in_zone
                zone_keys = [k for k in self._sust if k >> 7 == ch and inside(ch, k & 127)]
            else:
                zone_keys = []
            self._sust = {k for k in self._sust if k >> 7 != ch}
            if zone_keys:
                self._zone_released(zone_keys, t)
        line = self._line
        if line is not None and line not in self._down and line not in self._sust:
            self._line = self._top(self._down)

    # -- echo rejection ----------------------------------------------------------------------

    @property
    def loop_seen(self) -> bool:
        """Whether a loop from our output back to our input has been seen (module docstring)."""
        return self._loop_score >= LOOP_PROOF

    def sent(self, message: Sequence[int], t: float) -> None:
        """Tell the filter the engine sent ``message`` at time ``t``, so that its echo can be
        recognised (the rule is in the module docstring)."""
        if len(message) != 3:
            return
        status, d1, d2 = message[0], message[1], message[2]
        kind = status & 0xF0
        ch = status & 0x0F
        if kind == 0x90 and d2:
            key = _NOTE_ON | ch << 14 | d1 << 7
        elif kind == 0x80 or kind == 0x90:
            key = _NOTE_OFF | ch << 14 | d1 << 7
        elif kind == 0xB0:
            key = _CC | ch << 14 | d1 << 7 | d2
        else:
            return
        if key & _KIND != _NOTE_OFF and self._loop_score:
            self._loop_score -= 1  # a note-on or CC, which a loop would bring back exactly
        sent = self._echo.get(key)
        if sent is None:
            sent = self._echo[key] = deque()
        else:
            limit = t - max(self.echo_window, self.loop_window)
            while sent and sent[0][0] < limit:
                sent.popleft()
        sent.append((t, status << 7 | d2))

    def _is_echo(self, key: int, ident: int, t: float, evidence: bool) -> bool:
        """Whether the message with echo key ``key`` and bytes ``ident`` arriving at ``t`` is
        our own; if so, the sent message it echoes is forgotten and the echo counted."""
        sent = self._echo.get(key)
        if not sent:
            return False
        window = self.echo_window
        near = self.loop_window
        limit = t - max(window, near)
        while sent and sent[0][0] < limit:
            sent.popleft()
        if not sent:
            del self._echo[key]
            return False
        for i, (when, what) in enumerate(sent):
            if what == ident and abs(when - t) <= near:  # an exact echo
                del sent[i]
                if evidence:
                    self._loop_score = min(LOOP_SCORE_MAX, self._loop_score + 2)
                self.counters.echo += 1
                return True
        if self._loop_score >= LOOP_PROOF and abs(sent[0][0] - t) <= window:
            sent.popleft()
            self.counters.echo += 1
            return True
        return False

    # -- per step ----------------------------------------------------------------------------

    def take_onsets(self, before: float) -> list[int]:
        """Pitches of the human onsets that arrived before ``before``, sorted and without
        repeats, removed from the pending list (later ones stay for the next step). In skyline
        mode, only the highest."""
        pending = self._pending
        if not pending:
            return []
        taken = {p for (tt, p) in pending if tt < before}
        if not taken:
            return []
        self._pending = [(tt, p) for (tt, p) in pending if tt >= before]
        if self._skyline:
            return [max(taken)]
        return sorted(taken)

    def peek_onsets(self) -> list[int]:
        """What `take_onsets(inf)` would return now, without taking anything."""
        taken = {p for (_, p) in self._pending}
        if not taken:
            return []
        return [max(taken)] if self._skyline else sorted(taken)

    def held(self) -> set[int]:
        """Pitches of the human part sounding now: keys down, or released under the pedal (the
        chord zone's keys are not the human part)."""
        if self._skyline:
            return set() if self._line is None else {self._line & 127}
        acc = self._accept
        return {k & 127 for k in self._down | self._sust if acc(k >> 7, k & 127)}

    def chord(self, now: float) -> tuple[int, ...]:
        """The left-hand chord at time `now`: the pitch classes held in the chord zone, the
        lowest key's first, then the others ascending; after the zone emptied, the chord it held,
        for `CHORD_HOLD_S` (module docstring); () when there is none or the zone is off."""
        if self._chord or not self._latched:
            return self._chord
        if now <= self._latched_until:
            return self._latched
        self._latched = ()
        return ()

    def drain_cc(self) -> dict[tuple[int, int], int]:
        """The latest value of each (channel 1..16, cc) that changed since the last drain."""
        out = self._cc
        if out:
            self._cc = {}
        else:
            out = {}
        return out

    def pedal(self, channel: int) -> bool:
        """Whether the sustain pedal is down on ``channel`` (1..16)."""
        return self._pedal[channel - 1]

    def reset(self) -> None:
        """Forget keys, pedals, the chord, pending onsets, CC changes and the loop evidence (port
        lost or changed: the loop may be gone, or a new one there). Counters and what was sent
        are kept."""
        self._down = set()
        self._sust = set()
        self._pedal = [False] * 16
        self._pending = []
        self._line = None
        self._blocked, self._under = {}, {}
        self._cc = {}
        self._loop_score = 0
        self._chord = ()
        self._released = {}
        self._latched = ()
