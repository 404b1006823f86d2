"""Zenoh routers in child processes (``dataspace-agency router``), for tests, benchmarks
and the comparison: start one, wait for its ``ready``, stop or kill it by its PID.

``netns`` runs the router inside the network namespace held by a process (``nsenter
--net=/proc/PID/ns/net``), so several simulated machines can share a loopback of their own
(see :class:`NetworkNamespace`).
"""

from __future__ import annotations

import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from typing import Sequence

from .session import free_endpoint

__all__ = ["NetworkNamespace", "RouterProcess"]


def _wait_ready(process: subprocess.Popen, what: str, timeout: float) -> None:
    """Read the child's output until its ``ready`` line (on a thread, so that a line
    already buffered is never waited for on the pipe)."""
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        for line in process.stdout:
            lines.put(line)
            if line.strip() == "ready":
                return
        lines.put("")

    threading.Thread(target=read, name=f"wait for {what}", daemon=True).start()
    deadline = time.monotonic() + timeout
    while True:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            process.kill()
            process.wait()
            raise TimeoutError(f"{what} did not print ready within {timeout} s") from None
        if line.strip() == "ready":
            return
        if not line:
            process.wait()
            raise RuntimeError(f"{what} exited ({process.returncode}) before ready: "
                               f"{process.stderr.read().strip()}")


class NetworkNamespace:
    """A network namespace with only loopback, held by a child process (``unshare
    --net``, needs root or user namespaces) for at most ``lifetime`` seconds."""

    def __init__(self, lifetime: float = 600.0) -> None:
        if shutil.which("unshare") is None or shutil.which("nsenter") is None:
            raise OSError("unshare/nsenter not found (util-linux)")
        self.process = subprocess.Popen(
            ["unshare", "--net", "--", "sh", "-c",
             f"ip link set lo up && echo ready && exec sleep {int(lifetime)}"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        _wait_ready(self.process, "network namespace", 10.0)

    def prefix(self) -> list[str]:
        """Command prefix running a program inside the namespace."""
        return ["nsenter", f"--net=/proc/{self.process.pid}/ns/net", "--"]

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for stream in (self.process.stdout, self.process.stderr):
            stream.close()


class RouterProcess:
    """``dataspace-agency router`` in a child process, ready when constructed."""

    def __init__(self, listen: str | None = None, connect: Sequence[str] = (),
                 netns: NetworkNamespace | None = None, timeout: float = 20.0) -> None:
        self.endpoint = listen or free_endpoint()
        command = [sys.executable, "-m", "dataspace_agency.cli", "router",
                   "--listen", self.endpoint]
        for endpoint in connect:
            command += ["--connect", endpoint]
        if netns is not None:
            command = netns.prefix() + command
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True,
                                        env={**os.environ, "PYTHONUNBUFFERED": "1"})
        _wait_ready(self.process, f"router on {self.endpoint}", timeout)

    @property
    def pid(self) -> int:
        return self.process.pid

    def kill(self) -> None:
        """SIGKILL: the router vanishes as a crashed machine's would."""
        self._end(signal.SIGKILL)

    def stop(self) -> None:
        self._end(signal.SIGTERM)

    def _end(self, signum: int) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signum)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for stream in (self.process.stdout, self.process.stderr):
            stream.close()
