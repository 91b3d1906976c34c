"""The step logic shared by the live engine and the offline render (docs/ARCHITECTURE.md, "The
hot path").

Per step the caller gives the human frame (onsets and held pitches) and the position in the bar:

    changes = acc.emit(frame, pos)             # critical path: accompany + sampling -> notes
    ... send the changes ...
    acc.advance(frame, pos, next_pos)          # after sending: recurrent update, lead, key

`emit` (= `commit(propose(...))`) turns each voice's token into note changes (note-offs before
note-ons). The constraints are an additive bias on the logits: key lock (a hard pitch mask),
each voice's range, the largest leap, no HOLD for a silent voice, no heard voice above the
melody, the cadence rules below, and a density bias on REST/HOLD; the sampler chooses the step's
voices together as a frame, with no unison doubling, and avoids parallel fifths and octaves,
crossed voices and clashes with the melody (livegen.model.heads). `advance` also prepares
`onset_probability` for the next step (the follow window) and the lead logits that takeover
samples from.

What the voices do beyond the model's own choice; each rule is decided from the state and the
frame alone, so every proposal of a step gives the same notes for the same frame:

- **Every voice is sampled, muted or not.** The model hears a full chorale, the context it was
  trained on; a muted voice's notes are simply not sent. (Feeding muted voices back as rests put
  the model in a context it never saw, and the voices that did sound barely played.)
- **Any register.** The model knows the human part only inside `runtime.info.human_range` (the
  trained soprano range). The human pitches are moved by a whole number of octaves (`shift`)
  into it before the model hears them, and the voices' ranges and pitches move by the same
  octaves (inside MIDI 0-127), so the voices sit under the melody wherever it is played. The
  shift changes only at a human onset whose top note falls outside the range under the current
  shift, to the shift that keeps most of the last `RECENT` melody onsets inside (a lone note
  outside is folded by itself, so a wide tune does not make the voices jump octaves).
- **Waiting for the melody.** Voices rest until the human part (or the takeover lead) sounds
  for the first time since the accompanist was made or last `release`d; a pickup is answered
  from its first note.
- **A key from the first note.** With key lock "auto" the voices are masked to a key from the
  first melody note on: `tonality.likely_key` of what has been played (the key profiles read as
  probabilities, with a prior for major keys with few accidentals), revised every beat. With any
  lock, when the melody's pitch class is outside the locked key, the key's pitch classes that
  clash with it are masked too: a minor second either side (so no minor second, major seventh
  or minor ninth against it) and the tritone. So the lock never makes a voice contradict a
  chromatic note of the player's with the scale note beside it; the voices stay in the key.
- **Cadences.** Bars are counted from the melody's first downbeat; the second bar of each pair
  ends a 2- or 4-bar phrase, and its last strong beat (beat 3 in 4/4, the downbeat in 3/4) is
  its cadence. A melody note struck on a cadence beat: the lowest heard voice favours its pitch
  class (`CADENCE_BASS` on the logits), and while the melody holds it the voices hold. A melody
  note struck on any strong beat of such a bar and held across the next beat settles the voices
  the same way from that beat on (the lowest heard voice may still move to the melody's pitch
  class, once); in any other bar, a note struck on a strong beat and held `LONG_BEATS` beats
  settles them too, and the lowest voice holds as well. A melody that closes like a cadence
  on any strong beat, in any bar (the tonic of the key heard so far or of its relative, reached
  by step or repeated: `_closing`), has the lowest heard voice favour its pitch class more
  strongly (`CLOSING_BASS`) and settles the voices as a cadence does when it is held: where a
  phrase really ends cannot be known when its last note comes, but Bach puts the bass on the
  melody's pitch class under about 40% of such notes mid-phrase and under 99% of them at the
  end (measured on the chorales).
- **The left-hand chord.** A frame's `chord` (the pitch classes held in the chord zone,
  livegen/midi/inputfilter.py) fixes the harmony. On a beat (the first step of each beat) a
  voice may only sound the chord's pitch classes: its other pitches are masked, and so is
  holding a note outside the chord into the beat. On the steps between the beats the chord's
  pitch classes and, as passing tones, the key's scale (the locked or tracked key, less the
  pitch classes that clash with a melody note outside it, as above) are allowed, and a voice
  may hold a note that is in either; with key lock "off" those steps are free. The chord's
  pitch classes are allowed even where the key would mask them (a chromatic chord is the
  player's choice). On a beat a chord tone a minor second or major seventh from the melody
  (what the frame sampler counts as a clash) starts no note while two other chord tones
  remain: as the resolution of a suspension, it is not doubled against it; a voice already
  sounding it may hold. On a beat the lowest heard voice favours the chord's bass, the pitch class
  of its lowest key as played (`CHORD_BASS` on the logits, and on holding it): a preference, so
  an inversion in the voices stays possible. A chord of one pitch class (a single left-hand
  key, or the first key of a chord rolled across a step's boundary) is a bass note, not a
  harmony: the voices keep the key's rules, and on a beat the lowest heard voice favours it
  (allowed even outside the key). A chord changed under a settled (held) melody note
  moves the voices that sound outside it; the others keep holding. With key lock "auto" the
  chord's pitch classes count for the key as the melody's do. Voices still wait for the melody
  (a chord alone does not start them) and stay under it. Without a chord nothing changes.
"""

