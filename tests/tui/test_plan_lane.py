"""The piano roll's plan lane shows what is coming: the voices proposed for the next step and the
note the model expects from the player, right of the play head; and the engine reports them."""

from __future__ import annotations

import asyncio

import pytest
from textual.app import App, ComposeResult

from livegen.engine import Engine
from livegen.model.runtime import Runtime
from livegen.settings import Settings, TimingSettings, VoiceSettings
from livegen.status import Status, VoiceState
from livegen.tui.widgets import PLAN_LANE, PianoRoll
from tests.fakes import FakeIn, FakeOut, SimTime
from tests.util import tiny_model


class RollApp(App[None]):
    def compose(self) -> ComposeResult:
        yield PianoRoll(id="roll")


def status(plan: list[tuple[int, int]], expected: int | None) -> Status:
    return Status(time=0.0, preset="p", running=True, clock="internal", bpm=100.0, step=40,
                  bar=3, beat=3, key=None, takeover=False, settings=Settings(),
                  voices=[VoiceState("alto", True, 2), VoiceState("tenor", True, 3)],
                  plan=plan, expected=expected)


def test_the_lane_shows_the_planned_voices_and_the_expected_note() -> None:
    async def scenario() -> None:
        app = RollApp()
        async with app.run_test(size=(40, 24)) as pilot:
            roll = app.query_one(PianoRoll)
            roll.set_voices(["alto", "tenor"])
            roll.add(status([(0, 67), (1, 60)], expected=72), [])
            await pilot.pause()
            lines = roll.render().plain.splitlines()
            lane = [line[-PLAN_LANE:] for line in lines]
            assert all(cell.startswith("│") for cell in lane)
            glyphs = "".join(cell[1] for cell in lane)
            assert "a" in glyphs and "t" in glyphs and "○" in glyphs
            assert glyphs.index("○") < glyphs.index("a") < glyphs.index("t")  # high to low
            roll.add(status([], expected=None), [])
            lane = [line[-1] for line in roll.render().plain.splitlines()]
            assert set(lane) == {" "}

    asyncio.run(asyncio.wait_for(scenario(), 60))


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    _, path = tiny_model(tmp_path_factory.mktemp("m") / "m.pt", seed=11)
    return path


def test_the_engine_reports_the_next_steps_plan_before_playing_it(model) -> None:
    settings = Settings(voices=[VoiceSettings("alto", channel=2), VoiceSettings("tenor", channel=3),
                                VoiceSettings("bass", channel=4)],
                        timing=TimingSettings(bpm=120.0, follow_ms=0.0))
    clock = SimTime()
    inp, out = FakeIn(clock), FakeOut(clock)
    eng = Engine(settings, Runtime(model, device="cpu", warmup=2), inp, out, now=clock.now,
                 sleep=clock.sleep, seed=1)
    step = 60.0 / 120.0 / 4
    t0 = eng.transport.clock.step_time(0)
    for i, pitch in enumerate([72, 74, 76, 77, 79]):
        inp.at(t0 + 4 * i * step, [0x90, pitch, 90])
        inp.at(t0 + (4 * i + 3) * step, [0x80, pitch, 0])
    seen = []
    played = {}
    eng.on_play = lambda s, frame: played.setdefault(s, eng.acc.sounding[:])
    while clock.t < t0 + 20 * step:
        eng.tick()
        tr = eng.transport
        if not tr.emitted and tr.step not in played:
            seen.append((tr.step, eng.status().plan))
    assert any(plan for _, plan in seen), "the engine never reported a plan"
    # a plan reported just before its step matches what then sounded, when nothing changed
    last = {}
    for s, plan in seen:
        last[s] = plan
    agreed = [s for s, plan in last.items() if s in played and plan
              and sorted(p for _, p in plan) == sorted(p for p in played[s] if p >= 0)]
    assert agreed, f"no plan matched what was played: {last} vs {played}"
