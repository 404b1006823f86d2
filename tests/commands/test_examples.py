"""Every example runs as a real program (a subprocess, non-interactively) and prints what
its docstring promises, on every backend it supports (AMQP through the ``amqp_url``
fixture: a private RabbitMQ, and a failure rather than a skip in CI).

The examples that need a server run against real ``dataspace-agency serve`` processes (on
127.0.0.1 and unix sockets in a temp dir), with real stock syndicate-py 0.19.3 peers; their
output is read line by line with deadlines (nothing sleeps).

Also ``dataspace-agency example --list`` and ``dataspace-agency example NAME``; a new
example without a test here (or in the test file named in ``TESTED_ELSEWHERE``) fails.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import re
import selectors
import signal
import subprocess
import sys
import time

import pytest

from dataspace_agency.commands import example as example_command

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples"


def run_example(name: str, *args: str, stdin: str | None = None) -> list[str]:
    done = subprocess.run([sys.executable, str(EXAMPLES / name), *args], capture_output=True,
                          text=True, timeout=90, input=stdin)
    assert done.returncode == 0, f"{name} {args} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout.splitlines()


def backend_args(backend: str, request: pytest.FixtureRequest) -> list[str]:
    """``--backend X``, plus the broker's URL for amqp (the fixture starts one, or fails
    in CI when it cannot)."""
    if backend == "amqp":
        return ["--backend", "amqp", "--amqp-url", request.getfixturevalue("amqp_url")]
    return ["--backend", backend]


ALL_BACKENDS = ["dataspace-assertion", "dataspace-message", "queue", "multiprocess-queue",
                "amqp"]
# What a request's TimeoutError adds when the space knows its responder is absent.
ABSENT_NOTE = {"dataspace-message": ': no agent "late" is present in the space',
               "queue": ': no agent "late" is in the space'}


# --- the first two examples -------------------------------------------------------------------

def test_native_api_example():
    assert run_example("native_api.py") == [
        "observed: Event(kind='added', captures=('hello, alice',))",
        "observed: Event(kind='added', captures=('hello, bob',))",
        "observed: Event(kind='removed', captures=('hello, alice',))",
        "observed: Event(kind='message', captures=('bob', 'anyone here?'))",
        "facts left: 1",
    ]


CLASSIC_COMMON = [
    "add: 5",
    "average: 2.5",
    "me asks add: ActionError: TypeError: unsupported operand type(s) for +: 'int' and 'str'",
    'me asks reset: ActionError: PermissionError: "calc.reset" not permitted',
    "admin asks reset: reset done",
    "send answered in handle_action_value: 30",
    'help: {"add": {"description": "Add two numbers.", "args": {"a": {"type": "number",'
    ' "description": "The first number."}, "b": {"type": "number", "description":'
    ' "The second number."}}, "returns": {"type": "number", "description": "Their sum."}}}',
    "present: admin offers ['help']",
    "present: calc offers ['add', 'average', 'help', 'reset']",
    "present: me offers ['help']",
    "display: kitchen is 21 degrees",
    "display: kitchen reading gone",
    "display: hall is 18 degrees",
    "display: hall reading gone",
]


def test_classic_agents_example_in_assertion_mode():
    expected = ["mode: assertion", *CLASSIC_COMMON,
                "late joiner answered: 2",
                'responder left: ActionError: agent "slow" stopped before answering "work"',
                "facts left: 0"]
    assert run_example("classic_agents.py") == expected  # the default mode
    assert run_example("classic_agents.py", "--mode", "assertion") == expected


def test_classic_agents_example_in_message_mode():
    assert run_example("classic_agents.py", "--mode", "message") == [
        "mode: message", *CLASSIC_COMMON,
        'late joiner: TimeoutError: no answer from "late" to "add" within 0.5 s: no agent'
        ' "late" is present in the space',
        'responder left: TimeoutError: no answer from "slow" to "work" within 1 s: no agent'
        ' "slow" is present in the space',
        "facts left: 0",
    ]


# --- request_response: the same lines on all five backends -----------------------------------

REQUEST_RESPONSE = [
    "add(2, 3) -> 5",
    "note('milk') -> None",
    "divide(1, 0) -> ActionError: ZeroDivisionError: division by zero",
    'shout() -> ActionError: AttributeError: "shout" not found on "calc"',
    "send: handle_action_value got 30",
    "send: handle_action_error got ZeroDivisionError: division by zero",
    "help: add: Add two numbers.",
    "help: divide: Divide a by b.",
    "help: note: Take a note (and return nothing).",
    'help for add: {"a": {"type": "number", "description": "The first number."}, "b":'
    ' {"type": "number", "description": "The second number."}}',
    "agents: calc, me",
    "done",
]


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_request_response_example(backend, request):
    assert run_example("request_response.py", *backend_args(backend, request)) == [
        f"backend: {backend}", *REQUEST_RESPONSE]


def test_request_response_example_needs_a_broker_for_amqp(monkeypatch):
    monkeypatch.delenv("DATASPACE_AGENCY_AMQP_URL", raising=False)
    done = subprocess.run([sys.executable, str(EXAMPLES / "request_response.py"),
                           "--backend", "amqp"], capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "--backend amqp needs a broker" in done.stderr


# --- failure: at once on the dataspace, after the timeout on queues ---------------------------

FAILURE_LINE = re.compile(r"(?P<backend>[\w-]+): (?P<how>[^;]+); after (?P<after>\d+\.\d\d) s:"
                          r" (?P<outcome>.*)")


def failure_runs(lines: list[str], timeout: float) -> dict[str, re.Match]:
    assert lines[0] == f"request timeout: {timeout:g} s"
    runs = {}
    for line in lines[1:]:
        if line.startswith("difference: "):
            continue
        match = FAILURE_LINE.fullmatch(line)
        assert match, line
        runs[match["backend"]] = match
    return runs


def test_failure_example_dataspace_fails_at_once_queue_times_out():
    timeout = 2.0
    lines = run_example("failure.py", "--timeout", str(timeout))  # default: both
    runs = failure_runs(lines, timeout)
    assert list(runs) == ["dataspace-assertion", "queue"]
    ds, q = runs["dataspace-assertion"], runs["queue"]
    assert ds["outcome"] == 'ActionError: agent "worker" stopped before answering "work"'
    assert q["outcome"] == ('TimeoutError: no answer from "worker" to "work" within 2.0 s:'
                            ' no agent "worker" is in the space')  # what the router knows
    # The issue asks for "fails at once" vs "times out": a generous bound (a loaded
    # 2-core machine), still far below the 2 s timeout the queue has to wait out.
    assert float(ds["after"]) < 1.0
    assert float(q["after"]) > float(ds["after"])
    assert re.fullmatch(r"difference: dataspace-assertion knew \d+\.\d\d s sooner than queue",
                        lines[-1])


def test_failure_example_on_message_mode_and_processes():
    lines = run_example("failure.py", "--backend", "dataspace-message",
                        "--backend", "multiprocess-queue", "--timeout", "1")
    runs = failure_runs(lines, 1.0)
    assert runs["dataspace-message"]["outcome"] == (
        'TimeoutError: no answer from "worker" to "work" within 1.0 s: no agent "worker" is'
        ' present in the space')  # what the dataspace knows
    mp = runs["multiprocess-queue"]
    assert mp["how"] == "its process was killed"
    assert mp["outcome"] == ('ActionError: RuntimeError: agent "worker"\'s process died'
                             ' (exit code -9)')
    assert float(mp["after"]) < 1.0  # noticed at once (generous bound, as above)
    assert lines[-1].startswith("difference: multiprocess-queue knew ")


def test_failure_example_on_amqp(request):
    lines = run_example("failure.py", *backend_args("amqp", request), "--timeout", "1")
    runs = failure_runs(lines, 1.0)
    assert list(runs) == ["amqp"] and len(lines) == 2  # one backend: nothing to compare
    assert runs["amqp"]["outcome"] == 'TimeoutError: no answer from "worker" to "work" within 1.0 s'


# --- late_join: held by the dataspace, dropped by everything else -----------------------------

@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_late_join_example(backend, request):
    lines = run_example("late_join.py", *backend_args(backend, request), "--timeout", "0.5")
    asked = f'{backend}: me asks "late" for add(1, 1); there is no agent "late" yet'
    if backend == "dataspace-assertion":
        assert lines == [
            asked,
            f"{backend}: a native observer sees the request standing as a fact:"
            " {'name': 'add', 'args': {'a': 1, 'b': 1}}",
            f'{backend}: "late" joins',
            f"{backend}: answered: 2",
            f'{backend}: "late" has received 1 request(s)',
        ]
    else:
        assert lines == [
            asked,
            f'{backend}: TimeoutError: no answer from "late" to "add" within 0.5 s'
            + ABSENT_NOTE.get(backend, ""),
            f'{backend}: "late" joins',
            f'{backend}: "late" has received 0 request(s): the early one was dropped',
        ]


# --- discovery and native_and_classic: the dataspace in both adapter modes --------------------

@pytest.mark.parametrize("mode", ["assertion", "message"])
def test_discovery_example(mode):
    assert run_example("discovery.py", "--mode", mode) == [
        f"mode: {mode}",
        "query: me offers ['help']",
        "query: weather offers ['forecast', 'help']",
        "watcher: appeared: me.help",
        "watcher: appeared: weather.forecast",
        "watcher: appeared: weather.help",
        "watcher: appeared: translator.help",
        "watcher: appeared: translator.languages",
        "watcher: appeared: translator.translate",
        "found: translator offers translate: Translate a text (this one knows a single word).",
        "asked: bonjour",
        "watcher: gone: translator.help",
        "watcher: gone: translator.languages",
        "watcher: gone: translator.translate",
        "query after it left: ['me', 'weather']",
    ]


@pytest.mark.parametrize("mode", ["assertion", "message"])
def test_native_and_classic_example(mode):
    assert run_example("native_and_classic.py", "--mode", mode) == [
        f"mode: {mode}",
        "thermostat: sees classic agent boiler",
        "thermostat: sees classic agent hall-sensor",
        "thermostat: sees classic agent kitchen-sensor",
        "thermostat: sees classic agent me",
        "thermostat: kitchen is 17, heat it",
        "boiler: heating kitchen",
        "thermostat: hall is 16, heat it",
        "boiler: heating hall",
        "status: ['hall', 'kitchen']",
        "boiler: stopped heating kitchen",
        "boiler: stopped heating hall",
        "status: []",
    ]


# --- chat --------------------------------------------------------------------------------------

CHAT_DEMO = """\
alice joins
  [alice] present: nobody else
