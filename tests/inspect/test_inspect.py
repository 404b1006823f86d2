"""The inspector (dataspace_agency.inspect): its JSON and event streams, against a real
server (``dataspace-agency serve`` in a child), the real ``dataspace-agency inspect``
command in another child, and agents in further child processes; and ``space.inspect()``
for a space of this process. The page in a real browser: test_browser.py."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from preserves import Record, Symbol

from dataspace_agency import DataspaceSpace
from dataspace_agency.inspect import BadPattern, View, parse_http, parse_template
from dataspace_agency.native import open_dataspace
from dataspace_agency.protocol.process import ServerProcess
from dataspace_agency.spaces import MultiprocessDataspaceSpace, RemoteDataspaceSpace
from inspect_client import (CALCULATOR, WAIT, Calculator, Child, EventStream, Researcher,
                            agent_ids, facts_url, free_tcp_port, get_json, inspector, offers)

# --- templates: the pattern box's text ----------------------------------------------------

def rec(label: str, *fields) -> Record:
    return Record(Symbol(label), list(fields))


async def test_templates_match_what_they_say():
    facts = [rec("agent", "calc"), rec("agent", "me"),
             rec("action", "calc", "add", {"description": "Add."}),
             rec("action", "calc", "help", {}), {"b": 2, "a": 1}, (1, "x", Symbol("$s"))]
    cases = {
        "<agent $id>": [(rec("agent", "calc"), "calc"), (rec("agent", "me"), "me")],
        '<agent "calc">': [(rec("agent", "calc"),)],
        '<action $who "add" _>': [(facts[2], "calc")],
        '{"b": $b "a": $a}': [(facts[4], 1, 2)],  # captures in the dataspace's key order
        "[1 $x $$s]": [(facts[5], "x")],
        "<nothing _>": [],
    }
    async with open_dataspace() as ds:
        for fact in facts:
            ds.publish(fact)
        for text, expected in cases.items():
            template = parse_template(text)
            found = await ds.query(template.pattern)
            assert sorted(found, key=repr) == sorted(expected, key=repr), text
    assert parse_template('{"b": $b "a": $a}').names == ("a", "b")
    assert parse_template("<action $who _ $help>").names == ("who", "help")


@pytest.mark.parametrize("text, problem", [
    ("", "empty pattern"),
    ("<agent", "not Preserves text"),
    ('<agent "calc>', "not Preserves text"),
    ("#{1 2}", "sets cannot be matched"),
    ("<$label 1>", "record label cannot be a hole"),
    ("x" * 5000, "too long"),
    ("<pair $a $a>", r"\$a is used twice"),
    ("<agent $>", "a hole needs a name"),
])
def test_bad_templates_say_what_is_wrong(text, problem):
    with pytest.raises(BadPattern, match=problem):
        parse_template(text)


def test_http_addresses():
    assert parse_http("127.0.0.1:0") == ("127.0.0.1", 0)
    assert parse_http("8081") == ("127.0.0.1", 8081)
    assert parse_http("[::1]:80") == ("::1", 80)
    for bad in ("localhost:http", "127.0.0.1:70000"):
        with pytest.raises(ValueError):
            parse_http(bad)


# --- the view: the state behind the page and the JSON ---------------------------------------

def test_view_follows_facts_and_counts_messages():
    clock = [1000.0]
    view = View(clock=lambda: clock[0])
    view.on_agent("added", "calc")
    view.on_agent("added", "me")
    view.on_action("added", "calc", "add", {"description": "Add."})
    view.tick()
    request = {"meta": {"id": "m1"}, "from": "me", "to": "calc",
               "action": {"name": "add", "args": {}}}
    view.on_request("added", "calc", "m1", request)
    clock[0] += 2.5
    assert view.requests_json() == [{
        "id": "m1", "requester": "me", "responder": "calc", "action": "add",
        "since": 1000.0, "age_s": 2.5, "answered": False, "responder_present": True}]
    view.on_reply("added", "me", "m1", "calc")
    assert view.requests_json()[0]["answered"] is True
    view.on_request("removed", "calc", "m1", request)
    view.on_reply("removed", "me", "m1", "calc")
    assert view.requests_json() == []
    for _ in range(8):
        view.on_message("calc", {"from": "me", "to": "calc"})
    view.on_message("*", {"from": "calc"})  # a broadcast: sent by calc, counted once
    view.on_message("x", Symbol("not a classic body"))  # a native actor's: harmless
    clock[0] += 2.5
    view.tick()
    agents = {agent["id"]: agent for agent in view.agents_json()}
    assert agents["calc"]["actions"] == [{"name": "add", "help": {"description": "Add."}}]
    assert (agents["me"]["sent"], agents["calc"]["received"]) == (9, 9)  # 8 + the request
    assert agents["calc"]["sent"] == 2  # the reply and the broadcast
    assert agents["me"]["sent_per_s"] == 9 / 5.0
    view.on_agent("removed", "calc")
    assert agent_ids(view.snapshot()) == {"me"}


# --- a space in this process ------------------------------------------------------------------

def test_space_inspect_shows_agents_pending_requests_and_facts():
    gate = threading.Event()
    with DataspaceSpace(mode="assertion") as space, \
            space.inspect(http="127.0.0.1:0") as inspector:
        base = inspector.url
        with EventStream(base + "api/events") as events:
            space.add(Calculator, "calc")
            space.add(Researcher, "gate", gate)
            me = space.connect("me")
            snapshot = events.wait_for(lambda s: offers(s).get("calc") == CALCULATOR
                                       and offers(s).get("gate") == ["help", "search"]
                                       and "me" in offers(s), WAIT)
            calc = next(agent for agent in snapshot["agents"] if agent["id"] == "calc")
            assert calc["actions"][0]["help"]["description"] == "Add two numbers."
            assert snapshot["status"]["connected"] is True

            message_id = me.send("gate", "search", query="x")  # a request until answered
            waiting = events.wait_for(lambda s: s["requests"], WAIT)["requests"]
            assert [(r["requester"], r["responder"], r["action"], r["id"])
                    for r in waiting] == [("me", "gate", "search", message_id)]
            status, pending = get_json(base + "api/requests")
            assert status == 200 and pending[0]["age_s"] >= 0
            gate.set()
            assert me.receive(timeout=WAIT)["action"]["args"]["value"] == "results for x"
            events.wait_for(lambda s: not s["requests"], WAIT)

            for n in range(20):
                assert me.request("calc", "add", a=n, b=1) == n + 1
            rates = events.wait_for(
                lambda s: any(a["id"] == "calc" and a["received_per_s"] > 0
                              for a in s["agents"]), WAIT)
            calc = next(agent for agent in rates["agents"] if agent["id"] == "calc")
            assert calc["received"] == 20 and calc["sent"] == 20

        status, found = get_json(facts_url(base, '<action $agent "add" _>'))
        assert status == 200
        assert found["names"] == ["agent"] and found["count"] == 1
        assert found["facts"][0]["captures"] == {"agent": '"calc"'}
        assert found["facts"][0]["fact"].startswith('<action "calc" "add" {')

        with EventStream(facts_url(base, "<agent $id>", stream=True)) as facts:
            assert facts.next() == ("start", {"pattern": "<agent $id>", "names": ["id"]})
            seen = {facts.next()[1]["captures"]["id"] for _ in range(3)}
            assert seen == {'"calc"', '"gate"', '"me"'}
            space.remove("gate")
            assert facts.next() == ("removed", {"fact": '<agent "gate">',
                                                "captures": {"id": '"gate"'}})
        me.close()

        status, error = get_json(facts_url(base, "<agent $id"))
        assert status == 400 and "not Preserves text" in error["error"]
        status, _ = get_json(base + "api/agents")  # still serving after the bad input
        assert status == 200
        with urllib.request.urlopen(base, timeout=WAIT) as response:
            page = response.read()
        assert b"<title>dataspace-agency inspect</title>" in page
    assert space.fact_count() == 0  # the inspector's observers went with it


def test_space_inspect_stops_with_the_space_and_refuses_a_taken_port():
    with DataspaceSpace() as space:
        first = space.inspect(http="127.0.0.1:0")
        port = int(first.url.rsplit(":", 1)[1].strip("/"))
        with pytest.raises(OSError):
            space.inspect(http=("127.0.0.1", port))
        assert get_json(first.url + "api/status")[0] == 200
    with pytest.raises(OSError):  # the space is gone, and its inspector with it
        get_json(first.url + "api/status", timeout=2)
    first.close()  # idempotent, and harmless after the space


# --- the command, against a real server, with agents in other processes -----------------------

def test_inspector_drops_agents_of_a_killed_process_within_a_second():
    with ServerProcess.start() as server, inspector(server.address, server.capability) as ins, \
            MultiprocessDataspaceSpace(server.address, server.capability) as space, \
            EventStream(ins.url + "api/events") as events:
        space.add(Calculator, "calc")
        space.add(Calculator, "bystander")
        both = {"calc": CALCULATOR, "bystander": CALCULATOR}
        events.wait_for(lambda s: offers(s) == both, WAIT)
        status, listed = get_json(ins.url + "api/agents")
        assert status == 200 and offers({"agents": listed}) == both

        os.kill(space.pid_of("calc"), signal.SIGKILL)
        killed = time.monotonic()
        events.wait_for(lambda s: agent_ids(s) == {"bystander"}, timeout=1.0)
        took = time.monotonic() - killed
        status, listed = get_json(ins.url + "api/agents")
        assert status == 200 and [agent["id"] for agent in listed] == ["bystander"]
        assert took < 1.0


def test_space_inspect_on_a_multiprocess_space_sees_its_children():
    """space.inspect() on a space whose dataspace is a server: it shows the whole
    server, agents in the space's child processes included."""
    with MultiprocessDataspaceSpace() as space, space.inspect(http="127.0.0.1:0") as ins, \
            EventStream(ins.url + "api/events") as events:
        space.add(Calculator, "child-calc")
        snapshot = events.wait_for(lambda s: offers(s) == {"child-calc": CALCULATOR}, WAIT)
        assert snapshot["status"]["connected"] is True
        assert snapshot["status"]["message"].startswith("connected to unix:")
        os.kill(space.pid_of("child-calc"), signal.SIGKILL)
        events.wait_for(lambda s: not s["agents"], WAIT)


