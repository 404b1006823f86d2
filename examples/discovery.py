"""Discovery as a query over facts: who is here and what they offer, without asking anyone.

Every agent on a dataspace asserts `<agent id>` and one `<action id name help>` per action
it offers. So:

* `space.agents()` reads them at any moment (a query: observe, take the replay, stop);
* a native observer of `<action $agent $name _>` is told when offers appear and go,
  including those made before it started (a late observer sees the current state);
* a client finds who can do something by looking at the facts, then asks that agent.

Run: .venv/bin/python examples/discovery.py [--mode assertion|message]
"""

from __future__ import annotations

import argparse
import queue
import sys

from _backends import msg
from syndicate import dataspace, turn
from syndicate import patterns as P

from dataspace_agency import ACCESS_DENIED, Agent, DataspaceSpace, action
from dataspace_agency.commands.failures import run_command


class Weather(Agent):
    @action
    def forecast(self, city: str) -> str:
        """Tomorrow's weather in a city."""
        return f"sunny in {city}"


class Translator(Agent):
    @action
    def translate(self, text: str, to: str) -> str:
        """Translate a text (this one knows a single word)."""
        return {"fr": "bonjour", "de": "hallo"}.get(to, text) if text == "hello" else text

    @action
    def languages(self) -> list:
        """The languages it translates to."""
        return ["de", "fr"]

    @action(access_policy=ACCESS_DENIED)
    def retrain(self) -> None:
        """Denied actions are not offered, so they are not published either."""


def offers_watcher(events: queue.Queue):
    """A native syndicate-py actor: reports each offer as it appears and goes."""
    def boot(ds_ref) -> None:
        turn.prevent_inert_check()

        @dataspace.during(ds_ref, P.rec("action", P.CAPTURE, P.CAPTURE, P._))
        def offer(agent_id, name):
            events.put(f"appeared: {agent_id}.{name}")
            turn.on_stop(lambda: events.put(f"gone: {agent_id}.{name}"))
    return boot


def show(events: queue.Queue, count: int) -> None:
    """Print the next ``count`` events; sorted, since one agent's offers arrive together
    and their order among themselves is not part of the contract."""
    for line in sorted(events.get(timeout=10) for _ in range(count)):
        print("watcher:", line)


def main(mode: str) -> None:
    print(f"mode: {mode}")
    with DataspaceSpace(mode=mode) as space:
        space.add(Weather, "weather")
        me = space.add_foreground(Agent, "me")

        # 1. A query over facts: present agents and the help of each action they offer.
        for agent_id, actions in sorted(space.agents().items()):
            print(f"query: {agent_id} offers {sorted(actions)}")

        # 2. A live view. The watcher starts after "weather" and "me" joined, and is told
        #    about their offers first (replay), then about changes as they happen.
        events: queue.Queue = queue.Queue()
        space.spawn_native(offers_watcher(events), name="watcher")
        show(events, 3)  # weather.forecast, weather.help, me.help
        space.add(Translator, "translator")
        show(events, 3)  # translate, languages, help; never "retrain"

        # 3. Find whoever offers "translate" from the facts, read its help, then ask it.
        offers = space.agents()
        who = next(a for a, actions in sorted(offers.items()) if "translate" in actions)
        print(f"found: {who} offers translate: {offers[who]['translate']['description']}")
        print("asked:", me.request(msg(who, "translate", text="hello", to="fr")))

        # 4. Leaving retracts an agent's facts: the watcher sees its offers go.
        space.remove("translator")
        show(events, 3)
        print("query after it left:", sorted(space.agents()))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=["assertion", "message"], default="assertion",
                        help="the adapter's mode (discovery works the same in both)")
    args = parser.parse_args()
    # Ctrl-C, or `| head` closing the pipe: one line or none, not a traceback.
    sys.exit(run_command("discovery", lambda: main(args.mode)))