bob joins
  [bob] present: alice
  [alice] bob joined
alice says "hi bob"
  [alice] alice: hi bob
  [bob] alice: hi bob
bob says "hi alice"
  [alice] bob: hi alice
  [bob] bob: hi alice
carol joins
  [carol] present: alice, bob
  [alice] carol joined
  [bob] carol joined
carol says "what did I miss?"
  [alice] carol: what did I miss?
  [bob] carol: what did I miss?
  [carol] carol: what did I miss?
bob leaves
  [alice] bob left
  [carol] bob left
alice says "bob left, carol"
  [alice] alice: bob left, carol
  [carol] alice: bob left, carol
alice leaves
  [carol] alice left
carol leaves
present at the end: nobody
"""


def test_chat_demo():
    assert run_example("chat.py", "--demo") == CHAT_DEMO.splitlines()


def test_chat_without_a_server_or_demo_says_what_to_give():
    done = subprocess.run([sys.executable, str(EXAMPLES / "chat.py")], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2
    assert "give NAME --connect ADDRESS --cap CAP" in done.stderr and "--demo" in done.stderr


WAIT = 30.0  # seconds any one expected line may take (a loaded 2-core machine)


class Program:
    """A child process whose stdout is read line by line with deadlines; stdin is a pipe."""

    def __init__(self, *command: str, stderr=subprocess.DEVNULL) -> None:
        self.process = subprocess.Popen([sys.executable, *command], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=stderr)
        self.buffer = b""
        self.lines: list[str] = []

    def _read(self, deadline: float, what: str) -> bool:
        """One more line into ``lines``; False at end of output."""
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            while b"\n" not in self.buffer:
                remaining = deadline - time.monotonic()
                assert remaining > 0, f"never saw {what}; saw {self.lines}"
                if selector.select(remaining):
                    chunk = os.read(self.process.stdout.fileno(), 4096)
                    if not chunk:
                        return False
                    self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        self.lines.append(line.decode())
        return True

    def wait_for(self, *wanted: str, matching=None) -> None:
        """Until every line in ``wanted`` (transformed by ``matching``) has been printed."""
        shown = matching or (lambda line: line)
        deadline = time.monotonic() + WAIT
        while not set(wanted) <= {shown(line) for line in self.lines}:
            assert self._read(deadline, wanted), (
                f"exited (code {self.process.poll()}) before {wanted}; saw {self.lines}")

    def type(self, line: str) -> None:
        self.process.stdin.write(line.encode() + b"\n")
        self.process.stdin.flush()

    def end_input_and_wait(self) -> int:
        """Close stdin, read the rest of the output, return the exit status."""
        self.process.stdin.close()
        deadline = time.monotonic() + WAIT
        while self._read(deadline, "the end of output"):
            pass
        return self.process.wait(WAIT)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            try:
                stream.close()
            except OSError:  # a pipe to a killed process
                pass


@pytest.fixture
def server(tmp_path):
    """``dataspace-agency serve`` in a child process, on a free loopback port and a unix
    socket in a temp dir: ``{"cap", "tcp", "unix", "program"}``."""
    unix = str(tmp_path / "ds.sock")
    program = Program("-m", "dataspace_agency.cli", "serve", "--tcp", "127.0.0.1:0",
                      "--unix", unix, "--exit-on-stdin-eof")
    try:
        program.wait_for("ready")
        found: dict[str, list[str]] = {}
        for line in program.lines:
            kind, _, value = line.partition(" ")
            found.setdefault(kind, []).append(value)
        yield {"cap": found["capability"][0], "tcp": found["address"][0],
               "unix": found["address"][1], "program": program}
    finally:
        if program.process.poll() is None:
            program.end_input_and_wait()
        program.stop()


def chat(name: str, address: str, cap: str, **options) -> Program:
    return Program(str(EXAMPLES / "chat.py"), name, "--connect", address, "--cap", cap,
                   **options)


def stock(program: str, *args: str) -> Program:
    return Program(str(EXAMPLES / "syndicate_interop" / program), *args)


def without_time(line: str) -> str:
    """A watcher's line without its ``HH:MM:SS`` prefix."""
    return line.split(" ", 1)[1] if re.match(r"\d\d:\d\d:\d\d ", line) else line


