"""What only ``MultiprocessQueueSpace`` promises (the classic contract itself runs on it in
tests/classic/test_contract.py): agents in their own processes, a child's death noticed and
answered at once, and no child process outliving the space or its parent."""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import queue
import selectors
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import trio

from dataspace_agency import ActionError, Agent, MultiprocessQueueSpace, action
from helpers import sigint_as_in_a_terminal

WAIT = 5.0
ROOT = Path(__file__).resolve().parents[2]


def msg(to: str, name: str, /, **args) -> dict:
    return {"to": to, "action": {"name": name, "args": args}}


class Worker(Agent):
    @action
    def pid(self) -> int:
        return os.getpid()

    @action
    def echo(self, value):
        return value

    @action
    async def hang(self, notify: str):
        """Tell ``notify`` we have started (and our pid), then never answer."""
        self.send(msg(notify, "started", pid=os.getpid()))
        await trio.sleep_forever()

    @action
    def relay(self, to: str, name: str, args: dict):
        """Request ``to`` in turn; an error answer comes back as text."""
        try:
            return self.request({"to": to, "action": {"name": name, "args": args}},
                                timeout=10)
        except ActionError as error:
            return f"caught {error}"


class Watcher(Agent):
    """A foreground agent that reports what reaches it on ``events``."""

    def __init__(self, id, *args, **kwargs):
        super().__init__(id, *args, **kwargs)
        self.events: queue.Queue = queue.Queue()

    @action
    def started(self, pid: int):
        self.events.put(("started", pid))

    def handle_action_error(self, error):
        self.events.put(("error", str(error)))


class FailsToStart(Agent):
    def after_add(self):
        raise ValueError("no thanks")


class NeedsAnArgument(Agent):
    def __init__(self, id, *args, thing, **kwargs):
        super().__init__(id, *args, **kwargs)
        self.thing = thing


