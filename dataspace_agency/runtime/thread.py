"""The runtime on a background thread, for synchronous callers (scripts, REPLs, notebooks).

``BackgroundRuntime()`` starts a thread that runs trio with an open :class:`Runtime`;
``call(fn)`` runs ``fn(runtime)`` on that thread and returns its result (or raises its
exception) in the caller's thread; ``close()`` shuts the runtime down and joins the thread.

Waiting is done on a ``concurrent.futures.Future`` rather than
``trio.from_thread.run_sync`` so that a waiting caller can use a timeout and stays
interruptible (Ctrl-C in a REPL).
"""

from __future__ import annotations

import concurrent.futures
import threading
from typing import Any, Awaitable, Callable, TypeVar

import trio

from .host import Runtime, open_runtime
from .system import RuntimeClosed

T = TypeVar("T")


class BackgroundRuntime:
    """A :class:`Runtime` running on its own thread. Use as a context manager or call
    :meth:`close`."""

    def __init__(self, name: str = "dataspace-agency-runtime") -> None:
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._runtime: Runtime | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._stop: trio.Event | None = None
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._startup_error is not None:
            raise RuntimeError("the runtime thread failed to start") from self._startup_error

    def _main(self) -> None:
        try:
            trio.run(self._serve)
        except BaseException as exc:  # report start-up failures to the constructor
            self._startup_error = exc
            self._ready.set()

    async def _serve(self) -> None:
        async with open_runtime() as runtime:
            self._runtime = runtime
            self._token = trio.lowlevel.current_trio_token()
            self._stop = trio.Event()
            self._ready.set()
            await self._stop.wait()

    @property
    def runtime(self) -> Runtime:
        """The runtime itself; touch it only from its thread (inside :meth:`call`)."""
        assert self._runtime is not None
        return self._runtime

    @property
    def thread(self) -> threading.Thread:
        return self._thread

    def submit(self, fn: Callable[[Runtime], T]) -> "concurrent.futures.Future[T]":
        """Run ``fn(runtime)`` on the runtime's thread; returns a future of its result."""
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                future.set_result(fn(self.runtime))
            except BaseException as exc:
                future.set_exception(exc)

        if self._token is None or not self._thread.is_alive():
            raise RuntimeClosed("the runtime thread has stopped")
        try:
            self._token.run_sync_soon(run)
        except trio.RunFinishedError:
            raise RuntimeClosed("the runtime thread has stopped") from None
        return future

    def call(self, fn: Callable[[Runtime], T], timeout: float | None = None) -> T:
        """Run ``fn(runtime)`` on the runtime's thread and return its result."""
        if threading.current_thread() is self._thread:
            return fn(self.runtime)  # already there: calling through the token would deadlock
        return self.submit(fn).result(timeout)

    def call_async(self, async_fn: Callable[[Runtime], Awaitable[T]]) -> T:
        """Run ``await async_fn(runtime)`` on the runtime's thread and return its result."""
        if self._token is None or not self._thread.is_alive():
            raise RuntimeClosed("the runtime thread has stopped")
        try:
            return trio.from_thread.run(async_fn, self.runtime, trio_token=self._token)
        except trio.RunFinishedError:
            raise RuntimeClosed("the runtime thread has stopped") from None

    def close(self, timeout: float = 10.0) -> None:
        """Stop every actor and the thread. Idempotent."""
        if self._thread.is_alive() and self._token is not None and self._stop is not None:
            try:
                self._token.run_sync_soon(self._stop.set)
            except trio.RunFinishedError:
                pass
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise RuntimeError(f"runtime thread did not stop within {timeout} s")

    def __enter__(self) -> "BackgroundRuntime":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()
