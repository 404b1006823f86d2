"""Test helpers for the inspector: its JSON, its event streams, the command in a child,
and the agents the tests watch.

Everything here talks real HTTP to a real inspector (urllib, no test client)."""

from __future__ import annotations

import json
import os
import selectors
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Callable

from preserves import stringify

from dataspace_agency import Agent, action

WAIT = 10.0  # generous bound for things that happen in milliseconds


class Calculator(Agent):
    @action
    def add(self, a: float, b: float) -> float:
        """Add two numbers.

        Args:
            a: The first number.
            b: The second number.
        """
        return a + b

    @action
    def average(self, numbers: list) -> float:
        """The mean of a list of numbers.

        Args:
            numbers: What to average.
        """
        return sum(numbers) / len(numbers)


class Researcher(Agent):
    """Its action waits for the test's gate (a threading.Event): a request to it stays
    pending until the test opens the gate."""

    def __init__(self, id: str, gate: threading.Event) -> None:
        super().__init__(id)
        self._gate = gate

    @action
    def search(self, query: str) -> str:
        """Search the library for a query.

        Args:
            query: What to look for.
        """
        self._gate.wait(WAIT)
        return f"results for {query}"


class Planner(Agent):
    @action
    def plan(self, goal: str) -> list:
        """Break a goal into steps.

        Args:
            goal: What to achieve.
        """
        return [goal]


def get_json(url: str, timeout: float = 10.0) -> tuple[int, Any]:
    """``(status, decoded JSON)`` of a GET, error statuses included."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read())


def facts_url(base: str, pattern: str, stream: bool = False) -> str:
    path = "api/facts/events" if stream else "api/facts"
    return f"{base}{path}?pattern={urllib.parse.quote(pattern)}"


class EventStream:
    """A server-sent event stream, read event by event."""

    def __init__(self, url: str, timeout: float = 5.0) -> None:
        self._response = urllib.request.urlopen(url, timeout=timeout)

    def next(self) -> tuple[str, Any]:
        """The next ``(event, data)``; the socket timeout bounds the wait."""
        event, data = "message", ""
        while True:
            line = self._response.readline()
            if not line:
                raise EOFError("the event stream ended")
            line = line.decode().rstrip("\n")
            if not line:
                return event, json.loads(data) if data else None
            field, _, value = line.partition(": ")
            if field == "event":
                event = value
            elif field == "data":
                data += value

    def wait_for(self, predicate: Callable[[Any], bool], timeout: float,
                 event: str = "snapshot") -> Any:
        """The first ``event`` whose data satisfies ``predicate``; ``TimeoutError`` if
        none comes within ``timeout`` seconds (snapshots come at least once a second)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            kind, data = self.next()
            if kind == event and predicate(data):
                return data
        raise TimeoutError(f"no {event} event matching within {timeout} s")

    def close(self) -> None:
        self._response.close()

    def __enter__(self) -> "EventStream":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


def agent_ids(snapshot: dict) -> set[str]:
    return {agent["id"] for agent in snapshot["agents"]}


def offers(snapshot: dict) -> dict[str, list[str]]:
    """``{agent id: [action names]}`` (presence and each action are facts of their own,
    so an agent may show up a moment before its actions)."""
    return {agent["id"]: [a["name"] for a in agent["actions"]] for agent in snapshot["agents"]}


CALCULATOR = ["add", "average", "help"]  # what a Calculator offers


def free_tcp_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _read_lines(process: subprocess.Popen, until: str, timeout: float) -> list[str]:
    """Lines of the child's stdout up to the one starting with ``until`` (read from the
    file descriptor: a buffered reader would hide lines from the selector)."""
    output = b""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while True:
            lines = [line.strip() for line in output.decode(errors="replace").splitlines()]
            if output.endswith(b"\n") and any(line.startswith(until) for line in lines):
                return lines
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not selector.select(remaining):
                raise TimeoutError(f"no {until!r} line within {timeout} s: {lines}")
            chunk = os.read(process.stdout.fileno(), 4096)
            if not chunk:
                raise RuntimeError(f"the child exited ({process.wait()}) after {lines}")
            output += chunk


class Child:
    """A ``python -m dataspace_agency.cli ...`` child, stopped (and waited for) at exit."""

    def __init__(self, *args: str, until: str = "ready", timeout: float = 30.0) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "dataspace_agency.cli", *args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        try:
            self.lines = _read_lines(self.process, until, timeout)
        except BaseException:
            self.stop()
            raise

    def line(self, prefix: str) -> str:
        """The rest of the first output line starting with ``prefix``."""
        return next(line[len(prefix):].strip() for line in self.lines
                    if line.startswith(prefix))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()

    def __enter__(self) -> "Child":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()


def inspector(address: Any, cap: Any) -> Child:
    """``dataspace-agency inspect`` on a free loopback port; its URL is ``.url``."""
    def text(value: Any) -> str:
        return value if isinstance(value, str) else stringify(value)
    child = Child("inspect", "--connect", text(address), "--cap", text(cap),
                  "--http", "127.0.0.1:0")
    child.url = child.line("inspector")
    return child
