"""Runtime layer: syndicate-py's actor core (Actor, Facet, Turn) hosted on trio.

Use ``async with open_runtime() as rt`` from trio code, or ``BackgroundRuntime()`` from
synchronous code. Inside turns, use ``syndicate.turn`` as usual, ``after(seconds)`` instead
of ``turn.after``, and ``linked_task(facet, fn)`` for trio tasks tied to a facet.
``collector.after_setup()`` after adding long-lived things keeps collections from walking
them (see ``collector.py``).
"""

from . import collector
from .host import Runtime, RuntimeStatistics, TurnFailed, open_runtime
from .system import RuntimeClosed, TrioSystem
from .tasks import LinkedTask, after, linked_task
from .thread import BackgroundRuntime

__all__ = [
    "BackgroundRuntime", "collector", "LinkedTask", "Runtime", "RuntimeClosed", "RuntimeStatistics",
    "TrioSystem", "TurnFailed", "after", "linked_task", "open_runtime",
]
