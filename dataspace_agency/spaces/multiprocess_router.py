"""The parent's router of ``MultiprocessQueueSpace``: routing and the router thread.

A mixin of :class:`~.multiprocess_space.MultiprocessQueueSpace` (it uses the space's
tables and locks). Its router thread blocks in ``multiprocessing.connection.wait`` on
every child's pipe and process sentinel (no polling); it forwards child-to-child messages
as they are (the same bytes) and hands messages for local agents to the runtime thread.
It remembers every point-to-point action routed to a child until the reply passes back,
and answers the ones a dying or leaving child owes with an ``[error]``.
"""

from __future__ import annotations

import concurrent.futures
import logging
import multiprocessing
import multiprocessing.connection
import threading

from ..classic.core import AgentCore
from ..classic.message import (BROADCAST, ERROR, RESPONSE, MessageError, make_reply,
                               validate_message)
from .children import rebuild_error
from .process_wire import MESSAGE, decode_frame, encode_frame, refused

log = logging.getLogger(__name__)

__all__ = ["Child", "ProcessRouter"]


def _copy(message: dict) -> dict:
    """A receiver's own copy of a local sender's message. Not ``values.json_copy`` of the
    whole message: that counts nesting from the message, not from ``action.args`` as the
    validator does, so a valid message with args nested to the limit would fail here."""
    return validate_message(message)


def _is_action(message: dict) -> bool:
    """A point-to-point action: the kind that must be answered."""
    return (message["to"] != BROADCAST
            and message["action"]["name"] not in (RESPONSE, ERROR))


class Child:
    """The parent's record of one child process and its agent."""

    def __init__(self, agent_id: str, conn: multiprocessing.connection.Connection,
                 process: multiprocessing.process.BaseProcess) -> None:
        self.id = agent_id
        self.conn = conn
        self.process = process
        self.pid: int | None = None  # set once started
        self.sentinel: int | None = None
        self.state = "starting"  # -> "ready" -> "gone"; or "failed"
        self.leaving = False  # removed on purpose: its end is not a death
        self.helps: dict[str, dict] = {}
        self.started: concurrent.futures.Future = concurrent.futures.Future()
        self.stopped: concurrent.futures.Future = concurrent.futures.Future()
        self.exited = threading.Event()  # set by the router once the process has gone
        # Point-to-point actions routed to it and not answered yet: id -> (from, name).
        # Guarded by the space's table lock.
        self.pending: dict[str, tuple[str, str]] = {}
        self.eof = False
        self._write_lock = threading.Lock()

    def send(self, data: bytes) -> bool:
        """Write to the child's pipe (any thread); False if it has gone."""
        try:
            with self._write_lock:
                self.conn.send_bytes(data)
            return True
        except (OSError, ValueError):  # the child died, or the pipe was closed
            return False


