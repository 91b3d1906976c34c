"""The step logic shared by the live engine and the offline render (docs/ARCHITECTURE.md, "The
hot path").

Per step the caller gives the human frame (onsets and held pitches) and the position in the bar:

    changes = acc.emit(onsets, held, pos)      # critical path: accompany + sampling -> notes
    ... send the changes ...
    acc.advance(onsets, held, pos, next_pos)   # after sending: recurrent update, lead, key

`emit` turns each voice's token into note changes (note-offs before note-ons). The constraints
are an additive bias on the logits: key lock (a hard pitch mask), each voice's range, the
largest leap, no HOLD for a silent voice, REST only for a muted voice, and a density bias on
REST/HOLD; in the sampler, no unison doubling and no parallel fifths or octaves (see
livegen.model.heads). `advance` also prepares `onset_probability` for the next step (the follow
window) and the lead logits that takeover samples from.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np

from livegen.frames import LEAD, Frame, NoteChange, Proposal
from livegen.model.runtime import Runtime
from livegen.model.tokens import HOLD, PITCH0, REST, STEPS_PER_BEAT, VOCAB
from livegen.settings import DEFAULT_PROGRAMS, Settings
from livegen.tonality import KeyTracker, parse_key, scale_pitch_classes

NEG = float("-inf")
DENSITY_SCALE = 2.0  # logit shift on REST and HOLD at density -1 / +1


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
        self.tokens = [REST] * self.n
        self.sounding = [-1] * self.n  # pitch each voice sounds now, -1 for none
        self.last_pitch = [-1] * self.n  # for the leap limit; survives rests
        self.lead_pitch = -1  # the takeover melody's sounding note
        # pitches of the melody, then each voice, at the last step where any part started a
        # note: what parallel fifths and octaves are measured from
        self.prev = [-1] * (self.n + 1)
        self.onset_probability = 0.0
        self._lead_logits = runtime.lead_logits(0)
        self._key_weights = [0.0] * 12  # human pitch classes since the last key update
        self._base = np.zeros((self.n, VOCAB), dtype=np.float32)
        self.tracker = KeyTracker(half_life_beats=16.0)
        self.key: tuple[int, str] | None = None
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
        stop at the next step through the bias, not here."""
        self.settings = settings
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
        lock = settings.sampling.key_lock
        self.key = None if lock in ("off", "auto") else parse_key(lock)
        if lock == "auto":
            self.key = self.tracker.key()
        self._rebuild_base()

    def _rebuild_base(self) -> None:
        self._stale = True
        base = self._base
        base.fill(0.0)
        density = -self.settings.sampling.density * DENSITY_SCALE
        base[:, REST] = density
        base[:, HOLD] = density
        in_key = np.ones(128, dtype=bool)
        if self.key is not None and self.settings.sampling.key_lock != "off":
            in_key[:] = False
            for pc in scale_pitch_classes(*self.key):
                in_key[pc::12] = True
        for k, v in enumerate(self.voices):
            row = base[k, PITCH0:]
            row[~in_key] = NEG
            row[:v.low] = NEG
            row[v.high + 1:] = NEG
            if not v.enabled:
                base[k, HOLD:] = NEG

    # ------------------------------------------------------------------ the critical path

    def emit(self, frame: Frame, pos: int) -> list[NoteChange]:
        return self.commit(self.propose(frame, pos))

    def propose(self, frame: Frame, pos: int) -> Proposal:
        """The voices' tokens for this frame, without changing what sounds: the live engine
        proposes ahead for the frames a boundary may bring, then commits the one that came.
        A frame proposed before in this step (and state) is looked up, not recomputed."""
        rt = self.runtime
        key = (pos, frame)
        known = self._cache().get(key)
        if known is not None:
            return known
        onsets, held = frame
        rt.set_human(onsets, held)
        bias = rt.bias
        np.copyto(bias, self._base)
        leap = self.settings.sampling.max_leap
        for k in range(self.n):
            if self.sounding[k] < 0:
                bias[k, HOLD] = NEG
            last = self.last_pitch[k]
            if last >= 0:
                bias[k, PITCH0:PITCH0 + max(0, last - leap)] = NEG
                bias[k, PITCH0 + last + leap + 1:] = NEG
        s = self.settings.sampling
        melody = max(max(onsets, default=-1), max(held, default=-1))
        if self._uniforms is None:
            self._uniforms = self.rng.random(self.n).tolist()
        tokens = rt.accompany(pos, s.temperature, s.top_p, self._uniforms, self.sounding,
                              s.allow_unison, s.avoid_parallels, self.prev, melody)
        proposal = Proposal(tokens, melody, bool(onsets))
        self._cache()[key] = proposal  # (after a jump, accompany prepared a new base)
        return proposal

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

    def likely_frames(self, around: int, held: tuple[int, ...]) -> list[Frame]:
        """The frames (onsets, held) a coming boundary is likely to bring, most likely first:
        one new note (`likely_onsets` around the last human note `around`), with the notes
        held now kept, or all released (a melody played legato or detached)."""
        frames: list[Frame] = []
        for p in self.likely_onsets(around):
            kept = tuple(h for h in held if h != p)
            frames.append(Frame((p,), kept))
            if kept:
                frames.append(Frame((p,), ()))
        return frames

    def likely_onsets(self, around: int, span: int = 12, top: int = 12) -> list[int]:
        """Pitches the human part may start next, most likely first by the model's `lead`:
        its `top` favourites and every pitch within `span` semitones of `around` (the last
        human note; none: -1), inside the human range the model knows."""
        lo, hi = self.runtime.info.human_range
        logits = self._lead_logits[PITCH0 + lo:PITCH0 + hi + 1]
        ranked = [lo + int(i) for i in np.argsort(-logits, kind="stable")]
        near = set(range(around - span, around + span + 1)) if around >= 0 else set()
        favourites = set(ranked[:top])
        return [p for p in ranked if p in near or p in favourites]

    def commit(self, proposal: Proposal) -> list[NoteChange]:
        """Play a proposal: the note changes (offs before ons) it makes."""
        tokens, melody, human_onset = proposal
        self._stale = True  # what sounds changes: every proposal is stale
        changes = self._changes(list(tokens))
        if human_onset or any(c.velocity for c in changes):
            self.prev = [melody, *self.sounding]
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
                self.sounding[k] = self.last_pitch[k] = pitch
            else:
                tok = REST
            tokens[k] = tok
        self.tokens = tokens
        return offs + ons

    # ------------------------------------------------------------------ after the notes are out

    def advance(self, frame: Frame, pos: int, next_pos: int) -> None:
        """Move the model past this step with its final frame, and prepare the next step."""
        rt = self.runtime
        onsets, held = frame
        rt.set_human(onsets, held)
        logits = rt.advance(self.tokens, pos, next_pos)
        self._uniforms = None
        self._lead_logits = logits
        probs = np.exp(logits - logits.max())
        self.onset_probability = float(probs[PITCH0:].sum() / probs.sum())
        if self.settings.sampling.key_lock == "auto":
            self._track_key(onsets, held, pos)

    def _track_key(self, onsets, held, pos: int) -> None:
        """Collect the human part's pitch classes; update the key once a beat."""
        weights = self._key_weights
        for p in (*onsets, *held):
            weights[p % 12] += 1.0
        if pos % STEPS_PER_BEAT != STEPS_PER_BEAT - 1:
            return
        self.tracker.add_durations(weights, STEPS_PER_BEAT)
        self._key_weights = [0.0] * 12
        key = self.tracker.key()
        if key != self.key:
            self.key = key
            self._rebuild_base()

    # ------------------------------------------------------------------ takeover and release

    def lead_step(self) -> tuple[Frame, list[NoteChange]]:
        """Takeover: sample the human's top-note token from `lead` (in key and in the human
        range), play it, and give the frame to feed back as the human part."""
        logits = self._lead_logits.astype(np.float64) / max(self.settings.sampling.temperature,
                                                           1e-3)
        lo, hi = self.runtime.info.human_range
        mask = np.full(VOCAB, NEG)
        mask[REST] = 0.0
        if self.lead_pitch >= 0:
            mask[HOLD] = 0.0
        pcs = scale_pitch_classes(*self.key) if self.key else frozenset(range(12))
        for p in range(lo, hi + 1):
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
        self.lead_pitch = token - PITCH0
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
        """Note-offs for every voice that sounds (and the takeover note); voices then rest."""
        changes = [NoteChange(k, p, 0) for k, p in enumerate(self.sounding) if p >= 0]
        if lead and self.lead_pitch >= 0:
            changes.append(NoteChange(LEAD, self.lead_pitch, 0))
            self.lead_pitch = -1
        self.sounding = [-1] * self.n
        self.tokens = [REST] * self.n
        self.prev = [-1] * (self.n + 1)
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
