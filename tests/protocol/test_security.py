"""Security (issue 9, part 5), against real servers, real sockets and real clients.

* Where the server listens: loopback unless asked otherwise, with a warning otherwise.
* Capabilities: tampered, wrong-key and unenforceable refs are rejected with a reason,
  through the server, from our client and from stock syndicate-py 0.19.3; the server
  goes on. Attenuated refs (``spaces.dataspace.caps``) let a client speak only as its own agents.
* Permissions: a remote client cannot run an ``ACCESS_DENIED`` action or ``eval``.
* Impersonation: a reply counts only if it comes from the agent the request went to;
  with an agent cap, facts claiming another agent never reach the dataspace.
* Size limits: the server's packet limit and the classic message limit.
* No pickle of untrusted data: an audit of every module's imports and calls.

Everything waits on events (replies, syncs, output lines) with timeouts; nothing sleeps.
"""

from __future__ import annotations

import ast
import contextlib
import logging
import os
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest
import trio
from preserves import ImmutableDict, Record, Symbol, stringify
from syndicate import patterns as P

import dataspace_agency
from dataspace_agency import ActionError, Agent, action
from dataspace_agency.classic import values
from dataspace_agency.spaces.dataspace.adapter import DataspaceTransport
from dataspace_agency.classic.agent import ACCESS_DENIED
from dataspace_agency.spaces.dataspace.caps import mint_agent_cap, restrict_to_agents
from dataspace_agency.classic.eval_action import EvalMixin
from dataspace_agency.classic.message import (MessageError, message_size, new_message_id,
                                              validate_message)
from dataspace_agency.spaces.dataspace.vocabulary import (action_fact, agent_fact, message_envelope,
                                                 reply_fact, request_fact)
from dataspace_agency.protocol import server_main as serve_options
from dataspace_agency.protocol import server as server_module
from dataspace_agency.protocol.client import ConnectionFailed, connect
from dataspace_agency.protocol.sync_client import connect_sync
from dataspace_agency.protocol.process import ServerProcess
from dataspace_agency.protocol.server import open_server
from dataspace_agency.protocol.sturdy import KeyRing, attenuate, mint, parse_cap, sign
from dataspace_agency.spaces import RemoteDataspaceSpace

WAIT = 15.0
KEY = b"security-test-key"
STOCK_PEER = str(Path(__file__).parents[1] / "protocol_peers" / "stock_cap_peer.py")


# --- helpers ---------------------------------------------------------------------------------

@contextlib.contextmanager
def server_in_thread(**options):
    """An in-process server (``open_server``) on its own thread, for synchronous tests
    that also want to read its counters (``server.attenuation``)."""
    started = threading.Event()
    box: dict = {}

    def main() -> None:
        async def run() -> None:
            async with open_server(**options) as server:
                box["server"], box["stop"] = server, trio.Event()
                box["token"] = trio.lowlevel.current_trio_token()
                started.set()
                await box["stop"].wait()
        try:
            trio.run(run)
        except BaseException as exc:  # noqa: BLE001 - reported to the test below
            box["error"] = exc
            started.set()

    thread = threading.Thread(target=main, name="security-test-server")
    thread.start()
    assert started.wait(WAIT), "the server did not start"
    if "error" in box:
        thread.join()
        raise box["error"]
    try:
        yield box["server"]
    finally:
        box["token"].run_sync_soon(box["stop"].set)
        thread.join(WAIT)


def _body(sender: str, to: str, name: str, args: dict | None = None, **meta) -> tuple:
    """A hand-made classic message (as a remote client would build it): (id, preserves)."""
    message = {"meta": {"id": new_message_id(), **meta}, "from": sender, "to": to,
               "action": {"name": name, "args": args or {}}}
    return message["meta"]["id"], values.to_preserves(message)


def _reply_of(body) -> dict:
    return values.from_preserves(body)


class Lines:
    """A child process's stdout lines, read with a deadline (a thread reads them)."""

    def __init__(self, args: list[str]) -> None:
        self.process = subprocess.Popen([sys.executable, *args], stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL, text=True)
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()

    def wait_for_prefix(self, prefix: str) -> str:
        with self._changed:
            found = self._changed.wait_for(
                lambda: next((l for l in self.lines if l.startswith(prefix)), None), WAIT)
        assert found, f"never saw {prefix!r}; saw {self.lines}"
        return found

    def close(self) -> None:
        self.process.kill()
        self.process.wait()
        self._reader.join(WAIT)
        self.process.stdout.close()


