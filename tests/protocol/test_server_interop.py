"""``dataspace-agency serve`` with unmodified syndicate-py 0.19.3 programs, each in its own
process, on syndicate-py's stock asyncio runtime and relay client
(``tests/protocol_peers/stock_chat_peer.py``), and with our own clients.

Every wait reads the processes' output lines with a deadline; nothing sleeps.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from preserves import Record, Symbol
from syndicate import patterns as P

from dataspace_agency.protocol.client import ConnectionFailed
from dataspace_agency.protocol.sync_client import connect_sync

PEER = str(Path(__file__).parents[1] / "protocol_peers" / "stock_chat_peer.py")
WAIT = 20.0


class Lines:
    """A child process's stdout, read line by line with deadlines."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.process = process
        self.buffer = b""
        self.seen: list[str] = []

    def wait_for(self, wanted: str, timeout: float = WAIT) -> None:
        deadline = time.monotonic() + timeout
        while wanted not in self.seen:
            if b"\n" in self.buffer:
                line, self.buffer = self.buffer.split(b"\n", 1)
                self.seen.append(line.decode())
                continue
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"never saw {wanted!r}; saw {self.seen}"
            with selectors.DefaultSelector() as selector:
                selector.register(self.process.stdout, selectors.EVENT_READ)
                if selector.select(remaining):
                    chunk = os.read(self.process.stdout.fileno(), 4096)
                    assert chunk, f"process exited before {wanted!r}; saw {self.seen}"
                    self.buffer += chunk


@pytest.fixture
def server(tmp_path):
    """``dataspace-agency serve`` in a child process on a free TCP port and a unix socket."""
    unix = str(tmp_path / "ds.sock")
    process = subprocess.Popen(
        [sys.executable, "-m", "dataspace_agency.cli", "serve", "--tcp", "127.0.0.1:0",
         "--unix", unix, "--exit-on-stdin-eof"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    lines = Lines(process)
    try:
        lines.wait_for("ready")
        found = {}
        for line in lines.seen:
            kind, _, value = line.partition(" ")
            found.setdefault(kind, []).append(value)
        yield {"cap": found["capability"][0], "tcp": found["address"][0],
               "unix": found["address"][1], "process": process}
    finally:
        process.stdin.close()
        process.wait(10)
        process.stdout.close()


def _peer(address: str, cap: str, name: str) -> Lines:
    process = subprocess.Popen([sys.executable, PEER, address, cap, name],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    return Lines(process)


def test_serve_prints_a_capability_and_its_addresses(server):
    assert server["cap"].startswith("<ref {oid: \"syndicate\" sig: ")
    assert server["tcp"].startswith('<tcp "127.0.0.1" ')
    assert server["unix"].startswith("<unix ")


def test_stock_syndicate_py_peers_see_each_other_talk_and_see_a_killed_peer_go(server):
    alice = _peer(server["tcp"], server["cap"], "alice")
    bob = _peer(server["tcp"], server["cap"], "bob")
    try:
        for peer in (alice, bob):
            peer.wait_for("present alice")
            peer.wait_for("present bob")
        # Each greets the other with a message when it sees it; both see both messages.
        for peer in (alice, bob):
            peer.wait_for("said alice bob hello bob")
            peer.wait_for("said bob alice hello alice")
        bob.process.send_signal(signal.SIGKILL)
        bob.process.wait(WAIT)
        alice.wait_for("absent bob")  # the server retracted the dead peer's presence
        assert "absent alice" not in alice.seen
    finally:
        for peer in (alice, bob):
            peer.process.kill()
            peer.process.wait()
            peer.process.stdout.close()


def test_our_sync_client_and_a_stock_peer_meet_over_the_unix_socket(server):
    alice = _peer(server["unix"], server["cap"], "alice")
    try:
        with connect_sync(server["unix"], server["cap"]) as ours:
            ours.publish(Record(Symbol("Present"), ["ours"]))
            ours.sync()
            alice.wait_for("present ours")
            # alice published her presence before observing, so she is there now.
            assert ("alice",) in ours.query(P.rec("Present", P.CAPTURE))
            with ours.observe(P.rec("Say", P.lit("alice"), P.CAPTURE, P.CAPTURE)) as said:
                # alice greets every peer that appears; make one appear.
                ours.publish(Record(Symbol("Present"), ["carol"]))
                greetings = []
                while ("carol", "hello carol") not in greetings:
                    event = said.get(timeout=WAIT)  # raises queue.Empty if it never comes
                    assert event.kind == "message"
                    greetings.append(event.captures)
        alice.wait_for("absent ours")  # our connection closed: its facts are gone
    finally:
        alice.process.kill()
        alice.process.wait()
        alice.process.stdout.close()


def test_a_wrong_capability_is_rejected_with_a_reason(server):
    forged = server["cap"].replace('sig: #[', 'sig: #[A')
    with pytest.raises((ConnectionFailed, ValueError)):
        connect_sync(server["tcp"], forged)
    bad = '<ref {oid: "syndicate" sig: #x"00112233445566778899aabbccddeeff"}>'
    with pytest.raises(ConnectionFailed, match="rejected the capability: 'bad signature'"):
        connect_sync(server["tcp"], bad)
