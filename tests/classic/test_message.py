"""The classic message schema in dataspace_agency.classic.message."""

from __future__ import annotations

import copy
import uuid

import pytest

from dataspace_agency.classic.message import (
    BROADCAST,
    ERROR,
    RESPONSE,
    MessageError,
    make_reply,
    new_message_id,
    validate_agent_id,
    validate_message,
)


def msg(**overrides):
    m = {
        "meta": {"id": "m1"},
        "from": "alice",
        "to": "bob",
        "action": {"name": "say", "args": {"content": "hi"}},
    }
    m.update(overrides)
    return m


def error_of(message, **kw) -> str:
    with pytest.raises(MessageError) as info:
        validate_message(message, **kw)
    return str(info.value)


def test_constants():
    assert (RESPONSE, ERROR, BROADCAST) == ("[response]", "[error]", "*")


def test_valid_message_is_returned_as_equal_copy():
    m = msg()
    out = validate_message(m)
    assert out == m
    assert out is not m and out["meta"] is not m["meta"]
    assert out["action"]["args"] is not m["action"]["args"]


def test_input_is_never_mutated():
    m = msg(meta={"id": "m1", "trace": [1, (2, 3)]}, action={"name": "say"})
    before = copy.deepcopy(m)
    out = validate_message(m)
    assert m == before
    assert out["action"]["args"] == {}
    assert "args" not in m["action"]
    out["meta"]["trace"][0] = 99
    assert m["meta"]["trace"][0] == 1


def test_normalizes_tuples_to_lists():
    out = validate_message(msg(action={"name": "say", "args": {"xs": (1, (2,))}}))
    assert out["action"]["args"]["xs"] == [1, [2]]
    assert type(out["action"]["args"]["xs"][1]) is list


def test_extra_meta_keys_kept_and_parent_id_absent_unless_set():
    out = validate_message(msg(meta={"id": "m1", "trace": {"hops": 2}}))
    assert out["meta"] == {"id": "m1", "trace": {"hops": 2}}
    assert "parent_id" not in out["meta"]
    out = validate_message(msg(meta={"id": "m2", "parent_id": "m1"}))
    assert out["meta"] == {"id": "m2", "parent_id": "m1"}


def test_broadcast_to_allowed():
    assert validate_message(msg(to="*"))["to"] == "*"


def test_require_id_false():
    m = msg()
    del m["meta"]
    assert validate_message(m, require_id=False)["meta"] == {}
    assert validate_message(msg(meta={}), require_id=False)["meta"] == {}
    assert validate_message(msg(meta={"x": 1}), require_id=False)["meta"] == {"x": 1}
    assert error_of(m) == "message.meta is missing"
    # An id, when given, must still be well formed.
    assert error_of(msg(meta={"id": ""}), require_id=False) == "meta.id must be a non-empty string, got ''"


@pytest.mark.parametrize(
    "message, text",
    [
        ([], "message must be a dict, got list"),
        (msg(foo=1), "message has unknown key 'foo' (allowed: meta, from, to, action)"),
        ({"meta": {"id": "m1"}, "from": "a", "action": {"name": "x"}}, "message.to is missing"),
        ({"meta": {"id": "m1"}, "to": "a", "action": {"name": "x"}}, "message.from is missing"),
        ({"meta": {"id": "m1"}, "from": "a", "to": "b"}, "message.action is missing"),
        (msg(meta=[]), "message.meta must be a dict, got []"),
        (msg(meta={}), "meta.id is missing"),
        (msg(meta={"id": ""}), "meta.id must be a non-empty string, got ''"),
        (msg(meta={"id": 7}), "meta.id must be a non-empty string, got 7"),
        (msg(meta={"id": "m", "parent_id": None}), "meta.parent_id must be a non-empty string, got None"),
        (msg(meta={"id": "m", "parent_id": 3}), "meta.parent_id must be a non-empty string, got 3"),
        (msg(meta={"id": "m", "x": b"raw"}), "meta.x: not a JSON value: b'raw' (bytes)"),
        (msg(meta={"id": "m", 1: "a"}), "meta: dict keys must be strings, got 1 (int)"),
        (msg(**{"from": 3}), "message.from must be a string, got 3"),
        (msg(**{"from": "*"}), "message.from: agent id '*' is reserved for broadcasts"),
        (msg(**{"from": ""}), "message.from: agent id must be 1-255 characters, got 0"),
        (msg(to=None), "message.to must be a string, got None"),
        (msg(to="amq.gen"), "message.to: agent id 'amq.gen' must not start with 'amq.'"),
        (msg(to="x" * 256), "message.to: agent id must be 1-255 characters, got 256"),
        (msg(action="say"), "message.action must be a dict, got 'say'"),
        (msg(action={"name": "say", "kw": {}}), "action has unknown key 'kw' (allowed: name, args)"),
        (msg(action={"args": {}}), "action.name is missing"),
        (msg(action={"name": 3}), "action.name must be a non-empty string, got 3"),
        (msg(action={"name": ""}), "action.name must be a non-empty string, got ''"),
        (msg(action={"name": "x", "args": [1]}), "action.args must be a dict, got [1]"),
        (msg(action={"name": "x", "args": None}), "action.args must be a dict, got None"),
        (msg(action={"name": "x", "args": {"a": {2: 1}}}), "action.args.a: dict keys must be strings, got 2 (int)"),
        (msg(action={"name": "x", "args": {"a": [0, {1}]}}), "action.args.a[1]: not a JSON value: {1} (set)"),
    ],
)
def test_rejections(message, text):
    assert error_of(message) == text