# --- 1. where the server listens ----------------------------------------------------------------

async def test_open_server_listens_on_loopback_by_default(caplog):
    caplog.set_level(logging.WARNING, logger="dataspace_agency.protocol.server")
    async with open_server() as server:
        assert server.tcp_address[0] == "127.0.0.1"
        async with connect(server.tcp_address, server.capability) as ds:
            await ds.sync()
    assert "not a loopback address" not in caplog.text


def test_serve_listens_on_loopback_unless_told_otherwise():
    # A bare port, or an empty host, means loopback; only an explicit host is used as is.
    assert serve_options._tcp("0") == ("127.0.0.1", 0)
    assert serve_options._tcp(":8001") == ("127.0.0.1", 8001)
    assert serve_options._tcp("0.0.0.0:8001") == ("0.0.0.0", 8001)
    lines = Lines(["-m", "dataspace_agency.cli", "serve", "--tcp", "0"])
    try:
        assert lines.wait_for_prefix("address ").startswith('address <tcp "127.0.0.1" ')
    finally:
        lines.close()


def test_a_non_loopback_address_is_warned_about(caplog):
    # Not bound here (tests keep to 127.0.0.1): the check on the bound addresses is.
    caplog.set_level(logging.WARNING, logger="dataspace_agency.protocol.server")
    server_module._warn_unless_loopback(["127.0.0.1", "::1", "127.0.0.2"])
    assert "not a loopback address" not in caplog.text
    server_module._warn_unless_loopback(["0.0.0.0"])
    server_module._warn_unless_loopback(["192.168.1.20"])
    warnings = [r.message for r in caplog.records if "not a loopback address" in r.message]
    assert len(warnings) == 2 and "0.0.0.0" in warnings[0] and "192.168.1.20" in warnings[1]


# --- 2. capabilities at the gatekeeper ------------------------------------------------------------

def _tampered_caps() -> list:
    good = mint(KEY)
    params = good.fields[0]
    sig = params[Symbol("sig")]
    flipped = bytes([sig[0] ^ 0x01]) + sig[1:]
    unenforceable = Record(Symbol("attenuate"), [])
    return [
        pytest.param(stringify(good).replace(stringify(sig), stringify(flipped)),
                     "bad signature", id="signature-byte-flipped"),
        pytest.param(stringify(good).replace('"syndicate"', '"syndicatf"'),
                     "unknown oid", id="oid-changed"),
        pytest.param(mint(b"not the server's key"), "bad signature", id="wrong-key"),
        pytest.param(mint(KEY, "elsewhere"), "unknown oid", id="right-key-other-oid"),
        pytest.param(attenuate(good, unenforceable), "caveat not enforceable",
                     id="unenforceable-caveat"),
        pytest.param(Record(Symbol("ref"), [{Symbol("oid"): "syndicate", Symbol("sig"): sig,
                                            Symbol("caveats"): (Record(Symbol("reject"),
                                                                       [Record(Symbol("lit"),
                                                                               [1])]),)}]),
                     "bad signature", id="caveat-added-without-rechaining"),
        pytest.param(Record(Symbol("ref"), [{Symbol("oid"): "syndicate",
                                            Symbol("sig"): attenuate(
                                                good, "<reject <_>>").fields[0][Symbol("sig")]}]),
                     "bad signature", id="caveat-stripped"),
    ]


@pytest.mark.parametrize("cap, problem", _tampered_caps())
async def test_a_bad_capability_is_rejected_with_the_reason_and_the_server_goes_on(
        cap, problem):
    async with open_server(keys=KeyRing.single(KEY)) as server, \
            connect(server.tcp_address, server.capability) as good:
        with pytest.raises(ConnectionFailed, match=f"rejected the capability: ['\"]{problem}"):
            async with connect(server.tcp_address, parse_cap(cap)):
                pass
        async with good.observe(P.rec("Alive", P.CAPTURE)) as events:
            good.publish(Record(Symbol("Alive"), [1]))
            with trio.fail_after(WAIT):
                assert (await events.receive()).captures == (1,)


