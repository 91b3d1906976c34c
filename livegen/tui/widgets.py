"""The panel's widgets: status lines, piano roll, control list, message log."""

from __future__ import annotations

import math
from typing import Any

from rich.markup import escape
from rich.text import Text
from textual.widget import Widget
from textual.widgets import Static

from livegen.controls import CONTROLS, VOICE_PREFIX, format_value, label
from livegen.frames import HUMAN, LEAD
from livegen.settings import Settings
from livegen.status import RollEvent, Status
from livegen.tonality import note_label
from livegen.tui.keymap import VOICE_COLOURS

CONTROL_NAMES = tuple(c.name for c in CONTROLS)


class StatusLines(Static):
    """Transport, clock, tempo, position, key, preset; ports; latency and drops."""

    def show(self, status: Status | None, port_names: dict[str, str], learning: str | None,
             starting: str | None) -> None:
        if status is None:
            self.update(Text(starting or "starting the engine…", style="bold"))
            return
        s = status
        t = Text(no_wrap=True, overflow="ellipsis")
        if s.armed:
            t.append(" ◌ WAITING ", style="bold black on cyan")
        else:
            t.append(" ▶ PLAY " if s.running else " ■ STOP ",
                     style="bold black on green" if s.running else "bold black on yellow")
        bpm = f"{s.bpm:.1f}" if s.bpm else "--"
        t.append(f" {s.clock} clock  ")
        t.append(f"{bpm} BPM", style="bold")
        t.append("  bar ")
        t.append(f"{s.bar}:{s.beat}", style="bold")
        t.append("  key ")
        t.append(s.key or "?", style="bold")
        t.append("  preset ")
        t.append(s.preset, style="bold")
        t.append("\n")
        for side in ("in", "out"):
            state = s.ports.get(side, "?")
            t.append(f"{side} {port_names.get(side, side)} ")
            t.append(state, style="green" if state == "open" else "bold red")
            t.append("  ")
        if s.recording:
            t.append(" ● REC ", style="bold white on red")
            t.append(" ")
        if s.takeover:
            t.append(" TAKEOVER ", style="bold black on magenta")
            t.append(" ")
        if learning:
            t.append(f" LEARN {learning}: move a knob ", style="bold black on cyan")
        t.append("\n")
        p50, p99 = s.latency_p50_ms, s.latency_p99_ms
        t.append("latency p50 ")
        t.append(f"{p50:.1f}" if p50 is not None else "--", style="bold")
        t.append(" p99 ")
        t.append(f"{p99:.1f}" if p99 is not None else "--", style="bold")
        d = s.drops
        t.append(f" ms  drops queue {d.queue} bad {d.malformed} sysex {d.sysex} "
                 f"sense {d.sensing} echo {d.echo} late {d.skipped_steps} "
                 f"ticks {d.missed_ticks}",
                 style="yellow" if d.total() or d.missed_ticks else "")
        self.update(t)


PLAN_LANE = 2  # columns right of the play head: a rule, then the next step's plan


