"""Classic agents on the dataspace on Zenoh: two spaces, as two machines would have, meeting
through Zenoh routers; a request across them, presence seen from both.

Run: python examples/zenoh_agents.py   (needs the zenoh extra: eclipse-zenoh)

Prints::

    router A on tcp/127.0.0.1:..., router B meshed with it
    present, seen from B: ['greeter', 'me']
    greeter answered: hello, ann (from a space attached to the other router)
    after the greeter left, seen from B: ['me']
"""

from __future__ import annotations

from dataspace_agency import Agent, ZenohDataspaceSpace, action
from dataspace_agency.zenoh import Router


class Greeter(Agent):
    @action
    def greet(self, name: str) -> str:
        return f"hello, {name}"


def main() -> None:
    with Router() as router_a, Router(connect=router_a.endpoints) as router_b:
        print(f"router A on {router_a.endpoints[0]}, router B meshed with it")
        with ZenohDataspaceSpace(router_a.endpoints) as here, \
                ZenohDataspaceSpace(router_b.endpoints) as there:
            here.add(Greeter, "greeter")
            me = there.add_foreground(Agent, "me")
            print("present, seen from B:", sorted(there.agents()))
            answer = me.request({"to": "greeter", "action": {"name": "greet",
                                                             "args": {"name": "ann"}}},
                                timeout=10)
            print(f"greeter answered: {answer} (from a space attached to the other router)")
            here.remove("greeter")
            here.fact_count()  # the departure has reached the routers...
            there.fact_count()  # ...and what they sent B has arrived
            print("after the greeter left, seen from B:", sorted(there.agents()))


if __name__ == "__main__":
    main()
