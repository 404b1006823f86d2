"""Faults injected and survived (issue 9, part 2): figures for notes/reliability.md.

    python benchmarks/fault_campaign.py [--server-restarts K] [--kills N]
                                        [--amqp-messages M] [--amqp-restarts R]
                                        [--only server|kill|amqp]

1. **Server restarts**: two ``RemoteDataspaceSpace``s (assertion mode, ``reconnect``)
   with an agent each, on a server process; the server is SIGKILLed and started again on
   the same unix socket with the same key, K times. After each restart: both spaces
   reconnected, a request across them answered. Prints restarts survived and the time
   from the kill to that first answer.
2. **SIGKILL of an agent process**: ``MultiprocessQueueSpace`` and
   ``MultiprocessDataspaceSpace``; an agent in a child process holds a request; its
   process is SIGKILLed; prints the time from the kill to the requester's ``ActionError``
   (N times each: median and max), and whether any request timed out instead.
3. **RabbitMQ restarts mid-stream**: M one-way ``send()``s through ``AMQPSpace`` (a
   private broker, ``compare/rabbitmq.py``), restarted R times while they flow. Prints
   sent, received (distinct), failed (the sender got an error reply: it knows),
   duplicates dropped by the receiver, re-sent, and lost (sent, not received, not
   failed: must be 0).

Nothing here is asserted; the tests (tests/protocol/test_faults.py,
tests/spaces/test_amqp_space.py) assert the behaviour, this script measures it.
"""

from __future__ import annotations

import argparse
import os
import queue
import secrets
import signal
import statistics
import sys
import tempfile
import threading
import time

from preserves import Record, Symbol

from dataspace_agency import ActionError, Agent, action
from dataspace_agency.protocol.client import Reconnect
from dataspace_agency.protocol.process import ServerProcess
from dataspace_agency.protocol.sturdy import mint

WAIT = 30.0


class Echo(Agent):
    @action
    def echo(self, text: str) -> str:
        """Answer with the text."""
        return f"{self.id}:{text}"


class Stallable(Echo):
    @action
    def stall(self) -> str:
        """Tell "me", then hold the request until this process is killed."""
        self.send({"to": "me", "action": {"name": "stalling", "args": {}}})
        threading.Event().wait(120)
        return "not killed"


class Me(Agent):
    def __init__(self, id: str, stalling: threading.Event) -> None:
        super().__init__(id)
        self.stalling_event = stalling

    @action
    def stalling(self) -> None:
        """The victim holds our request now."""
        self.stalling_event.set()


class Sink(Agent):
    def __init__(self, id: str, received: queue.Queue) -> None:
        super().__init__(id)
        self.received = received

    @action
    def take(self, n: int) -> None:
        """Record the message's id."""
        self.received.put(self.current_message()["meta"]["id"])


class Sender(Agent):
    def __init__(self, id: str, errors: queue.Queue) -> None:
        super().__init__(id)
        self.errors = errors

    def handle_action_value(self, value) -> None:
        pass

    def handle_action_error(self, error) -> None:
        self.errors.put(self.current_message()["meta"]["parent_id"])


def echo(to: str, text: str) -> dict:
    return {"to": to, "action": {"name": "echo", "args": {"text": text}}}


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


# --- 1. server restarts -------------------------------------------------------------------

def server_restarts(restarts: int) -> None:
    from dataspace_agency.spaces import RemoteDataspaceSpace
    policy = Reconnect(initial=0.02, maximum=0.5)
    with tempfile.TemporaryDirectory(prefix="fault-campaign-") as directory:
        path = os.path.join(directory, "ds.sock")
        key = secrets.token_bytes(16)
        address, cap = Record(Symbol("unix"), [path]), mint(key)

        def start() -> ServerProcess:
            return ServerProcess.start(unix_path=path, extra_args=("--key", key.hex()))
        server = start()
        survived, times, after_ready = 0, [], []
        try:
            with RemoteDataspaceSpace(address, cap, reconnect=policy) as one, \
                    RemoteDataspaceSpace(address, cap, reconnect=policy) as two:
                one.add(Echo, "echo")
                me = two.add_foreground(Agent, "me")
                me.request(echo("echo", "first"), timeout=WAIT)
                for n in range(restarts):
                    killed = time.perf_counter()
                    os.kill(server.pid, signal.SIGKILL)
                    server.process.wait(WAIT)
                    server.stop()
                    server = start()
                    ready = time.perf_counter()
                    try:
                        answer = me.request(echo("echo", f"after {n}"), timeout=WAIT)
                    except Exception as exc:  # noqa: BLE001 - counted, not survived
                        print(f"  restart {n + 1}: request failed: {exc!r}")
                        continue
                    if answer == f"echo:after {n}" and one.connected and two.connected:
                        survived += 1
                        times.append(time.perf_counter() - killed)
                        after_ready.append(time.perf_counter() - ready)
                print(f"server restarts: {survived}/{restarts} survived (both spaces "
                      f"reconnected {one.reconnections}+{two.reconnections} times, a request"
                      f" answered after each)")
                if times:
                    print(f"  kill -> first answer after restart (includes starting the "
                          f"server process): median {ms(statistics.median(times))}, "
                          f"max {ms(max(times))}; new server ready -> answer: median "
                          f"{ms(statistics.median(after_ready))}, max {ms(max(after_ready))}")
        finally:
            server.stop()


