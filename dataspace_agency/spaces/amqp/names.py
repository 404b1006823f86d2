"""Broker names for one exchange: queues, presence queues and routing keys.

Ids (and the exchange) are escaped so that an id is one topic word and never a wildcard;
a name past AMQP's 255-byte limit keeps an escaped prefix and gets a hash (see the
package docstring, ``spaces/amqp/__init__.py``).
"""

from __future__ import annotations

import functools
import hashlib

from ...classic.message import BROADCAST

BROADCAST_KEY = "broadcast"
AGENT_KEY_PREFIX = "agent."
PRESENCE_WORD = "present"
MAX_NAME_BYTES = 255  # AMQP short strings: queue names and routing keys

_ESCAPES = str.maketrans({"%": "%25", ".": "%2E", "#": "%23", "*": "%2A"})


def escape_id(text: str) -> str:
    """Percent-encode ``%``, ``.``, ``#`` and ``*``: the result is one topic word that is
    never a wildcard, and distinct ids stay distinct."""
    return text.translate(_ESCAPES)


class Names:
    """Broker names for one exchange (see the module docstring)."""

    def __init__(self, exchange: str) -> None:
        self.exchange = exchange
        self.prefix = escape_id(exchange)
        # One word serves the queue, the presence queue and the routing key; the presence
        # queue's name is the longest of the three.
        self.room = MAX_NAME_BYTES - len(f"{self.prefix}.{PRESENCE_WORD}.".encode())
        if self.room < 100:
            raise ValueError(f"exchange name {exchange!r} is too long to prefix queue names"
                             f" (at most {MAX_NAME_BYTES - 110} bytes once escaped)")
        self.word = functools.lru_cache(maxsize=4096)(self._word)

    def _word(self, agent_id: str) -> str:
        word = escape_id(agent_id)
        if len(word.encode()) <= self.room:
            return word
        tail = ".h-" + hashlib.sha256(agent_id.encode()).hexdigest()[:32]
        head = word.encode()[:self.room - len(tail)].decode(errors="ignore")
        return head + tail

    def queue(self, agent_id: str) -> str:
        return f"{self.prefix}.{self.word(agent_id)}"

    def presence(self, agent_id: str) -> str:
        return f"{self.prefix}.{PRESENCE_WORD}.{self.word(agent_id)}"

    def key(self, to: str) -> str:
        return BROADCAST_KEY if to == BROADCAST else AGENT_KEY_PREFIX + self.word(to)
