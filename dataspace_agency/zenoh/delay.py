"""A TCP proxy that delays every byte by a fixed time each way: latency between simulated
machines where the kernel has no ``netem`` (tests and benchmarks put it between two
routers: ``--connect`` the proxy's endpoint instead of the router's).

Order is kept (one queue per direction); bandwidth is not limited. Threads, not trio: it
serves Zenoh's own connections, which know nothing of our runtime. ``close()`` ends it.
"""

from __future__ import annotations

import queue
import socket
import threading
import time

__all__ = ["DelayProxy"]


class DelayProxy:
    """Listens on a free port of ``host``; forwards to ``target`` (``tcp/HOST:PORT``)
    delaying each direction by ``delay`` seconds."""

    def __init__(self, target: str, delay: float, host: str = "127.0.0.1") -> None:
        self.delay = delay
        target_host, _, port = target.removeprefix("tcp/").rpartition(":")
        self._target = (target_host, int(port))
        self._listener = socket.create_server((host, 0))
        self.endpoint = f"tcp/{host}:{self._listener.getsockname()[1]}"
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._closed = False
        self._start(self._accept)

    def _start(self, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True,
                                  name=f"delay proxy {self.endpoint}")
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
                upstream = socket.create_connection(self._target)
            except OSError:
                return  # closed
            self._sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                chunks: queue.Queue = queue.Queue()
                self._start(self._read, source, chunks)
                self._start(self._write, sink, chunks)

    def _read(self, source: socket.socket, chunks: queue.Queue) -> None:
        buffer = bytearray(65536)
        while True:
            try:
                data = bytes(buffer[:source.recv_into(buffer)])  # raw bytes, never unpickled
            except OSError:
                data = b""
            chunks.put((time.monotonic() + self.delay, data))
            if not data:
                return

    def _write(self, sink: socket.socket, chunks: queue.Queue) -> None:
        while True:
            due, data = chunks.get()
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            try:
                if not data:
                    sink.shutdown(socket.SHUT_WR)
                    return
                sink.sendall(data)
            except OSError:
                return

    def close(self) -> None:
        self._closed = True
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread
        except OSError:
            pass
        self._listener.close()
        for sock in self._sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        for thread in self._threads:
            thread.join(5)

    def __enter__(self) -> "DelayProxy":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
