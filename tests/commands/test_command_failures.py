"""Every command's expected failures end in one line on stderr and a non-zero exit status,
never a traceback (``dataspace_agency/commands/failures.py``), each run as a user would:
a real subprocess, real sockets, a real Ctrl-C (SIGINT).

Ctrl-C tests start their child with SIGINT's default disposition
(``helpers.sigint_as_in_a_terminal``), so they pass however this suite was launched.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from dataspace_agency.commands.failures import (EXIT_BROKEN_PIPE, EXIT_INTERRUPTED,
                                                CommandFailed, leaves, only, run_command)
from helpers import sigint_as_in_a_terminal

ROOT = Path(__file__).resolve().parents[2]
WAIT = 60  # generous bound for a child on a loaded 2-core machine
CAP = '<ref {oid: "syndicate" sig: #[GEU/WdIFXpvkUCtD6qqA6A==]}>'  # well-formed, unknown


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "dataspace_agency.cli", *args]


def example(name: str, *args: str) -> list[str]:
    return [sys.executable, str(ROOT / "examples" / f"{name}.py"), *args]


def run(argv: list[str], stdin: str = "") -> subprocess.CompletedProcess:
    env = dict(os.environ, NO_COLOR="1")
    return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True,
                          input=stdin, timeout=WAIT)


def one_line(result: subprocess.CompletedProcess, prefix: str, *words: str) -> str:
    """The failure's single stderr line, checked: non-zero exit, no traceback."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode != 0, result
    assert "Traceback" not in result.stderr, result.stderr
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"{prefix}: "), lines[0]
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


def read_line(stream) -> str:
    """A line from an unbuffered binary pipe (``bufsize=0``: nothing waits in a Python
    buffer where select cannot see it), failing after ``WAIT`` seconds."""
    ready, _, _ = select.select([stream], [], [], WAIT)
    assert ready, f"no output within {WAIT} s"
    return stream.readline().decode()


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """``dataspace-agency serve`` as a child process, started with SIGINT as in a terminal."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            cli("serve", "--log-level", "WARNING", *args), cwd=ROOT, bufsize=0,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
            preexec_fn=sigint_as_in_a_terminal)
        self.cap = self.tcp = None
        for line in self._lines_until_ready():
            if line.startswith("capability "):
                self.cap = line.split(" ", 1)[1]
            elif line.startswith('address <tcp "'):
                self.tcp = int(line.rstrip(">").split()[-1])

    def _lines_until_ready(self) -> list[str]:
        lines = []
        while (line := read_line(self.process.stdout)) != "ready\n":
            assert line, f"serve ended: {lines} {self.process.stderr.read()}"
            lines.append(line.strip())
        return lines

    def stop(self) -> subprocess.CompletedProcess:
        """Ctrl-C, as a terminal sends it; the finished process's output."""
        self.process.send_signal(signal.SIGINT)
        out, err = self.process.communicate(timeout=WAIT)
        return subprocess.CompletedProcess(self.process.args, self.process.returncode,
                                           out.decode(), err.decode())

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.communicate(timeout=WAIT)


@pytest.fixture
def server(tmp_path):
    started = Server("--tcp", "127.0.0.1:0", "--unix", str(tmp_path / "ds.sock"))
    started.unix = str(tmp_path / "ds.sock")
    yield started
    started.kill()


# --- the helper itself ---------------------------------------------------------------------

def test_leaves_and_only_look_inside_nested_groups() -> None:
    error = OSError("in use")
    nested = ExceptionGroup("outer", [ExceptionGroup("inner", [error]),
                                      ConnectionRefusedError("no")])
    assert leaves(nested) == [error, nested.exceptions[1]]
    assert only(nested, OSError) is error
    assert only(nested, ConnectionRefusedError) is None  # not every leaf is one
    assert only(ValueError("x"), ValueError) is not None


def test_run_command_turns_groups_into_one_line(capsys) -> None:
    def raising(exc: BaseException):
        def body():
            raise exc
        return body

    interrupted = BaseExceptionGroup("g", [KeyboardInterrupt()])
    assert run_command("prog", raising(interrupted)) == EXIT_INTERRUPTED
    assert capsys.readouterr().err == "prog: interrupted (Ctrl-C)\n"
    in_use = ExceptionGroup("g", [OSError(98, "Address\nalready in use")])
    assert run_command("prog", raising(in_use), expected={OSError: 3}) == 3
    assert capsys.readouterr().err == "prog: [Errno 98] Address already in use\n"
    assert run_command("prog", raising(CommandFailed("stop here", 4))) == 4
    assert capsys.readouterr().err == "prog: stop here\n"
    with pytest.raises(ExceptionGroup):  # not expected: a bug keeps its traceback
        run_command("prog", raising(ExceptionGroup("g", [KeyError("k")])),
                    expected={OSError: 1})
    with pytest.raises(SystemExit):
        run_command("prog", raising(SystemExit(2)))