from __future__ import annotations

import math
import random
from collections import deque
from dataclasses import dataclass

import numpy as np

from livegen.frames import LEAD, Frame, NoteChange, Proposal
from livegen.model.heads import CLASH_INTERVALS
from livegen.model.runtime import Runtime
from livegen.model.tokens import HOLD, PITCH0, REST, STEPS_PER_BEAT, VOCAB
from livegen.settings import DEFAULT_PROGRAMS, Settings
from livegen.tonality import Key, KeyTracker, likely_key, parse_key, scale_pitch_classes

NEG = float("-inf")
DENSITY_SCALE = 2.0  # logit shift on REST and HOLD at density -1 / +1
RECENT = 8  # melody onsets that decide the register shift
CADENCE_BASS = 3.0  # logit bonus of the melody's pitch class for the lowest heard voice
CLOSING_BASS = 6.0  # the same for a melody closing on the tonic (`_closing`)
LONG_BEATS = 1  # a melody note struck on a strong beat and held this long settles the voices
CLASH_STEPS = (1, 6, 11)  # pitch-class distances masked around a melody note outside the key
CHORD_BASS = 3.0  # logit bonus of the chord's bass pitch class for the lowest heard voice
CHORD_BASES_KEPT = 2048  # chord biases kept (a few kB each) before the cache starts over


def _closing(top: int, before: int, key: Key | None) -> bool:
    """A melody note that closes like a cadence: the tonic of the key or of its relative
    (a minor piece may close in its relative major and the other way round; the key heard so
    far often cannot tell the two apart), reached by step (from the second above or the
    leading note below) or repeated."""
    if key is None or before < 0 or abs(top - before) > 2:
        return False
    relative = (key[0] + (3 if key[1] == "minor" else 9)) % 12
    return top % 12 in (key[0], relative)


@dataclass(frozen=True)
class VoicePlan:
    """A model voice as this setup plays it."""

    name: str
    enabled: bool
    channel: int
    program: int
    low: int
    high: int
    velocity: int


