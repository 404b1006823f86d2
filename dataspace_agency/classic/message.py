"""The classic agency message schema: validation, ids and replies.

A classic message is a JSON-like dict::

    {"meta": {"id": "<uuid4>", "parent_id": "<id answered; responses only>", ...},
     "from": "<sender id>", "to": "<agent id> | '*'",
     "action": {"name": "<action>", "args": {...}}}

Extra ``meta`` keys are allowed and kept. Replies use the action names
:data:`RESPONSE` and :data:`ERROR`; ``to`` may be :data:`BROADCAST`.
Every problem is reported as a :class:`MessageError` naming the field.

Size: :func:`message_size` is the length in bytes of a message as compact UTF-8 JSON;
``validate_message(..., max_size=N)`` refuses a larger one with a :class:`MessageError`
naming both numbers. The dataspace adapter applies :data:`DEFAULT_MAX_MESSAGE_SIZE` to
every message arriving for an agent (``DataspaceTransport.max_message_size``).
"""

from __future__ import annotations

import os
import threading
from typing import Any

from . import values
from .wire_json import json_size

__all__ = [
    "BROADCAST",
    "ERROR",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "MessageError",
    "RESPONSE",
    "make_reply",
    "message_size",
    "new_message_id",
    "validate_agent_id",
    "validate_message",
]

RESPONSE = "[response]"
ERROR = "[error]"
BROADCAST = "*"

_MESSAGE_KEYS = ("meta", "from", "to", "action")
_ACTION_KEYS = ("name", "args")
_MAX_AGENT_ID = 255
_RESERVED_PREFIX = "amq."

DEFAULT_MAX_MESSAGE_SIZE = 8 * 1024 * 1024
"""Bytes (compact UTF-8 JSON): the largest classic message an agent accepts by default.
Half the server's default packet limit, so a message that fits also fits in a packet."""

# Distinguishes "no value given" from an explicit `value=None` reply.
_MISSING: Any = object()

# Errors quote the offending value, cut short: it may be huge, or too deep to show.
_show = values.short_repr


class MessageError(ValueError):
    """A classic message does not follow the schema."""


class _RandomHex(threading.local):
    """This thread's supply of random hex digits for message ids, drawn from
    ``os.urandom`` ``_ID_BATCH`` ids at a time.

    Why a supply rather than ``os.urandom(16)`` per id: ``os.urandom`` is a system call
    that gives up the GIL, and a thread that gives it up waits for it back behind the
    runtime thread. A client handle's ``send()`` loop lost a fifth of its time that way
    (the id was the only call of its path that gave the GIL up), and the runtime gave
    it up once per reply. Per thread, so that no lock is needed; emptied in a forked
    child, so that the child does not hand out its parent's ids."""

    def __init__(self) -> None:
        self.digits = ""
        self.at = 0


_ID_BATCH = 128
_random_hex = _RandomHex()
os.register_at_fork(after_in_child=lambda: _random_hex.__init__())


def new_message_id() -> str:
    """Return a fresh message id: a random (version 4) UUID string.

    Formatted by hand from ``os.urandom``'s bytes, as ``uuid.uuid4()`` does, at under
    half its cost: every message and reply takes one, on the hot path."""
    supply = _random_hex
    at = supply.at
    if at == len(supply.digits):
        supply.digits, at = os.urandom(16 * _ID_BATCH).hex(), 0
    supply.at = at + 32
    h = supply.digits[at:at + 32]
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


def validate_agent_id(agent_id: Any) -> str:
    """Return `agent_id` if it is a usable agent id, else raise ValueError.

    The rules keep ids usable as queue names on the queue backends (RabbitMQ
    caps queue names at 255 bytes and reserves the ``amq.`` prefix), and
    ``*`` already means "everyone" in the ``to`` field. The length is counted
    in characters, so non-ASCII ids near the limit may still be too long for
    RabbitMQ.
    """
    if not isinstance(agent_id, str):
        raise ValueError(f"agent id must be a string, got {type(agent_id).__name__}")
    if not (agent_id.isascii() or values.is_unicode_text(agent_id)):
        raise ValueError(f"agent id {agent_id!r} has a lone surrogate: it is not Unicode"
                         " text")
    if not 1 <= len(agent_id) <= _MAX_AGENT_ID:
        raise ValueError(f"agent id must be 1-{_MAX_AGENT_ID} characters, got {len(agent_id)}")
    if agent_id == BROADCAST:
        raise ValueError(f"agent id {BROADCAST!r} is reserved for broadcasts")
    if agent_id.startswith(_RESERVED_PREFIX):
        raise ValueError(f"agent id {agent_id!r} must not start with {_RESERVED_PREFIX!r}")
    return agent_id


def _check_keys(obj: dict, allowed: tuple[str, ...], where: str) -> None:
    for key in obj:
        if key not in allowed:
            raise MessageError(f"{where} has unknown key {_show(key)} (allowed: {', '.join(allowed)})")