def test_stock_syndicate_py_client_gets_the_rejection_and_an_agent_cap_is_enforced(tmp_path):
    """An unmodified 0.19.3 client: a tampered cap is answered <rejected "bad signature">;
    an attenuated cap is accepted, and what it may not say never reaches the dataspace."""
    path = str(tmp_path / "ds.sock")
    with server_in_thread(tcp=None, unix=path, keys=KeyRing.single(KEY)) as server:
        address = stringify(Record(Symbol("unix"), [path]))
        sig = server.capability.fields[0][Symbol("sig")]
        tampered = stringify(server.capability).replace(
            stringify(sig), stringify(bytes([sig[0] ^ 0x80]) + sig[1:]))
        peer = Lines([STOCK_PEER, address, tampered])
        try:
            assert peer.wait_for_prefix("rejected") == "rejected bad signature"
        finally:
            peer.close()
        mallory = stringify(mint_agent_cap(KEY, ["mallory"]))
        peer = Lines([STOCK_PEER, address, mallory, '<agent "alice">', '<agent "mallory">',
                      '<Anything "else">'])
        try:
            peer.wait_for_prefix("synced")
            with connect_sync(address, server.capability) as ours:
                assert ours.query(P.rec("agent", P.CAPTURE)) == [("mallory",)]
                assert ours.query(P.rec("Anything", P.CAPTURE)) == []
        finally:
            peer.close()
        assert server.attenuation.dropped == 2


# --- 3. permissions: ACCESS_DENIED and eval from a remote client --------------------------------

