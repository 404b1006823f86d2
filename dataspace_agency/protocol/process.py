"""A dataspace server in a child process, for zero-configuration use (tests, harnesses).

::

    with ServerProcess.start() as server:     # unix socket in a private temp directory
        client = connect_sync(server.address, server.capability)

The child is ``python -m dataspace_agency.protocol.server_main --unix PATH --key HEX
--exit-on-stdin-eof`` (``protocol/server_main.py``: the options of ``dataspace-agency
serve``, without the command line above this layer): it stops when
:meth:`ServerProcess.stop` closes its stdin, and also when this process dies (its stdin
pipe then closes), so no server is left behind.
The key is random per server.
"""

from __future__ import annotations

import os
import secrets
import selectors
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any

from preserves import Record, Symbol

from .sturdy import mint

__all__ = ["ServerProcess"]

_ENTRY = f"{__package__}.server_main"  # this layer's own server entry


class ServerProcess:
    """A running server child process; see the module docstring."""

    def __init__(self, process: subprocess.Popen, address: Record, capability: Record,
                 directory: str | None) -> None:
        self.process = process
        self.address = address
        self.capability = capability
        self._directory = directory

    @property
    def pid(self) -> int:
        return self.process.pid

    @classmethod
    def start(cls, unix_path: str | None = None, timeout: float = 30.0,
              extra_args: tuple[str, ...] = (),
              profile_to: str | None = None) -> "ServerProcess":
        """Start a server on ``unix_path`` (default: a fresh temp dir) and wait until it
        listens. ``extra_args``: more server options (``protocol/server_main.py``).
        ``profile_to``: run it under cProfile, whose statistics are written to that file
        when it stops (for benchmarks: ``benchmarks/remote_classic.py --profile``)."""
        directory = None
        if unix_path is None:
            directory = tempfile.mkdtemp(prefix="dataspace-agency-")
            unix_path = os.path.join(directory, "dataspace.sock")
        key = secrets.token_bytes(16)
        profiler = ("-m", "cProfile", "-o", profile_to) if profile_to else ()
        command = [sys.executable, *profiler, "-m", _ENTRY, "--unix", unix_path,
                   "--key", key.hex(), "--exit-on-stdin-eof", "--log-level", "WARNING",
                   *extra_args]
        process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        try:
            _wait_ready(process, timeout)
        except BaseException:
            process.kill()
            process.wait()
            if directory is not None:
                shutil.rmtree(directory, ignore_errors=True)
            raise
        return cls(process, Record(Symbol("unix"), [unix_path]), mint(key), directory)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server (its connections close) and wait for it. Idempotent."""
        if self.process.poll() is None:
            try:
                self.process.stdin.close()
            except OSError:
                pass
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None and not stream.closed:
                stream.close()
        if self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)
            self._directory = None

    def __enter__(self) -> "ServerProcess":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()


def _wait_ready(process: subprocess.Popen, timeout: float) -> None:
    """Read the server's start-up lines until ``ready``."""
    deadline = time.monotonic() + timeout
    output = b""
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while b"ready\n" not in output:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"the server did not start within {timeout} s")
            if not selector.select(remaining):
                continue
            chunk = os.read(process.stdout.fileno(), 4096)
            if not chunk:
                raise RuntimeError(f"the server exited at start-up (code {process.wait()}): "
                                   f"{output.decode(errors='replace')}")
            output += chunk