# --- serve -------------------------------------------------------------------------------

def test_serve_on_a_tcp_port_in_use_says_so_in_one_line() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run(cli("serve", "--tcp", f"127.0.0.1:{port}"))
    one_line(result, "dataspace-agency serve", f"127.0.0.1:{port}", "already in use")
    assert result.returncode == 1


def test_serve_on_a_live_unix_socket_and_ctrl_c_each_end_in_one_line(server) -> None:
    result = run(cli("serve", "--unix", server.unix))
    one_line(result, "dataspace-agency serve", "already listening", server.unix)
    stopped = server.stop()
    assert stopped.returncode == EXIT_INTERRUPTED
    one_line(stopped, "dataspace-agency serve", "stopped (Ctrl-C)")


# --- clients: the REPL and the examples ----------------------------------------------------

@pytest.mark.parametrize("argv", [
    pytest.param(lambda address, cap: cli("repl", "--connect", address, "--cap", cap),
                 id="repl"),
    pytest.param(lambda address, cap: example("chat", "alice", "--connect", address,
                                              "--cap", cap), id="chat"),
    pytest.param(lambda address, cap: example("remote_agents", "--connect", address,
                                              "--cap", cap), id="remote_agents"),
])
def test_an_unreachable_server_and_a_bad_capability_are_one_line(argv) -> None:
    prefix = {"repl": "dataspace-agency repl"}
    unreachable = run(argv(f"127.0.0.1:{closed_port()}", CAP))
    name = Path(unreachable.args[1]).stem if unreachable.args[1].endswith(".py") else "repl"
    one_line(unreachable, prefix.get(name, name), "cannot connect", "127.0.0.1")
    for bad_cap in ("hello", CAP[:-5]):  # a typo; a capability cut short
        result = run(argv(f"127.0.0.1:{closed_port()}", bad_cap))
        one_line(result, prefix.get(name, name))


def test_a_wrong_capability_for_a_live_server_is_one_line(server) -> None:
    wrong = run(cli("repl", "--connect", f"127.0.0.1:{server.tcp}", "--cap", CAP))
    one_line(wrong, "dataspace-agency repl")
    wrong = run(example("chat", "bob", "--connect", f"127.0.0.1:{server.tcp}", "--cap", CAP))
    one_line(wrong, "chat")


def test_host_port_is_tcp_everywhere_an_address_is_taken() -> None:
    from dataspace_agency.protocol.client import parse_address
    assert parse_address("127.0.0.1:52001") == ("tcp", ("127.0.0.1", 52001))
    assert parse_address("localhost:8001") == ("tcp", ("localhost", 8001))
    assert parse_address("[::1]:8001") == ("tcp", ("::1", 8001))
    assert parse_address('<tcp "127.0.0.1" 8001>') == ("tcp", ("127.0.0.1", 8001))
    # Anything else stays a unix socket path, as before.
    for path in ("/tmp/ds.sock", "ds.sock", "./odd:1", "a:b:1", "host:99999"):
        assert parse_address(path) == ("unix", path)
    assert parse_address('<unix "x:1">') == ("unix", "x:1")


def test_host_port_reaches_a_tcp_server(server) -> None:
    # `--connect 127.0.0.1:PORT`, as `serve --tcp` takes it, is TCP, not a socket path.
    said = run(example("chat", "alice", "--connect", f"127.0.0.1:{server.tcp}",
                       "--cap", server.cap), stdin="hello over tcp\n")
    assert said.returncode == 0, said.stderr
    assert "alice: hello over tcp" in said.stdout.splitlines()


def test_unknown_names_are_one_line() -> None:
    one_line(run(cli("example", "no_such_example")), "dataspace-agency example",
             "no example named 'no_such_example'")
    one_line(run(cli("compare", "--backends", "no-such-backend")),
             "dataspace-agency compare", "unknown backend 'no-such-backend'")
    one_line(run(cli("compare", "--workloads", "no_such_workload")),
             "dataspace-agency compare", "unknown workload 'no_such_workload'")
    bad_space = run(cli("repl", "--space", "no-such-space"))
    assert bad_space.returncode == 2 and "invalid choice" in bad_space.stderr
    assert "Traceback" not in bad_space.stderr


# --- Ctrl-C and a closed pipe ---------------------------------------------------------------