def test_chat_in_terminals_with_stock_syndicate_py_peers(server):
    # Our chat client (TCP), a stock syndicate-py peer and a stock watcher (unix socket),
    # then a scripted chat participant, all in one room; then the stock peer is killed.
    programs = []
    try:
        watcher = stock("watcher.py", server["unix"], server["cap"])
        programs.append(watcher)
        alice = chat("alice", server["tcp"], server["cap"])
        programs.append(alice)
        alice.wait_for("present: nobody else")  # the watcher asserts nothing: unseen
        watcher.wait_for("+ <Present 'alice'>", matching=without_time)

        bob = stock("peer.py", "bob", server["unix"], server["cap"])  # stock syndicate-py
        programs.append(bob)
        alice.wait_for("bob joined", "bob: hello alice")  # bob greets whoever is there
        bob.wait_for("alice joined", "bob joined", "bob: hello alice")

        alice.type("hi bob")
        alice.type("/who")
        alice.wait_for("alice: hi bob", "here: bob")
        bob.wait_for("alice: hi bob")
        bob.type("hello from stock syndicate-py")
        alice.wait_for("bob: hello from stock syndicate-py")

        # A late joiner with a fixed script on stdin: sees who is there at once, says its
        # line, leaves at the end of input (exit status 0).
        carol = chat("carol", server["tcp"], server["cap"])
        programs.append(carol)
        carol.type("bye all")
        assert carol.end_input_and_wait() == 0
        assert carol.lines[0] == "present: alice, bob"
        assert "carol: bye all" in carol.lines
        assert not any(line.startswith("alice:") for line in carol.lines)  # not stored
        alice.wait_for("carol joined", "carol: bye all", "carol left", "bob: hello carol")
        bob.wait_for("carol joined", "bob: hello carol", "carol: bye all", "carol left")

        bob.process.send_signal(signal.SIGKILL)  # a stock peer dies without a word
        bob.process.wait(WAIT)
        alice.wait_for("bob left")
        watcher.wait_for("- <Present 'bob'>", "! <Say 'alice' 'hi bob'>",
                         "! <Say 'carol' 'bye all'>", matching=without_time)

        assert alice.end_input_and_wait() == 0
        watcher.wait_for("- <Present 'alice'>", matching=without_time)
        # What alice saw of others, in order (her own lines come back through the server;
        # bob's greeting to carol races with carol's leaving, so it is left out here).
        others = [line for line in alice.lines
                  if not line.startswith(("alice:", "here:")) and line != "bob: hello carol"]
        assert others == ["present: nobody else", "bob joined", "bob: hello alice",
                          "bob: hello from stock syndicate-py", "carol joined",
                          "carol: bye all", "carol left", "bob left"]
    finally:
        for program in programs:
            program.stop()


