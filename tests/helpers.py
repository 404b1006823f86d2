"""Small helpers shared by tests: building values and collecting observer events."""

from __future__ import annotations

import signal

import trio
from preserves import Record, Symbol

from dataspace_agency import Agent, action


def rec(label: str, *fields) -> Record:
    return Record(Symbol(label), list(fields))


async def next_events(events: trio.MemoryReceiveChannel, count: int,
                      timeout: float = 5.0) -> list:
    """The next ``count`` events, failing (not hanging) if they do not come."""
    got = []
    with trio.fail_after(timeout):
        for _ in range(count):
            got.append(await events.receive())
    return got


def pending(events: trio.MemoryReceiveChannel) -> list:
    """Events already delivered and not yet read (call after ``await ds.sync()``)."""
    got = []
    while True:
        try:
            got.append(events.receive_nowait())
        except trio.WouldBlock:
            return got


def sigint_as_in_a_terminal() -> None:
    """``preexec_fn`` for a child process that a test sends SIGINT (Ctrl-C): SIGINT's
    default disposition, as in a terminal's foreground job. A process started with SIGINT
    ignored (a shell's background job, ``nohup``) passes that on to its children, and
    Python then installs no ``KeyboardInterrupt`` handler at all."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def compare_document(runs: list[dict], backend_names, workload_names,
                     profile: str = "tiny") -> dict:
    """A ``dataspace-agency compare`` results document around ``runs`` (as
    ``runner.execute`` writes it, with a made-up machine), for report and plot tests."""
    from dataspace_agency.compare import backends, runner, workloads
    return {
        "schema": runner.SCHEMA, "created": "now", "command": ["test"], "profile": profile,
        "repeat": 1, "reference": backends.REFERENCE, "duration_s": 1.0,
        "machine": {"cpu_model": "cpu", "cpus": 2, "cpus_usable": 2, "memory_mib": 1024,
                    "python": "3", "system": "test", "versions": {"x": "1"}},
        "load": {}, "broker": None,
        "backends": {n: runner._describe(backends.get(n), None) for n in backend_names},
        "workloads": {n: workloads.get(n).DESCRIPTION for n in workload_names},
        "runs": runs,
    }


class Blocker(Agent):
    """A classic agent whose ``block`` action runs until ``release`` is set (or ``bound``
    seconds pass, so a failing test cannot hang on it); ``started`` is set when it
    begins. ``ping`` answers at once."""

    def __init__(self, id, *args, started, release, bound: float = 30, **kwargs):
        super().__init__(id, *args, **kwargs)
        self.started = started
        self.release = release
        self.bound = bound

    @action
    def block(self):
        self.started.set()
        self.release.wait(self.bound)
        return "released"

    @action
    def ping(self):
        return "pong"