def _non_empty_str(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value:
        raise MessageError(f"{field} must be a non-empty string, got {_show(value)}")
    if not (value.isascii() or values.is_unicode_text(value)):
        raise MessageError(f"{field} has a lone surrogate: it is not Unicode text")
    return value


def _agent_field(value: Any, field: str, *, broadcast_ok: bool) -> str:
    if not isinstance(value, str):
        raise MessageError(f"{field} must be a string, got {_show(value)}")
    if broadcast_ok and value == BROADCAST:
        return value
    try:
        return validate_agent_id(value)
    except ValueError as e:
        raise MessageError(f"{field}: {e}") from None


def _json_copy(value: Any, path: str, copy: bool = True) -> Any:
    if not copy:
        return value  # the caller vouches: fresh JSON values (e.g. from from_preserves)
    # One pass validates and yields a fresh, normalized copy (tuples -> lists,
    # int/str subclasses -> plain): exactly what survives a trip through the dataspace.
    try:
        return values.json_copy(value, path)
    except values.NotJSON as e:
        raise MessageError(str(e)) from None


def _validate_meta(meta: Any, require_id: bool, copy: bool) -> dict:
    if not isinstance(meta, dict):
        raise MessageError(f"message.meta must be a dict, got {_show(meta)}")
    out: dict = {}
    if "id" in meta:
        out["id"] = _non_empty_str(meta["id"], "meta.id")
    elif require_id:
        raise MessageError("meta.id is missing")
    if "parent_id" in meta:
        # Ids are non-empty, so an empty parent_id could never name a message;
        # None is refused rather than treated as "absent" to keep one spelling.
        out["parent_id"] = _non_empty_str(meta["parent_id"], "meta.parent_id")
    extra = {k: v for k, v in meta.items() if k not in ("id", "parent_id")}
    out.update(_json_copy(extra, "meta", copy))
    return out


def _validate_action(action: Any, copy: bool) -> dict:
    if not isinstance(action, dict):
        raise MessageError(f"message.action must be a dict, got {_show(action)}")
    _check_keys(action, _ACTION_KEYS, "action")
    if "name" not in action:
        raise MessageError("action.name is missing")
    name = _non_empty_str(action["name"], "action.name")
    args = action.get("args", {})
    if not isinstance(args, dict):
        raise MessageError(f"action.args must be a dict, got {_show(args)}")
    return {"name": name, "args": _json_copy(args, "action.args", copy)}


def message_size(message: Any) -> int:
    """The size of a (JSON-like) message in bytes: as compact UTF-8 JSON, exactly as the
    JSON transports carry it (``wire_json.encode_json``). Raises :class:`MessageError`
    for a message with no JSON form (an int over Python's int/str limit), naming it."""
    try:
        return json_size(message)
    except values.NotJSON as e:
        raise MessageError(str(e)) from None


def check_message_size(message: Any, max_size: int) -> None:
    """Raise :class:`MessageError` if ``message`` is over ``max_size`` bytes."""
    size = message_size(message)
    if size > max_size:
        raise MessageError(f"message is {size} bytes (as compact JSON), over the limit of"
                           f" {max_size} bytes")


def validate_message(message: Any, *, require_id: bool = True, copy: bool = True,
                     max_size: int | None = None) -> dict:
    """Check `message` against the schema and return a normalized deep copy.

    With ``copy=False`` only the structure is checked and ``meta`` extras and
    ``action.args`` are taken as they are: for messages just decoded by
    ``values.from_preserves``, which are fresh and JSON already.

    The input is never mutated. With ``require_id=False`` (messages about to
    be sent, before an id is assigned) ``meta`` and ``meta.id`` may be
    absent; a missing ``meta`` comes back as ``{}``. ``action.args``
    defaults to ``{}``. With ``max_size`` a message over that many bytes (see
    :func:`message_size`) is refused, after the schema checks.

    Raises:
        MessageError: naming the first offending field.
    """
    if not isinstance(message, dict):
        raise MessageError(f"message must be a dict, got {type(message).__name__}")
    _check_keys(message, _MESSAGE_KEYS, "message")
    for key in _MESSAGE_KEYS:
        if key not in message and not (key == "meta" and not require_id):
            raise MessageError(f"message.{key} is missing")
    checked = {
        "meta": _validate_meta(message.get("meta", {}), require_id, copy),
        "from": _agent_field(message["from"], "message.from", broadcast_ok=False),
        "to": _agent_field(message["to"], "message.to", broadcast_ok=True),
        "action": _validate_action(message["action"], copy),
    }
    if max_size is not None:
        check_message_size(checked, max_size)
    return checked


def make_reply(
    request: dict, sender: str, *, value: Any = _MISSING, error: str | None = None,
    check: bool = True,
) -> dict:
    """Build the reply from `sender` to `request`: a value or an error, not both.

    The reply gets a fresh ``meta.id``, ``meta.parent_id`` = the request's id,
    and goes back to the request's sender, with action ``[response]``
    (args ``{"value": value}``) or ``[error]`` (args ``{"error": error}``).

    Raises:
        TypeError: unless exactly one of `value` / `error` is given.
        MessageError: if `request` is not a valid message with an id, or the
            reply would not be valid (e.g. `value` is not JSON-like).

    With ``check=False`` (callers holding a validated request and a value they
    have checked, like the agent core) the reply is built without validation.
    """
    if (value is _MISSING) == (error is None):
        raise TypeError("make_reply needs exactly one of value= or error=")
    if error is not None and not isinstance(error, str):
        raise TypeError(f"error must be a string, got {type(error).__name__}")
    if check:
        request = validate_message(request)
    if error is None:
        action = {"name": RESPONSE, "args": {"value": value}}
    else:
        action = {"name": ERROR, "args": {"error": error}}
    reply = {
        "meta": {"id": new_message_id(), "parent_id": request["meta"]["id"]},
        "from": sender,
        "to": request["from"],
        "action": action,
    }
    # Validating the reply copies `value` (so later mutation of the caller's
    # object cannot change the message) and rejects non-JSON values early.
    return validate_message(reply) if check else reply
