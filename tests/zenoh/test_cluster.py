"""Several machines, simulated: three routers in processes of their own, meshed, inside a
network namespace this test creates (``unshare --net``: loopback only; falls back to
127.0.0.1 of this machine if namespaces are not permitted), and agents in processes
attached to different routers (tests/zenoh_cluster_agent.py)."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from dataspace_agency.zenoh.process import NetworkNamespace, RouterProcess

from zenoh_fixtures import fresh_namespace

AGENT = str(Path(__file__).parents[1] / "zenoh_cluster_agent.py")


@pytest.fixture(scope="module")
def netns():
    try:
        namespace = NetworkNamespace(lifetime=300)
    except (OSError, RuntimeError, TimeoutError) as exc:
        # Without namespaces the routers share this machine's loopback (free ports).
        print(f"no network namespace ({exc}): using 127.0.0.1 with free ports")
        yield None
        return
    try:
        yield namespace
    finally:
        namespace.close()


@pytest.fixture(scope="module")
def routers(netns):
    # Fixed ports are fine inside a fresh namespace; outside it, free ones are chosen.
    ports = [7447, 7448, 7449] if netns is not None else [None] * 3
    listen = [f"tcp/127.0.0.1:{p}" if p else None for p in ports]
    started: list[RouterProcess] = []
    try:
        for i in range(3):
            started.append(RouterProcess(listen[i], connect=[r.endpoint for r in started],
                                         netns=netns))
        yield started
    finally:
        for router in started:
            router.stop()


class AgentProcess:
    def __init__(self, endpoints: list[str], namespace: str, netns) -> None:
        command = [sys.executable, AGENT, ",".join(endpoints), namespace]
        if netns is not None:
            command = netns.prefix() + command
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        self.reader = threading.Thread(target=self._pump, daemon=True)
        self.reader.start()
        assert self._read(30) == {"ok": "ready"}

    def _pump(self) -> None:
        for line in self.process.stdout:
            self.lines.put(line)
        self.lines.put("")

    def _read(self, timeout: float) -> dict:
        line = self.lines.get(timeout=timeout)
        assert line, "the agent process ended"
        return json.loads(line)

    def send(self, command: dict) -> None:
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()

    def ask(self, command: dict, timeout: float = 30) -> dict:
        self.send(command)
        return self._read(timeout)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()
        self.process.stdin.close()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()
        if self.process.poll() is None:
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.reader.join(10)
        self.process.stdout.close()


@pytest.fixture
def agents(netns):
    made: list[AgentProcess] = []

    def start(endpoints: list[str], namespace: str) -> AgentProcess:
        made.append(AgentProcess(endpoints, namespace, netns))
        return made[-1]
    yield start
    for agent in made:
        agent.close()


def wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def test_requests_across_routers_and_a_late_joiner(routers, agents):
    ns = fresh_namespace()
    a, b, c = (r.endpoint for r in routers)
    requester = agents([a], ns)
    # A request before its responder exists waits for it (assertion mode)...
    requester.send({"op": "request", "to": "worker", "action": "echo",
                    "args": {"text": "late"}, "timeout": 20})
    responder = agents([c], ns)
    assert responder.ask({"op": "add", "id": "worker"}) == {"ok": True}
    assert requester._read(30)["ok"] == "late"
    # ...and once it is there, requests cross routers A -> C.
    assert requester.ask({"op": "request", "to": "worker", "action": "echo",
                          "args": {"text": "hi"}})["ok"] == "hi"
    # Presence is the same seen from every router.
    observer = agents([b], ns)
    for party in (requester, responder, observer):
        wait_for(lambda: party.ask({"op": "agents"})["ok"] == ["worker"])


def test_a_responder_killed_mid_request_fails_it_with_action_error(routers, agents):
    ns = fresh_namespace()
    requester = agents([routers[0].endpoint], ns)
    responder = agents([routers[2].endpoint], ns)
    responder.ask({"op": "add", "id": "worker"})
    requester.send({"op": "request", "to": "worker", "action": "work", "timeout": 30})
    time.sleep(0.5)  # the request reaches the worker (which never answers by itself)
    responder.kill()
    answer = requester._read(30)
    assert answer["error"] == "ActionError", answer
    assert answer["seconds"] < 20  # well before its 30 s timeout


def test_clients_move_to_another_router_when_theirs_is_killed(netns, agents):
    ns = fresh_namespace()
    first = RouterProcess(None if netns is None else "tcp/127.0.0.1:7457", netns=netns)
    second = RouterProcess(None if netns is None else "tcp/127.0.0.1:7458",
                           connect=[first.endpoint], netns=netns)
    try:
        both = [first.endpoint, second.endpoint]
        responder = agents([second.endpoint], ns)
        responder.ask({"op": "add", "id": "worker"})
        requester = agents(both, ns)  # connected to one of them, knows both
        assert requester.ask({"op": "request", "to": "worker", "action": "echo",
                              "args": {"text": "before"}})["ok"] == "before"
        first.kill()
        # Whichever router it was on, the requester reaches the worker again.
        deadline = time.monotonic() + 30
        while True:
            answer = requester.ask({"op": "request", "to": "worker", "action": "echo",
                                    "args": {"text": "after"}, "timeout": 2})
            if answer.get("ok") == "after":
                break
            assert time.monotonic() < deadline, answer
    finally:
        first.kill()
        second.stop()
