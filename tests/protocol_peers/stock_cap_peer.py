"""An unmodified syndicate-py 0.19.3 program presenting a capability, for the security
tests: resolve CAP at the server's gatekeeper itself and report the answer; if accepted,
assert each ASSERTION (Preserves text) and sync.

    python stock_cap_peer.py ADDRESS CAP [ASSERTION ...]

Prints, flushed: ``rejected DETAIL`` or ``accepted``, then ``synced`` once the server has
handled every assertion. Used by tests/protocol/test_security.py.
"""

import sys

import preserves
from syndicate import actor, relay, turn
from syndicate.during import During
from syndicate.schema import gatekeeper, sturdy

address, cap_text, assertion_texts = sys.argv[1], sys.argv[2], sys.argv[3:]
cap = sturdy.SturdyRef.decode(preserves.parse(cap_text))


def say(line):
    print(line, flush=True)


@actor.run_system(name="cap-peer", configure_logging=False)
def main():
    @relay.connect(address)  # no cap here: we resolve it ourselves, to see a rejection
    def on_gatekeeper(gk):
        def answered(resolved):
            if resolved.key.name == "rejected":
                say(f"rejected {resolved.fields[0]}")
                return
            ds = resolved.fields[0].embeddedValue
            say("accepted")
            for text in assertion_texts:
                turn.publish(ds, preserves.parse(text))
            turn.sync(ds, lambda: say("synced"))

        turn.publish(gk, gatekeeper.Resolve(cap, turn.ref(During().add_handler(answered))))