class Accompanist:
    def __init__(self, runtime: Runtime, settings: Settings, seed: int | None = None):
        self.runtime = runtime
        self.n = runtime.n_voices
        self.rng = np.random.default_rng(seed)
        # humanize draws: Python's generator, far cheaper per number on the critical path
        self.feel = random.Random(seed)
        self.tokens = [REST] * self.n  # the tokens as played: REST for a muted voice
        self.context = [REST] * self.n  # the model's tokens, all voices: what it hears back
        self.sounding = [-1] * self.n  # pitch each voice sounds now (sent), -1 for none
        self.model_sounding = [-1] * self.n  # each voice's pitch as the model has it
        self.last_pitch = [-1] * self.n  # the model's pitches, for the leap limit
        self.lead_pitch = -1  # the takeover melody's sounding note
        # pitches (in the model's register) of the melody, then each voice, at the last step
        # where any heard part started a note: what parallel fifths and octaves are measured from
        self.prev = [-1] * (self.n + 1)
        self.shift = 0  # semitones (whole octaves) from the model's register to the played one
        self._recent: deque[int] = deque(maxlen=RECENT)  # the last melody onsets (top notes)
        self.waiting = True  # no melody yet since the start or the last release
        self._bar: int | None = None  # bar index from the melody's first downbeat (-1: pickup)
        self._struck = -1  # the melody's top note struck last, while it is held
        self._struck_kind = ""  # "cadence", "strong" (a phrase-end bar), "long" (another) or ""
        self._held_steps = 0  # steps it has been held after the step it was struck in
        self.onset_probability = 0.0
        self._lead_logits = runtime.lead_logits(0)
        self._key_weights = [0.0] * 12  # human pitch classes since the last key update
        # the bias that changes only with the settings, the register and the key (`_base`)
        self._bases: dict[tuple[int, Key | None, int], np.ndarray] = {}
        # the same with a left-hand chord, by (shift, key, melody pc, chord, on a beat): the
        # bias and the pitch classes a voice may sound (None: any) (`_chord_base`)
        self._chord_bases: dict[tuple, tuple[np.ndarray, frozenset[int] | None]] = {}
        self.chord: tuple[int, ...] = ()  # the chord of the last step advanced past
        self.tracker = KeyTracker(half_life_beats=16.0)
        self.key: Key | None = None
        # the step's uniform draws for sampling, drawn at its first proposal: every proposal
        # of a step (speculative or not) samples with the same draws, so what plays does not
        # depend on how many frames were tried before the real one was known
        self._uniforms: list[float] | None = None
        # proposals computed for this step, by frame; stale whenever what they depend on
        # changes (the model's state, what sounds, the settings, the key): `_stale` marks it,
        # and the next look (`_cache`) empties the dict, so a commit frees nothing before the
        # notes are sent
        self._proposals: dict[tuple[int, Frame], Proposal] = {}
        self._proposals_gen = runtime.generation
        self._stale = False
        self.configure(settings)

    # ------------------------------------------------------------------ setup

    def configure(self, settings: Settings) -> None:
        """Take new settings (a preset switch or a live control). Voices that a change mutes
        stop at the next step, not here. A change that no proposal depends on (tempo, swing,
        the follow window, input, takeover...) keeps the frames proposed ahead."""
        old = getattr(self, "settings", None)
        self.settings = settings
        if (old is not None and old.sampling == settings.sampling
                and old.voices == settings.voices
                and old.timing.beats_per_bar == settings.timing.beats_per_bar):
            return
        plans = []
        for i, info in enumerate(self.runtime.info.voices):
            vs = settings.voice(info.name)
            low = max(info.low, vs.low) if vs and vs.low is not None else info.low
            high = min(info.high, vs.high) if vs and vs.high is not None else info.high
            plans.append(VoicePlan(
                name=info.name, enabled=vs.enabled if vs else not settings.voices,
                channel=vs.channel if vs else 2 + i,
                program=vs.program if vs else DEFAULT_PROGRAMS.get(info.name, 0),
                low=low, high=max(low, high), velocity=vs.velocity if vs else 80))
        self.voices = plans
        self.audible = [v.enabled for v in plans]
        heard = [k for k, v in enumerate(plans) if v.enabled]
        self.lowest = heard[-1] if heard else self.n - 1  # voices are listed top to bottom
        lock = settings.sampling.key_lock
        self.key = None if lock in ("off", "auto") else parse_key(lock)
        if lock == "auto":
            self.key = likely_key(self.tracker.weights)
        self._bases.clear()
        self._chord_bases.clear()
        self._stale = True

    def _base(self, shift: int, key: Key | None, melody_pc: int) -> np.ndarray:
        """The bias that changes only with the settings, the register and the key: density on
        REST and HOLD, each voice's range (the model's pitches that play inside MIDI 0-127),
        the key lock, less the pitch classes that clash with the melody's when it is outside
        the key. Kept per (shift, key, melody pitch class outside the key)."""
        asked = (shift, key, melody_pc)
        known = self._bases.get(asked)
        if known is not None:
            return known
        if key is None or self.settings.sampling.key_lock == "off":
            key, melody_pc = None, -1
        elif melody_pc in scale_pitch_classes(*key):
            melody_pc = -1  # the same bias as no melody
        known = self._bases.get((shift, key, melody_pc))
        if known is not None:
            self._bases[asked] = known
            return known
        base = np.zeros((self.n, VOCAB), dtype=np.float32)
        density = -self.settings.sampling.density * DENSITY_SCALE
        base[:, REST] = density
        base[:, HOLD] = density
        for k, v in enumerate(self.voices):
            row = base[k, PITCH0:]
            row[:max(v.low, -shift, 0)] = NEG
            row[max(0, min(128, v.high + 1, 128 - shift)):] = NEG
        if key is not None:
            scale = scale_pitch_classes(*key)
            if melody_pc >= 0:
                scale = scale - {(melody_pc + d) % 12 for d in CLASH_STEPS}
            for pc in set(range(12)) - scale:
                base[:, PITCH0 + pc::12] = NEG
        self._bases[(shift, key, melody_pc)] = self._bases[asked] = base
        return base

    def _chord_base(self, shift: int, key: Key | None, melody_pc: int,
                    chord: tuple[int, ...], beat: bool) -> tuple[np.ndarray, frozenset[int] | None]:
        """The bias of `_base` with a left-hand chord instead of the key lock (module
        docstring), and the pitch classes a voice may sound at this step (None: any). Kept per
        (shift, key, melody pitch class, chord, on a beat)."""
        asked = (shift, key, melody_pc, chord, beat)
        known = self._chord_bases.get(asked)
        if known is not None:
            return known
        if len(chord) == 1:  # a bass note: the key's rules, and the lowest voice favours it
            base = self._base(shift, key, melody_pc)
            if beat:
                base = base.copy()
                low, at = self.lowest, slice(PITCH0 + chord[0], None, 12)
                base[low, at] = self._base(shift, None, -1)[low, at] + CHORD_BASS
            known = self._chord_bases[asked] = (base, None)
            return known
        clash: set[int] = set()
        if beat:
            key = None  # a beat has the chord alone
            if melody_pc >= 0:
                clash = {(melody_pc + d) % 12 for d in CLASH_INTERVALS} & set(chord)
                if len(set(chord) - clash) < 2:
                    clash = set()
            if not clash:
                melody_pc = -1  # the same bias as no melody
        else:
            if self.settings.sampling.key_lock == "off":
                key = None  # with no lock the steps between the beats are free
            if key is None or melody_pc in scale_pitch_classes(*key):
                melody_pc = -1  # the same bias as no melody
        known = self._chord_bases.get((shift, key, melody_pc, chord, beat))
        if known is not None:
            self._chord_bases[asked] = known
            return known
        allowed: frozenset[int] | None = frozenset(chord)
        if not beat:
            if key is None:
                allowed = None
            else:
                scale = scale_pitch_classes(*key)
                if melody_pc >= 0:
                    scale = scale - {(melody_pc + d) % 12 for d in CLASH_STEPS}
                allowed = allowed | scale
        base = self._base(shift, None, -1).copy()  # density and ranges, no key
        if allowed is not None:
            for pc in set(range(12)) - allowed:
                base[:, PITCH0 + pc::12] = NEG
        for pc in clash:  # chord tones that would start a clash with the melody
            base[:, PITCH0 + pc::12] = NEG
        if beat:
            base[self.lowest, PITCH0 + chord[0]::12] += CHORD_BASS
        known = (base, allowed)
        if len(self._chord_bases) >= CHORD_BASES_KEPT:  # a long session of many chords
            self._chord_bases.clear()
        self._chord_bases[(shift, key, melody_pc, chord, beat)] = self._chord_bases[asked] = known
        return known

    # ------------------------------------------------------------------ the critical path

    def emit(self, frame: Frame, pos: int) -> list[NoteChange]:
        return self.commit(self.propose(frame, pos))

    def propose(self, frame: Frame, pos: int) -> Proposal:
        """The voices' tokens for this frame, without changing what sounds: the live engine
        proposes ahead for the frames a boundary may bring, then commits the one that came.
        A frame proposed before in this step (and state) is looked up, not recomputed. The
        proposal's tokens are the model's, for every voice; its melody is the human part's top
        pitch as played."""
        cache = self._cache()
        key = (pos, frame)
        known = cache.get(key)
        if known is not None:
            return known
        onsets, held, chord = frame
        top = max(max(onsets, default=-1), max(held, default=-1))
        if top < 0 and self.waiting:  # no melody yet: the voices wait for it
            proposal = Proposal([REST] * self.n, -1, False)
            cache[key] = proposal
            return proposal
        rt = self.runtime
        shift = self._shift_for(top, bool(onsets))
        rt.set_human(self._folded(onsets, shift), self._folded(held, shift))
        bias = rt.bias
        melody = top - shift if top >= 0 else -1  # the melody in the model's register
        lock_key = self.key
        if lock_key is None and top >= 0 and self.settings.sampling.key_lock == "auto":
            lock_key = self._provisional_key(frame)
        allowed: frozenset[int] | None = None
        if chord:
            beat = pos % STEPS_PER_BEAT == 0
            base, allowed = self._chord_base(shift, lock_key, top % 12 if top >= 0 else -1,
                                             chord, beat)
            np.copyto(bias, base)
            if allowed is not None:
                for k, now in enumerate(self.model_sounding):
                    if now >= 0 and now % 12 not in allowed:
                        bias[k, HOLD] = NEG  # no holding a note outside the harmony
            low = self.model_sounding[self.lowest]
            if beat and low >= 0 and low % 12 == chord[0]:
                bias[self.lowest, HOLD] += CHORD_BASS
        else:
            np.copyto(bias, self._base(shift, lock_key, top % 12 if top >= 0 else -1))
        leap = self.settings.sampling.max_leap
        for k in range(self.n):
            if self.model_sounding[k] < 0:
                bias[k, HOLD] = NEG
            last = self.last_pitch[k]
            high = last + leap if last >= 0 else 127
            if melody >= 0 and self.audible[k]:  # no heard voice above the melody
                high = min(high, melody)
                if self.sounding[k] > top:
                    bias[k, HOLD] = NEG
            if last > leap:
                bias[k, PITCH0:PITCH0 + last - leap] = NEG
            if high < 127:
                bias[k, PITCH0 + max(high, -1) + 1:] = NEG
        if melody >= 0 and (self._struck >= 0 or self._phrase_end() or onsets):
            self._cadence(bias, frame, pos, top, melody, allowed, lock_key)
        s = self.settings.sampling
        if self._uniforms is None:
            self._uniforms = self.rng.random(self.n).tolist()
        tokens = rt.accompany(pos, s.temperature, s.top_p, self._uniforms, self.model_sounding,
                              s.allow_unison, s.avoid_parallels, self.prev, melody, self.audible,
                              pos % STEPS_PER_BEAT == 0)
        proposal = Proposal(tokens, top, bool(onsets))
        self._cache()[key] = proposal  # (after a jump, accompany prepared a new base)
        return proposal

    def _cadence(self, bias: np.ndarray, frame: Frame, pos: int, top: int, melody: int,
                 allowed: frozenset[int] | None = None, key: Key | None = None) -> None:
        """The cadence rules of the module's docstring, on the bias of this step; `allowed`:
        the pitch classes a left-hand chord lets a voice sound (None: any); `key`: the key the
        voices keep to now."""
        onsets, held = frame.onsets, frame.held
        if top in onsets:
            before = self._recent[-1] if self._recent else -1
            if self._strong(pos) and _closing(top, before, key):
                self._favour_melody(bias, self.lowest, melody, CLOSING_BASS)
            elif self._phrase_end() and self._cadence_beat(pos):
                self._favour_melody(bias, self.lowest, melody, CADENCE_BASS)
            return
        if onsets or top != self._struck or top not in held:
            return
        kind = self._struck_kind
        held_beats = (self._held_steps + 1) / STEPS_PER_BEAT  # beats since it was struck
        if not (kind == "cadence" or (kind == "strong" and held_beats >= 1)
                or (kind == "long" and held_beats >= LONG_BEATS)):
            return
        low = self.lowest
        now = self.model_sounding[low]
        move = now < 0 or now % 12 != melody % 12
        target = bias[low, PITCH0 + melody % 12::12].copy()  # as the other rules leave them
        for k in range(self.n):  # the voices hold; a silent one stays silent
            sounds = self.model_sounding[k]
            if allowed is not None and sounds >= 0 and sounds % 12 not in allowed:
                continue  # the left hand changed the chord under the note: this voice moves
            bias[k, PITCH0:] = NEG
            if sounds >= 0:
                bias[k, REST] = NEG
            else:
                bias[k, HOLD] = NEG
        if move and kind != "long":
            # at a phrase end the lowest heard voice may still move to the melody's pitch class
            bias[low, PITCH0 + melody % 12::12] = target + CADENCE_BASS

    def _favour_melody(self, bias: np.ndarray, k: int, melody: int, bonus: float) -> None:
        """Voice k favours the melody's pitch class (its pitches there, or holding it)."""
        bias[k, PITCH0 + melody % 12::12] += bonus
        now = self.model_sounding[k]
        if now >= 0 and now % 12 == melody % 12:
            bias[k, HOLD] += bonus

    def _strong(self, pos: int) -> bool:
        beat, sub = divmod(pos, STEPS_PER_BEAT)
        return sub == 0 and (beat == 0 or beat == self._cadence_beat_index())

    def _cadence_beat(self, pos: int) -> bool:
        beat, sub = divmod(pos, STEPS_PER_BEAT)
        return sub == 0 and beat == self._cadence_beat_index()

    def _cadence_beat_index(self) -> int:
        """The last strong beat of a bar: the middle of an even bar of 4 beats or more (beat 3
        of 4/4), else the downbeat."""
        bpb = self.settings.timing.beats_per_bar
        return bpb // 2 if bpb >= 4 and bpb % 2 == 0 else 0

    def _phrase_end(self) -> bool:
        """Whether this bar ends a 2- or 4-bar phrase: the second of each pair of bars counted
        from the melody's first downbeat."""
        return self._bar is not None and self._bar % 2 == 1

    def known(self, frame: Frame, pos: int) -> bool:
        """Whether this frame's proposal is ready (a commit would not have to compute)."""
        return (pos, frame) in self._cache()

    def _cache(self) -> dict[tuple[int, Frame], Proposal]:
        """This step's proposals, emptied first if they went stale."""
        if self._stale or self._proposals_gen != self.runtime.generation:
            self._proposals.clear()
            self._proposals_gen = self.runtime.generation
            self._stale = False
        return self._proposals

    # ------------------------------------------------------------------ register and key

    def _shift_for(self, top: int, onset: bool) -> int:
        """The register shift for a frame whose top note is `top` (see the module docstring)."""
        shift = self.shift
        if top < 0 or not onset:
            return shift
        lo, hi = self.runtime.info.human_range
        if lo <= top - shift <= hi:
            return shift
        recent = self._recent

        def fits(s: int) -> int:
            return sum(1 for p in recent if lo <= p - s <= hi)

        best, best_fit = shift, fits(shift)
        first, last = math.ceil((top - hi) / 12), math.floor((top - lo) / 12)
        for s in sorted((12 * m for m in range(first, last + 1)), key=lambda s: abs(s - shift)):
            fit = fits(s) + 1
            if fit > best_fit:
                best, best_fit = s, fit
        return best

    def _folded(self, pitches: tuple[int, ...], shift: int) -> list[int]:
        lo, hi = self.runtime.info.human_range
        return [p - shift if lo <= p - shift <= hi else self._fold(p, shift) for p in pitches]

    def _fold(self, pitch: int, shift: int) -> int:
        """A human pitch in the model's register: moved by the shift, then by octaves into the
        human range when it still falls outside (a lone note of a wide tune)."""
        lo, hi = self.runtime.info.human_range
        p = pitch - shift
        if p > hi:
            p -= 12 * math.ceil((p - hi) / 12)
        elif p < lo:
            p += 12 * math.ceil((lo - p) / 12)
        return min(127, max(0, p))

    def _provisional_key(self, frame: Frame) -> Key | None:
        """The key before the tracker has one: from what has been played and this frame."""
        weights = [a + b for a, b in zip(self.tracker.weights, self._key_weights, strict=True)]
        for p in (*frame.onsets, *frame.held, *frame.chord):
            weights[p % 12] += 1.0
        return likely_key(weights)

    def likely_frames(self, around: int, held: tuple[int, ...],
                      chord: tuple[int, ...] | None = None) -> list[Frame]:
        """The frames (onsets, held, chord) a coming boundary is likely to bring, most likely
        first: one new note (`likely_onsets` around the last human note `around`), with the
        notes held now kept, or all released (a melody played legato or detached). `chord`:
        the left-hand chord held now; None takes the chord of the last step advanced past (a
        chord is usually still held at the next step). With a chord, the frame with no new
        note and that chord comes first."""
        if chord is None:
            chord = self.chord
        frames: list[Frame] = [Frame((), held, chord)] if chord else []
        for p in self.likely_onsets(around):
            kept = tuple(h for h in held if h != p)
            frames.append(Frame((p,), kept, chord))
            if kept:
                frames.append(Frame((p,), (), chord))
        return frames

    def likely_onsets(self, around: int, span: int = 12, top: int = 12) -> list[int]:
        """Pitches the human part may start next, most likely first by the model's `lead`:
        its `top` favourites and every pitch within `span` semitones of `around` (the last
        human note; none: -1), inside the human range the model knows, as played (moved by
        the register shift)."""
        lo, hi = self.runtime.info.human_range
        shift = self.shift
        logits = self._lead_logits[PITCH0 + lo:PITCH0 + hi + 1]
        ranked = [lo + int(i) + shift for i in np.argsort(-logits, kind="stable")]
        near = set(range(around - span, around + span + 1)) if around >= 0 else set()
        favourites = set(ranked[:top])
        return [p for p in ranked if (p in near or p in favourites) and 0 <= p <= 127]

    # ------------------------------------------------------------------ playing a proposal

    def commit(self, proposal: Proposal) -> list[NoteChange]:
        """Play a proposal: the note changes (offs before ons) it makes."""
        tokens, top, human_onset = proposal
        self._stale = True  # what sounds changes: every proposal is stale
        if top >= 0:
            self.waiting = False
            self.shift = self._shift_for(top, human_onset)
        shift = self.shift
        played = []
        for k, tok in enumerate(tokens):
            if tok != HOLD:
                self.model_sounding[k] = tok - PITCH0 if tok >= PITCH0 else -1
            if tok >= PITCH0:
                self.last_pitch[k] = tok - PITCH0
            if not self.voices[k].enabled:
                played.append(REST)
            elif tok >= PITCH0:
                played.append(tok + shift)
            else:
                played.append(tok)
        self.context = list(tokens)
        changes = self._changes(played)
        if human_onset or any(c.velocity for c in changes):
            self.prev = [top - shift if top >= 0 else -1, *self.model_sounding]
        return changes

    def _changes(self, tokens: list[int]) -> list[NoteChange]:
        offs: list[NoteChange] = []
        ons: list[NoteChange] = []
        hv = self.settings.timing.humanize_velocity
        for k, tok in enumerate(tokens):
            now = self.sounding[k]
            if tok == HOLD and now >= 0:
                continue
            if now >= 0:
                offs.append(NoteChange(k, now, 0))
                self.sounding[k] = -1
            if tok >= PITCH0:
                pitch = tok - PITCH0
                vel = self.voices[k].velocity
                if hv:
                    vel = min(127, max(1, vel + self.feel.randint(-hv, hv)))
                ons.append(NoteChange(k, pitch, vel))
                self.sounding[k] = pitch
            else:
                tok = REST
            tokens[k] = tok
        self.tokens = tokens
        return offs + ons

    # ------------------------------------------------------------------ after the notes are out

    def advance(self, frame: Frame, pos: int, next_pos: int) -> None:
        """Move the model past this step with its final frame, and prepare the next step."""
        rt = self.runtime
        onsets, held, chord = frame
        self.chord = chord
        shift = self.shift
        rt.set_human(self._folded(onsets, shift), self._folded(held, shift))
        logits = rt.advance(self.context, pos, next_pos)
        self._uniforms = None
        self._lead_logits = logits
        probs = np.exp(logits - logits.max())
        self.onset_probability = float(probs[PITCH0:].sum() / probs.sum())
        self._follow_melody(frame, pos, next_pos)
        if self.settings.sampling.key_lock == "auto":
            self._track_key(onsets, held, pos, chord)

    def _follow_melody(self, frame: Frame, pos: int, next_pos: int) -> None:
        """The melody's register, bars and held note, from the step's final frame."""
        onsets, held = frame.onsets, frame.held
        top = max(max(onsets, default=-1), max(held, default=-1))
        if onsets:
            self._recent.append(max(onsets))
        if self._bar is None and top >= 0:
            self._bar = 0 if pos == 0 else -1
        if top >= 0 and top in onsets:
            self._struck, self._held_steps = top, 0
            self._struck_kind = ""
            if self._strong(pos):
                before = self._recent[-2] if len(self._recent) > 1 else -1
                closing = _closing(top, before, self.key)
                self._struck_kind = ("cadence" if closing or (self._phrase_end()
                                                              and self._cadence_beat(pos))
                                     else "strong" if self._phrase_end() else "long")
        elif top >= 0 and top == self._struck and not onsets:
            self._held_steps += 1
        else:
            self._struck = -1
        if next_pos == 0 and self._bar is not None:
            self._bar += 1

    def _track_key(self, onsets, held, pos: int, chord: tuple[int, ...] = ()) -> None:
        """Collect the human part's pitch classes (the left-hand chord's too); the first key as
        soon as there is one, then an update once a beat."""
        weights = self._key_weights
        for p in (*onsets, *held, *chord):
            weights[p % 12] += 1.0
        key = self.key
        if pos % STEPS_PER_BEAT == STEPS_PER_BEAT - 1:
            self.tracker.add_durations(weights, STEPS_PER_BEAT)
            self._key_weights = [0.0] * 12
            key = likely_key(self.tracker.weights)
        elif key is None and any(weights):
            key = self._provisional_key(Frame())
        if key != self.key:
            self.key = key
            self._stale = True

    # ------------------------------------------------------------------ takeover and release

    def lead_step(self) -> tuple[Frame, list[NoteChange]]:
        """Takeover: sample the human's top-note token from `lead` (in key and in the human
        range, moved to the register the player used), play it, and give the frame to feed back
        as the human part."""
        logits = self._lead_logits.astype(np.float64) / max(self.settings.sampling.temperature,
                                                           1e-3)
        lo, hi = self.runtime.info.human_range
        shift = self.shift
        mask = np.full(VOCAB, NEG)
        mask[REST] = 0.0
        if self.lead_pitch >= 0:
            mask[HOLD] = 0.0
        pcs = scale_pitch_classes(*self.key) if self.key else frozenset(range(12))
        for p in range(max(lo, -shift), min(hi, 127 - shift) + 1):
            if p % 12 in pcs:
                mask[PITCH0 + p] = 0.0
        probs = np.exp(logits + mask - np.max(logits + mask))
        token = int(self.rng.choice(VOCAB, p=probs / probs.sum()))
        changes: list[NoteChange] = []
        if token == HOLD:
            return Frame((), (self.lead_pitch,)), changes
        if self.lead_pitch >= 0:
            changes.append(NoteChange(LEAD, self.lead_pitch, 0))
            self.lead_pitch = -1
        if token == REST:
            return Frame(), changes
        self.lead_pitch = token - PITCH0 + shift
        changes.append(NoteChange(LEAD, self.lead_pitch, self.settings.takeover.velocity))
        return Frame((self.lead_pitch,), ()), changes

    def stop_lead(self) -> list[NoteChange]:
        """Hand the melody back: the takeover note's note-off, if one sounds."""
        if self.lead_pitch < 0:
            return []
        change = NoteChange(LEAD, self.lead_pitch, 0)
        self.lead_pitch = -1
        return [change]

    def release(self, lead: bool = True) -> list[NoteChange]:
        """Note-offs for every voice that sounds (and the takeover note); voices then rest
        until the melody sounds again."""
        changes = [NoteChange(k, p, 0) for k, p in enumerate(self.sounding) if p >= 0]
        if lead and self.lead_pitch >= 0:
            changes.append(NoteChange(LEAD, self.lead_pitch, 0))
            self.lead_pitch = -1
        self.sounding = [-1] * self.n
        self.model_sounding = [-1] * self.n
        self.tokens = [REST] * self.n
        self.context = [REST] * self.n
        self.prev = [-1] * (self.n + 1)
        self.waiting = True
        self._bar = None
        self._struck = -1
        self.chord = ()
        self._stale = True
        return changes

    def timing_offset(self, step: int, step_seconds: float) -> float:
        """Seconds after the step boundary a machine note of this step should sound: swing on
        odd 16ths, plus humanize. Humanize only delays: a live engine cannot play early."""
        t = self.settings.timing
        delay = t.swing * step_seconds if step % 2 else 0.0
        if t.humanize_ms:
            delay += self.feel.random() * t.humanize_ms / 1000.0
        return delay
