"""``dataspace-agency router``: a Zenoh router for the dataspace on Zenoh.

    dataspace-agency router --listen tcp/0.0.0.0:7447 --connect tcp/10.0.0.6:7447

Listens on each ``--listen`` endpoint, meshes with the routers at each ``--connect``
(repeatable), prints ``listening ENDPOINT`` lines then ``ready`` once listening, and runs
until interrupted (Ctrl-C, SIGTERM). Agents join with
``ZenohDataspaceSpace(["tcp/HOST:PORT"], mode=...)`` or
``dataspace_agency.zenoh.connect([...])``; see docs/zenoh.md. Needs the ``zenoh`` extra.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

NAME = "router"
HELP = "run a Zenoh router carrying the dataspace across machines"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--listen", action="append", default=[], metavar="tcp/HOST:PORT",
                        help="endpoint to listen on (repeatable; default a free port on"
                             " 127.0.0.1)")
    parser.add_argument("--connect", action="append", default=[], metavar="tcp/HOST:PORT",
                        help="another router to mesh with (repeatable)")
    parser.add_argument("--lease-ms", type=int, default=None, metavar="MS",
                        help="how long a silent peer keeps its facts (Zenoh's lease)")


def run(args: argparse.Namespace) -> int:
    try:
        from ..zenoh import Router, ZenohUnreachable
    except ImportError as exc:
        print(f"router: needs the zenoh extra ({exc}): pip install "
              f"'dataspace-agency[zenoh]'", file=sys.stderr)
        return 1
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        router = Router(listen=args.listen, connect=args.connect, lease_ms=args.lease_ms)
    except (ValueError, ZenohUnreachable) as exc:
        print(f"router: {exc}", file=sys.stderr)
        return 1
    with router:
        for endpoint in router.endpoints:
            print(f"listening {endpoint}")
        print("ready", flush=True)
        while not stop.wait(1.0):  # wakes for signals; the wait keeps Ctrl-C responsive
            pass
    return 0
