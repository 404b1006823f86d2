"""The backends ``dataspace-agency compare`` can measure: a registry, one entry each.

A :class:`Backend` says how to make its space (``make(options)``), what it can do (its
agents live in other processes; it needs a broker; it is agency 1.6.3 itself, the
reference), which profiles run it by default, and how many agents the scale workload may
add to it. Adding a backend is one entry in :data:`BACKENDS`; a backend whose module is
missing or whose broker is unreachable says why (``unavailable(options)``) and is
skipped, never fatal.

The reference backends (``agency-*``) are not made here: agency's agents are written
against agency's own API in ``agency_reference.py``, a script that runs in a process of
its own (``make`` is None for them; the worker hands over to that script).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

AMQP_URL_ENV = "DATASPACE_AGENCY_AMQP_URL"
REFERENCE = "agency-local"  # the figure every ratio in the report is taken against


# agency's reference runner: a script outside the package (it must not import it, see its
# docstring), run by its path by compare/worker.py; it is in a checkout of the repository,
# which is how the README installs.
REFERENCE_SCRIPT = Path(__file__).resolve().parents[2] / "reference" / "agency_reference.py"


@dataclass(frozen=True)
class Options:
    """What a backend may need to start: a broker URL, a unique exchange name."""

    amqp_url: str | None = None
    namespace: str = "dsa-compare"


@dataclass(frozen=True)
class Backend:
    """One way of running classic agents; see the module docstring."""

    name: str
    label: str
    kind: str  # "dataspace" | "queue" | "reference"
    make: Callable[[Options], Any] | None  # -> a dataspace_agency Space (None: reference)
    profiles: tuple[str, ...]  # profiles that run it unless --backends says otherwise
    processes: bool = False  # add()ed agents live in other processes
    needs_broker: bool = False
    reference: bool = False  # agency 1.6.3 itself (agency_reference.py)
    stub_logging: bool = False  # reference only: agency's log() replaced by a no-op
    max_agents: dict[str, int] = field(default_factory=lambda: {
        "tiny": 20, "quick": 1_000, "full": 10_000})
    requires: tuple[str, ...] = ()  # importable modules it needs
    # profile -> the only workloads it runs there unless --workloads names others
    only: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # (profile, workload) -> parameters that replace the workload's own on this backend
    params: dict[tuple[str, str], dict] = field(default_factory=dict)

    def unavailable(self, options: Options) -> str | None:
        """Why this backend cannot run here, or None."""
        for module in self.requires:
            if importlib.util.find_spec(module) is None:
                return f"needs the Python module {module!r}, which is not installed"
        if self.reference and not REFERENCE_SCRIPT.exists():
            return (f"needs agency's reference runner {REFERENCE_SCRIPT}, which is in a"
                    " checkout of the repository (pip install -e), not in this install")
        if self.needs_broker and not options.amqp_url:
            return (f"needs a RabbitMQ broker: --amqp-url, ${AMQP_URL_ENV}, or"
                    " --rabbitmq start")
        return None


def _dataspace(mode: str) -> Callable[[Options], Any]:
    def make(options: Options) -> Any:
        from ..spaces import DataspaceSpace
        return DataspaceSpace(mode=mode)
    return make


def _queue(options: Options) -> Any:
    from ..spaces import QueueSpace
    return QueueSpace()


def _multiprocess(options: Options) -> Any:
    from ..spaces import MultiprocessQueueSpace
    return MultiprocessQueueSpace()


def _amqp(options: Options) -> Any:
    from ..spaces import AMQPSpace
    return AMQPSpace(url=options.amqp_url, exchange=options.namespace)


def _remote(options: Options) -> Any:
    # Imported by name: the remote spaces are optional here (skipped if absent).
    module = importlib.import_module("dataspace_agency.spaces.remote_space")
    # A private server in a child process. Assertion mode, as the other cross-process
    # dataspace backends: its pair in process is dataspace-assertion (docs/compare.md).
    return module.RemoteDataspaceSpace(mode="assertion")


def _remote_processes(options: Options) -> Any:
    module = importlib.import_module("dataspace_agency.spaces.remote_process_space")
    return module.MultiprocessDataspaceSpace(mode="assertion")  # an agent per process


def _zenoh(options: Options) -> Any:
    module = importlib.import_module("dataspace_agency.spaces.zenoh_space")
    return module.ZenohDataspaceSpace(mode="assertion")  # a private router in this process


_SMALL = {"tiny": 5, "quick": 10, "full": 50}  # agency: a process per agent, 134 ms per add
# agency's AMQPSpace opens a connection per message sent: ~10 messages/s.
_AGENCY_AMQP = {("full", "throughput"): {"messages": 100},
                ("quick", "throughput"): {"messages": 50}}

BACKENDS: dict[str, Backend] = {b.name: b for b in [
    Backend("dataspace-assertion", "DataspaceSpace (assertion)", "dataspace",
            _dataspace("assertion"), ("tiny", "quick", "full")),
    Backend("dataspace-message", "DataspaceSpace (message)", "dataspace",
            _dataspace("message"), ("tiny", "quick", "full")),
    Backend("remote-dataspace",
            "RemoteDataspaceSpace (assertion, server in a child process)",
            "dataspace", _remote, ("full",),
            max_agents={"tiny": 5, "quick": 100, "full": 1_000},
            requires=("dataspace_agency.spaces.remote_space",)),
    Backend("remote-dataspace-processes",
            "MultiprocessDataspaceSpace (assertion, agent per process)",
            "dataspace", _remote_processes, ("full",), processes=True,
            max_agents={"tiny": 5, "quick": 100, "full": 1_000},
            requires=("dataspace_agency.spaces.remote_process_space",)),
    Backend("zenoh", "ZenohDataspaceSpace (assertion, router in process)", "dataspace",
            _zenoh, ("full",), max_agents={"tiny": 5, "quick": 100, "full": 1_000},
            requires=("zenoh", "dataspace_agency.spaces.zenoh_space")),
    Backend("queue", "QueueSpace", "queue", _queue, ("tiny", "quick", "full")),
    Backend("multiprocess-queue", "MultiprocessQueueSpace", "queue", _multiprocess,
            ("full",), processes=True,
            max_agents={"tiny": 5, "quick": 100, "full": 1_000}),
    Backend("amqp", "AMQPSpace", "queue", _amqp, ("full",), needs_broker=True,
            max_agents={"tiny": 5, "quick": 100, "full": 1_000}, requires=("pika",)),
    Backend("agency-local", "agency 1.6.3 LocalSpace", "reference", None,
            ("tiny", "quick", "full"), processes=True, reference=True,
            max_agents=_SMALL, requires=("agency",)),
    Backend("agency-local-nolog", "agency 1.6.3 LocalSpace, log stubbed", "reference",
            None, ("quick", "full"), processes=True, reference=True, stub_logging=True,
            max_agents=_SMALL, requires=("agency",),
            # --quick's 3 minutes: the stub shows where logging costs (per message).
            only={"quick": ("round_trip", "throughput")}),
    Backend("agency-amqp", "agency 1.6.3 AMQPSpace", "reference", None, ("full",),
            processes=True, needs_broker=True, reference=True, max_agents=_SMALL,
            requires=("agency", "kombu"), params=_AGENCY_AMQP),
    Backend("agency-amqp-nolog", "agency 1.6.3 AMQPSpace, log stubbed", "reference", None,
            ("full",), processes=True, needs_broker=True, reference=True,
            stub_logging=True, max_agents=_SMALL, requires=("agency", "kombu"),
            params=_AGENCY_AMQP),
]}


def get(name: str) -> Backend:
    """The backend called ``name``; a clear ``ValueError`` naming the known ones if none."""
    try:
        return BACKENDS[name]
    except KeyError:
        raise ValueError(f"unknown backend {name!r}; known: {', '.join(BACKENDS)}") from None


def amqp_url_from_env() -> str | None:
    return os.environ.get(AMQP_URL_ENV) or None
