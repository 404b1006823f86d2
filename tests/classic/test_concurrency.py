"""Where classic actions run and how many at once: per-agent bounds, no shared pool,
worker threads for plain actions, the runtime for async ones, and use from trio code."""

from __future__ import annotations

import threading

import pytest
import trio

from dataspace_agency import Agent, DataspaceSpace, QueueSpace, action

WAIT = 10


@pytest.fixture(params=["dataspace-assertion", "dataspace-message", "queue"])
def space(request):
    kind = request.param
    made = QueueSpace() if kind == "queue" else DataspaceSpace(mode=kind.split("-")[1])
    with made as space:
        yield space


def ask(name: str, to: str = "worker", **args) -> dict:
    return {"to": to, "action": {"name": name, "args": args}}


class Meeting(Agent):
    """Its action waits until ``size`` invocations are inside it at the same time."""

    def __init__(self, id, barrier: threading.Barrier, **kwargs):
        super().__init__(id, **kwargs)
        self.barrier = barrier

    @action
    def meet(self) -> int:
        return self.barrier.wait()


def test_max_concurrency_lets_that_many_actions_run_at_once(space):
    barrier = threading.Barrier(3, timeout=WAIT)
    space.add(Meeting, "worker", barrier=barrier, max_concurrency=3)
    client = space.add_foreground(Agent, "client", max_concurrency=3)
    results = []
    callers = [threading.Thread(target=lambda: results.append(
        client.request(ask("meet"), timeout=WAIT))) for _ in range(3)]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join()
    assert sorted(results) == [0, 1, 2]  # all three met inside the action


class Counting(Agent):
    """Records how many of its actions run at once."""

    def __init__(self, id, **kwargs):
        super().__init__(id, **kwargs)
        self.lock = threading.Lock()
        self.running = self.most = 0
        self.order: list[int] = []

    @action
    def work(self, n: int) -> int:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        self.order.append(n)
        with self.lock:
            self.running -= 1
        return n


def test_one_slot_means_one_at_a_time_in_arrival_order(space):
    worker = space.add_foreground(Counting, "worker")  # max_concurrency=1
    client = space.add_foreground(Agent, "client")
    for n in range(30):
        client.send(ask("work", n=n))
    assert client.request(ask("work", n=30), timeout=WAIT) == 30  # after the 30 sends
    assert worker.order == list(range(31))
    assert worker.most == 1


def test_no_shared_pool_fifty_blocked_actions_all_run(space):
    # agency shares one small pool between agents; trio's default thread limiter is 40.
    # Fifty agents each blocked inside an action at the same time must all be running.
    barrier = threading.Barrier(51, timeout=WAIT)
    for i in range(50):
        space.add(Meeting, f"m{i}", barrier=barrier)
    client = space.add_foreground(Agent, "client")
    for i in range(50):
        client.send(ask("meet", to=f"m{i}"))
    barrier.wait()  # returns only once all fifty actions are inside meet()


class Where(Agent):
    @action
    def plain(self) -> str:
        return threading.current_thread().name

    @action
    async def asynchronous(self) -> str:
        return threading.current_thread().name


def test_plain_actions_run_on_worker_threads_async_ones_on_the_runtime(space):
    space.add(Where, "worker")
    client = space.add_foreground(Agent, "client")
    runtime_thread = space._background.thread.name
    assert client.request(ask("plain"), timeout=WAIT) != runtime_thread
    assert client.request(ask("asynchronous"), timeout=WAIT) == runtime_thread


class Noting(Agent):
    """Its async action notes, in a log shared between agents, which agent ran which
    message, and answers with the sender of the message it is handling; ``filled`` is
    set once the log holds ``expected`` entries."""

    def __init__(self, id, log, expected=0, filled=None, **kwargs):
        super().__init__(id, **kwargs)
        self.log, self.expected, self.filled = log, expected, filled

    @action
    async def note(self, n: int) -> str:
        self.log.append((self.id, n))
        if self.filled is not None and len(self.log) == self.expected:
            self.filled.set()
        return self.current_message()["from"]


class Starter(Agent):
    """Sends a burst of ``note``s to "busy", then one to "other", in one action."""

    @action
    async def go(self, count: int) -> None:
        for n in range(count):
            await self.asend(ask("note", to="busy", n=n))
        await self.asend(ask("note", to="other", n=0))


def test_a_stream_of_async_actions_runs_in_order_each_with_its_own_message(space):
    # An agent's async actions that wait their turn run one after the other in one
    # task (classic/running.py): each must still see its own message and answer its
    # own sender, each sender's in the order sent.
    log: list = []
    space.add(Noting, "busy", log=log)  # max_concurrency=1
    clients = [space.connect(f"c{i}") for i in range(2)]
    for n in range(60):
        clients[n % 2].send("busy", "note", n=n)
    for i, client in enumerate(clients):
        answers = [client.receive(timeout=WAIT) for _ in range(30)]
        assert [a["action"]["args"]["value"] for a in answers] == [f"c{i}"] * 30
    assert sorted(log) == [("busy", n) for n in range(60)]
    assert [n for _, n in log if n % 2 == 0] == list(range(0, 60, 2))
    assert [n for _, n in log if n % 2 == 1] == list(range(1, 60, 2))


def test_a_stream_of_async_actions_to_one_agent_does_not_hold_up_the_others(space):
    # "busy" has 200 async actions waiting and "other" one, all ready in the same
    # round of the runtime. One task runs at most 16 of an agent's actions in a row
    # (classic/running.py, _ACTIONS_PER_TASK): "other" must not wait for all 200.
    # (Trio may run the two agents' first tasks in either order: three tries.)
    for attempt in range(3):
        log: list = []
        filled = threading.Event()
        for id in ("busy", "other"):
            space.add(Noting, id, log=log, expected=201, filled=filled)
        space.add(Starter, "starter")
        me = space.connect("me")
        me.request("starter", "go", count=200, timeout=WAIT)
        assert filled.wait(WAIT)
        assert log.index(("other", 0)) <= 16
        me.close()
        for id in ("busy", "other", "starter"):
            space.remove(id)


class Echo(Agent):
    @action
    async def echo(self, text: str) -> str:
        return text


async def test_a_space_used_from_trio_code():
    # The space's runtime is on its own thread, so a trio program can use it: blocking
    # calls from a worker thread, or arequest from this (foreign) trio loop.
    with DataspaceSpace(mode="assertion") as space:
        space.add(Echo, "echo")
        me = space.add_foreground(Agent, "me")
        assert await trio.to_thread.run_sync(
            lambda: me.request(ask("echo", to="echo", text="blocking"))) == "blocking"
        assert await me.arequest(ask("echo", to="echo", text="awaited")) == "awaited"