def alive(pid: int) -> bool:
    """Whether ``pid`` is a process that has not exited (a zombie has exited)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def wait_until_gone(pids: set[int], timeout: float = 10.0) -> set[int]:
    """The pids still alive after waiting up to ``timeout`` (polling, with a deadline)."""
    deadline = time.monotonic() + timeout
    while True:
        left = {pid for pid in pids if alive(pid)}
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


def read_line(stream, timeout: float = 30.0) -> str:
    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)
        if not selector.select(timeout):
            pytest.fail(f"no output within {timeout} s")
    return stream.readline().decode()


@pytest.fixture(params=["forkserver", "spawn"])
def space(request):
    made = MultiprocessQueueSpace(start_method=request.param)
    try:
        yield made
    finally:
        made.destroy()


def test_added_agents_run_in_their_own_processes(space):
    space.add(Worker, "w1")
    space.add(Worker, "w2")
    me = space.add_foreground(Worker, "me")

    pids = {name: me.request(msg(name, "pid")) for name in ("w1", "w2", "me")}

    assert pids["me"] == os.getpid() == space.pid_of("me")
    assert pids["w1"] == space.pid_of("w1") != os.getpid()
    assert pids["w2"] == space.pid_of("w2") not in (os.getpid(), pids["w1"])
    assert {p.pid for p in multiprocessing.active_children()} >= {pids["w1"], pids["w2"]}
    # Child to child, and child back to the foreground agent.
    assert me.request(msg("w1", "relay", to="w2", name="pid", args={})) == pids["w2"]
    assert me.request(msg("w1", "relay", to="me", name="echo", args={"value": 3})) == 3
    # The registry knows the children's actions.
    agents = space.agents()
    assert set(agents) == {"w1", "w2", "me"}
    assert {"pid", "echo", "hang", "relay"} <= set(agents["w1"])


def test_a_killed_child_fails_what_it_owes_at_once_and_later_messages_too(space):
    space.add(Worker, "victim")
    space.add(Worker, "other")
    watcher = space.add_foreground(Watcher, "watcher")

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pending = pool.submit(watcher.request, msg("victim", "hang", notify="watcher"), 10)
        kind, pid = watcher.events.get(timeout=WAIT)
        assert (kind, pid) == ("started", space.pid_of("victim"))
        watcher.send(msg("victim", "echo", value=1))  # queued behind the hanging action
        started = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(ActionError) as caught:  # a TimeoutError (10 s) fails the test
            pending.result(timeout=15)
        assert time.monotonic() - started < 5
    text = str(caught.value)
    assert text == 'RuntimeError: agent "victim"\'s process died (exit code -9)'
    # The send() waiting behind it was answered too, through handle_action_error.
    assert watcher.events.get(timeout=WAIT) == ("error", text)

    assert "victim" not in space.agents()
    with pytest.raises(ValueError):
        space.pid_of("victim")
    assert wait_until_gone({pid}, timeout=WAIT) == set()
    # Later messages get the same answer at once; everyone else carries on.
    with pytest.raises(ActionError) as later:
        watcher.request(msg("victim", "echo", value=2), timeout=10)
    assert str(later.value) == text
    assert watcher.request(msg("other", "echo", value="still here")) == "still here"
    assert watcher.request(msg("other", "relay", to="victim", name="echo", args={})) == \
        f"caught {text}"
    # The id can be used again.
    space.add(Worker, "victim")
    assert watcher.request(msg("victim", "echo", value=3)) == 3


def test_a_child_requesting_from_a_child_that_dies_gets_an_error(space):
    space.add(Worker, "victim")
    space.add(Worker, "asker")
    watcher = space.add_foreground(Watcher, "watcher")
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        relayed = pool.submit(watcher.request, msg("asker", "relay", to="victim", name="hang",
                                                   args={"notify": "watcher"}), 15)
        kind, pid = watcher.events.get(timeout=WAIT)
        assert kind == "started"
        os.kill(pid, signal.SIGKILL)
        assert relayed.result(timeout=15) == \
            'caught RuntimeError: agent "victim"\'s process died (exit code -9)'


def test_remove_runs_the_child_down_and_later_messages_are_dropped(space):
    space.add(Worker, "w")
    me = space.add_foreground(Worker, "me")
    pid = space.pid_of("w")
    space.remove("w")
    assert not alive(pid)
    assert "w" not in space.agents()
    with pytest.raises(TimeoutError):  # as on QueueSpace: removed is not dead
        me.request(msg("w", "echo", value=1), timeout=0.5)
    with pytest.raises(ValueError):
        space.remove("w")


def test_destroy_leaves_no_child_processes():
    before = set(multiprocessing.active_children())
    space = MultiprocessQueueSpace()
    for name in ("a", "b", "c"):
        space.add(Worker, name)
    space.add_foreground(Watcher, "watcher")
    pids = {space.pid_of(name) for name in ("a", "b", "c")}
    assert all(alive(pid) for pid in pids)

    space.destroy()

    assert set(multiprocessing.active_children()) <= before
    assert not [pid for pid in pids if alive(pid)]
    space.destroy()  # idempotent


def test_duplicate_id_is_refused_and_the_first_agent_keeps_running(space):
    space.add(Worker, "w")
    me = space.add_foreground(Worker, "me")
    pid = space.pid_of("w")
    with pytest.raises(ValueError):
        space.add(Worker, "w")
    with pytest.raises(ValueError):
        space.add_foreground(Worker, "w")
    with pytest.raises(ValueError):
        space.add(Worker, "me")
    assert space.pid_of("w") == pid
    assert me.request(msg("w", "pid")) == pid


def test_errors_while_starting_a_child_are_raised_by_add(space):
    with pytest.raises(ValueError, match="no thanks"):
        space.add(FailsToStart, "f")
    with pytest.raises(TypeError, match="picklable"):
        space.add(NeedsAnArgument, "n", thing=lambda: None)
    with pytest.raises(TypeError):  # the constructor's own error, from the child
        space.add(NeedsAnArgument, "n")
    assert space.agents() == {}
    space.add(Worker, "f")  # the ids were released
    space.add(NeedsAnArgument, "n", thing=[1, 2])
    assert set(space.agents()) == {"f", "n"}


PARENT_SCRIPT = """
    import os, sys, threading, time
    from dataspace_agency import Agent, MultiprocessQueueSpace, action

    class Child(Agent):
        @action
        def ping(self):
            return "pong"

        @action
        async def block_loop(self):
            os.write(1, b"blocking\\n")
            time.sleep(60)  # blocks the agent's runtime thread, on purpose

        def before_remove(self):
            # One write() of a short line: atomic, even with the other child writing.
            os.write(1, f"before_remove {self.id} {os.getpid()}\\n".encode())

    if __name__ == "__main__":
        with MultiprocessQueueSpace() as space:
            try:
                space.add(Child, "a")
                space.add(Child, "b")
                if sys.argv[1:] == ["stuck"]:
                    space._route({"from": "script", "to": "b",
                                  "action": {"name": "block_loop", "args": {}}})
                print(space.pid_of("a"), space.pid_of("b"), flush=True)
                threading.Event().wait()
            finally:
                print("destroying", flush=True)
        print("destroyed", flush=True)
