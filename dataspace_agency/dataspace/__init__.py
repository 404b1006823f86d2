"""Dataspace layer: the assertion index (pure) and the Dataspace entity built on it.

* ``keys``: Preserves values as hashable keys with Preserves equality.
* ``patterns``: dataspace patterns compiled into shape, literals, discards and captures.
* ``index``: the skeleton index, routing assertions and messages to observers.
* ``naive``: a brute-force matcher with the same API (test oracle, benchmark baseline).
* ``entity``: the syndicate-py ``Entity`` with full dataspace semantics.
"""

from .entity import Dataspace
from .index import Index, ObserverSink
from .keys import freeze, from_key, to_key
from .patterns import CompiledPattern, InvalidPattern, compile_pattern

__all__ = [
    "CompiledPattern", "Dataspace", "Index", "InvalidPattern", "ObserverSink",
    "compile_pattern", "freeze", "from_key", "to_key",
]
