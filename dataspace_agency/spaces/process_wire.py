"""The bytes between a process space's parent and its children.

Every frame is one ``send_bytes``: a tag byte, then JSON in the encoding every byte
transport shares (``classic/wire_json.py``); nothing is ever pickled. ``MESSAGE``: a
classic message (``spaces/wire.py``: a value with no JSON form raises ``MessageError``,
answered with a refusal); ``CONTROL``: a small dict between parent and child (``op``:
start-up, stop, failures).
"""

from __future__ import annotations

import logging
import multiprocessing.connection
from typing import Any, Callable

from ..classic.message import MessageError
from ..classic.wire_json import decode_json, encode_json
from .wire import encode_message, refusal

log = logging.getLogger(__name__)

MESSAGE = b"M"
CONTROL = b"C"


def encode_frame(tag: bytes, obj: dict) -> bytes:
    """A tagged frame; raises MessageError for a classic message with no JSON form."""
    return tag + (encode_message(obj) if tag == MESSAGE else encode_json(obj))


def decode_frame(data: bytes) -> Any:
    # Frames come from our own processes (parent or child), written by _encode from
    # messages validated on the way out: read, not validated again.
    return decode_json(data[1:])


def send_control(conn: multiprocessing.connection.Connection, control: dict) -> None:
    """Write a control frame (raises OSError/ValueError once the other side has gone)."""
    conn.send_bytes(encode_frame(CONTROL, control))


def recv_control(conn: multiprocessing.connection.Connection) -> dict:
    """Read a control frame (EOFError once the other side has gone)."""
    return decode_frame(conn.recv_bytes())


def refused(message: dict, error: MessageError, route: Callable[[dict], Any]) -> None:
    """``message`` cannot be encoded for the pipe: log it, and route its refusal (see
    spaces/wire.py), which always can be."""
    log.warning('a message from "%s" to "%s" cannot be sent: %s', message["from"],
                message["to"], error)
    answer = refusal(message, error)
    if answer is not None:
        route(answer)
