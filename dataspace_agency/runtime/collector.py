"""The garbage-collection policy: keep the cost of a message flat however big the system.

**Why.** CPython frees most objects by reference counting; its cyclic collector is for
objects in reference cycles. Its collections walk every tracked object of the
generations they collect, and a system of 10,000 agents or observers holds hundreds of
thousands of them (about 60 per observer, measured), nearly all long-lived: the agents,
their facets, the dataspace's index. Right after such a set-up those objects are still
"young", so the next collections walk all of them: the first full one took ~0.6 s beside
10,000 observers (measured), and a message cost 10-15x what it costs beside 10 observers
over the following seconds. Later full collections keep walking them, as long pauses.

**What.** Set-up is followed by moving the survivors to the collector's *permanent
generation* with ``gc.freeze()``: the collector ignores them from then on, and its
collections walk only what was made since. :func:`after_setup` is called wherever
something long-lived is added: the dataspace calls it for each new observer, the runtime
for each actor it spawns, the spaces for each agent. Acting is one full collection of
what is not yet frozen (so garbage made during set-up is freed, not frozen), then a
freeze; it costs a walk of what was made since the last freeze, so O(1) per object made.
It acts at most every ``MIN_INTERVAL`` seconds, so a caller that calls it very often (a
loop of short-lived observers, ``DataspaceHandle.query``) pays a time check (~0.2 µs) per
call and a small collection per interval; what a burst of set-up makes in its last
interval is left to the ordinary collector. (Acting less often would not save work in a
burst: each action walks what was made since the one before, however long ago.)

Small set-ups pay nothing: after the process starts, and after each release, the first
freeze waits until set-up has caused ``SETUP_COLLECTIONS`` collections (about 7,000 new
objects with CPython's default thresholds), so a program or a test with a few agents
never walks its whole heap for this.

**The cost, and how it is bounded.** A frozen object that becomes garbage is still freed
at once if nothing refers to it (reference counting does not care about generations).
But a frozen *cycle* that becomes garbage, say the remains of an agent that was removed
(an actor and its root facet refer to each other), is reclaimed only once unfrozen. So:

* *Thaw on doubling*: when the objects frozen since the last thaw (counted at each
  freeze, an over-estimate: reference counting frees some of them later) reach as many
  again as were alive at that thaw, and at least ``THAW_MIN_OBJECTS``, the next action
  unfreezes everything, collects, and freezes what survives. Frozen garbage so never
  exceeds about the size of the live heap, and thaws, each a walk of the whole heap,
  come at geometrically growing sizes: amortised O(1) per object.
* *Release at the end*: when the last runtime of the process closes, :func:`release`
  unfreezes everything, and the ordinary collector reclaims what those runtimes left.

**Caveats.** ``gc.freeze()`` is process-wide: an application that freezes its own objects
(a pre-fork server, say) finds them unfrozen by a thaw or a release; it can turn this
policy off with :func:`set_enabled`. Nothing is done while the collector itself is
disabled (``gc.disable()``): whoever did that manages collection. A process that removes
most of its agents and adds nothing more keeps their cyclic remains until a thaw or
until its last runtime closes. Every call is thread-safe; a call made while another
thread is acting returns at once.
"""

from __future__ import annotations

import gc
import threading
import time
from dataclasses import dataclass

# At most one action per this many seconds: a burst of set-up is frozen in slices of
# about this length, and the last slice of a burst is left to the ordinary collector.
MIN_INTERVAL = 0.01
# The first freeze after start (or a release) waits for this many collections of any
# generation, about 7,000 new objects with CPython's default threshold of 700.
SETUP_COLLECTIONS = 10
# No thaw below this many frozen objects (a thaw's full collection then takes ~10 ms).
THAW_MIN_OBJECTS = 100_000


@dataclass(frozen=True)
class CollectorStatistics:
    """What the policy has done in this process so far."""

    enabled: bool
    freezes: int  # a collection of what is not frozen, then a freeze
    thaws: int  # unfreeze, a full collection, freeze (on doubling)
    releases: int  # unfreezes when the last runtime closed
    frozen_estimate: int  # objects frozen since the last thaw or release, as counted
    seconds: float  # spent in all of the above


class _Policy:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.enabled = True
        self.freezes = self.thaws = self.releases = 0
        self.seconds = 0.0
        self._reset()

    def _reset(self) -> None:
        self.frozen = 0  # objects frozen by us since the last thaw/release, as counted
        self.frozen_at_thaw = 0  # objects alive (and frozen) right after the last thaw
        self.next_at = 0.0  # monotonic time before which no action is taken
        # None once we have frozen; until then, the collection count to exceed.
        self.first_after: int | None = _collections() + SETUP_COLLECTIONS

    def after_setup(self) -> bool:
        if not self.enabled or time.monotonic() < self.next_at or not gc.isenabled():
            return False
        if self.first_after is not None and _collections() < self.first_after:
            return False
        if not self.lock.acquire(blocking=False):
            return False  # another thread is acting right now
        try:
            start = time.monotonic()
            if self.frozen >= max(THAW_MIN_OBJECTS, 2 * self.frozen_at_thaw):
                gc.unfreeze()
                self.frozen = self.frozen_at_thaw = _collect_and_freeze()
                self.thaws += 1
            else:
                self.frozen += _collect_and_freeze()
                self.freezes += 1
            self.first_after = None
            end = time.monotonic()
            self.seconds += end - start
            self.next_at = end + MIN_INTERVAL
            return True
        finally:
            self.lock.release()

    def release(self) -> None:
        with self.lock:
            if self.frozen:  # only what we froze: never undo an application's own freeze
                gc.unfreeze()
                self.releases += 1
            self._reset()


def _collections() -> int:
    return sum(generation["collections"] for generation in gc.get_stats())


def _collect_and_freeze() -> int:
    """Collect everything not frozen and freeze the survivors; how many were frozen."""
    gc.collect()
    survivors = len(gc.get_objects())  # lists every generation but the permanent one
    gc.freeze()
    return survivors


_POLICY = _Policy()


def after_setup() -> bool:
    """Call after adding something long-lived (an agent, an observer, an actor). Freezes
    what set-up made since the last freeze, when due (see the module docstring); returns
    whether it did. Cheap when not due."""
    return _POLICY.after_setup()


def release() -> None:
    """Unfreeze what this policy froze (the runtime calls this when its last runtime
    closes), and start counting afresh."""
    _POLICY.release()


def set_enabled(enabled: bool) -> None:
    """Turn the policy on or off (on by default); turning it off unfreezes what it froze."""
    _POLICY.enabled = enabled
    if not enabled:
        release()


def statistics() -> CollectorStatistics:
    p = _POLICY
    return CollectorStatistics(p.enabled, p.freezes, p.thaws, p.releases, p.frozen, p.seconds)