def test_ctrl_c_during_bench_is_one_line() -> None:
    bench = subprocess.Popen(cli("bench", "routing", "--quick"), cwd=ROOT, bufsize=0,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env=dict(os.environ, NO_COLOR="1", PYTHONUNBUFFERED="1"),
                             preexec_fn=sigint_as_in_a_terminal)
    try:
        # Without a terminal, bench says once on stderr that it has begun.
        assert read_line(bench.stderr) == "benchmarking routing ...\n"
        bench.send_signal(signal.SIGINT)  # mid-run
        out, err = bench.communicate(timeout=WAIT)
    finally:
        if bench.poll() is None:
            bench.kill()
            bench.communicate()
    result = subprocess.CompletedProcess(bench.args, bench.returncode, out.decode(),
                                         err.decode())
    assert result.returncode == EXIT_INTERRUPTED
    one_line(result, "dataspace-agency bench", "interrupted (Ctrl-C)")
    assert out == b""  # stopped before its report


def test_an_example_piped_into_head_ends_quietly() -> None:
    # `python examples/classic_agents.py | head -1`: the reader leaves after one line.
    # Unbuffered, so that each line is written as it is printed: the lines after the
    # first come over a second or more (requests, a timeout), after the reader has gone.
    child = subprocess.Popen(example("classic_agents"), cwd=ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True,
                             env=dict(os.environ, PYTHONUNBUFFERED="1"))
    assert child.stdout.readline() == "mode: assertion\n"
    child.stdout.close()
    err = child.stderr.read()
    assert child.wait(WAIT) == EXIT_BROKEN_PIPE
    assert err == "", err


# --- compare: the output location first, and Ctrl-C keeps what finished ----------------------

def test_compare_with_an_existing_file_as_out_fails_before_any_run(tmp_path) -> None:
    existing = tmp_path / "README.md"
    existing.write_text("mine\n")
    result = run(cli("compare", "--tiny", "--out", str(existing)))
    # One line and nothing else: no "N runs: ..." line, so no run was started.
    one_line(result, "dataspace-agency compare", str(existing), "not a directory")
    assert result.returncode == 2
    assert existing.read_text() == "mine\n"


def test_ctrl_c_during_compare_writes_the_finished_runs_marked_partial(tmp_path) -> None:
    out = tmp_path / "out"
    compare = subprocess.Popen(
        cli("compare", "--tiny", "--no-progress", "--out", str(out), "--backends",
            "queue", "--workloads", "throughput,failure,late_join,state"),
        cwd=ROOT, bufsize=0, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=dict(os.environ, NO_COLOR="1"), preexec_fn=sigint_as_in_a_terminal)
    try:
        # Without a terminal, a line per finished run: interrupt after the first.
        while not (line := read_line(compare.stderr)).startswith("[1/4] "):
            assert line, "compare ended before its first run finished"
        compare.send_signal(signal.SIGINT)
        _, err = compare.communicate(timeout=WAIT)
    finally:
        if compare.poll() is None:
            compare.kill()
            compare.communicate()
    err = err.decode()
    assert compare.returncode == EXIT_INTERRUPTED, err
    assert "Traceback" not in err, err
    assert "interrupted (Ctrl-C) after" in err.splitlines()[-1]
    import json
    document = json.loads((out / "results.json").read_text())
    assert document["partial"]["reason"] == "interrupted (Ctrl-C)"
    assert 1 <= document["partial"]["finished"] < document["partial"]["planned"] == 4
    assert len(document["runs"]) == document["partial"]["finished"]
    assert document["runs"][0]["ok"] and document["runs"][0]["workload"] == "throughput"
    text = (out / "report.md").read_text()
    assert "**Partial results**" in text and "interrupted (Ctrl-C)" in text


def test_ctrl_c_during_an_example_is_one_line_from_each() -> None:
    # A terminal's Ctrl-C reaches the whole foreground process group: the `example`
    # command and the example it runs. The example says it was interrupted; the command
    # passes its status on.
    example_run = subprocess.Popen(
        cli("example", "failure", "--backend", "queue", "--timeout", "30"), cwd=ROOT,
        bufsize=0, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1"), preexec_fn=sigint_as_in_a_terminal)
    try:
        assert read_line(example_run.stdout).startswith("request timeout: 30 s")
        os.killpg(example_run.pid, signal.SIGINT)
        _, err = example_run.communicate(timeout=WAIT)
    finally:
        if example_run.poll() is None:
            os.killpg(example_run.pid, signal.SIGKILL)
            example_run.communicate()
    err = err.decode()
    assert example_run.returncode == EXIT_INTERRUPTED, err
    assert "Traceback" not in err, err
    assert err.strip().splitlines()[-1] == "failure: interrupted (Ctrl-C)"
