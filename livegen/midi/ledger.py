"""Note safety: the single record of every note the engine has sounding (docs/ARCHITECTURE.md,
"The hot path").

Every note-on and note-off the engine sends goes through ``NoteLedger``, which returns the raw
messages to send (lists of byte values, one ``send_message`` call each). Because the ledger
knows every sounding (channel, pitch), it can always silence them: ``release`` for one owner or
all, ``panic`` for stop, mute, preset or model change, port loss, errors, signals and exit.

Owners are whatever the engine uses to tell its parts apart (a voice index, "lead", ...).
MIDI cannot sound one pitch twice on a channel, so when two owners play the same
(channel, pitch) — unison doubling on a shared channel — the note is struck again (off, then
on) and keeps sounding until its last owner lets go; one voice moving away never cuts another's
note.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable

Owner = Hashable
Message = list[int]

RELEASE_VELOCITY = 64  # MIDI's default note-off velocity

CC_SUSTAIN = 64
CC_ALL_SOUND_OFF = 120
CC_ALL_NOTES_OFF = 123


def _check(channel: int, pitch: int) -> None:
    if not 1 <= channel <= 16:
        raise ValueError(f"MIDI channel must be 1..16, not {channel}")
    if not 0 <= pitch <= 127:
        raise ValueError(f"MIDI pitch must be 0..127, not {pitch}")


def note_on_message(channel: int, pitch: int, velocity: int) -> Message:
    return [0x90 | (channel - 1), pitch, velocity]


def note_off_message(channel: int, pitch: int) -> Message:
    return [0x80 | (channel - 1), pitch, RELEASE_VELOCITY]


def cc_message(channel: int, cc: int, value: int) -> Message:
    return [0xB0 | (channel - 1), cc, value]


class NoteLedger:
    def __init__(self) -> None:
        # (channel, pitch) -> owners holding it, oldest first (insertion order = strike order)
        self._notes: dict[tuple[int, int], list[Owner]] = {}
        self._channels: set[int] = set()

    def note_on(self, channel: int, pitch: int, velocity: int, owner: Owner) -> list[Message]:
        """Start a note. If the (channel, pitch) already sounds it is ended first, so notes
        never stack. Velocity is clamped to 1..127 (0 would be a note-off)."""
        _check(channel, pitch)
        velocity = 1 if velocity < 1 else 127 if velocity > 127 else int(velocity)
        self._channels.add(channel)
        k = (channel, pitch)
        owners = self._notes.get(k)
        if owners is None:
            self._notes[k] = [owner]
            return [note_on_message(channel, pitch, velocity)]
        if owner in owners:
            owners.remove(owner)
        owners.append(owner)
        return [note_off_message(channel, pitch), note_on_message(channel, pitch, velocity)]

    def note_off(self, channel: int, pitch: int, owner: Owner | None = None) -> list[Message]:
        """End a note: with ``owner``, only that owner's hold on it (the note-off is sent when
        no other owner still holds the pitch); without, unconditionally. Nothing is sent for a
        note that is not sounding."""
        k = (channel, pitch)
        owners = self._notes.get(k)
        if owners is None:
            return []
        if owner is not None:
            if owner not in owners:
                return []
            owners.remove(owner)
            if owners:
                return []
        del self._notes[k]
        return [note_off_message(channel, pitch)]

    def release(self, owner: Owner | None = None) -> list[Message]:
        """Note-offs for every sounding note (``owner`` None) or for one owner's notes."""
        out: list[Message] = []
        if owner is None:
            for channel, pitch in self._notes:
                out.append(note_off_message(channel, pitch))
            self._notes.clear()
            return out
        for k in [k for k, owners in self._notes.items() if owner in owners]:
            out.extend(self.note_off(k[0], k[1], owner))
        return out

    def panic(self, channels: Iterable[int] = ()) -> list[Message]:
        """Silence everything: a note-off for each sounding note, then on every channel used
        since the start (and any in ``channels``), in channel order: sustain off (CC 64 = 0),
        All Notes Off (CC 123), All Sound Off (CC 120). The ledger is empty afterwards."""
        extra = {ch for ch in channels if 1 <= ch <= 16}  # never raise mid-panic
        out = self.release()
        for ch in sorted(self._channels | extra):
            out.append(cc_message(ch, CC_SUSTAIN, 0))
            out.append(cc_message(ch, CC_ALL_NOTES_OFF, 0))
            out.append(cc_message(ch, CC_ALL_SOUND_OFF, 0))
        return out

    def use_channel(self, channel: int) -> None:
        """Record a channel the engine sent on other than through the ledger (program change,
        CC), so that ``panic`` resets it too."""
        if not 1 <= channel <= 16:
            raise ValueError(f"MIDI channel must be 1..16, not {channel}")
        self._channels.add(channel)

    @property
    def channels(self) -> frozenset[int]:
        """Channels used since the start."""
        return frozenset(self._channels)

    def sounding(self) -> dict[tuple[int, int], tuple[Owner, ...]]:
        """A copy: (channel, pitch) -> owners holding it, the latest striker last."""
        return {k: tuple(v) for k, v in self._notes.items()}

    def __len__(self) -> int:
        return len(self._notes)

    def __bool__(self) -> bool:
        return bool(self._notes)
