"""An unmodified syndicate-py 0.19.3 program (stock asyncio runtime, stock relay client):
announce presence, greet every peer that appears, print what it sees.

    python stock_chat_peer.py ADDRESS CAPABILITY NAME

Prints one line per event, flushed: ``present WHO``, ``absent WHO``, ``said FROM TO TEXT``.
Used by tests/protocol/test_server_interop.py; each instance runs in its own process.
"""

import sys

from syndicate import Record, Symbol, actor, dataspace, relay, turn
from syndicate import patterns as P
from syndicate.schema import sturdy

address, cap_text, me = sys.argv[1], sys.argv[2], sys.argv[3]
cap = sturdy.SturdyRef.decode(__import__("preserves").parse(cap_text))


def say(line):
    print(line, flush=True)


@actor.run_system(name=me, configure_logging=False)
def main():
    @relay.connect(address, cap)
    def on_connected(ds):
        turn.publish(ds, Record(Symbol("Present"), [me]))

        @dataspace.during(ds, P.rec("Present", P.CAPTURE))
        def present(who):
            say(f"present {who}")
            if who != me:
                turn.send(ds, Record(Symbol("Say"), [me, who, f"hello {who}"]))
            turn.on_stop(lambda: say(f"absent {who}"))

        @dataspace.on_message(ds, P.rec("Say", P.CAPTURE, P.CAPTURE, P.CAPTURE))
        def said(sender, to, text):
            say(f"said {sender} {to} {text}")
