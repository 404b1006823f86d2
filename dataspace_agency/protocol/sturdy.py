"""Sturdyrefs: capabilities as data, checked by a keyed MAC (Syndicate's macaroons).

A sturdyref is ``<ref {oid: any, sig: bytes, caveats?: [caveat ...]}>``. With
``f(k, d) = HMAC-BLAKE2s-256(k, d)[:16]`` and ``e`` the canonical binary Preserves form,
``sig = f(... f(f(key, e(oid)), e(caveat1)) ..., e(caveatN))``: each caveat is chained on,
so a holder can attenuate a ref without the key but cannot remove a caveat.

Caveats restrict what the holder may assert and send (see ``caveats.py`` for the subset
understood: ``<rewrite p t>``, ``<reject p>``, ``<or [...]>``). :func:`attenuate` adds
caveats to a ref without the key; :meth:`KeyRing.resolve` checks a ref and compiles its
caveats. A ref whose caveats the server cannot enforce is *rejected*, naming the caveat,
never accepted with its restrictions ignored.

Keys: a :class:`KeyRing` maps each accepted oid to its secret key. The well-known
development cap (empty key, oid ``"syndicate"``) is ``KeyRing.dev()``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

import preserves
from preserves import ImmutableDict, Record, Symbol

from .caveats import Attenuation, InvalidCaveat

__all__ = ["KeyRing", "Rejected", "attenuate", "mint", "parse_cap", "resolve", "sign",
           "validate"]

_REF = Symbol("ref")
_OID, _SIG, _CAVEATS = Symbol("oid"), Symbol("sig"), Symbol("caveats")
SIG_LENGTH = 16


class Rejected(ValueError):
    """A sturdyref was refused; the text says why (it goes back in ``<rejected ...>``)."""


def _mac(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.blake2s).digest()[:SIG_LENGTH]


def _canonical(value: Any) -> bytes:
    return preserves.canonicalize(value)


def sign(key: bytes, oid: Any, caveats: tuple = ()) -> bytes:
    """The signature of a ref to ``oid`` with ``caveats`` under ``key``."""
    sig = _mac(key, _canonical(oid))
    for caveat in caveats:
        sig = _mac(sig, _canonical(caveat))
    return sig


def mint(key: bytes, oid: Any = "syndicate") -> Record:
    """A sturdyref to ``oid`` signed with ``key``: ``<ref {oid: ..., sig: ...}>``."""
    return Record(_REF, [ImmutableDict({_OID: oid, _SIG: sign(key, oid)})])


def attenuate(cap: Any, *caveats: Any) -> Record:
    """``cap`` restricted further by ``caveats`` (Preserves values or text). Needs no key:
    the new signature is chained on the old one, so a holder can narrow a ref it was given
    but never widen it (removing a caveat would need the MAC of the shorter chain)."""
    cap = parse_cap(cap)
    params = cap.fields[0]
    added = tuple(preserves.parse(c) if isinstance(c, str) else preserves.preserve(c)
                  for c in caveats)
    sig = params[_SIG]
    for caveat in added:
        sig = _mac(sig, _canonical(caveat))
    old = tuple(params.get(_CAVEATS, ()))
    new = {_OID: params[_OID], _SIG: sig}
    if old or added:
        new[_CAVEATS] = old + added
    return Record(_REF, [ImmutableDict(new)])


def parse_cap(cap: Any) -> Record:
    """A sturdyref from a value or its Preserves text (``'<ref {oid: ... sig: ...}>'``)."""
    if isinstance(cap, str):
        try:
            cap = preserves.parse(cap)
        except Exception as exc:  # noqa: BLE001 - preserves raises several kinds
            raise ValueError(f"not a sturdyref in Preserves text: {cap!r} ({exc})") from None
    cap = preserves.preserve(cap)
    if not (isinstance(cap, Record) and cap.key == _REF and len(cap.fields) == 1
            and isinstance(cap.fields[0], dict)):
        raise ValueError(f"not a sturdyref (want <ref {{oid: ... sig: ...}}>): {cap!r}")
    return cap


@dataclass(frozen=True)
class KeyRing:
    """The oids a server accepts refs to, each with its secret key."""

    keys: dict  # oid -> key (bytes)

    @classmethod
    def single(cls, key: bytes, oid: Any = "syndicate") -> "KeyRing":
        return cls({oid: bytes(key)})

    @classmethod
    def random(cls, oid: Any = "syndicate") -> "KeyRing":
        return cls.single(secrets.token_bytes(16), oid)

    @classmethod
    def dev(cls) -> "KeyRing":
        """The well-known development key (empty): anyone can mint a ref. Tests only."""
        return cls.single(b"", "syndicate")

    @classmethod
    def from_file(cls, path: str) -> "KeyRing":
        """Lines ``HEXKEY [OID]`` (OID in Preserves text, default ``"syndicate"``);
        blank lines and ``#`` comments are skipped."""
        keys: dict = {}
        with open(path, encoding="utf-8") as lines:
            for number, line in enumerate(lines, 1):
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                hex_key, _, oid_text = line.partition(" ")
                try:
                    key = bytes.fromhex(hex_key)
                    oid = preserves.parse(oid_text.strip()) if oid_text.strip() else "syndicate"
                except Exception as exc:  # noqa: BLE001
                    raise ValueError(f"{path}:{number}: want 'HEXKEY [OID]': {exc}") from None
                keys[oid] = key
        if not keys:
            raise ValueError(f"{path}: no keys")
        return cls(keys)

    def caps(self) -> list[Record]:
        """A fresh, unattenuated ref for every oid."""
        return [mint(key, oid) for oid, key in self.keys.items()]

    def validate(self, cap: Any) -> Any:
        """The oid of ``cap`` if its signature is good and its caveats are ones this
        server enforces; else :class:`Rejected` naming the problem."""
        return resolve(self, cap)[0]

    def resolve(self, cap: Any) -> tuple[Any, Attenuation]:
        """``(oid, attenuation)`` of a good ``cap`` (an empty :class:`Attenuation` for
        an unattenuated ref); else :class:`Rejected` naming the problem."""
        return resolve(self, cap)


def validate(ring: KeyRing, cap: Any) -> Any:
    """See :meth:`KeyRing.validate`."""
    return resolve(ring, cap)[0]


def resolve(ring: KeyRing, cap: Any) -> tuple[Any, Attenuation]:
    """See :meth:`KeyRing.resolve`."""
    if not (isinstance(cap, Record) and cap.key == _REF and len(cap.fields) == 1
            and isinstance(cap.fields[0], dict)):
        raise Rejected(f"not a sturdyref: {cap!r:.200}")
    params = cap.fields[0]
    if _OID not in params or not isinstance(params.get(_SIG), bytes):
        raise Rejected("sturdyref lacks oid or sig")
    oid, sig = params[_OID], params[_SIG]
    caveats = params.get(_CAVEATS, ())
    if not isinstance(caveats, (tuple, list)):
        raise Rejected("sturdyref caveats must be a sequence")
    try:
        key = ring.keys.get(oid)
    except TypeError:
        key = None  # an unhashable oid (cannot come off the wire, but in-process)
    if key is None:
        raise Rejected(f"unknown oid {oid!r:.100}")
    if not hmac.compare_digest(sign(key, oid, tuple(caveats)), sig):
        raise Rejected("bad signature")
    try:
        attenuation = Attenuation(caveats)
    except InvalidCaveat as exc:
        raise Rejected(f"caveat not enforceable by this server: {exc}") from None
    except RecursionError:  # any holder may add a caveat, however deeply nested
        raise Rejected("caveat nested too deeply") from None
    return oid, attenuation