def test_chat_says_when_the_server_goes(server):
    alice = chat("alice", server["unix"], server["cap"], stderr=subprocess.PIPE)
    try:
        alice.wait_for("present: nobody else")
        assert server["program"].end_input_and_wait() == 0  # the server stops
        assert alice.process.wait(WAIT) == 1
        assert "chat: connection lost" in alice.process.stderr.read().decode()
    finally:
        alice.stop()
        alice.process.stderr.close()


def test_chat_with_a_wrong_capability_or_no_server(server, tmp_path):
    bad = '<ref {oid: "syndicate" sig: #x"00112233445566778899aabbccddeeff"}>'
    done = subprocess.run([sys.executable, str(EXAMPLES / "chat.py"), "alice", "--connect",
                           server["tcp"], "--cap", bad], capture_output=True, text=True,
                          timeout=60, input="")
    assert done.returncode == 1
    assert "rejected the capability: 'bad signature'" in done.stderr
    nowhere = f'<unix "{tmp_path / "nothing.sock"}">'
    done = subprocess.run([sys.executable, str(EXAMPLES / "chat.py"), "alice", "--connect",
                           nowhere, "--cap", server["cap"]], capture_output=True, text=True,
                          timeout=60, input="")
    assert done.returncode == 1 and "chat: cannot connect to" in done.stderr


