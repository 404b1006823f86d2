"""A chat participant written with stock syndicate-py 0.19.3 only (its asyncio runtime and
its relay client; nothing from dataspace-agency), speaking the vocabulary of
examples/chat.py: `<Present name>` while connected, `<Say who text>` messages.

    python examples/syndicate_interop/peer.py NAME ADDRESS CAP

ADDRESS and CAP are what `dataspace-agency serve` prints, e.g. '<tcp "127.0.0.1" 8001>'
and '<ref {oid: "syndicate" sig: #[...]}>'. It greets everyone it sees arrive, prints one
line per event (`bob joined`, `bob left`, `bob: text`), and says each line typed on stdin.
Ctrl-C leaves: the connection closes and the server retracts the presence.
"""

import sys
import threading

import preserves
from syndicate import Record, Symbol, actor, dataspace, relay, turn
from syndicate import patterns as P
from syndicate.schema import sturdy

PRESENT, SAY = Symbol("Present"), Symbol("Say")


def say(line):
    print(line, flush=True)  # one line per event, flushed: others may read us through a pipe


def main(me, address, cap_text):
    cap = sturdy.SturdyRef.decode(preserves.parse(cap_text))

    @actor.run_system(name=me, configure_logging=False)
    def system():
        @relay.connect(address, cap)
        def on_connected(ds):
            turn.publish(ds, Record(PRESENT, [me]))  # retracted by the server when we go

            @dataspace.during(ds, P.rec("Present", P.CAPTURE))
            def present(who):
                # Runs for each <Present who> there now (replayed when we connect) or later;
                # on_stop runs when that fact is retracted.
                say(f"{who} joined")
                if who != me:
                    turn.send(ds, Record(SAY, [me, f"hello {who}"]))
                turn.on_stop(lambda: say(f"{who} left"))

            @dataspace.on_message(ds, P.rec("Say", P.CAPTURE, P.CAPTURE))
            def said(who, text):
                say(f"{who}: {text}")

            # stdin is read on a thread; each line enters the actor through turn.external,
            # syndicate-py's way into a facet from outside its event loop.
            facet = turn.active_facet()

            def read_stdin():
                for line in sys.stdin:
                    if line.strip():
                        turn.external(facet, lambda text=line.rstrip("\n"):
                                      turn.send(ds, Record(SAY, [me, text])))
            threading.Thread(target=read_stdin, daemon=True).start()


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(f"usage: {sys.argv[0]} NAME ADDRESS CAP")
    try:
        main(*sys.argv[1:])
    except KeyboardInterrupt:
        pass
