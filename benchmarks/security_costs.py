"""What the security checks cost per message, measured in isolation.

    .venv/bin/python benchmarks/security_costs.py [--count 100000]

* ``message_size``: the classic message size check (``DataspaceTransport.max_message_size``),
  a compact JSON encoding of each inbound message on spaces whose dataspace other
  processes write to;
* an agent capability's caveat (``spaces/dataspace/caps.py``) applied by the server to a request the
  holder may make, and to a forged ``<agent ...>`` fact it drops.

Best of three repetitions of ``--count`` calls each, in µs per call.
"""

from __future__ import annotations

import argparse
import timeit

from dataspace_agency.classic import values
from dataspace_agency.spaces.dataspace.caps import agent_caveat
from dataspace_agency.classic.message import message_size, new_message_id
from dataspace_agency.spaces.dataspace.vocabulary import agent_fact, request_fact
from dataspace_agency.protocol.caveats import Attenuation


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=100_000)
    count = parser.parse_args().count
    message = {"meta": {"id": new_message_id()}, "from": "mallory", "to": "bob",
               "action": {"name": "echo", "args": {"text": "hello world"}}}
    attenuation = Attenuation([agent_caveat(["mallory"])])
    request = request_fact("bob", message["meta"]["id"], values.to_preserves(message))
    forged = agent_fact("alice")
    cases = [("message_size of a small message", lambda: message_size(message)),
             ("agent caveat, a request it allows", lambda: attenuation.apply(request)),
             ("agent caveat, a forged <agent> fact it drops", lambda: attenuation.apply(forged))]
    for name, fn in cases:
        best = min(timeit.repeat(fn, number=count, repeat=3)) / count
        print(f"{name:48} {best * 1e6:6.2f} µs")


if __name__ == "__main__":
    main()
