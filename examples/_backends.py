"""Shared by the examples: the ``--backend`` choices and how to open each space.

Not an example itself (the leading underscore keeps it out of ``dataspace-agency example
--list``). Every example that runs on several backends builds its space here, so that the
examples differ only in what they show.
"""

from __future__ import annotations

import argparse
import os
import uuid

from dataspace_agency import DataspaceSpace, MultiprocessQueueSpace, QueueSpace
from dataspace_agency.spaces import Space

BACKENDS = ("dataspace-assertion", "dataspace-message", "queue", "multiprocess-queue",
            "amqp")  # the names `compare --backends` and `repl --space` use
AMQP_URL_ENV = "DATASPACE_AGENCY_AMQP_URL"


def add_backend_arguments(parser: argparse.ArgumentParser, *, default: str,
                          choices: tuple[str, ...] = BACKENDS, many: bool = False) -> None:
    """``--backend`` (once, or repeatable with ``many``) and ``--amqp-url``."""
    if many:
        parser.add_argument("--backend", action="append", choices=choices, dest="backends",
                            help=f"a backend to run on; repeat for several (default:"
                                 f" {default})")
        parser.set_defaults(default_backends=default.split(","))
    else:
        parser.add_argument("--backend", choices=choices, default=default,
                            help=f"where the agents live (default: {default})")
    parser.add_argument("--amqp-url", default=os.environ.get(AMQP_URL_ENV),
                        help=f"the RabbitMQ broker for --backend amqp (default:"
                             f" ${AMQP_URL_ENV})")


def chosen_backends(args: argparse.Namespace) -> list[str]:
    """The backends of a ``many=True`` parser, in the order given."""
    return args.backends or args.default_backends


def open_space(backend: str, amqp_url: str | None = None) -> Space:
    """A fresh space of the given backend. Use it as a context manager: leaving the block
    removes every agent (and, for processes, stops them)."""
    if backend == "dataspace-assertion":
        return DataspaceSpace(mode="assertion")
    if backend == "dataspace-message":
        return DataspaceSpace(mode="message")
    if backend == "queue":
        return QueueSpace()
    if backend == "multiprocess-queue":
        return MultiprocessQueueSpace()
    if backend == "amqp":
        if not amqp_url:
            raise SystemExit(f"--backend amqp needs a broker: pass --amqp-url"
                             f" amqp://user:password@host:port/vhost or set {AMQP_URL_ENV}")
        from dataspace_agency import AMQPSpace  # needs pika: imported only when used
        # A fresh exchange: runs of this example never see each other's agents.
        return AMQPSpace(amqp_url, exchange=f"example-{uuid.uuid4().hex[:12]}")
    raise ValueError(f"unknown backend {backend!r}; one of {BACKENDS}")


def msg(to: str, name: str, /, **args) -> dict:
    """A classic action message: ``msg("calc", "add", a=1, b=2)``."""
    return {"to": to, "action": {"name": name, "args": args}}