# --- syndicate_interop: stock syndicate-py programs, driven by one script ------------------------

def test_syndicate_interop_example():
    assert run_example("syndicate_interop") == [
        "server: dataspace-agency serve, on a unix socket",
        "alice starts (stock syndicate-py)",
        "  alice saw: alice joined",
        "bob starts (stock syndicate-py)",
        "  alice saw: alice: hello bob",
        "  alice saw: bob joined",
        "  alice saw: bob: hello alice",
        "  bob saw: alice joined",
        "  bob saw: alice: hello bob",
        "  bob saw: bob joined",
        "  bob saw: bob: hello alice",
        'alice types "nice to meet you"',
        "  alice saw: alice: nice to meet you",
        "  bob saw: alice: nice to meet you",
        "bob's process is killed (SIGKILL): it says nothing",
        "  alice saw: bob left",
        "bob exited with -9; alice still running: True",
    ]


# --- remote_agents: classic agents in processes, through the server ----------------------------

REMOTE_START = [
    "calc and worker run in processes of their own: True",
    "me asks calc add(2, 3): 5",
    "calc answered from its own process: True",
    'me sees <working "worker">: it is mid-action',
    "worker's process killed (SIGKILL)",
]
AFTER = re.compile(r"after (\d+\.\d\d) s: (.*)")


def remote_agents(*args: str) -> tuple[list[str], float, str]:
    lines = run_example("remote_agents.py", *args)
    after = AFTER.fullmatch(lines[-2])
    assert after, lines
    assert lines[-1] == "calc still answers: 2"
    return lines[:-2], float(after[1]), after[2]


def test_remote_agents_example_fails_at_once_in_assertion_mode():
    lines, after, outcome = remote_agents("--timeout", "5")
    assert lines == ["mode: assertion", *REMOTE_START]
    assert outcome == 'ActionError: agent "worker" stopped before answering "work"'
    assert after < 2.0  # "at once": a generous bound, far below the 5 s timeout


def test_remote_agents_example_times_out_in_message_mode():
    lines, after, outcome = remote_agents("--mode", "message", "--timeout", "1")
    assert lines == ["mode: message", *REMOTE_START]
    assert outcome == 'TimeoutError: no answer from "worker" to "work" within 1.0 s'


