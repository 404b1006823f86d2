"""The "echo" agent of backend_round_trips.py in a space of a child Python process, for
benchmarks/zenoh_dataspace.py ``--processes`` (agents in separate processes, as a user
spreading them over machines runs them).

    python benchmarks/echo_process.py MODE TIMEOUT CARRIER ARG ARG

CARRIER ARG ARG is a carrier spec (:func:`space_for`): ``server ADDRESS CAP`` (Preserves
text), ``zenoh ENDPOINT NAMESPACE`` or ``amqp URL EXCHANGE``. The child prints ``ready``
once "echo" is added and exits when its stdin closes, or after TIMEOUT seconds (bounded,
should its parent hang). The parent side is :func:`echo_in_child`.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
from pathlib import Path
from typing import Iterator, Sequence

sys.path.insert(0, str(Path(__file__).parent))
from backend_round_trips import Echo  # noqa: E402 - the same agent as there

__all__ = ["space_for", "echo_in_child"]


def space_for(spec: Sequence[str], mode: str):
    """A space on the carrier a spec names (both layouts build theirs here, so the two
    measure the same spaces)."""
    kind, first, second = spec
    if kind == "server":
        from dataspace_agency.spaces.remote_space import RemoteDataspaceSpace
        return RemoteDataspaceSpace(first, second, mode=mode)
    if kind == "zenoh":
        from dataspace_agency.spaces.zenoh_space import ZenohDataspaceSpace
        return ZenohDataspaceSpace([first], mode=mode, namespace=second)
    if kind == "amqp":
        from dataspace_agency import AMQPSpace
        return AMQPSpace(url=first, exchange=second)  # no modes: queue messages
    raise ValueError(f"unknown carrier {kind!r}")


@contextlib.contextmanager
def echo_in_child(spec: Sequence[str], mode: str,
                  timeout: float = 1800.0) -> Iterator[subprocess.Popen]:
    """Run "echo" in a child process until the block ends; yields the child (its PID
    for CPU figures). The child is stopped by its PID on every exit path."""
    child = subprocess.Popen(
        [sys.executable, __file__, mode, str(timeout), *spec],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        line = child.stdout.readline()  # blocks until ready, or "" if the child died
        if line.strip() != "ready":
            raise RuntimeError(f"echo child exited ({child.wait()}) before ready: {line!r}")
        yield child
    finally:
        with contextlib.suppress(OSError):
            child.stdin.close()  # the child's signal to close its space and exit
        try:
            child.wait(15)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        child.stdout.close()


def main() -> None:
    mode, timeout, *spec = sys.argv[1:]
    stdin_closed = threading.Event()

    def wait_for_eof() -> None:
        sys.stdin.read()
        stdin_closed.set()
    # A daemon thread: a timeout must not be held up by a read that never ends.
    threading.Thread(target=wait_for_eof, name="stdin", daemon=True).start()
    with space_for(spec, mode) as space:
        space.add(Echo, "echo")
        print("ready", flush=True)
        stdin_closed.wait(float(timeout))


if __name__ == "__main__":
    main()