def _serve(port: int, key: str) -> Child:
    return Child("serve", "--tcp", f"127.0.0.1:{port}", "--key", key, "--exit-on-stdin-eof",
                 "--log-level", "WARNING")


def test_unreachable_and_lost_servers_are_reported_and_survived():
    port, key = free_tcp_port(), os.urandom(16).hex()
    with _serve(port, key) as server:  # only to learn the capability for this key
        cap = server.line("capability")
    address = f'<tcp "127.0.0.1" {port}>'
    with inspector(address, cap) as ins, EventStream(ins.url + "api/events") as events:
        down = events.wait_for(lambda s: "cannot reach" in s["status"]["message"], WAIT)
        assert down["status"]["connected"] is False
        status, error = get_json(ins.url + "api/agents")
        assert status == 503 and "not connected to the dataspace" in error["error"]
        assert "cannot reach" in error["error"]
        status, error = get_json(facts_url(ins.url, "<agent $id>"))
        assert status == 503
        status, error = get_json(facts_url(ins.url, "<agent"))  # bad input beats no server
        assert status == 400

        server = _serve(port, key)
        try:
            events.wait_for(lambda s: s["status"]["connected"], WAIT)
            with RemoteDataspaceSpace(address, cap, reconnect=True) as space:
                space.add(Calculator, "calc")
                events.wait_for(lambda s: agent_ids(s) == {"calc"}, WAIT)
                server.process.kill()  # the server dies: the connection is lost
                server.stop()
                lost = events.wait_for(lambda s: not s["status"]["connected"], WAIT)
                assert "lost" in lost["status"]["message"] or "cannot" in lost["status"]["message"]
                events.wait_for(lambda s: not s["agents"], WAIT)
                assert get_json(ins.url + "api/agents")[0] == 503
                server = _serve(port, key)  # back: the inspector and the agent reconnect
                events.wait_for(lambda s: s["status"]["connected"]
                                and agent_ids(s) == {"calc"}, WAIT)
                assert [a["id"] for a in get_json(ins.url + "api/agents")[1]] == ["calc"]
        finally:
            server.stop()


