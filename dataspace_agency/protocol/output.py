"""The relay's output: packets queued, written to the socket, and held back.

A mixin of :class:`~.relay.Relay` (it uses the relay's state). On a socket a packet is
written as soon as the turn that made it has committed; what the kernel does not take
waits for the writer task (``_writer``), which keeps the order. The bytes waiting are
counted for flow control (``flow.py``): over the high-water mark the connection is
congested, and one congested for ``stall_timeout`` seconds is cut off with an ``Error``
packet naming the reason.
"""

from __future__ import annotations

import logging
import math
import os

import trio
# "Until every other task is blocked": trio's own idle detection (an epoll with no
# timeout once the run queue is empty, no polling); public API, in trio.testing.
from trio.testing import wait_all_tasks_blocked

from .codec import encode_error

log = logging.getLogger(__name__)

_IOV_MAX = 1024  # buffers per writev (the POSIX minimum of IOV_MAX)
_ERROR_GRACE = 2.0  # seconds a cut-off peer gets to take its Error packet


class Output:
    """Queueing, writing and flow control of one relay's packets (part of ``Relay``)."""

    def _flush(self) -> None:
        """Close the open packet, if it has any event, and write it."""
        self._flush_planned = False
        if not self._packet_events:
            return
        packet, self._packet = self._packet, bytearray()
        events, self._packet_events = self._packet_events, 0
        if self.closed:
            return
        self.stats.packets_out += 1
        self.stats.events_out += events
        packet[:0] = b"\xb5"
        packet += b"\x84"
        self._write(bytes(packet))

    def _write(self, data: bytes) -> None:
        # On a socket, a packet is written here and now, as the turn that made it has
        # just committed: no task switch, no timer. Only what the kernel does not take
        # at once (or anything at all, before the stream is attached or on other kinds
        # of stream) waits for the writer task, which keeps the order.
        out = self._out
        out.append(data)
        self.out_bytes += len(data)
        if self.out_bytes > self.peak_out_bytes:
            self.peak_out_bytes = self.out_bytes
        if self._congested_since is None and self.out_bytes > self.flow.high_water:
            self._congested_since = trio.current_time()
            self.flow._over(self)
            if self._write_scope is not None:  # the writer is waiting: give it a deadline
                self._write_scope.deadline = self._stall_deadline()
        if len(out) == 1 and self._fd is not None:
            self._send_now(self._fd)
            if not out and self._write_error is None:
                return
        self._wake_writer()

    def _send_now(self, fd: int) -> None:
        """Write as much of the queued output to ``fd`` (a non-blocking socket) as the
        kernel takes now; keep the rest. A failure is kept for the writer task to
        report (this runs inside the runtime's queue, which must not see it)."""
        out = self._out
        try:
            # writev: several packets in one system call, and no copy to join them.
            sent = os.write(fd, out[0]) if len(out) == 1 else os.writev(fd, out[:_IOV_MAX])
        except BlockingIOError:
            sent = 0
        except OSError as exc:
            self._write_error = exc
            self._fd = None
            return
        self.stats.writes += 1
        self.stats.bytes_out += sent
        sent_total = sent
        if sent == self.out_bytes:
            out.clear()
            self._head_partial = False
        elif sent:
            done = 0
            while sent >= len(out[done]):
                sent -= len(out[done])
                done += 1
            if done:
                del out[:done]
                self._head_partial = False
            if sent:
                out[0] = memoryview(out[0])[sent:]  # no copy of a big packet's rest
                self._head_partial = True
        self._sent(sent_total)

    def _sent(self, count: int) -> None:
        self.out_bytes -= count
        if self._congested_since is not None and self.out_bytes <= self.flow.low_water:
            self._congested_since = None
            self.flow._under(self)
            room, self._room = self._room, None
            if room is not None:
                room.set()

    @property
    def congested(self) -> bool:
        """Over the high-water mark, and not yet drained below the low-water mark."""
        return self._congested_since is not None

    async def wait_for_room(self) -> None:
        """Return once the outgoing buffer is not congested (at once if it is not):
        a producer awaiting this before each send (or every few sends) cannot grow the
        buffer much beyond the high-water mark. Also returns once the connection has
        closed (what is sent then goes nowhere, as without flow control)."""
        while self._congested_since is not None and not self.closed:
            if self._room is None:
                self._room = trio.Event()
            await self._room.wait()

    def _cut_off(self) -> None:
        """The peer has not taken its backlog for ``stall_timeout`` seconds: drop the
        backlog (keeping the rest of a packet partly written, so the stream stays
        well-formed), queue an Error packet naming the reason, and close."""
        flow = self.flow
        reason = (f"outgoing buffer over {flow.high_water} bytes for {flow.stall_timeout:g} s:"
                  " the peer is not reading (slow consumer cut off)")
        log.warning("%s: %s", self.name, reason)
        flow.cut_off += 1
        self._packet.clear()
        self._packet_events = 0
        kept = self._out[:1] if self._head_partial else []
        self._sent(self.out_bytes - sum(len(part) for part in kept))
        self._out[:] = kept
        self._write(encode_error(reason, False))
        self.close(reason)

    def _wake_writer(self) -> None:
        wakeup = self._wakeup
        if wakeup is not None:
            self._wakeup = None
            wakeup.set()

    def _finish_output(self) -> None:
        self._finished = True
        self.closing.set()
        # A closed connection holds nobody back (what is left is written, or not, within
        # the transport's grace period), and producers waiting for room learn it closed.
        self._congested_since = None
        self.flow._under(self)
        room, self._room = self._room, None
        if room is not None:
            room.set()
        self._wake_writer()

    def _stall_deadline(self) -> float:
        since, timeout = self._congested_since, self.flow.stall_timeout
        if since is None or timeout is None or self.closed:
            return math.inf
        return since + timeout

    async def _writer(self, stream: trio.abc.SendStream) -> None:
        """Write what :meth:`_write` could not, until the relay has closed and all is
        written. On a socket (``_fd`` set) it only waits for the kernel to take more."""
        while True:
            if self._write_error is not None:
                raise self._write_error
            if self._flush_planned and self.coalesce is not None and not self._finished:
                # Whatever runs until the process is idle adds to the open packet.
                with trio.move_on_after(self.coalesce):
                    await wait_all_tasks_blocked()
                self._flush()
                continue
            if self._out:
                fd = self._fd
                with trio.move_on_at(self._stall_deadline()) as waiting:
                    self._write_scope = waiting
                    if fd is not None:
                        await trio.lowlevel.wait_writable(fd)
                        self._send_now(fd)
                    else:
                        parts = list(self._out)
                        await stream.send_all(b"".join(parts))
                        del self._out[:len(parts)]
                        sent = sum(len(part) for part in parts)
                        self.stats.writes += 1
                        self.stats.bytes_out += sent
                        self._sent(sent)
                self._write_scope = None
                if waiting.cancelled_caught:
                    self._cut_off()
                    if fd is not None:  # give the peer a moment to read its Error packet
                        with trio.move_on_after(_ERROR_GRACE):
                            while self._out and self._fd is not None:
                                await trio.lowlevel.wait_writable(fd)
                                self._send_now(fd)
                    return  # (a stream cut mid-write cannot take an Error packet)
                continue
            if self._finished:
                return
            self._wakeup = wakeup = trio.Event()
            await wakeup.wait()
