"""A server to fuzz: a real server process, bad connections as raw sockets, a good client.

Used by ``tests/protocol/test_fuzz_wire.py`` and ``benchmarks/fuzz_campaign.py``. Why a child
process (``ServerProcess``) rather than a server in the test's own trio run: "the server
never dies" is then a fact one can observe (the process is alive, its exit code), and a
hang in the server cannot hang the fuzzer, whose sockets are blocking ones with timeouts.

:meth:`FuzzServer.attack` sends one input on a fresh connection (after the gatekeeper
handshake, if asked, so that events reach the dataspace at oid 1), ends its side, reads
everything the server sends back until it closes, and checks what it saw against the
codec used as an oracle (:func:`expected_error`); :meth:`FuzzServer.good_client_works`
is the publish/observe round trip of a well-behaved client connected all along.
"""

from __future__ import annotations

import os
import queue
import socket
import tempfile
from dataclasses import dataclass
from typing import Any

from preserves import Embedded, Record, Symbol
from syndicate import patterns as P

from dataspace_agency.protocol.sync_client import connect_sync
from dataspace_agency.protocol.codec import (SERVER_MAX_DEPTH, Assert, ErrorPacket,
                                             PacketReader, ProtocolError, WireRef,
                                             encode_turn, parse_packet)
from dataspace_agency.protocol.process import ServerProcess

MAX_PACKET = 4096  # small, so that size limits are reached by fuzzed inputs
TIMEOUT = 10.0  # seconds a connection may take to be answered and closed: beyond it, a hang


def expected_error(data: bytes, max_packet: int = MAX_PACKET) -> str | None:
    """What the server must refuse in ``data`` by the codec alone (it may refuse more:
    unknown oids, handles): the codec's error, or None. Stops at an ``<error>`` packet
    from us (the server then closes without answering)."""
    reader = PacketReader(max_packet, SERVER_MAX_DEPTH)
    reader.feed(data)
    try:
        for value in reader:
            if isinstance(parse_packet(value), ErrorPacket):
                return None
    except ProtocolError as exc:
        return str(exc)
    return None


@dataclass
class Outcome:
    """What one bad connection saw."""

    packets: list  # parsed packets the server sent (after the handshake)
    error: str | None  # the message of its Error packet, if it sent one
    expected: str | None  # what the codec says must be refused, if anything
    problem: str | None  # a broken property, or None

    @property
    def refused(self) -> bool:
        return self.error is not None


class FuzzServer:
    """A server process with a good client connected; see the module docstring."""

    def __init__(self, max_packet: int = MAX_PACKET) -> None:
        self.max_packet = max_packet
        # ERROR: the warnings for each refused connection would drown what matters (a
        # "connection failed" traceback is logged at ERROR).
        # The server's log goes to a file (its stderr is ours, inherited: redirected
        # while it starts), which :meth:`crashes` reads for tracebacks: a failure inside
        # the server that its answers alone would not show.
        self.log = tempfile.NamedTemporaryFile(prefix="fuzz-server-", suffix=".log")
        saved = os.dup(2)
        try:
            os.dup2(self.log.fileno(), 2)
            self.process = ServerProcess.start(extra_args=("--max-packet", str(max_packet),
                                                           "--log-level", "ERROR"))
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        self._log_seen = 0
        self.path = self.process.address.fields[0]
        self.good = connect_sync(self.process.address, self.process.capability,
                                 timeout=TIMEOUT)
        self._handshake = encode_turn([(0, Assert(Record(
            Symbol("resolve"), [self.process.capability, Embedded(WireRef(True, 0))]), 0))])
        self._round = 0

    def close(self) -> None:
        try:
            self.good.close()
        finally:
            self.process.stop()
            self.log.close()

    def crashes(self) -> list[str]:
        """Errors the server logged since the last call (the last line of each)."""
        with open(self.log.name, "rb") as f:
            f.seek(self._log_seen)
            text = f.read().decode(errors="replace")
            self._log_seen = f.tell()
        return [line[:300] for line in text.splitlines()
                if " ERROR " in line or line.startswith(("Traceback", "ValueError",
                                                          "RecursionError"))]

    def __enter__(self) -> "FuzzServer":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    @property
    def alive(self) -> bool:
        return self.process.process.poll() is None

    def attack(self, data: bytes, handshake: bool = True) -> Outcome:
        """Send ``data`` on a fresh connection and check the answer (see module doc)."""
        expected = expected_error(data, self.max_packet)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(TIMEOUT)
        reader = PacketReader()
        packets: list = []
        problem = None
        try:
            sock.connect(self.path)
            if handshake:
                sock.sendall(self._handshake)
                while not packets:  # the <accepted #:ds> answer
                    chunk = sock.recv(65536)
                    if not chunk:
                        return Outcome([], None, expected, "closed during the handshake")
                    reader.feed(chunk)
                    packets.extend(parse_packet(v) for v in reader)
                packets.clear()
            try:
                sock.sendall(data)
                sock.shutdown(socket.SHUT_WR)
            except (BrokenPipeError, ConnectionResetError):
                pass  # it closed first (an early error): what it sent is still readable
            while True:
                try:
                    chunk = sock.recv(65536)
                except ConnectionResetError:
                    break
                if not chunk:
                    break
                reader.feed(chunk)
                packets.extend(parse_packet(v) for v in reader)
        except socket.timeout:
            problem = f"hang: the connection was not closed within {TIMEOUT} s"
        except ProtocolError as exc:
            problem = f"the server sent something malformed: {exc}"
        finally:
            sock.close()
        errors = [p for p in packets if isinstance(p, ErrorPacket)]
        error = errors[0].message if errors else None
        if problem is None:
            if errors and (len(errors) > 1 or packets[-1] is not errors[0]):
                problem = "the Error packet was not the last thing sent"
            elif expected is not None and error is None:
                problem = f"no Error packet for bad input ({expected})"
            elif error is not None and not (isinstance(error, str) and error):
                problem = f"the Error packet has no message: {error!r}"
        if problem is None and not self.alive:
            problem = f"the server died (exit code {self.process.process.poll()})"
        return Outcome(packets, error, expected, problem)

    def good_client_works(self) -> str | None:
        """The good client's round trip: publish <Good n>, see it, retract it, see it go.
        None if it worked, else what went wrong."""
        self._round += 1
        n = self._round
        try:
            with self.good.observe(P.rec("Good", P.CAPTURE)) as events:
                handle = self.good.publish(Record(Symbol("Good"), [n]))
                if not _wait_for(events, lambda e: e.kind == "added" and e.captures == (n,)):
                    return f"round {n}: the good client did not see its assertion"
                self.good.retract(handle)
                if not _wait_for(events, lambda e: e.kind == "removed"
                                 and e.captures == (n,)):
                    return f"round {n}: the good client did not see its retraction"
        except Exception as exc:  # noqa: BLE001 - any failure of the good client counts
            return f"round {n}: the good client failed: {type(exc).__name__}: {exc}"
        return None

    def leftovers(self) -> list:
        """Assertions in the dataspace other than the good client's own query: what
        closed fuzzing connections left behind (should be none)."""
        found = self.good.query(P.CAPTURE)
        return [c for (c,) in found
                if not (isinstance(c, Record) and c.key == Symbol("Observe"))]


def _wait_for(events: "queue.Queue", wanted: Any) -> bool:
    while True:
        try:
            event = events.get(timeout=TIMEOUT)
        except queue.Empty:
            return False
        if wanted(event):
            return True
