"""The assertion index ("skeleton"): routes assertions and messages to observers without
scanning them. Pure: no runtime, no I/O; observers are opaque and told of changes through a
sink.

How it works, in one page:

* A bag (counted set) of assertions. Only a value's first copy arriving and last copy
  leaving change anything for observers.
* A trie keyed on pattern *shape*. Each node is reached by a sequence of
  ``(path, class)`` tests ("the value at path (0,) is a record labelled Present") and
  caches the assertions that pass them. Patterns with the same shape share a node, so an
  arriving assertion visits only the nodes whose tests it passes: the cost depends on the
  variety of shapes, not the number of subscriptions.
* At a node, subscriptions are grouped by *where* their literals and discards are
  (``positions``), then hashed by *what* the literals are (``const_values``): a leaf. A
  subscription keyed by a literal (an agent id, a request id) is found with one dict lookup.
* In a leaf, subscriptions are grouped by their capture paths. Each group keeps a bag of
  capture tuples over the leaf's assertions; when a tuple first appears every observer in
  the group is told ``assert_captures``, when it goes it is told ``retract_captures``.
  Observers see each distinct capture tuple once, however many assertions project to it.

Values enter as Preserves values and are converted once to keys (``keys.to_key``), which
hash with Preserves equality; observers receive captures as a tuple of frozen values.
"""

from __future__ import annotations

from typing import Any, Hashable, Protocol

from .keys import (MISSING, Key, Path, Unsure, is_frozen, class_of, frozen, from_key,
                   project, project_all, raw_class_of, raw_project, to_key)
from .patterns import CompiledPattern, compile_pattern

Captures = tuple[Key, ...]


class ObserverSink(Protocol):
    """How the index tells observers about their captures."""

    def assert_captures(self, observer: Hashable, captures: tuple) -> Any:
        """A capture tuple appeared for ``observer``; return a handle for its retraction."""

    def retract_captures(self, observer: Hashable, handle: Any) -> None:
        """The capture tuple asserted under ``handle`` disappeared."""

    def send_captures(self, observer: Hashable, captures: tuple) -> None:
        """A message matched ``observer``'s pattern."""


class _Registration:
    """One observer in an endpoint group: how often it registered, and the handles of the
    capture tuples it has been told about."""

    __slots__ = ("count", "handles")

    def __init__(self) -> None:
        self.count = 1
        self.handles: dict[Captures, Any] = {}


class _Endpoints:
    """Observers sharing a leaf and capture paths, and the bag of capture tuples they see."""

    __slots__ = ("captures", "observers")

    def __init__(self) -> None:
        self.captures: dict[Captures, int] = {}
        self.observers: dict[Hashable, _Registration] = {}


class _Leaf:
    """Assertions with particular literal values at particular positions."""

    __slots__ = ("assertions", "groups")

    def __init__(self) -> None:
        self.assertions: set[Key] = set()
        self.groups: dict[tuple[Path, ...], _Endpoints] = {}

    def is_empty(self) -> bool:
        return not self.assertions and not self.groups


class _Node:
    """A trie node: the assertions having this node's shape, the leaves of the
    subscriptions ending here, and edges to longer shapes."""

    __slots__ = ("assertions", "leaves", "group_counts", "edges")

    def __init__(self, assertions: set[Key]) -> None:
        self.assertions = assertions
        # positions -> const values -> leaf
        self.leaves: dict[tuple, dict[tuple[Key, ...], _Leaf]] = {}
        # positions -> how many endpoint groups its leaves hold; at zero the whole map goes
        self.group_counts: dict[tuple, int] = {}
        # path -> class at that path -> child node
        self.edges: dict[Path, dict[Key, _Node]] = {}


def _thaw(captures: Captures) -> tuple:
    thawed = []
    for capture in captures:
        t = type(capture)
        thawed.append(capture if t is str or t is int else from_key(capture))
    return tuple(thawed)


