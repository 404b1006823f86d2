"""Classic messages as bytes, for the spaces that carry them so (``MultiprocessQueueSpace``,
``AMQPSpace``): the one JSON encoding (``classic/wire_json.py``) with the message rules
around it, in one place.

* :func:`encode_message` / :func:`decode_message`: a validated message to bytes and back
  (decoding checks the schema: the bytes may come from another process).
* :func:`refusal`: what a transport sends instead of a message it cannot encode (an int
  over Python's int/str limit, see ``wire_json``), so that the sender learns why at once
  rather than by a timeout: a request is answered ``[error] MessageError: <the problem>``
  on behalf of its addressee; a reply whose value cannot be encoded is replaced by that
  error reply; a broadcast (nobody waits for it) is only logged by the transport.
"""

from __future__ import annotations

from ..classic.message import (BROADCAST, ERROR, RESPONSE, MessageError, make_reply,
                               new_message_id, validate_message)
from ..classic.values import NotJSON
from ..classic.wire_json import decode_json, encode_json

__all__ = ["decode_message", "encode_message", "refusal"]


def encode_message(message: dict) -> bytes:
    """A validated classic message as JSON bytes. Raises :class:`MessageError` naming the
    part that has no JSON form."""
    try:
        return encode_json(message)
    except NotJSON as error:
        raise MessageError(str(error)) from None


def decode_message(data: bytes) -> dict:
    """The classic message in ``data``, checked against the schema. Raises
    :class:`MessageError` (a ``ValueError``) naming what is wrong."""
    try:
        value = decode_json(data)
    except ValueError as error:
        raise MessageError(str(error)) from None
    # Fresh from the JSON reader: plain JSON already, so only the structure is checked.
    return validate_message(value, copy=False)


def refusal(message: dict, error: MessageError) -> dict | None:
    """The ``[error]`` message to route in place of ``message``, which could not be
    encoded; None when nobody is owed an answer (broadcasts, ``[error]`` replies)."""
    text = f"MessageError: {error}"
    name = message["action"]["name"]
    if message["to"] == BROADCAST or name == ERROR:
        return None
    if name == RESPONSE:  # the requester gets the error instead of the value
        return {"meta": {"id": new_message_id(), "parent_id": message["meta"]["parent_id"]},
                "from": message["from"], "to": message["to"],
                "action": {"name": ERROR, "args": {"error": text}}}
    return make_reply(message, sender=message["to"], error=text, check=False)