"""


def start_parent(tmp_path: Path, *args: str) -> tuple[subprocess.Popen, set[int]]:
    script = tmp_path / "parent.py"
    script.write_text(textwrap.dedent(PARENT_SCRIPT))
    # SIGINT as in a terminal, even if this suite was started with it ignored: one test
    # sends the parent a Ctrl-C.
    parent = subprocess.Popen([sys.executable, str(script), *args], stdout=subprocess.PIPE,
                              bufsize=0, cwd=ROOT, start_new_session=True,
                              preexec_fn=sigint_as_in_a_terminal)
    try:
        # The pids, and (stuck) the stuck child's word that it is blocking, in any order.
        lines = [read_line(parent.stdout) for _ in range(2 if args == ("stuck",) else 1)]
        if args == ("stuck",):
            lines.remove("blocking\n")
        children = {int(pid) for pid in lines[0].split()}
    except BaseException:
        parent.kill()
        parent.wait()
        raise
    assert len(children) == 2 and all(alive(pid) for pid in children)
    return parent, children


@pytest.mark.parametrize("how", ["idle", "stuck"])
def test_a_parent_killed_with_sigkill_leaves_no_orphans(tmp_path, how):
    # "stuck": one child's runtime is blocked by its action, so only its watchdog
    # thread can notice that the parent has gone.
    parent, children = start_parent(tmp_path, how)
    everything = descendants(parent.pid)  # the children, the fork server, ...
    assert children <= everything
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait(10)
    parent.stdout.close()
    assert wait_until_gone(everything) == set()


def test_ctrl_c_in_the_parent_destroys_the_space_and_children_ignore_it(tmp_path):
    parent, children = start_parent(tmp_path)
    everything = descendants(parent.pid)
    # A terminal's Ctrl-C: SIGINT to the whole process group. The children ignore it;
    # the parent's KeyboardInterrupt leaves the `with`, which removes them properly.
    os.killpg(parent.pid, signal.SIGINT)
    out, _ = parent.communicate(timeout=30)
    lines = out.decode().splitlines()
    assert sorted(line.split()[1] for line in lines if line.startswith("before_remove")) == \
        ["a", "b"]
    assert {int(line.split()[2]) for line in lines if line.startswith("before_remove")} == \
        children
    removed = [i for i, line in enumerate(lines) if line.startswith("before_remove")]
    assert lines.index("destroying") < min(removed)  # not killed by the SIGINT itself
    assert "destroyed" not in lines  # the KeyboardInterrupt went on up after destroy
    assert parent.returncode != 0
    assert wait_until_gone(everything) == set()
