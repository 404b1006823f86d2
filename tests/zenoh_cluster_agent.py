"""A process holding a ZenohDataspaceSpace, driven by one-line JSON commands on stdin and
answering one JSON line each on stdout (for tests/zenoh/test_cluster.py: it runs inside
the test's network namespace, where the test process itself cannot be).

    {"op": "add", "id": "worker"}                     -> {"ok": true}
    {"op": "request", "to": "worker", "action": "echo", "args": {"text": "hi"},
     "timeout": 5}                                    -> {"ok": "hi"} | {"error": "ActionError", ...}
    {"op": "agents"}                                  -> {"ok": ["me", "worker"]}

``work`` starts, prints nothing and never finishes (it blocks until its process dies).
"""

from __future__ import annotations

import json
import sys
import threading
import time

from dataspace_agency import ActionError, Agent, action
from dataspace_agency.spaces.zenoh_space import ZenohDataspaceSpace


class Worker(Agent):
    @action
    def echo(self, text: str) -> str:
        return text

    @action
    def work(self) -> str:
        threading.Event().wait(60)  # bounded: dies first (SIGKILL) in the tests
        return "finished"


def main() -> None:
    endpoints, namespace = sys.argv[1].split(","), sys.argv[2]
    with ZenohDataspaceSpace(endpoints, mode="assertion", namespace=namespace) as space:
        me = space.add_foreground(Agent, f"me-{time.monotonic_ns()}")
        print(json.dumps({"ok": "ready"}), flush=True)
        for line in sys.stdin:
            command = json.loads(line)
            op = command["op"]
            try:
                if op == "add":
                    space.add(Worker, command["id"])
                    result = {"ok": True}
                elif op == "request":
                    started = time.monotonic()
                    value = me.request({"to": command["to"], "action": {
                        "name": command["action"], "args": command.get("args", {})}},
                        timeout=command.get("timeout", 5))
                    result = {"ok": value, "seconds": time.monotonic() - started}
                elif op == "agents":
                    result = {"ok": sorted(a for a in space.agents() if not a.startswith("me-"))}
                else:
                    result = {"error": "unknown op", "detail": op}
            except (ActionError, TimeoutError) as exc:
                result = {"error": type(exc).__name__, "detail": str(exc),
                          "seconds": time.monotonic() - started}
            print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