def test_remote_agents_example_on_a_running_server(server):
    lines, after, outcome = remote_agents("--connect", server["tcp"], "--cap", server["cap"],
                                          "--timeout", "5")
    assert lines == ["mode: assertion", *REMOTE_START]
    assert outcome == 'ActionError: agent "worker" stopped before answering "work"'


def test_remote_agents_example_needs_both_connect_and_cap():
    done = subprocess.run([sys.executable, str(EXAMPLES / "remote_agents.py"), "--connect",
                           '<tcp "127.0.0.1" 1>'], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "--connect and --cap go together" in done.stderr


# --- tool_agents: the human (an interactive handle) and three policies ----------------------------

TOOL_START = [
    "planner: goal: keep a shopping list",
    "planner: tools found in facts: host.decide, host.list_files, host.read_file, host.run,"
    " host.write_file",
    "planner: host.list_files() -> []",
]
WANTS_WRITE = ('human: planner wants host.write_file {"path": "shopping.txt", "content":'
               ' "milk\\neggs\\nbread\\n"}')
WRITE = "planner: host.write_file(path='shopping.txt', content='milk\\neggs\\nbread\\n') -> "
WANTS_WC = 'human: planner wants host.run {"command": "wc shopping.txt"}'
WC = "planner: host.run(command='wc shopping.txt') -> "
WANTS_GREP = 'human: planner wants host.run {"command": "grep egg shopping.txt"}'
GREP = "planner: host.run(command='grep egg shopping.txt') -> "
OUTSIDE = ("planner: host.read_file(path='../outside.txt') -> error: PermissionError:"
           " ../outside.txt is outside the workspace")
WANTS_RM = 'human: planner wants host.run {"command": "rm -rf /"}'
RM = "planner: host.run(command='rm -rf /') -> "
SELF_APPROVAL = ("planner: host.decide(ticket='any', allow=True) -> error: PermissionError:"
                 " only human decides permission requests")
READ = "planner: host.read_file(path='shopping.txt') -> "
REMOVED = "workspace removed with the host: True"


def test_tool_agents_approve_all():
    assert run_example("tool_agents.py", "--approve", "all") == [
        *TOOL_START,
        WANTS_WRITE + ": approved", WRITE + "'wrote 16 characters to shopping.txt'",
        WANTS_WC + ": approved", WC + "'3 3 16 shopping.txt'",
        WANTS_GREP + ": approved", GREP + "'eggs'",
        OUTSIDE,
        WANTS_RM + ": approved",
        RM + "error: ValueError: 'rm' is not an available command (cat, echo, grep, ls, wc)",
        SELF_APPROVAL,
        READ + "'milk\\neggs\\nbread\\n'",
        "human: planner answered: 5 of 8 steps succeeded",
        REMOVED,
    ]


def test_tool_agents_approve_none():
    refused = 'error: PermissionError: "host.{}" not permitted'
    assert run_example("tool_agents.py", "--approve", "none") == [
        *TOOL_START,
        WANTS_WRITE + ": refused", WRITE + refused.format("write_file"),
        WANTS_WC + ": refused", WC + refused.format("run"),
        WANTS_GREP + ": refused", GREP + refused.format("run"),
        OUTSIDE,
        WANTS_RM + ": refused", RM + refused.format("run"),
        SELF_APPROVAL,
        READ + "error: FileNotFoundError: shopping.txt does not exist",
        "human: planner answered: 1 of 8 steps succeeded",
        REMOVED,
    ]


def test_tool_agents_ask_reads_answers_from_stdin():
    # Three answers for four questions: the last finds end-of-input and is refused.
    ask = "; allow? [y/N] "
    assert run_example("tool_agents.py", "--approve", "ask", stdin="y\nno\nyes\n") == [
        *TOOL_START,
        WANTS_WRITE + ask + "y", WRITE + "'wrote 16 characters to shopping.txt'",
        WANTS_WC + ask + "no", WC + 'error: PermissionError: "host.run" not permitted',
        WANTS_GREP + ask + "yes", GREP + "'eggs'",
        OUTSIDE,
        WANTS_RM + ask + "(no answer: refused)", RM + 'error: PermissionError: "host.run" not'
                                                      ' permitted',
        SELF_APPROVAL,
        READ + "'milk\\neggs\\nbread\\n'",
        "human: planner answered: 4 of 8 steps succeeded",
        REMOVED,
    ]


# --- the command: dataspace-agency example ------------------------------------------------------

def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dataspace_agency.cli", *args],
                          capture_output=True, text=True, timeout=60)


