"""The garbage collector stays out of the engine's way and is back as it was afterwards."""

import gc

from livegen.collector import QuietCollector


class Node:
    def __init__(self):
        self.me = self  # a cycle: only the cyclic collector frees it


def test_no_automatic_collection_while_running_and_quiet_moments_collect():
    assert gc.isenabled()
    with QuietCollector(full_every=1.0) as col:
        assert not gc.isenabled()
        for _ in range(5 * col.threshold):
            Node()
        assert gc.get_count()[0] >= col.threshold  # nothing collected behind our back
        col.quiet(0.0)  # the first quiet moment starts the full-collection clock
        col.quiet(0.1)
        assert gc.get_count()[0] < col.threshold
        collections = col.collections
        col.quiet(1.5)  # a full collection is due
        assert col.collections == collections + 1
        assert gc.get_freeze_count() > 0
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0


def test_a_disabled_collector_stays_disabled():
    gc.disable()
    try:
        with QuietCollector():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