class ProcessRouter:
    """Routing between local agents and children, and the router thread (part of
    ``MultiprocessQueueSpace``)."""

    def _deliver(self, message: dict, raw: bytes | None = None,
                 source: Child | None = None) -> None:
        """The router, for one message: to the local core(s) and/or the children's pipes.
        Runs on the runtime thread (local senders) or the router thread (children; then
        ``raw`` holds the bytes read, forwarded unchanged to other children)."""
        to = message["to"]
        if to == BROADCAST:
            with self._table_lock:
                cores = list(self._cores.values())
                children = list(self._children.values())
            try:
                data = raw if raw is not None or not children else encode_frame(MESSAGE, message)
            except MessageError as error:  # the children miss it; local agents get it
                refused(message, error, self._deliver)
                children = []
            for child in children:
                child.send(data)  # a dead one is noticed by the router
            for core in cores:
                self._to_core(core, _copy(message))
            return
        action = _is_action(message)
        dead_text = None
        with self._table_lock:
            core = self._cores.get(to)
            child = None if core is not None else self._children.get(to)
            if child is not None and action:
                child.pending[message["meta"]["id"]] = (message["from"],
                                                        message["action"]["name"])
            elif core is None and child is None:
                dead_text = self._dead.get(to)
            if source is not None and not action:  # a reply from a child passing through
                source.pending.pop(message["meta"].get("parent_id"), None)
        if core is not None:
            self._to_core(core, message if source is not None else _copy(message))
        elif child is not None:
            try:
                data = raw if raw is not None else encode_frame(MESSAGE, message)
            except MessageError as error:
                if action:
                    with self._table_lock:
                        child.pending.pop(message["meta"]["id"], None)
                refused(message, error, self._deliver)
                return
            child.send(data)
        elif dead_text is not None and action:
            self._answer(message["meta"]["id"], message["from"], to, dead_text)
        else:
            log.debug('dropping a message to "%s": no such agent', to)

    def _to_core(self, core: AgentCore, message: dict) -> None:
        if core.on_runtime_thread():
            core.inbound(message)
        else:
            core.run_soon(lambda: core.inbound(message))

    def _answer(self, message_id: str, sender: str, agent_id: str, error: str) -> None:
        """Answer, on behalf of ``agent_id``, the action ``message_id`` from ``sender``."""
        reply = make_reply({"meta": {"id": message_id}, "from": sender}, agent_id,
                           error=error, check=False)
        self._deliver(reply)

    def _answer_pending(self, child: Child, pending: dict[str, tuple[str, str]],
                        error: str) -> None:
        for message_id, (sender, _name) in pending.items():
            try:
                self._answer(message_id, sender, child.id, error)
            except Exception:  # noqa: BLE001 - e.g. the runtime has stopped
                log.debug("could not answer %s", message_id, exc_info=True)

    # --- the router thread --------------------------------------------------------------

    def _wake_router(self) -> None:
        self._wake.wake()

    def _router_main(self) -> None:
        """Blocks in ``connection.wait`` on every child's pipe and sentinel (and a wake-up
        pipe for changes), and handles what is ready. No polling."""
        while not self._router_stop:
            with self._table_lock:
                waitables = list(self._waitables)
            try:
                ready = multiprocessing.connection.wait([self._wake.reader, *waitables])
            except OSError:
                continue  # a pipe was closed meanwhile: rebuild the list
            for obj in ready:
                if obj == self._wake.reader and isinstance(obj, int):
                    self._wake.drain()
                    continue
                with self._table_lock:
                    entry = self._waitables.get(obj)
                if entry is None:
                    continue
                kind, child = entry
                try:
                    if kind == "conn":
                        self._read_child(child)
                    else:
                        self._child_exited(child)
                except Exception:  # noqa: BLE001 - keep routing for everyone else
                    log.exception('router: handling agent "%s" failed', child.id)

    def _read_child(self, child: Child) -> None:
        """What the child has written so far (at least one message, or EOF); at most a
        batch, so that one busy child cannot starve the others."""
        conn = child.conn
        for _ in range(64):
            try:
                data = conn.recv_bytes()
            except (EOFError, OSError):
                # It has exited (or is exiting): the sentinel says when, with the code.
                child.eof = True
                with self._table_lock:
                    self._waitables.pop(conn, None)
                return
            self._from_child(child, data)
            try:
                if not conn.poll():
                    return
            except (EOFError, OSError):
                continue  # recv_bytes reports it

    def _from_child(self, child: Child, data: bytes) -> None:
        if data[:1] == MESSAGE:
            self._deliver(decode_frame(data), data, child)
            return
        control = decode_frame(data)
        op = control.get("op")
        if op == "ready":
            if child.state == "starting":  # not given up on by add() meanwhile
                child.helps = control.get("helps", {})
                child.state = "ready"
            self._resolve(child.started, None)
        elif op == "failed":
            self._resolve(child.started, rebuild_error(
                control.get("type", "RuntimeError"), control.get("error", ""),
                f'in the process of agent "{child.id}"', control.get("traceback", "")))
        elif op == "stopped":
            with self._table_lock:
                if self._children.get(child.id) is child:
                    del self._children[child.id]
                child.leaving = True
                pending, child.pending = child.pending, {}
            self._answer_pending(child, pending,
                                 f'RuntimeError: agent "{child.id}" was removed before'
                                 " answering")
            self._resolve(child.stopped, None)
        elif op == "remove_failed":
            self._resolve(child.stopped, rebuild_error(
                control.get("type", "RuntimeError"), control.get("error", ""),
                f'in before_remove() of agent "{child.id}"', control.get("traceback", "")))
        else:
            log.warning('agent "%s" sent an unknown control message %r', child.id, control)

    def _child_exited(self, child: Child) -> None:
        """The child's process has ended: read what it wrote last, then forget it; if it
        did not leave on purpose, it died: fail what it owes and what comes later."""
        if not child.eof:
            try:
                while child.conn.poll():
                    self._read_child(child)
                    if child.eof:
                        break
            except (EOFError, OSError):
                pass
        # The sentinel is ready, so this returns at once: with the fork server the code is
        # on the sentinel; with spawn the sentinel may close a moment before the child
        # can be reaped (so exitcode would still say None), and join() does wait for that.
        child.process.join(1.0)
        exitcode = child.process.exitcode
        with self._table_lock:
            routed = self._children.get(child.id) is child
            if routed:
                del self._children[child.id]
            died = not child.leaving and child.state == "ready"
            if died:
                text = (f'RuntimeError: agent "{child.id}"\'s process died'
                        f" (exit code {exitcode})")
                self._dead[child.id] = text
            pending, child.pending = child.pending, {}
        self._close_child(child)
        if child.state == "starting":
            self._resolve(child.started, RuntimeError(
                f'the process of agent "{child.id}" died while starting'
                f" (exit code {exitcode})"))
        if died:
            log.warning('agent "%s": its process (pid %s) died (exit code %s); it has left'
                        " the space", child.id, child.pid, exitcode)
            with self._lock:
                self._agents.pop(child.id, None)
            self._answer_pending(child, pending, text)
        else:
            self._answer_pending(child, pending, f'RuntimeError: agent "{child.id}" has'
                                                 " left before answering")
        self._resolve(child.stopped, None)
        child.state = "gone"
        child.exited.set()

    def _close_child(self, child: Child) -> None:
        with self._table_lock:
            self._waitables.pop(child.conn, None)
            self._waitables.pop(child.sentinel, None)
        try:
            child.conn.close()
        except OSError:
            pass
        try:
            child.process.close()  # its exit code is known (read by whoever polled)
        except ValueError:
            pass  # still running: only after a failed terminate/kill

    @staticmethod
    def _resolve(future: concurrent.futures.Future, outcome: BaseException | None) -> None:
        if future.done():
            return
        try:
            if isinstance(outcome, BaseException):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)
        except concurrent.futures.InvalidStateError:
            pass