class PianoRoll(Widget):
    """The last steps, newest on the right: the human part (●), the takeover lead (◆) and each
    voice (its initial, then ─ while held), in their colours; then, dimmed beyond a rule, the
    plan for the next step: the voices proposed and the melody note the model expects (○)."""

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.cells: dict[int, dict[int, tuple[int, bool]]] = {}  # step → pitch → (part, onset)
        self.step = 0
        self.bar_steps = 16
        self.glyphs: dict[int, tuple[str, str]] = {HUMAN: ("●", "bold white"),
                                                   LEAD: ("◆", "bold magenta")}
        self.names: dict[int, str] = {HUMAN: "you", LEAD: "lead"}
        self.coming: dict[int, int] = {}  # the plan lane: pitch -> part, for the next step

    def set_voices(self, names: list[str]) -> None:
        used: set[str] = {"●", "◆"}
        for i, name in enumerate(names):
            self.names[i] = name
            letter = (name[:1] or str(i)).lower()
            if letter in used:
                letter = str(i + 1)
            used.add(letter)
            self.glyphs[i] = (letter, VOICE_COLOURS[i % len(VOICE_COLOURS)])

    def legend(self) -> str:
        return "  ".join(f"[{style}]{escape(glyph)}[/] {escape(self.names[part])}"
                        for part, (glyph, style) in sorted(self.glyphs.items()))

    @staticmethod
    def _rank(part: int) -> int:
        return -10 if part == HUMAN else -5 if part == LEAD else part

    def _put(self, step: int, pitch: int, part: int, onset: bool) -> None:
        column = self.cells.setdefault(step, {})
        old = column.get(pitch)
        if old is None or self._rank(part) < self._rank(old[0]) or (old[0] == part and onset):
            column[pitch] = (part, onset or (old is not None and old[0] == part and old[1]))

    def add(self, status: Status, recent: list[RollEvent]) -> None:
        self.step = status.step
        settings = status.settings
        self.bar_steps = settings.timing.beats_per_bar * 4
        for event in recent:
            self._put(event.step, event.pitch, event.voice, True)
        parts: dict[int, int] = {}
        for i, voice in enumerate(status.voices):
            if voice.enabled:
                parts.setdefault(voice.channel, i)
        parts.setdefault(settings.takeover.channel, LEAD)
        for channel, pitch in status.sounding:
            part = parts.get(channel)
            if part is not None:
                self._put(self.step, int(pitch), part, False)
        self.coming = {pitch: voice for voice, pitch in status.plan}
        if status.expected is not None:
            self.coming[status.expected] = HUMAN
        for old in [s for s in self.cells if s < self.step - 400]:
            del self.cells[old]
        self.refresh()

    def render(self) -> Text:
        width, height = self.size.width, self.size.height
        label_w = 4
        cols = max(1, width - label_w - PLAN_LANE)
        first = self.step - cols + 1
        pitches = [p for s in range(first, self.step + 1) for p in self.cells.get(s, {})]
        pitches += list(self.coming)
        lo, hi = (min(pitches) - 1, max(pitches) + 1) if pitches else (55, 79)
        rows = max(1, height)
        span = hi - lo + 1
        per_row = max(1, math.ceil(span / rows))
        top = lo - (per_row * rows - span) // 2 + per_row * rows - 1
        out = Text(no_wrap=True, overflow="crop")
        for r in range(rows):
            band_hi = top - r * per_row
            band_lo = band_hi - per_row + 1
            c_pitch = next((p for p in range(band_lo, band_hi + 1) if p % 12 == 0), None)
            label = note_label(c_pitch) if c_pitch is not None and 0 <= c_pitch <= 127 else ""
            out.append(f"{label:<3}│", style="dim")
            for s in range(first, self.step + 1):
                column = self.cells.get(s)
                best: tuple[int, bool] | None = None
                if column:
                    for p in range(band_lo, band_hi + 1):
                        cell = column.get(p)
                        if cell is not None and (best is None or self._rank(cell[0])
                                                 < self._rank(best[0]) or
                                                 (cell[0] == best[0] and cell[1])):
                            best = cell
                if best is not None:
                    glyph, style = self.glyphs.get(best[0], ("?", "white"))
                    out.append(glyph if best[1] else "─", style=style)
                elif s % self.bar_steps == 0:
                    out.append("┊", style="dim")
                elif s % 4 == 0:
                    out.append("·", style="dim")
                else:
                    out.append(" ")
            self._plan_cell(out, band_lo, band_hi)
            if r < rows - 1:
                out.append("\n")
        return out


    def _plan_cell(self, out: Text, band_lo: int, band_hi: int) -> None:
        """The plan lane, right of the play head: what the voices will play at the next step
        and the note the model expects from the player (○), dimmed."""
        part = min((self.coming[p] for p in range(band_lo, band_hi + 1) if p in self.coming),
                   key=self._rank, default=None)
        out.append("│", style="dim")
        if part is None:
            out.append(" ")
        elif part == HUMAN:
            out.append("○", style="dim bold white")
        else:
            glyph, style = self.glyphs.get(part, ("?", "white"))
            out.append(glyph, style=f"dim {style}")


class ControlPanel(Widget):
    """The live controls with their values and learned CCs; one is selected."""

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.controls: list[str] = list(CONTROL_NAMES)
        self.selected = 0
        self.settings: Settings | None = None
        self.learn: dict[int, str] = {}
        self.learning: str | None = None

    def set_state(self, settings: Settings | None, voices: list[str], learn: dict[int, str],
                  learning: str | None) -> None:
        self.controls = list(CONTROL_NAMES) + [VOICE_PREFIX + v for v in voices]
        self.selected = min(self.selected, len(self.controls) - 1)
        self.settings, self.learn, self.learning = settings, learn, learning
        self.refresh()

    @property
    def control(self) -> str:
        return self.controls[self.selected]

    def render(self) -> Text:
        out = Text(no_wrap=True, overflow="crop")
        ccs = {control: cc for cc, control in self.learn.items()}
        for i, control in enumerate(self.controls):
            name = label(control)
            if control.startswith(VOICE_PREFIX):
                name = f"{i - len(CONTROL_NAMES) + 1} {name}"
            value = format_value(self.settings, control) if self.settings else "--"
            cc = "learn…" if control == self.learning else (f"cc{ccs[control]}"
                                                          if control in ccs else "")
            line = f"{'▸' if i == self.selected else ' '}{name:<13.13}{value:>9.9} {cc:<6}"
            style = "reverse bold" if i == self.selected else ""
            if control == self.learning:
                style += " cyan"
            out.append(line, style=style.strip())
            if i < len(self.controls) - 1:
                out.append("\n")
        return out


class MessageLog(Widget):
    """The newest messages (engine and TUI), wrapped, newest at the bottom."""

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.entries: list[tuple[str, str]] = []

    def add(self, text: str, style: str = "") -> None:
        self.entries.append((text, style))
        del self.entries[:-50]
        self.refresh()

    def render(self) -> Text:
        width, height = max(1, self.size.width), max(1, self.size.height)
        lines: list[Text] = []
        for text, style in self.entries[-height:]:
            lines.extend(Text(text, style=style).wrap(self.app.console, width))
        out = Text(no_wrap=True, overflow="crop")
        for i, line in enumerate(lines[-height:]):
            if i:
                out.append("\n")
            out.append_text(line)
        return out
