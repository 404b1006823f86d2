"""The child's side of ``MultiprocessQueueSpace``: one agent hosted in a child process.

The agent's core runs on a ``BackgroundRuntime``, exactly as in-process spaces host it;
that runtime reads the pipe from the parent itself. The child exits by itself as soon as
the parent dies, even by ``SIGKILL``: its pipe reaches EOF, and a watchdog thread waiting
on the parent's sentinel ends it even if the agent's runtime is stuck.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import multiprocessing.connection
import os
import queue
import threading
import traceback

import trio

from ..classic.agent import Agent
from ..classic.core import AgentCore, Ticket
from ..classic.message import MessageError
from ..runtime import BackgroundRuntime, Runtime
from .children import bootstrap_child, exit_now
from .process_wire import CONTROL, MESSAGE, decode_frame, encode_frame, refused

log = logging.getLogger(__name__)


class _PipeTransport:
    """The child agent's way out: every message goes up the pipe to the parent's router."""

    def __init__(self, host: "_ChildHost") -> None:
        self._host = host

    def deliver(self, message: dict) -> None:
        try:
            data = encode_frame(MESSAGE, message)
        except MessageError as error:  # the parent routes the refusal back to the sender
            refused(message, error, self.deliver)
            return
        self._host.send(data)

    def withdraw(self, message: dict) -> None:
        pass

    def reply(self, ticket: Ticket, reply: dict) -> None:
        self.deliver(reply)


class _ChildHost:
    """Runs one agent in a child process. The agent's runtime reads the pipe itself (a
    trio task woken by the pipe's readability feeds ``core.inbound`` directly); a
    watchdog thread waits on the parent's sentinel and ends the process when the parent
    has gone, even if the agent's runtime is stuck; the main thread starts the agent,
    then waits for a stop request or the parent's end.

    (A reader *thread* handing each message over with ``core.run_soon`` would cost one
    more thread wake-up per message: about 50 us of the round trip here.)"""

    def __init__(self, conn: multiprocessing.connection.Connection, agent_id: str) -> None:
        self.conn = conn
        self.agent_id = agent_id
        self._write_lock = threading.Lock()
        self._core: AgentCore | None = None  # runtime thread only, like _early
        self._early: list[dict] = []  # messages read before the core existed
        self._requests: queue.Queue = queue.Queue()  # ("stop", force) or ("gone",)
        self._exiting = threading.Event()

    def send(self, data: bytes) -> None:
        try:
            with self._write_lock:
                self.conn.send_bytes(data)
        except (OSError, ValueError):
            self._requests.put(("gone",))  # the parent has gone

    def _control(self, control: dict) -> None:
        self.send(encode_frame(CONTROL, control))

    async def _read_pipe(self) -> None:
        """Feed the pipe into the core, on the runtime thread; no thread in between."""
        conn = self.conn
        fd = conn.fileno()
        try:
            while True:
                await trio.lowlevel.wait_readable(fd)
                while True:  # everything that is there (a frame arrives whole)
                    data = conn.recv_bytes()
                    if data[:1] == MESSAGE:
                        message = decode_frame(data)
                        if self._core is None:
                            self._early.append(message)
                        else:
                            self._core.inbound(message)
                    else:
                        control = decode_frame(data)
                        if control.get("op") == "stop":
                            self._requests.put(("stop", bool(control.get("force"))))
                    if not conn.poll():
                        break
        except (EOFError, OSError):
            self._requests.put(("gone",))  # the parent has gone, or we are leaving

    def _watch_parent(self) -> None:
        """Wait for the parent process to end (its sentinel: a pipe only it holds open),
        then make sure this process ends too."""
        parent = multiprocessing.parent_process()
        if parent is None or parent.sentinel is None:
            return
        multiprocessing.connection.wait([parent.sentinel])
        self._requests.put(("gone",))
        if not self._exiting.wait(5.0):  # the main thread is stuck (e.g. in after_add)
            exit_now(0)

    def _start_core(self, runtime: Runtime, agent: Agent,
                    limiter: trio.CapacityLimiter) -> None:
        core = AgentCore(agent, _PipeTransport(self), runtime.system.nursery.start_soon,
                         limiter)
        agent._core = core
        early, self._early = self._early, []
        for message in early:
            core.inbound(message)
        self._core = core

    def run(self, agent_type: type[Agent], args: tuple, kwargs: dict) -> None:
        threading.Thread(target=self._watch_parent, daemon=True, name="parent-watch").start()
        runtime: BackgroundRuntime | None = None
        try:
            runtime = BackgroundRuntime(name=f"agent:{self.agent_id}")
            runtime.call(lambda rt: rt.system.nursery.start_soon(self._read_pipe))
            limiter = runtime.call(lambda rt: trio.CapacityLimiter(math.inf))
            agent = agent_type(self.agent_id, *args, **kwargs)
            if not isinstance(agent, Agent) or agent.id != self.agent_id:
                raise ValueError(f"{agent_type.__name__}({self.agent_id!r}, ...) must be an"
                                 f" Agent with that id")
            runtime.call(lambda rt: self._start_core(rt, agent, limiter))
            if "after_add" in agent._overridden_hooks():
                agent.after_add()
            runtime.call(lambda rt: agent._core.begin_processing())
            helps = {name: spec.help for name, spec in agent._action_specs().items()
                     if name in agent._published_helps()}
        except BaseException as exc:  # noqa: BLE001 - reported to add()
            self._control({"op": "failed", "type": type(exc).__name__, "error": str(exc),
                           "traceback": traceback.format_exc()})
            self._finish(runtime, 1)
            return
        self._control({"op": "ready", "pid": os.getpid(), "helps": helps})
        while True:
            request = self._requests.get()
            if request[0] == "gone":  # nobody left to tell or to wait for: just go
                self._exiting.set()
                exit_now(0)
            force = request[1]
            try:
                agent.before_remove()
            except Exception as exc:  # noqa: BLE001 - reported to remove()
                if not force:
                    self._control({"op": "remove_failed", "type": type(exc).__name__,
                                   "error": str(exc), "traceback": traceback.format_exc()})
                    continue
                log.exception('agent "%s": before_remove failed', self.agent_id)
            try:
                runtime.call(lambda rt: agent._core.stop(), timeout=self._STOP_WAIT)
            except Exception:  # noqa: BLE001 - we are leaving anyway
                log.exception('agent "%s": stopping failed', self.agent_id)
            self._control({"op": "stopped"})
            self._finish(runtime, 0)
            return

    _STOP_WAIT = 5.0

    def _finish(self, runtime: BackgroundRuntime | None, code: int) -> None:
        self._exiting.set()
        if runtime is not None:
            try:
                runtime.close(timeout=self._STOP_WAIT)
            except Exception:  # noqa: BLE001
                log.exception('agent "%s": the runtime did not stop', self.agent_id)
        try:
            self.conn.close()
        except OSError:
            pass
        exit_now(code)


def child_main(conn: multiprocessing.connection.Connection, agent_type: type[Agent],
                agent_id: str, args: tuple, kwargs: dict) -> None:
    """A child process's main: host one agent until told to stop or the parent goes."""
    bootstrap_child()
    _ChildHost(conn, agent_id).run(agent_type, args, kwargs)
