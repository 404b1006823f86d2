"""Whatever ``validate_message`` accepts, every backend carries intact.

Generated messages (surrogates in strings and keys, nesting near the depth limit, ints up
to Python's int/str limit, NaN and the infinities, -0.0, non-ASCII keys, extra ``meta``
keys) are sent by a client handle to an agent whose action answers with a lossless
fingerprint of the args and ``meta`` it received (``wire_strategies.fingerprint``: flat
text, since echoing a value as deep as the limit would nest it deeper); on every backend
that must be the fingerprint of what was sent (NaN is NaN, -0.0 keeps its sign, types
count, a surrogate pair stays two code points). A message the validator refuses (too deep)
must be refused with the same ``MessageError`` at ``request()`` on every backend.

The message crosses each backend's own boundary: the broker (AMQPSpace, JSON), a pipe to a
child process (MultiprocessQueueSpace, JSON), the dataspace (Preserves) in process or
through a server process (RemoteDataspaceSpace, Preserves on the wire), both modes.
Bounded: a space per backend for the whole module, 30 examples each.

Strings with surrogate code points (lone, or a high+low pair, which in a Python str is two
code points, not the character it would encode in UTF-16) are not Unicode text: Preserves
and UTF-8 have no form for them, so the validator refuses them, naming the path, and every
backend refuses them with the same error. The generated values include them, so the
refusal is checked on every backend; values without them check that the rest is carried.
"""

from __future__ import annotations

import sys
import uuid

import pytest
from hypothesis import HealthCheck, given, settings

from dataspace_agency import (ActionError, Agent, AMQPSpace, DataspaceSpace, MessageError,
                              MultiprocessQueueSpace, QueueSpace, action)
from dataspace_agency.classic.message import validate_message
from dataspace_agency.spaces.remote_space import RemoteDataspaceSpace
from dataspace_agency.classic.values import MAX_DEPTH
from wire_strategies import _nest, every, fingerprint, without_surrogates

WAIT = 20.0  # a round trip that does not come within this has failed


class Mirror(Agent):
    """Answers with what its action received: exactly (``echo``), or fingerprinted."""

    @action
    async def mirror(self, **args):
        meta = dict(self.current_message()["meta"])
        del meta["id"]
        return {"args": fingerprint(args), "meta": fingerprint(meta)}

    @action
    async def echo(self, **args):
        return args


BACKENDS = {
    "queue": lambda request: QueueSpace(),
    "multiprocess": lambda request: MultiprocessQueueSpace(),
    "amqp": lambda request: AMQPSpace(request.getfixturevalue("amqp_url"),
                                      exchange=f"wire-{uuid.uuid4().hex}"),
    "dataspace-message": lambda request: DataspaceSpace(mode="message"),
    "dataspace-assertion": lambda request: DataspaceSpace(mode="assertion"),
    "remote-message": lambda request: RemoteDataspaceSpace(mode="message"),
    "remote-assertion": lambda request: RemoteDataspaceSpace(mode="assertion"),
}
JSON_BACKENDS = {"multiprocess", "amqp"}
IN_PROCESS = {"queue", "dataspace-message", "dataspace-assertion"}


@pytest.fixture(scope="module", params=list(BACKENDS))
def backend(request):
    """(name, space, handle): the mirror is added with add() (on MultiprocessQueueSpace a
    child process of its own)."""
    space = BACKENDS[request.param](request)
    try:
        space.add(Mirror, "mirror")
        me = space.connect("me")
        yield request.param, space, me
    finally:
        space.destroy()


def _through(me, args: dict, extras: dict, timeout: float = WAIT, name: str = "mirror"):
    return me.request({"to": "mirror", "action": {"name": name, "args": args},
                       "meta": extras}, timeout=timeout)


