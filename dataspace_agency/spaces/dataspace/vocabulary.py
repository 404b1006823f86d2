"""The adapter's vocabulary: how classic agents and messages appear in a dataspace.

All records are Preserves values; ``body`` is a whole classic message (a JSON-like dict)
and ``help`` an action's help dict, both converted by :mod:`values` (``to_preserves``).

=====================================  ===========  ==============================================
record                                 kind         meaning
=====================================  ===========  ==============================================
``<agent id>``                         assertion    the agent is present (held while it lives)
``<action agent name help>``           assertion    the agent offers action ``name``; discovery
                                                    is a query over these
``<message to body>``                  message      message mode: every classic message;
                                                    both modes: broadcasts (``to`` = ``"*"``) and
                                                    replies to broadcasts and routed messages
``<request to id body>``               assertion    assertion mode: a point-to-point action
                                                    message, held by its sender until answered
``<reply to parentId from body>``      assertion    assertion mode: the answer, held by the
                                                    responder while the request stands
=====================================  ===========  ==============================================

So in assertion mode a request to an agent that is not there yet waits for it, a responder
that leaves or crashes takes its presence with it (and the requester, watching
``<agent to>``, fails the request at once), and a requester that leaves withdraws its
request (and the responder sees it go). Nothing outlives the agents that asserted it.

The pattern helpers build raw pattern values (what ``syndicate.patterns`` builds, already
serialised): they cost a microsecond where the schema-based builders cost tens.
"""

from __future__ import annotations

from typing import Any

from preserves import Record, Symbol

AGENT = Symbol("agent")
ACTION = Symbol("action")
MESSAGE = Symbol("message")
REQUEST = Symbol("request")
REPLY = Symbol("reply")


def agent_fact(agent_id: str) -> Record:
    return Record(AGENT, [agent_id])


def action_fact(agent_id: str, name: str, help_value: Any) -> Record:
    return Record(ACTION, [agent_id, name, help_value])


def message_envelope(to: str, body: Any) -> Record:
    return Record(MESSAGE, [to, body])


def request_fact(to: str, message_id: str, body: Any) -> Record:
    return Record(REQUEST, [to, message_id, body])


def reply_fact(to: str, parent_id: str, sender: str, body: Any) -> Record:
    return Record(REPLY, [to, parent_id, sender, body])


# --- raw patterns ---------------------------------------------------------------------------

DISCARD = Record(Symbol("_"), [])
CAPTURE = Record(Symbol("bind"), [DISCARD])


def lit(atom: Any) -> Record:
    return Record(Symbol("lit"), [atom])


def rec(label: Symbol, *fields: Any) -> Record:
    """A record pattern; like ``syndicate.patterns.rec`` it lists every field, so the
    record must have at least that many."""
    return Record(Symbol("group"), [Record(Symbol("rec"), [label]), dict(enumerate(fields))])
