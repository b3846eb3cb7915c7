"""The freeze made after LiteLLM's import keeps no garbage and leaves later objects to the collector."""
from __future__ import annotations

import gc
import weakref

from gateway.transport import freeze_imported_objects


class Node:
    me: Node | None = None


def test_freeze_collects_garbage_first_and_later_cycles_are_still_collected() -> None:
    garbage = Node()
    garbage.me = garbage  # a cycle only the cyclic collector can free
    dead = weakref.ref(garbage)
    del garbage
    alive = Node()
    try:
        freeze_imported_objects()
        assert dead() is None, "garbage alive at the freeze was frozen instead of collected"
        assert gc.get_freeze_count() > 0
        assert not any(obj is alive for obj in gc.get_objects()), "a live object is still walked by the collector"
        later = Node()
        later.me = later
        ref = weakref.ref(later)
        del later
        gc.collect()
        assert ref() is None, "a cycle made after the freeze was not collected"
    finally:
        gc.unfreeze()
