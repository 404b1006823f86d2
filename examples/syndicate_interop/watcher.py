"""A silent observer written with stock syndicate-py 0.19.3 only: it asserts nothing (so
nobody sees it), and prints every `<Present name>` fact as it comes and goes and every
`<Say who text>` message, with the time it saw each.

    python examples/syndicate_interop/watcher.py ADDRESS CAP

It shows that observing is itself just an assertion (`<Observe pattern observer>`) that
the server matches against the facts of every connection, ours or anyone's.
"""

import sys
import time

import preserves
from syndicate import actor, dataspace, relay, turn
from syndicate import patterns as P
from syndicate.schema import sturdy


def say(line):
    print(f"{time.strftime('%H:%M:%S')} {line}", flush=True)


def main(address, cap_text):
    cap = sturdy.SturdyRef.decode(preserves.parse(cap_text))

    @actor.run_system(name="watcher", configure_logging=False)
    def system():
        @relay.connect(address, cap)
        def on_connected(ds):
            @dataspace.during(ds, P.rec("Present", P.CAPTURE))
            def present(who):
                say(f"+ <Present {who!r}>")
                turn.on_stop(lambda: say(f"- <Present {who!r}>"))

            @dataspace.on_message(ds, P.rec("Say", P.CAPTURE, P.CAPTURE))
            def said(who, text):
                say(f"! <Say {who!r} {text!r}>")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(f"usage: {sys.argv[0]} ADDRESS CAP")
    try:
        main(*sys.argv[1:])
    except KeyboardInterrupt:
        pass