class Index:
    """Bag of assertions plus subscriptions, routing changes to a :class:`ObserverSink`.

    ``insert``/``remove``/``send`` take Preserves values; the ``*_key`` variants take keys
    already made by :func:`keys.to_key` (the dataspace entity makes them once per event).
    ``add_observer``/``remove_observer`` take a pattern (parsed, its Preserves value, or a
    :class:`CompiledPattern`) and any hashable observer.
    """

    def __init__(self, sink: ObserverSink) -> None:
        self._sink = sink
        self._bag: dict[Key, int] = {}
        self._root = _Node(set())
        self._observer_count = 0

    @property
    def assertion_count(self) -> int:
        """Distinct assertions present."""
        return len(self._bag)

    @property
    def observer_count(self) -> int:
        """Observer registrations."""
        return self._observer_count

    def holds(self, value: Any) -> bool:
        """Whether ``value`` is asserted now."""
        return to_key(value) in self._bag

    # --- assertions and messages -------------------------------------------------------

    def insert(self, value: Any) -> bool:
        return self.insert_key(to_key(value))

    def remove(self, value: Any) -> bool:
        return self.remove_key(to_key(value))

    def send(self, value: Any) -> int:
        """Route a message. It is read directly where possible (see ``keys.raw_step``):
        only the classes and literals at the subscribed positions are converted, and
        captures are delivered as the values themselves (frozen if they were not; an
        object standing for a value, with ``__preserve__``, as it is: the sink converts
        it for observers that need the value, see ``entity._TurnSink``). A message whose
        subscribed positions cannot be read directly is converted whole, keys and all."""
        try:
            deliveries = self._raw_deliveries(value)
        except Unsure:
            return self.send_key(to_key(value))
        delivered = 0
        for observers, captures in deliveries:
            for observer in observers:
                self._sink.send_captures(observer, captures)
            delivered += len(observers)
        return delivered

    def _raw_deliveries(self, value: Any) -> list[tuple[Any, tuple]]:
        """Who gets which captures for message ``value``; nothing is delivered yet, so a
        caller falling back on ``Unsure`` delivers nothing twice."""
        deliveries = []
        pending = [self._root]
        while pending:
            node = pending.pop()
            for path, by_class in node.edges.items():
                child = by_class.get(raw_class_of(raw_project(value, path)))
                if child is not None:
                    pending.append(child)
            for (const_paths, exist_paths), leaves in node.leaves.items():
                literals = []
                for path in const_paths:
                    found = raw_project(value, path)
                    if found is MISSING:
                        break
                    literals.append(to_key(found))
                else:
                    leaf = leaves.get(tuple(literals))
                    if leaf is None or not leaf.groups:
                        continue
                    # Plain loops, not generator expressions: this runs for every
                    # message, and a generator costs a call per item.
                    for path in exist_paths:
                        if raw_project(value, path) is MISSING:
                            break
                    else:
                        for capture_paths, endpoints in leaf.groups.items():
                            if not endpoints.observers:
                                continue
                            captures = []
                            for path in capture_paths:
                                found = raw_project(value, path)
                                if found is MISSING:
                                    break
                                captures.append(found)
                            else:
                                for i, found in enumerate(captures):
                                    # A value standing for one (``__preserve__``, e.g.
                                    # the classic adapter's LocalBody) goes on as it is:
                                    # the sink makes it for observers that need it.
                                    if not is_frozen(found) and \
                                            not hasattr(found, "__preserve__"):
                                        captures[i] = frozen(found)
                                deliveries.append((list(endpoints.observers),
                                                   tuple(captures)))
        return deliveries

    def insert_key(self, key: Key) -> bool:
        """Add one copy; True iff the value was absent before (observers were told)."""
        count = self._bag.get(key, 0)
        self._bag[key] = count + 1
        if count:
            return False
        self._update(key, +1)
        return True

    def remove_key(self, key: Key) -> bool:
        """Remove one copy; True iff it was the last (observers were told).
        Raises ``KeyError`` if the value is not present."""
        count = self._bag[key]
        if count > 1:
            self._bag[key] = count - 1
            return False
        del self._bag[key]
        self._update(key, -1)
        return True

    def _update(self, key: Key, delta: int) -> None:
        """A value arrived (+1) or left (-1): update every cache on its way through the
        trie and count its captures in every subscription group it reaches."""
        # One project_all per set of paths, not a call per path: every fact asserted or
        # retracted comes through here (a classic request in assertion mode, four times).
        arriving = delta > 0
        for node in self._matching_nodes(key):
            if arriving:
                node.assertions.add(key)
            else:
                node.assertions.discard(key)
            for (const_paths, exist_paths), leaves in node.leaves.items():
                if exist_paths and project_all(key, exist_paths) is None:
                    continue
                values = project_all(key, const_paths)
                if values is not None:
                    self._update_leaf(leaves, values, key, delta)

    def _update_leaf(self, leaves: dict, values: tuple, key: Key, delta: int) -> None:
        leaf = leaves.get(values)
        if leaf is None:
            if delta < 0:
                return
            leaf = leaves[values] = _Leaf()
        if delta > 0:
            leaf.assertions.add(key)
        else:
            leaf.assertions.discard(key)
        for capture_paths, endpoints in leaf.groups.items():
            captures = project_all(key, capture_paths)
            if captures is not None:
                self._count_captures(endpoints, captures, delta)
        if leaf.is_empty():
            # (A position map itself lives as long as a subscription uses it.)
            del leaves[values]

    def send_key(self, key: Key) -> int:
        """Deliver a message to every matching observer; returns the number of deliveries."""
        delivered = 0
        for node in self._matching_nodes(key):
            for (const_paths, exist_paths), leaves in node.leaves.items():
                values = project_all(key, const_paths)
                leaf = leaves.get(values) if values is not None else None
                if leaf is None or not leaf.groups or project_all(key, exist_paths) is None:
                    continue
                for capture_paths, endpoints in leaf.groups.items():
                    captures = project_all(key, capture_paths)
                    if captures is None:
                        continue
                    thawed = _thaw(captures)
                    for observer in endpoints.observers:
                        self._sink.send_captures(observer, thawed)
                    delivered += len(endpoints.observers)
        return delivered

    def _matching_nodes(self, key: Key) -> list[_Node]:
        """The trie nodes whose shape ``key`` has: the root, and every node reached by
        edges whose (path, class) test the key passes."""
        found = []
        pending = [self._root]
        while pending:
            node = pending.pop()
            found.append(node)
            for path, by_class in node.edges.items():
                child = by_class.get(class_of(project(key, path)))
                if child is not None:
                    pending.append(child)
        return found

    def _count_captures(self, endpoints: _Endpoints, captures: Captures, delta: int) -> None:
        count = endpoints.captures.get(captures, 0) + delta
        if count:
            endpoints.captures[captures] = count
            if count == 1 and delta > 0 and endpoints.observers:
                thawed = _thaw(captures)
                for observer, registration in endpoints.observers.items():
                    registration.handles[captures] = \
                        self._sink.assert_captures(observer, thawed)
            return
        del endpoints.captures[captures]
        for observer, registration in endpoints.observers.items():
            handle = registration.handles.pop(captures, MISSING)
            if handle is not MISSING:
                self._sink.retract_captures(observer, handle)

    # --- observers -----------------------------------------------------------------------

    def add_observer(self, pattern: Any, observer: Hashable) -> None:
        """Subscribe ``observer``; it is told at once of every capture tuple present."""
        compiled = pattern if isinstance(pattern, CompiledPattern) else compile_pattern(pattern)
        node = self._root
        for path, klass in compiled.shape:
            by_class = node.edges.setdefault(path, {})
            child = by_class.get(klass)
            if child is None:
                child = by_class[klass] = _Node(
                    {a for a in node.assertions if class_of(project(a, path)) == klass})
            node = child

        leaves = node.leaves.get(compiled.positions)
        if leaves is None:
            leaves = node.leaves[compiled.positions] = self._build_leaves(node, compiled)
        leaf = leaves.get(compiled.const_values)
        if leaf is None:
            leaf = leaves[compiled.const_values] = _Leaf()
        endpoints = leaf.groups.get(compiled.capture_paths)
        if endpoints is None:
            endpoints = leaf.groups[compiled.capture_paths] = _Endpoints()
            node.group_counts[compiled.positions] = \
                node.group_counts.get(compiled.positions, 0) + 1
            for assertion in leaf.assertions:
                captures = project_all(assertion, compiled.capture_paths)
                if captures is not None:
                    endpoints.captures[captures] = endpoints.captures.get(captures, 0) + 1

        self._observer_count += 1
        registration = endpoints.observers.get(observer)
        if registration is not None:
            registration.count += 1  # same pattern again: already told everything
            return
        registration = endpoints.observers[observer] = _Registration()
        for captures in endpoints.captures:
            registration.handles[captures] = \
                self._sink.assert_captures(observer, _thaw(captures))

    @staticmethod
    def _build_leaves(node: _Node, compiled: CompiledPattern) -> dict:
        leaves: dict[tuple[Key, ...], _Leaf] = {}
        for assertion in node.assertions:
            if project_all(assertion, compiled.exist_paths) is None:
                continue
            values = project_all(assertion, compiled.const_paths)
            if values is not None:
                leaves.setdefault(values, _Leaf()).assertions.add(assertion)
        return leaves

    def remove_observer(self, pattern: Any, observer: Hashable) -> None:
        """Unsubscribe; every capture tuple the observer was told of is retracted.
        Raises ``KeyError`` if there is no such registration."""
        compiled = pattern if isinstance(pattern, CompiledPattern) else compile_pattern(pattern)
        trail: list[tuple[_Node, Path, Key]] = []  # (parent, path, class) to prune later
        node = self._root
        for path, klass in compiled.shape:
            child = node.edges.get(path, {}).get(klass)
            if child is None:
                raise KeyError(observer)
            trail.append((node, path, klass))
            node = child
        leaves = node.leaves.get(compiled.positions, {})
        leaf = leaves.get(compiled.const_values)
        endpoints = leaf.groups.get(compiled.capture_paths) if leaf else None
        registration = endpoints.observers.get(observer) if endpoints else None
        if registration is None:
            raise KeyError(observer)

        self._observer_count -= 1
        registration.count -= 1
        if registration.count:
            return
        del endpoints.observers[observer]
        for handle in registration.handles.values():
            self._sink.retract_captures(observer, handle)

        # Drop what no longer serves anyone, so memory tracks live subscriptions.
        if endpoints.observers:
            return
        del leaf.groups[compiled.capture_paths]
        if leaf.is_empty():
            del leaves[compiled.const_values]
        node.group_counts[compiled.positions] -= 1
        if not node.group_counts[compiled.positions]:
            # No subscription uses these positions any more: stop caching by them.
            del node.group_counts[compiled.positions]
            del node.leaves[compiled.positions]
        while trail and not node.leaves and not node.edges:
            parent, path, klass = trail.pop()
            by_class = parent.edges[path]
            del by_class[klass]
            if not by_class:
                del parent.edges[path]
            node = parent