def test_message_error_is_value_error():
    assert issubclass(MessageError, ValueError)


@pytest.mark.parametrize("good", ["a", "x" * 255, "amq", "team.amq.x", "Ünïcode"])
def test_agent_id_accepted(good):
    assert validate_agent_id(good) == good


@pytest.mark.parametrize(
    "bad, text",
    [
        ("", "agent id must be 1-255 characters, got 0"),
        ("x" * 256, "agent id must be 1-255 characters, got 256"),
        ("*", "agent id '*' is reserved for broadcasts"),
        ("amq.x", "agent id 'amq.x' must not start with 'amq.'"),
        (5, "agent id must be a string, got int"),
        (None, "agent id must be a string, got NoneType"),
    ],
)
def test_agent_id_rejected(bad, text):
    with pytest.raises(ValueError) as info:
        validate_agent_id(bad)
    assert str(info.value) == text


def test_new_message_id_is_uuid4():
    a, b = new_message_id(), new_message_id()
    assert a != b
    assert uuid.UUID(a).version == 4 and str(uuid.UUID(a)) == a


def test_make_reply_value():
    request = msg(meta={"id": "req-1", "trace": 1})
    before = copy.deepcopy(request)
    reply = make_reply(request, "bob", value={"n": [1, 2]})
    assert request == before
    assert reply["meta"]["parent_id"] == "req-1"
    assert set(reply["meta"]) == {"id", "parent_id"}
    uuid.UUID(reply["meta"]["id"])
    assert reply["from"] == "bob" and reply["to"] == "alice"
    assert reply["action"] == {"name": "[response]", "args": {"value": {"n": [1, 2]}}}
    assert validate_message(reply) == reply


def test_make_reply_none_is_a_legal_value():
    reply = make_reply(msg(), "bob", value=None)
    assert reply["action"] == {"name": RESPONSE, "args": {"value": None}}


def test_make_reply_error():
    reply = make_reply(msg(), "bob", error="no such action")
    assert reply["action"] == {"name": ERROR, "args": {"error": "no such action"}}
    assert reply["to"] == "alice"


def test_make_reply_copies_value():
    value = {"xs": [1]}
    reply = make_reply(msg(), "bob", value=value)
    value["xs"].append(2)
    assert reply["action"]["args"]["value"] == {"xs": [1]}


def test_make_reply_ids_are_fresh():
    assert make_reply(msg(), "bob", value=1)["meta"]["id"] != make_reply(msg(), "bob", value=1)["meta"]["id"]


@pytest.mark.parametrize(
    "kw",
    [{}, {"value": 1, "error": "boom"}],
)
def test_make_reply_needs_exactly_one_of_value_error(kw):
    with pytest.raises(TypeError, match="exactly one of value= or error="):
        make_reply(msg(), "bob", **kw)


def test_make_reply_rejects_bad_inputs():
    with pytest.raises(TypeError, match="error must be a string, got int"):
        make_reply(msg(), "bob", error=3)
    with pytest.raises(MessageError, match=r"^meta.id is missing$"):
        make_reply(msg(meta={}), "bob", value=1)
    with pytest.raises(MessageError, match=r"^message.from: agent id '\*' is reserved for broadcasts$"):
        make_reply(msg(), "*", value=1)
    with pytest.raises(MessageError, match=r"^action.args.value: not a JSON value: b'x' \(bytes\)$"):
        make_reply(msg(), "bob", value=b"x")


def test_message_ids_are_distinct_version_4_uuids():
    import uuid
    from dataspace_agency.classic.message import new_message_id
    ids = [new_message_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    for text in ids:
        parsed = uuid.UUID(text)
        assert (parsed.version, parsed.variant, str(parsed)) == (4, uuid.RFC_4122, text)


def test_message_ids_from_many_threads_are_distinct():
    # Each thread draws ids from a random supply of its own (classic/message.py):
    # threads taking ids at once must still never share one.
    import threading
    from dataspace_agency.classic.message import new_message_id
    results: list[list[str]] = []
    start = threading.Barrier(4)

    def take() -> None:
        start.wait(timeout=10)
        results.append([new_message_id() for _ in range(1000)])
    threads = [threading.Thread(target=take) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    ids = [i for batch in results for i in batch]
    assert len(results) == 4 and len(set(ids)) == len(ids) == 4000


def test_a_forked_child_does_not_repeat_its_parents_message_ids():
    # The parent's supply of random digits is copied into a forked child (the
    # multiprocess backends fork): the child must draw a fresh one, not hand out the
    # ids its parent is about to.
    import os
    from dataspace_agency.classic.message import new_message_id
    new_message_id()  # the parent's supply is now filled, and mostly unused
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next ids, then exit without running pytest's cleanup
        try:
            os.write(write, "\n".join(new_message_id() for _ in range(50)).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child_ids = pipe.read().split("\n")
    assert os.waitpid(pid, 0)[1] == 0
    parent_ids = [new_message_id() for _ in range(50)]
    assert len(child_ids) == 50 and not set(child_ids) & set(parent_ids)
