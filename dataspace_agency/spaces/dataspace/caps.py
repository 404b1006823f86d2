"""Capabilities that let a client speak only as given agents, in the classic vocabulary.

A server cap (``sturdy.mint``) lets its holder assert anything, including another agent's
presence (``<agent "alice">``) or a reply "from" another agent. :func:`mint_agent_cap`
(with the server's key) or :func:`restrict_to_agents` (with just a cap: attenuation needs
no key) make a cap whose caveat lets through, for each of the given agent ids ``id``,
only::

    <agent id>                         its presence
    <action id name help>              what it offers
    <request to msgid body>            requests whose body says  "from": id
    <reply to parentId id body>        replies from it, body saying "from": id
    <message to body>                  messages whose body says  "from": id
    <Observe pattern #:observer>       subscriptions (reading is not restricted)

Everything else the holder asserts or sends is dropped by the server (logged, and counted
in ``Server.attenuation.dropped``). Each record is rebuilt by the caveat's template with
exactly its fields, so extra fields cannot smuggle anything through. What such a cap
does not stop: reading every fact (subscriptions are allowed), and sending a message
that is well-formed but unwelcome; agents still decide what they permit (see
docs/security.md).
"""

from __future__ import annotations

from typing import Any, Iterable

from preserves import Record, Symbol

from ...protocol.sturdy import attenuate, mint
from ...classic.message import validate_agent_id
from .vocabulary import ACTION, AGENT, MESSAGE, REPLY, REQUEST

__all__ = ["agent_caveat", "mint_agent_cap", "restrict_to_agents"]

_OBSERVE = Symbol("Observe")
_DISCARD = Record(Symbol("_"), [])


def _sym(name: str, *fields: Any) -> Record:
    return Record(Symbol(name), list(fields))


def _bind(pattern: Any = _DISCARD) -> Record:
    return _sym("bind", pattern)


def _lit(value: Any) -> Record:
    return _sym("lit", value)


def _ref(n: int) -> Record:
    return _sym("ref", n)


def _rec(label: Symbol, entries: list) -> Record:
    """A record group (pattern or template: the same form) with entries 0..n-1."""
    return _sym("group", _sym("rec", label), dict(enumerate(entries)))


def _from(agent_id: str) -> Record:
    """A classic message body whose ``from`` is ``agent_id``."""
    return _sym("group", _sym("dict"), {"from": _lit(agent_id)})


def _rewrites_for(agent_id: str) -> list[Record]:
    me, body = _lit(agent_id), _bind(_from(agent_id))
    return [
        _sym("rewrite", _rec(AGENT, [me]), _rec(AGENT, [me])),
        _sym("rewrite", _rec(ACTION, [me, _bind(), _bind()]),
             _rec(ACTION, [me, _ref(0), _ref(1)])),
        _sym("rewrite", _rec(REQUEST, [_bind(), _bind(), body]),
             _rec(REQUEST, [_ref(0), _ref(1), _ref(2)])),
        _sym("rewrite", _rec(REPLY, [_bind(), _bind(), me, body]),
             _rec(REPLY, [_ref(0), _ref(1), me, _ref(2)])),
        _sym("rewrite", _rec(MESSAGE, [_bind(), body]), _rec(MESSAGE, [_ref(0), _ref(1)])),
    ]


def agent_caveat(agent_ids: Iterable[str]) -> Record:
    """The caveat: ``<or [<rewrite ...> ...]>`` allowing only what the module docstring
    lists for ``agent_ids``."""
    ids = [validate_agent_id(agent_id) for agent_id in agent_ids]
    if not ids:
        raise ValueError("give at least one agent id")
    rewrites = [_sym("rewrite", _rec(_OBSERVE, [_bind(), _bind()]),
                     _rec(_OBSERVE, [_ref(0), _ref(1)]))]
    for agent_id in ids:
        rewrites.extend(_rewrites_for(agent_id))
    return _sym("or", tuple(rewrites))


def restrict_to_agents(cap: Any, agent_ids: Iterable[str]) -> Record:
    """``cap`` (a sturdyref, value or text) narrowed to speaking as ``agent_ids``."""
    return attenuate(cap, agent_caveat(agent_ids))


def mint_agent_cap(key: bytes, agent_ids: Iterable[str], oid: Any = "syndicate") -> Record:
    """A fresh cap under ``key`` for ``oid`` that may speak only as ``agent_ids``."""
    return restrict_to_agents(mint(key, oid), agent_ids)
