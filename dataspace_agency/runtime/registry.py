"""Weak registries of what is open: runtimes, spaces, servers.

Each long-lived object that owns threads, tasks, processes or facts registers itself when
it opens and leaves when it closes. A leak check (the tests' ``tests/leaks.py``) can then
ask what is still open and where each was opened, without the library knowing anything
about tests. The registries hold weak references only, so they never keep anything alive,
and an entry costs one dict slot and a walk up the caller's stack when it opens.
"""

from __future__ import annotations

import itertools
import os
import sys
import threading
import weakref
from dataclasses import dataclass
from typing import Any, Iterator

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Frames from these are skipped when naming where something was opened: the interesting
# frame is the caller's code (a test, a script), not contextlib or trio in between.
_LIBRARY_DIRS = tuple({os.path.dirname(os.__file__), _PACKAGE_DIR}
                      | {p for p in sys.path if p.endswith("site-packages")})

_serials = itertools.count(1)


def opened_at(skip: int = 2) -> str:
    """``file:line in function`` of the nearest caller outside this package, the standard
    library and site-packages; if there is none (say, on a runtime's own thread), the
    outermost frame of this package, whose thread then tells more."""
    frame = sys._getframe(skip)
    outermost_here = None
    while frame is not None:
        filename = frame.f_code.co_filename
        if not filename.startswith(_LIBRARY_DIRS):
            break
        if filename.startswith(_PACKAGE_DIR):
            outermost_here = frame
        frame = frame.f_back
    frame = frame or outermost_here
    if frame is None:
        return "unknown"
    return f"{os.path.relpath(frame.f_code.co_filename)}:{frame.f_lineno} in {frame.f_code.co_name}"


@dataclass(frozen=True)
class OpenEntry:
    """One open object: ``serial`` grows with every registration (compare to
    :func:`current_serial` to tell what opened after a point), ``site`` is where it was
    opened, ``thread`` the name of the thread that opened it."""

    serial: int
    site: str
    thread: str
    ref: "weakref.ref[Any]"

    @property
    def obj(self) -> Any:
        """The object, or None if it has been garbage collected meanwhile."""
        return self.ref()


class OpenRegistry:
    """Open objects of one kind, held weakly. Keyed by identity, so unhashable objects
    (dataclasses) can register too. Thread-safe."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._lock = threading.Lock()
        self._entries: dict[int, OpenEntry] = {}

    def add(self, obj: Any) -> None:
        key = id(obj)

        def forget(_ref: Any, key: int = key) -> None:
            with self._lock:
                entry = self._entries.get(key)
                if entry is not None and entry.ref() is None:
                    del self._entries[key]

        entry = OpenEntry(next(_serials), opened_at(), threading.current_thread().name,
                          weakref.ref(obj, forget))
        with self._lock:
            self._entries[key] = entry

    def discard(self, obj: Any) -> None:
        with self._lock:
            entry = self._entries.get(id(obj))
            if entry is not None and entry.ref() is obj:
                del self._entries[id(obj)]

    def open_since(self, serial: int = 0) -> list[OpenEntry]:
        """Entries registered after ``serial`` whose object is alive and still open,
        oldest first."""
        with self._lock:
            entries = list(self._entries.values())
        return sorted((e for e in entries if e.serial > serial and e.ref() is not None),
                      key=lambda e: e.serial)

    def __iter__(self) -> Iterator[OpenEntry]:
        return iter(self.open_since(0))


def current_serial() -> int:
    """The serial the next registration will exceed: take it before, compare after."""
    return next(_serials)


OPEN_RUNTIMES = OpenRegistry("runtime")  # TrioSystem, until its Runtime closes
OPEN_SPACES = OpenRegistry("space")  # Space, until destroy()
OPEN_SERVERS = OpenRegistry("server")  # protocol Server, until open_server's block ends
