"""The one JSON encoding of classic messages, for every transport that carries them as bytes.

``MultiprocessQueueSpace`` (pipes to its children), ``AMQPSpace`` (message bodies) and the
control messages of ``MultiprocessDataspaceSpace`` all write JSON with :func:`encode_json`
and read it with :func:`decode_json`; :func:`json_size` (``message.message_size``, the
size limit of docs/limits.md) is the length of exactly those bytes. The dataspace
backends carry Preserves instead (``classic/values.py``).

The dialect: compact JSON text (no spaces), UTF-8. It carries every value the JSON-like
mapping of ``values.py`` holds, so what ``validate_message`` accepts arrives as sent:

* **Strings with surrogate code points** (a lone ``"\\ud800"``, or a high and a low
  surrogate side by side, which Python keeps as two code points): each is written as its
  three-byte UTF-8 form (``"surrogatepass"``), not as a ``\\uXXXX`` escape. An escape
  would be lossy: a JSON reader joins ``\\ud83d\\ude00`` into one character, U+1F600. The
  bytes are then not strict UTF-8, which only this reader has to read (the reader of
  every JSON transport here). Text without surrogates is plain UTF-8.
* **NaN, Infinity and -Infinity** are written as those bare words (Python's ``json``
  dialect, read back by the same); ``-0.0`` keeps its sign; every float its exact value
  (``repr``). A NaN's sign and payload bits are not kept (any NaN reads back as NaN).
* **Integers of any size up to Python's limit for int/str conversion**
  (``sys.get_int_max_str_digits()``, 4,300 digits unless the user changes it): beyond it
  there is no JSON text for them (writing and reading such numbers takes time quadratic
  in their length, which is why Python refuses), so :func:`encode_json` raises
  :class:`~dataspace_agency.classic.values.NotJSON` naming the path of the int, and
  :func:`decode_json` refuses such a number in what it reads. The transports answer a
  request that cannot be encoded with an ``[error]`` reply ``MessageError: ...`` (see
  ``spaces/wire.py``); the in-process backends hold the int as it is and so carry it.
* Keys keep their order; nesting is bounded by the validator (``values.MAX_DEPTH``), and
  a reader given deeper input refuses it with a ``ValueError`` instead of overflowing.
"""

from __future__ import annotations

import json
import json.encoder
import sys
from typing import Any

from .values import NotJSON

__all__ = ["decode_json", "encode_json", "json_size"]

# One encoder, made once (json.dumps with options builds a new one per call). Not ASCII:
# non-ASCII text stays compact; surrogates are passed through by the UTF-8 step below.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, check_circular=False)
_DECODE = json.JSONDecoder().decode
# The C encoder behind _ENCODER.encode, made once too: encode() makes a new one per call
# (a third of the cost of sizing a small message; every message arriving from a server
# is sized). Same options, same text; None where the C accelerator is missing.
_C_ENCODE = (json.encoder.c_make_encoder(
    None, _ENCODER.default, json.encoder.encode_basestring, None, ":", ",", False, False,
    True) if json.encoder.c_make_encoder is not None else None)


def _encode(value: Any) -> str:
    if _C_ENCODE is not None and type(value) is dict:
        return "".join(_C_ENCODE(value, 0))
    return _ENCODER.encode(value)


def _text(value: Any) -> str:
    """The JSON text of ``value``; NotJSON if it has none."""
    try:
        return _encode(value)
    except ValueError:  # an int over Python's int/str limit: say which one
        raise NotJSON(_too_long_int(value)) from None
    except RecursionError:  # only for values the validator would refuse (too deep)
        raise NotJSON("value: nested too deep to encode as JSON") from None


def encode_json(value: Any) -> bytes:
    """``value`` (JSON-like, e.g. a validated classic message) as the bytes every JSON
    transport carries. Raises :class:`NotJSON` for an int with no JSON text."""
    return _text(value).encode("utf-8", "surrogatepass")


def json_size(value: Any) -> int:
    """``len(encode_json(value))``, without building the bytes for ASCII text."""
    text = _text(value)
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def decode_json(data: bytes) -> Any:
    """The value :func:`encode_json` wrote. Raises ``ValueError`` (naming the problem)
    for bytes that are not such JSON: malformed, cut short, or over the limits above."""
    try:
        return _DECODE(data.decode("utf-8", "surrogatepass"))
    except RecursionError:
        raise ValueError("not a JSON value: nested too deep") from None
    except ValueError as error:  # JSONDecodeError, UnicodeDecodeError, int limit
        raise ValueError(f"not a JSON value: {error}") from None


# --- naming the int that has no JSON text (only when encoding has failed) -------------------

def _key_path(path: str, key: str) -> str:
    # The paths read as the validator's do: action.args.n, meta['a b'].
    if not path:
        return key
    return f"{path}.{key}" if key.isidentifier() else f"{path}[{key!r}]"


def _find_long_int(value: Any, path: str, limit: int) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        # Compared, not converted (converting is what fails); bit_length rules out most.
        too_long = value.bit_length() > 3 * limit and abs(value) >= 10**limit
        return path if too_long else None
    if isinstance(value, dict):
        for key, item in value.items():
            found = _find_long_int(item, _key_path(path, str(key)), limit)
            if found is not None:
                return found
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            found = _find_long_int(item, f"{path}[{i}]", limit)
            if found is not None:
                return found
    return None


def _too_long_int(value: Any) -> str:
    limit = sys.get_int_max_str_digits()
    path = _find_long_int(value, "", limit) if limit else None
    return (f"{path or 'value'}: an int of more than {limit} digits has no JSON form"
            f" (Python's limit for int/str conversion, sys.set_int_max_str_digits)")
