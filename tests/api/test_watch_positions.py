"""The resourceVersions a watch stream stamps (``centaurus.api.watch.Positions``): an object's
own partition component is its revision (a valid precondition); bookmarks never claim events
still queued for the client (resuming from a bookmark must not skip them)."""

from __future__ import annotations

from centaurus.api.watch import Positions


def test_stamp_carries_the_objects_own_revision() -> None:
    cache = {0: 50, 1: 70}
    p = Positions({0: 40, 1: 60}, 2, cache.__getitem__)
    # initial state objects (snapshot at 40/60): own component = their revision, others = start
    assert p.stamp(1, 33, live=False) == "40.33"
    assert p.stamp(0, 12, live=False) == "12.60"
    # live events advance the position
    assert p.stamp(0, 41) == "41.60"
    assert p.stamp(1, 61) == "41.61"


def test_bookmark_does_not_skip_queued_events() -> None:
    cache = {0: 50, 1: 70}
    p = Positions({0: 40, 1: 60}, 2, cache.__getitem__)
    # partition 1 still has events 61..70 queued: only partition 0 advances
    assert p.bookmark(lambda i: i == 0) == "50.60"
    # the queued event then carries its own revision, not the bookmark's position
    assert p.stamp(1, 65) == "50.65"
    assert p.bookmark(lambda i: True) == "50.70"


def test_single_partition_bookmark() -> None:
    cache = {1: 9}
    p = Positions({1: 5}, 2, cache.__getitem__)
    assert p.bookmark(lambda i: False) == "5"
    assert p.bookmark(lambda i: True) == "9"