def test_bad_command_lines_are_refused_clearly():
    for args, problem in [
        (["--connect", "<tcp 1>", "--cap", "<ref {}>"], "unsupported address"),
        (["--connect", "127.0.0.1:1", "--cap", "nonsense"], "not a sturdyref"),
        (["--connect", "127.0.0.1:1", "--cap", '<ref {oid: "syndicate" sig: #x"00"}>',
          "--http", "nowhere:port"], "HOST:PORT"),
    ]:
        done = subprocess.run([sys.executable, "-m", "dataspace_agency.cli", "inspect", *args],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 2 and problem in done.stderr, (args, done.stderr)


# --- the examples ---------------------------------------------------------------------------

def test_failure_example_can_be_watched_with_the_inspector():
    """examples/failure.py --inspect: the page lists the pending request until the worker
    dies (Enter), then the example reports the ActionError as usual."""
    examples = Path(__file__).resolve().parents[2] / "examples"
    process = subprocess.Popen(
        [sys.executable, "failure.py", "--backend", "dataspace-assertion",
         "--inspect", "127.0.0.1:0"], cwd=examples, stdin=subprocess.PIPE,
        stdout=subprocess.PIPE)
    try:
        output = b""
        deadline = time.monotonic() + 60
        while b"press Enter" not in output:
            assert time.monotonic() < deadline, output
            chunk = os.read(process.stdout.fileno(), 4096)
            assert chunk, f"the example exited early: {output!r}"
            output += chunk
        url = re.search(rb"watch (http://\S+/)", output).group(1).decode()
        status, pending = get_json(url + "api/requests")
        assert status == 200
        assert [(r["requester"], r["responder"], r["action"]) for r in pending] == [
            ("me", "worker", "work")]
        assert {a["id"] for a in get_json(url + "api/agents")[1]} == {"me", "worker"}
        rest, _ = process.communicate(b"\n", timeout=60)
        assert b'ActionError: agent "worker" stopped before answering "work"' in rest
        assert process.returncode == 0
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()


def test_odd_facts_from_native_actors_cannot_break_the_view():
    view = View()
    view.on_agent("added", 12)  # not a classic agent id: ignored
    view.on_agent("added", "x")
    view.on_action("added", "x", "nan", float("nan"))
    view.on_action("added", "x", "rec", rec("weird", 1))
    view.on_request("added", "x", "r1", Symbol("no body"))
    view.on_reply("added", Symbol("to"), 7, None)
    snapshot = view.snapshot()
    json.dumps(snapshot, allow_nan=False)  # the page's data is always valid JSON
    assert agent_ids(snapshot) == {"x"}
    assert {a["name"]: a["help"] for a in snapshot["agents"][0]["actions"]} == {
        "nan": {"preserves": '#xd"7ff8000000000000"'}, "rec": {"preserves": "<weird 1>"}}
    assert snapshot["requests"][0]["requester"] is None