# --- 2. SIGKILL of agent processes --------------------------------------------------------

def kills(count: int) -> None:
    from dataspace_agency.spaces import MultiprocessDataspaceSpace, MultiprocessQueueSpace
    for name, make in (("MultiprocessQueueSpace", MultiprocessQueueSpace),
                       ("MultiprocessDataspaceSpace", MultiprocessDataspaceSpace)):
        stalling = threading.Event()
        times, failures = [], []
        with make() as space:
            me = space.add_foreground(Me, "me", stalling)
            for n in range(count):
                stalling.clear()
                space.add(Stallable, "victim")
                outcome: dict = {}

                def ask() -> None:
                    try:
                        me.request({"to": "victim", "action": {"name": "stall", "args": {}}},
                                   timeout=WAIT)
                    except BaseException as exc:  # noqa: BLE001 - inspected below
                        outcome["error"] = exc
                    outcome["at"] = time.perf_counter()
                asker = threading.Thread(target=ask)
                asker.start()
                if not stalling.wait(WAIT):
                    failures.append("the victim never held the request")
                    break
                killed = time.perf_counter()
                os.kill(space.pid_of("victim"), signal.SIGKILL)
                asker.join(WAIT + 5)
                error = outcome.get("error")
                if isinstance(error, ActionError):
                    times.append(outcome["at"] - killed)
                else:
                    failures.append(repr(error))
                # wait until the space has forgotten it, then use the id again
                deadline = time.monotonic() + WAIT
                while time.monotonic() < deadline:
                    try:
                        space.pid_of("victim")
                    except ValueError:
                        break
                    time.sleep(0.01)
        line = f"SIGKILL, {name}: {len(times)}/{count} requests failed with ActionError"
        if times:
            line += (f"; kill -> ActionError median {ms(statistics.median(times))},"
                     f" max {ms(max(times))}")
        print(line + (f"; other outcomes: {failures}" if failures else ""))


# --- 3. RabbitMQ restarts -----------------------------------------------------------------

def amqp(messages: int, restarts: int) -> None:
    from dataspace_agency.compare.rabbitmq import RabbitMQBroker, rabbitmq_installed
    from dataspace_agency.spaces import AMQPSpace
    if not rabbitmq_installed():
        print("RabbitMQ restarts: skipped (rabbitmq-server is not installed)")
        return
    with RabbitMQBroker() as broker:
        exchange = f"fault-campaign-{secrets.token_hex(4)}"
        received: queue.Queue = queue.Queue()
        errors: queue.Queue = queue.Queue()
        sending = AMQPSpace(broker.amqp_url, exchange=exchange)
        receiving = AMQPSpace(broker.amqp_url, exchange=exchange)
        try:
            receiving.add(Sink, "receiver", received)
            sender = sending.add_foreground(Sender, "sender", errors)
            sent: list[str] = []
            per_gap = messages // (restarts + 1)
            restart_seconds = []
            for n in range(restarts + 1):
                for _ in range(per_gap if n < restarts else messages - len(sent)):
                    sent.append(sender.send({"to": "receiver", "action": {
                        "name": "take", "args": {"n": len(sent)}}}))
                if n == restarts:
                    break
                # Restart while the stream flows: keep sending, paced, until it is back.
                restart = threading.Thread(target=broker.restart)
                began = time.perf_counter()
                restart.start()
                while restart.is_alive():
                    for _ in range(20):
                        sent.append(sender.send({"to": "receiver", "action": {
                            "name": "take", "args": {"n": len(sent)}}}))
                    restart.join(0.1)
                restart_seconds.append(time.perf_counter() - began)
            got: set[str] = set()
            failed: set[str] = set()
            deadline = time.monotonic() + 180
            while got | failed != set(sent) and time.monotonic() < deadline:
                try:
                    got.add(received.get(timeout=0.5))
                except queue.Empty:
                    pass
                while not errors.empty():
                    failed.add(errors.get())
            lost = set(sent) - got - failed
            print(f"RabbitMQ restarts mid-stream: {restarts} restarts survived"
                  f" (sender connections {sending._link.connections}, receiver"
                  f" {receiving._link.connections}); {len(sent)} sent, {len(got)} received,"
                  f" {len(failed)} failed with an error reply, {len(lost)} lost;"
                  f" re-sent {sending._link.resent}, duplicates dropped"
                  f" {receiving._link.duplicates}; restart took"
                  f" {', '.join(f'{s:.1f} s' for s in restart_seconds)}")
        finally:
            sending.destroy()
            receiving.destroy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server-restarts", type=int, default=10)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--amqp-messages", type=int, default=20_000)
    parser.add_argument("--amqp-restarts", type=int, default=3)
    parser.add_argument("--only", choices=("server", "kill", "amqp"))
    args = parser.parse_args()
    if args.only in (None, "server"):
        server_restarts(args.server_restarts)
    if args.only in (None, "kill"):
        kills(args.kills)
    if args.only in (None, "amqp"):
        amqp(args.amqp_messages, args.amqp_restarts)


if __name__ == "__main__":
    main()
