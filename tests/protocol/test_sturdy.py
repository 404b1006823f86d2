"""Sturdyref minting and validation (HMAC-BLAKE2s chained over caveats)."""

from __future__ import annotations

import pytest
from preserves import ImmutableDict, Record, Symbol, parse

from dataspace_agency.protocol.sturdy import (KeyRing, Rejected, attenuate, mint, parse_cap,
                                             sign)

DEV_CAP = '<ref {oid: "syndicate" sig: #x"69ca300c1dbfa08fba692102dd82311a"}>'


def _ref(oid, sig, caveats=None):
    params = {Symbol("oid"): oid, Symbol("sig"): sig}
    if caveats is not None:
        params[Symbol("caveats")] = tuple(caveats)
    return Record(Symbol("ref"), [ImmutableDict(params)])


def test_the_well_known_development_cap_is_what_we_mint_with_the_empty_key():
    assert mint(b"", "syndicate") == parse_cap(DEV_CAP)
    assert KeyRing.dev().validate(parse_cap(DEV_CAP)) == "syndicate"


def test_a_minted_ref_validates_with_its_key_only():
    ring = KeyRing.single(b"k" * 16)
    assert ring.validate(mint(b"k" * 16)) == "syndicate"
    with pytest.raises(Rejected, match="bad signature"):
        ring.validate(mint(b"other key"))


def test_a_tampered_signature_or_oid_is_rejected():
    ring = KeyRing.single(b"secret", oid="ds")
    good = sign(b"secret", "ds")
    flipped = bytes([good[0] ^ 1]) + good[1:]
    with pytest.raises(Rejected, match="bad signature"):
        ring.validate(_ref("ds", flipped))
    with pytest.raises(Rejected, match="unknown oid"):
        ring.validate(_ref("other", good))


@pytest.mark.parametrize("caveat, problem", [
    ("<attenuate <_>>", "unsupported caveat"),
    ("<rewrite <_> <attenuate <lit 1> []>>", "<attenuate ...> templates are not supported"),
    ("<rewrite <bind <_>> <ref 1>>", "<ref 1> names no capture"),
    ("<rewrite <nonsense> <ref 0>>", "not a dataspace pattern"),
    ("<or [<reject <_>>]>", "holds rewrites only"),
])
def test_caveats_the_server_cannot_enforce_are_rejected_clearly(caveat, problem):
    caveat = parse(caveat)
    sig = sign(b"secret", "syndicate", (caveat,))
    ring = KeyRing.single(b"secret")
    with pytest.raises(Rejected, match="caveat not enforceable") as rejected:
        ring.validate(_ref("syndicate", sig, [caveat]))
    assert problem in str(rejected.value)


def test_supported_caveats_are_accepted_and_a_caveat_cannot_be_removed():
    caveat = parse("<reject <_>>")
    ring = KeyRing.single(b"secret")
    oid, attenuation = ring.resolve(attenuate(mint(b"secret"), caveat))
    assert oid == "syndicate" and attenuation.apply(1) is None
    # A caveat added without re-chaining the signature is a bad signature...
    with pytest.raises(Rejected, match="bad signature"):
        ring.validate(_ref("syndicate", sign(b"secret", "syndicate"), [caveat]))
    # ... and so is a ref with its caveat stripped but the attenuated signature kept.
    stripped = _ref("syndicate", sign(b"secret", "syndicate", (caveat,)))
    with pytest.raises(Rejected, match="bad signature"):
        ring.validate(stripped)


def test_the_signature_chains_over_caveats():
    caveat = parse("<reject <_>>")
    first = sign(b"secret", "syndicate")
    # The chain: f(f(k, e(oid)), e(caveat)), i.e. the previous signature keys the next MAC.
    import hashlib
    import hmac

    import preserves
    expected = hmac.new(first, preserves.canonicalize(caveat), hashlib.blake2s).digest()[:16]
    assert sign(b"secret", "syndicate", (caveat,)) == expected


@pytest.mark.parametrize("bad", ["<nonsense>", "<ref 1>", "not preserves {"])
def test_parse_cap_names_the_problem(bad):
    with pytest.raises(ValueError, match="sturdyref"):
        parse_cap(bad)


def test_key_file_lines(tmp_path):
    path = tmp_path / "keys"
    path.write_text("# comment\n\n" + (b"a" * 16).hex() + "\n" + (b"b" * 16).hex()
                    + ' "second"\n')
    ring = KeyRing.from_file(str(path))
    assert ring.validate(mint(b"a" * 16)) == "syndicate"
    assert ring.validate(mint(b"b" * 16, "second")) == "second"
    path.write_text("zz\n")
    with pytest.raises(ValueError, match="HEXKEY"):
        KeyRing.from_file(str(path))
