"""The dataspace's semantics across routers 1 and 10 ms apart (the kernel here has no
netem: a delaying TCP proxy between the routers, dataspace_agency/zenoh/delay.py): a
request across them, a late joiner answered, a responder SIGKILLed mid-request failing
the request with ActionError."""

from __future__ import annotations

import time

import pytest

from dataspace_agency.zenoh.delay import DelayProxy
from dataspace_agency.zenoh.process import RouterProcess

from test_cluster import AgentProcess
from zenoh_fixtures import fresh_namespace


@pytest.mark.parametrize("delay_ms", [1, 10])
def test_semantics_hold_between_routers_apart(delay_ms):
    near = RouterProcess()
    proxy = DelayProxy(near.endpoint, delay_ms / 1000)
    far = RouterProcess(connect=[proxy.endpoint])
    agents: list[AgentProcess] = []
    try:
        ns = fresh_namespace()
        requester = AgentProcess([near.endpoint], ns, None)
        agents.append(requester)
        requester.send({"op": "request", "to": "worker", "action": "echo",
                        "args": {"text": "late"}, "timeout": 20})
        responder = AgentProcess([far.endpoint], ns, None)
        agents.append(responder)
        assert responder.ask({"op": "add", "id": "worker"}) == {"ok": True}
        assert requester._read(30)["ok"] == "late"
        answer = requester.ask({"op": "request", "to": "worker", "action": "echo",
                                "args": {"text": "hi"}})
        assert answer["ok"] == "hi"
        requester.send({"op": "request", "to": "worker", "action": "work", "timeout": 30})
        time.sleep(0.5)  # the request reaches the worker (which never answers by itself)
        responder.kill()
        failed = requester._read(30)
        assert failed["error"] == "ActionError", failed
    finally:
        for agent in agents:
            agent.close()
        far.stop()
        proxy.close()
        near.stop()
