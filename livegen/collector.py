"""Python's garbage collector, kept off the hot path of the live engine.

CPython's cyclic collector runs whenever enough container objects have been allocated, inside
whatever code is running then. Measured in the engine's process (torch, numpy, the ports and the
TUI modules imported; ~185,000 tracked objects): a full collection takes ~40 ms and a collection
of the young generations ~0.2-0.4 ms. A live engine cannot stop for that between a player's note
and its answer.

So while the engine runs, `QuietCollector` freezes everything alive at start (it is never scanned
again: the model, the modules, the settings), turns automatic collection off, and the engine asks
it to collect in quiet moments instead (between emitting a step and advancing past it): the young
generations when enough has been allocated, everything once in a while. Leaving restores the
collector as it was, so an engine run inside a larger program (the tests) leaks nothing.
"""

from __future__ import annotations

import gc

FULL_EVERY_S = 30.0  # collect every generation this often (in a quiet moment)


class QuietCollector:
    def __init__(self, full_every: float = FULL_EVERY_S):
        self.full_every = full_every
        self.threshold = gc.get_threshold()[0]
        self.last_full = float("-inf")
        self.collections = 0
        self._was_enabled = False

    def __enter__(self) -> QuietCollector:
        self._was_enabled = gc.isenabled()
        gc.collect()
        gc.freeze()
        gc.disable()
        return self

    def __exit__(self, *exc_info: object) -> None:
        gc.unfreeze()
        if self._was_enabled:
            gc.enable()

    def quiet(self, now: float) -> None:
        """A quiet moment: collect what automatic collection would have by now."""
        if now - self.last_full >= self.full_every:
            if self.last_full != float("-inf"):
                gc.collect()
                self.collections += 1
            self.last_full = now
        elif gc.get_count()[0] >= self.threshold:
            gc.collect(1)
            self.collections += 1