def test_example_list_names_every_example_with_its_summary():
    done = cli("example", "--list")
    assert done.returncode == 0, done.stderr
    listed = dict(line.split(None, 1) for line in done.stdout.splitlines())
    expected = {path.stem for path in EXAMPLES.glob("*.py") if not path.name.startswith("_")}
    expected |= {path.parent.name for path in EXAMPLES.glob("*/__main__.py")}
    assert set(listed) == expected
    assert {"chat", "request_response", "failure", "late_join", "discovery",
            "native_and_classic", "tool_agents", "syndicate_interop",
            "remote_agents"} <= expected
    found = example_command.find_examples(EXAMPLES)
    for name, line in listed.items():  # the first docstring paragraph, on one line
        assert line == example_command.summary(found[name])
    assert listed["late_join"] == (
        "A request sent before its responder exists: answered when it joins, or lost.")


def test_example_runs_one_with_its_arguments():
    done = cli("example", "discovery", "--mode", "message")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == run_example("discovery.py", "--mode", "message")


def test_example_passes_on_the_exit_status():
    done = cli("example", "chat")  # no server and no --demo: the example's usage error
    assert done.returncode == 2
    assert "give NAME --connect ADDRESS --cap CAP" in done.stderr


def test_example_runs_a_directory_example():
    done = cli("example", "syndicate_interop")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "bob exited with -9; alice still running: True"


# Examples whose tests live in another file (that file must name the example), by its path
# under tests/.
TESTED_ELSEWHERE = {"interactive": "classic/test_interactive.py",
                    "zenoh_agents": "zenoh/test_router_cli.py"}


def test_every_example_has_a_test():
    source = pathlib.Path(__file__).read_text()
    for name, path in example_command.find_examples(EXAMPLES).items():
        if name in TESTED_ELSEWHERE:
            other = pathlib.Path(__file__).resolve().parents[1] / TESTED_ELSEWHERE[name]
            assert f'"{path.name}"' in other.read_text(), f"{other.name} does not run {name}"
            continue
        runs = (f'run_example("{path.name}"' in source
                or f'EXAMPLES / "{path.name}"' in source)
        assert runs, f"examples/{path.name} has no test in tests/commands/test_examples.py"


def test_example_unknown_or_missing_name():
    done = cli("example", "nope")
    assert done.returncode == 2
    assert "no example named 'nope'" in done.stderr and "request_response" in done.stderr
    done = cli("example")
    assert done.returncode == 2
    assert "--list" in done.stderr


def test_example_without_a_source_checkout(tmp_path, monkeypatch, capsys):
    # As if the package were installed from a wheel: no examples/ beside it.
    fake = tmp_path / "site-packages" / "dataspace_agency" / "commands" / "example.py"
    monkeypatch.setattr(example_command, "__file__", str(fake))
    args = argparse.Namespace(list=True, name=None, args=[])
    assert example_command.run(args) == 1
    err = capsys.readouterr().err
    assert "no examples directory at" in err and "source checkout" in err


def test_find_examples_skips_helpers_and_finds_directories(tmp_path):
    (tmp_path / "_helper.py").write_text('"""Not an example."""\n')
    (tmp_path / "one.py").write_text('"""First line\nwraps here.\n\nMore."""\n')
    (tmp_path / "two").mkdir()
    (tmp_path / "two" / "__main__.py").write_text("print('hi')\n")
    (tmp_path / "data").mkdir()  # a directory without __main__.py is not an example
    (tmp_path / "broken.py").write_text("def (:\n")
    found = example_command.find_examples(tmp_path)
    assert sorted(found) == ["broken", "one", "two"]
    assert example_command.summary(found["one"]) == "First line wraps here."
    assert example_command.summary(found["two"]) == "(no docstring)"
    assert example_command.summary(found["broken"]).startswith("(cannot read its docstring")