def _check_carried(me, args: dict, extras: dict, timeout: float = WAIT) -> None:
    try:
        checked = validate_message({"meta": extras, "from": "me", "to": "mirror",
                                    "action": {"name": "mirror", "args": args}},
                                   require_id=False)
    except MessageError as refused:  # the validator says no: so must every backend
        with pytest.raises(MessageError) as raised:
            _through(me, args, extras)
        assert str(raised.value) == str(refused)
        return
    got = _through(me, args, extras, timeout)
    assert got == {"args": fingerprint(checked["action"]["args"]),
                   "meta": fingerprint(checked["meta"])}


@settings(max_examples=30, deadline=None, suppress_health_check=[
    HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=every.args, extras=every.meta_extras,
       plain=without_surrogates.args, plain_extras=without_surrogates.meta_extras)
def test_every_backend_carries_what_the_validator_accepts(backend, data, extras, plain,
                                                          plain_extras):
    """With surrogates in the strings (refused everywhere alike) and without (carried)."""
    name, _space, me = backend
    _check_carried(me, data, extras)
    _check_carried(me, plain, plain_extras)


def test_an_int_over_pythons_limit(backend):
    """No JSON text exists for it (wire_json): the JSON backends, and the remote ones
    (whose size check measures JSON), answer the request with the same ``MessageError``
    naming it; the in-process ones hold the int itself and carry it. Everything goes on
    working afterwards. (Uniform once the validator refuses such ints: then
    ``_check_carried`` expects the refusal at request() everywhere.)"""
    name, _space, me = backend
    huge = -(10 ** (sys.get_int_max_str_digits() or 4300))
    try:
        validate_message({"meta": {}, "from": "me", "to": "mirror",
                          "action": {"name": "mirror", "args": {"n": [huge]}}},
                         require_id=False)
    except MessageError:
        _check_carried(me, {"n": [huge]}, {})
        return
    if name in IN_PROCESS:
        assert _through(me, {"n": [huge]}, {}, name="echo") == {"n": [huge]}
    else:
        with pytest.raises(ActionError, match=r"^MessageError: action\.args\.n\[0\]: an int"
                                              r" of more than \d+ digits has no JSON form"):
            _through(me, {"n": [huge]}, {}, name="echo")
    assert _through(me, {"after": 1}, {}, name="echo") == {"after": 1}


def test_args_nested_past_the_limit_are_refused_alike(backend):
    name, _space, me = backend
    for as_dicts in (False, True):
        _check_carried(me, {"a": _nest(MAX_DEPTH, 1, as_dicts)}, {})  # refused: checked


@pytest.mark.parametrize("name", list(BACKENDS))
def test_args_nested_to_the_limit_are_carried(name, request):
    """args (one level) holding a value of MAX_DEPTH - 1 more levels: the deepest message
    the validator accepts. A space of its own: a backend that miscounted the depth of the
    message around args broke its space here."""
    space = BACKENDS[name](request)
    try:
        space.add(Mirror, "mirror")
        me = space.connect("me")
        for as_dicts in (False, True):
            _check_carried(me, {"a": _nest(MAX_DEPTH - 1, 1, as_dicts)}, {"m": [1]},
                           timeout=5)
    finally:
        space.destroy()


@pytest.mark.parametrize("mode", ["message", "assertion"])
def test_a_lone_surrogate_is_refused_by_name_and_the_space_goes_on(mode):
    with RemoteDataspaceSpace(mode=mode) as space:
        space.add(Mirror, "mirror")
        me = space.connect("me")
        with pytest.raises(MessageError, match=r"action\.args\.s: a string with a lone"
                                               r" surrogate \(U\+D800 at index 1\)"):
            _through(me, {"s": "a\ud800b"}, {}, timeout=2, name="echo")
        assert _through(me, {"s": "a\u00e9b"}, {}, timeout=5, name="echo") == {"s": "a\u00e9b"}


def test_an_argument_named_self_is_answered_with_the_calls_error(backend):
    """``self`` names an action's receiver, so no call can bind it as an argument: the
    answer is the call's TypeError, as an ``[error]``, on every backend alike (the
    strategies above leave the name out for that reason)."""
    _, _, me = backend
    with pytest.raises(ActionError, match="multiple values for argument 'self'"):
        _through(me, {"self": 1}, {})