class Guarded(EvalMixin, Agent):
    """An agent with a permitted action, a denied one and ``eval`` (permission refused,
    the default)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.wiped = threading.Event()  # the denied action's side effect

    @action
    def ping(self) -> str:
        """Answer pong."""
        return "pong"

    @action(access_policy=ACCESS_DENIED)
    def wipe(self) -> str:
        """Never to be run by a message."""
        self.wiped.set()
        return "wiped"


@pytest.fixture(scope="module")
def server_process():
    with ServerProcess.start() as running:
        yield running


def _ask_raw(client, mode: str, to: str, name: str, args: dict | None = None) -> dict:
    """Send a hand-made request as "mallory" through a raw client; the reply it gets."""
    message_id, body = _body("mallory", to, name, args)
    if mode == "assertion":
        pattern = P.rec("reply", P.lit("mallory"), P.lit(message_id), P.CAPTURE, P.CAPTURE)
        with client.observe(pattern) as replies:
            handle = client.publish(request_fact(to, message_id, body))
            event = replies.get(timeout=WAIT)
            client.retract(handle)
        return _reply_of(event.captures[1])
    with client.observe(P.rec("message", P.lit("mallory"), P.CAPTURE)) as replies:
        client.sync()  # the observer is in place before the request can be answered
        client.message(message_envelope(to, body))
        while True:
            reply = _reply_of(replies.get(timeout=WAIT).captures[0])
            if reply["meta"].get("parent_id") == message_id:
                return reply


@pytest.mark.parametrize("mode", ["assertion", "message"])
def test_a_remote_client_cannot_run_a_denied_action_or_eval(server_process, mode):
    with RemoteDataspaceSpace(server_process.address, server_process.capability,
                              mode=mode) as space, \
            connect_sync(server_process.address, server_process.capability) as raw:
        guarded = space.add_foreground(Guarded, f"guarded-{mode}")
        # The raw path works (a permitted action is answered) ...
        assert _ask_raw(raw, mode, guarded.id, "ping")["action"] == {
            "name": "[response]", "args": {"value": "pong"}}
        # ... but the denied action and eval are refused, and neither ran.
        refused = _ask_raw(raw, mode, guarded.id, "wipe")
        assert refused["action"]["name"] == "[error]"
        assert "not permitted" in refused["action"]["args"]["error"]
        refused = _ask_raw(raw, mode, guarded.id, "eval",
                           {"code": "self.wiped.set(); self.pwned = True"})
        assert refused["action"]["name"] == "[error]"
        assert "not permitted" in refused["action"]["args"]["error"]
        assert not guarded.wiped.is_set()
        assert not hasattr(guarded, "pwned")
        assert "_eval_namespace" not in vars(guarded)


def test_an_agent_in_another_space_cannot_run_a_denied_action_or_eval(server_process):
    with RemoteDataspaceSpace(server_process.address, server_process.capability) as one, \
            RemoteDataspaceSpace(server_process.address, server_process.capability) as two:
        guarded = one.add_foreground(Guarded, "guarded-remote")
        intruder = two.add_foreground(Agent, "intruder")
        for name, args in [("wipe", {}), ("eval", {"code": "self.wiped.set()"})]:
            with pytest.raises(ActionError, match="not permitted"):
                intruder.request({"to": "guarded-remote",
                                  "action": {"name": name, "args": args}}, timeout=WAIT)
        assert not guarded.wiped.is_set()


# --- 4. impersonation ------------------------------------------------------------------------------

class Slow(Agent):
    """Answers ``work`` only once the test releases it (so a forger can go first)."""

    release = threading.Event()

    @action
    def work(self) -> str:
        """The real answer, after the release."""
        assert type(self).release.wait(WAIT), "never released"
        return "real"


def _request_in_thread(agent: Agent, to: str) -> tuple[threading.Thread, list]:
    outcome: list = []

    def run() -> None:
        try:
            outcome.append(agent.request({"to": to, "action": {"name": "work", "args": {}}},
                                         timeout=WAIT))
        except Exception as exc:  # noqa: BLE001 - the test looks at it
            outcome.append(exc)
    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def _forge_reply(forger, mode: str, responder: str, requester: str, claim: str,
                 seen_request) -> None:
    """As ``claim``, answer the request ``requester`` made to ``responder``."""
    if mode == "assertion":
        message_id = seen_request.get(timeout=WAIT).captures[0]
    else:
        message_id = _reply_of(seen_request.get(timeout=WAIT).captures[0])["meta"]["id"]
    _, body = _body(claim, requester, "[response]", {"value": "forged"},
                    parent_id=message_id)
    if mode == "assertion":
        forger.publish(reply_fact(requester, message_id, claim, body))
    else:
        forger.message(message_envelope(requester, body))
    forger.sync()  # the server has passed the forgery on before the real answer exists


@pytest.mark.parametrize("mode", ["assertion", "message"])
def test_a_reply_from_another_agent_than_the_addressee_is_ignored(server_process, mode,
                                                                   caplog):
    caplog.set_level(logging.WARNING, logger="dataspace_agency.classic")
    Slow.release = threading.Event()
    responder, requester = f"slow-{mode}", f"asker-{mode}"
    with RemoteDataspaceSpace(server_process.address, server_process.capability,
                              mode=mode) as space, \
            connect_sync(server_process.address, server_process.capability) as forger:
        space.add(Slow, responder)
        me = space.add_foreground(Agent, requester)
        watched = (P.rec("request", P.lit(responder), P.CAPTURE, P._) if mode == "assertion"
                   else P.rec("message", P.lit(responder), P.CAPTURE))
        with forger.observe(watched) as seen_request:
            forger.sync()
            thread, outcome = _request_in_thread(me, responder)
            _forge_reply(forger, mode, responder, requester, "mallory", seen_request)
        Slow.release.set()
        thread.join(WAIT)
    assert outcome == ["real"]
    ignored = [r for r in caplog.records if "ignoring a reply" in r.getMessage()]
    assert len(ignored) == 1 and '"mallory"' in ignored[0].getMessage()


def test_an_agent_cap_cannot_claim_another_agents_presence_or_replies(tmp_path):
    """mallory holds a cap for "mallory": her own agent works both ways; asserting alice's
    presence, offers, requests, messages or replies (even one that would answer a real
    pending request to alice first) is dropped at the server, and counted."""
    Slow.release = threading.Event()
    path = str(tmp_path / "ds.sock")
    with server_in_thread(tcp=None, unix=path, keys=KeyRing.random()) as server:
        address, full = Record(Symbol("unix"), [path]), server.capability
        mallory_cap = restrict_to_agents(full, ["mallory"])
        with RemoteDataspaceSpace(address, full) as honest, \
                RemoteDataspaceSpace(address, mallory_cap) as hers, \
                connect_sync(address, mallory_cap) as raw, \
                connect_sync(address, full) as watcher:
            honest.add(Slow, "alice")
            me = honest.add_foreground(Agent, "me")
            mallory = hers.add_foreground(EchoBack, "mallory")
            # Her own traffic works, both ways.
            honest.add(EchoBack, "echo")
            assert mallory.request({"to": "echo", "action": {"name": "echo",
                                                              "args": {"text": "hi"}}},
                                   timeout=WAIT) == "hi"
            assert me.request({"to": "mallory", "action": {"name": "echo",
                                                           "args": {"text": "back"}}},
                              timeout=WAIT) == "back"
            # Her forgeries, through the raw client.
            before = server.attenuation.dropped
            with watcher.observe(P.rec("request", P.lit("alice"), P.CAPTURE, P._)) as seen:
                watcher.sync()
                thread, outcome = _request_in_thread(me, "alice")
                message_id = seen.get(timeout=WAIT).captures[0]
            _, as_alice = _body("alice", "me", "[response]", {"value": "forged"},
                                parent_id=message_id)
            forged = [agent_fact("alice"), action_fact("alice", "work", {}),
                      reply_fact("me", message_id, "alice", as_alice),
                      reply_fact("me", message_id, "mallory", as_alice),
                      request_fact("alice", "x", _body("alice", "alice", "work")[1]),
                      Record(Symbol("agent"), ["mallory-2"])]
            for fact in forged:
                raw.publish(fact)
            raw.message(message_envelope("me", as_alice))
            raw.sync()
            assert server.attenuation.dropped - before == len(forged) + 1
            Slow.release.set()
            thread.join(WAIT)
            assert outcome == ["real"]
            present = watcher.query(P.rec("agent", P.CAPTURE))
            assert ("mallory-2",) not in present and ("mallory",) in present


class EchoBack(Agent):
    @action
    def echo(self, text: str) -> str:
        """Answer with the text."""
        return text


# --- 5. size limits -----------------------------------------------------------------------------

async def test_an_oversized_packet_from_a_real_client_closes_only_that_connection():
    async with open_server(keys=KeyRing.single(KEY), max_packet=4096) as server, \
            connect(server.tcp_address, server.capability) as bystander, \
            connect(server.tcp_address, server.capability) as sender:
        sender.publish(Record(Symbol("Big"), ["x" * 10_000]))
        with trio.fail_after(WAIT):
            await sender.connection.wait_closed()
        assert "exceeds the limit of 4096 bytes" in sender.connection.close_reason
        async with bystander.observe(P.rec("Small", P.CAPTURE)) as events:
            bystander.publish(Record(Symbol("Small"), [1]))
            with trio.fail_after(WAIT):
                assert (await events.receive()).captures == (1,)
        assert len(server.connections) == 1


def test_the_validator_names_the_size_and_the_limit():
    message = {"meta": {"id": "1"}, "from": "a", "to": "b",
               "action": {"name": "n", "args": {"text": "é" * 100}}}
    size = message_size(message)
    assert size == len('{"meta":{"id":"1"},"from":"a","to":"b","action":{"name":"n",'
                       '"args":{"text":""}}}') + 200  # é is two bytes in UTF-8
    assert validate_message(message, max_size=size) == message
    with pytest.raises(MessageError, match=f"message is {size} bytes .* over the limit of"
                                           f" {size - 1} bytes"):
        validate_message(message, max_size=size - 1)


@pytest.mark.parametrize("mode", ["assertion", "message"])
def test_an_oversized_classic_message_is_answered_with_an_error_and_not_handled(
        server_process, mode, monkeypatch):
    monkeypatch.setattr(DataspaceTransport, "max_message_size", 2000)
    with RemoteDataspaceSpace(server_process.address, server_process.capability,
                              mode=mode) as space, \
            connect_sync(server_process.address, server_process.capability) as raw:
        agent = space.add_foreground(Recorder, f"recorder-{mode}")
        assert _ask_raw(raw, mode, agent.id, "record", {"text": "small"})["action"][
            "name"] == "[response]"
        refused = _ask_raw(raw, mode, agent.id, "record", {"text": "x" * 5000})
        assert refused["action"]["name"] == "[error]"
        assert "over the limit of 2000 bytes" in refused["action"]["args"]["error"]
        assert agent.recorded == ["small"]


def test_a_message_near_the_size_limit_is_sized_exactly(server_process, monkeypatch):
    # Message mode reads a message straight into JSON and skips sizing it when its length
    # on the wire proves it small enough (PlainJSON.json_bound); near the limit it is
    # sized exactly: within it, handled; one byte over, refused.
    monkeypatch.setattr(DataspaceTransport, "max_message_size", 2000)
    with RemoteDataspaceSpace(server_process.address, server_process.capability,
                              mode="message") as space, \
            connect_sync(server_process.address, server_process.capability) as raw:
        agent = space.add_foreground(Recorder, "recorder-near-limit")
        _, body = _body("mallory", agent.id, "record", {"text": ""})
        room = 2000 - message_size(values.from_preserves(body))
        for extra, handled in [(room, True), (room + 1, False)]:
            reply = _ask_raw(raw, "message", agent.id, "record", {"text": "x" * extra})
            assert (reply["action"]["name"] == "[response]") is handled
        assert agent.recorded == ["x" * room]


def test_malformed_classic_messages_from_a_raw_client_are_dropped_with_a_warning(
        server_process, caplog):
    # Message mode: what reaches an agent's inbox is read straight into JSON when it has
    # a JSON form (protocol/plain_json.py), else as Preserves values; both kinds of bad
    # message are dropped with the same warning, and the agent goes on.
    with RemoteDataspaceSpace(server_process.address, server_process.capability,
                              mode="message") as space, \
            connect_sync(server_process.address, server_process.capability) as raw:
        agent = space.add_foreground(Recorder, "recorder-malformed")
        _, not_json = _body("mallory", agent.id, "record", {"text": "a"})
        not_json = ImmutableDict({**not_json, "action": Record(Symbol("x"), [])})
        _, no_sender = _body("mallory", agent.id, "record", {"text": "b"})
        no_sender = ImmutableDict({k: v for k, v in no_sender.items() if k != "from"})
        with caplog.at_level(logging.WARNING):
            raw.message(message_envelope(agent.id, not_json))
            raw.message(message_envelope(agent.id, no_sender))
            assert _ask_raw(raw, "message", agent.id, "record", {"text": "c"})["action"] == {
                "name": "[response]", "args": {"value": 1}}
        assert agent.recorded == ["c"]
        dropped = [r.getMessage() for r in caplog.records
                   if "dropping a malformed classic message" in r.getMessage()]
        assert len(dropped) == 2
        assert "not a JSON value" in dropped[0] or "no JSON form" in dropped[0]
        assert "message.from is missing" in dropped[1]


class Recorder(Agent):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.recorded: list[str] = []

    @action
    def record(self, text: str) -> int:
        """Keep the text."""
        self.recorded.append(text)
        return len(self.recorded)


# --- 6. no pickle of untrusted data ----------------------------------------------------------------

# Module (relative to the package) -> why it may import this, or call eval/exec.
ALLOWED = {
    ("spaces/children.py", "pickle"):
        "only to catch pickle.PicklingError: multiprocessing pickles the agent class and"
        " its arguments to start OUR child process; messages between processes are JSON"
        " bytes (send_bytes / recv_bytes)",
    ("classic/eval_action.py", "eval"): "the opt-in eval action (ACCESS_REQUESTED)",
    ("classic/eval_action.py", "exec"): "the opt-in eval action (ACCESS_REQUESTED)",
}
DANGEROUS_MODULES = {"pickle", "cPickle", "_pickle", "marshal", "shelve", "dill",
                     "cloudpickle", "joblib"}
# Calls that unpickle what comes in: Connection.recv(), multiprocessing queues.
DANGEROUS_METHODS = {"recv", "Queue", "SimpleQueue", "JoinableQueue", "loads_pickle"}


def _findings() -> set[tuple[str, str]]:
    package = Path(dataspace_agency.__file__).parent
    found = set()
    for path in sorted(package.rglob("*.py")):
        where = path.relative_to(package).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [(node.module or "").split(".")[0]]
            elif isinstance(node, ast.Call):
                func = node.func
                if isinstance(func, ast.Name) and func.id in ("eval", "exec"):
                    names = [func.id]
                elif (isinstance(func, ast.Attribute) and func.attr in DANGEROUS_METHODS
                      and not (isinstance(func.value, ast.Name) and func.value.id == "queue")):
                    # (queue.Queue is a thread queue: objects are passed, not pickled.)
                    names = [f".{func.attr}()"]
                else:
                    continue
            else:
                continue
            found.update((where, name) for name in names
                         if name in DANGEROUS_MODULES or name in ("eval", "exec")
                         or name.startswith("."))
    return found


def test_no_module_unpickles_or_evaluates_anything_except_the_allow_listed():
    found = _findings()
    assert found - set(ALLOWED) == set(), "see docs/security.md before allowing any"
    # The allow-list is not stale: each entry is still there for its stated reason.
    assert set(ALLOWED) <= found
