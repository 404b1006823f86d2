"""The no-leak check (tests/leaks.py, run after every module by conftest.py) can fail: it
names a thread, a child process, a space, a server and a runtime deliberately left open,
and finds nothing once they have been cleaned up."""

from __future__ import annotations

import subprocess
import sys
import threading

import trio

import leaks
from dataspace_agency import Agent, DataspaceSpace, QueueSpace, action
from dataspace_agency.protocol.server import open_server
from dataspace_agency.runtime import BackgroundRuntime

# Short: the leaked things below never end by themselves, so the grace is only waited out.
GRACE = 0.2


class Keeper(Agent):
    @action
    def ping(self) -> str:
        return "pong"


def test_a_leaked_thread_is_named():
    baseline = leaks.take_baseline()
    release = threading.Event()
    thread = threading.Thread(target=release.wait, name="deliberately-leaked", daemon=True)
    thread.start()
    try:
        found = leaks.find_leaks(baseline, grace=GRACE)
        assert len(found) == 1, found
        assert "thread 'deliberately-leaked'" in found[0]
        assert "still running" in found[0]
    finally:
        release.set()
        thread.join(5)
    assert leaks.find_leaks(baseline, grace=GRACE) == []


def test_a_thread_that_ends_within_the_grace_is_not_a_leak():
    baseline = leaks.take_baseline()
    release = threading.Event()
    thread = threading.Thread(target=release.wait, name="ending-soon", daemon=True)
    thread.start()
    # Released only once the check has seen it and is waiting for it to end.
    timer = threading.Timer(0.05, release.set)
    timer.start()
    try:
        assert leaks.find_leaks(baseline, grace=10.0) == []
        assert not thread.is_alive()
    finally:
        release.set()
        timer.join(5)
        thread.join(5)


def test_a_leaked_child_process_is_named_with_its_command_line():
    baseline = leaks.take_baseline()
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()",
                              "leaked-child-marker"], stdin=subprocess.PIPE)
    try:
        found = leaks.find_leaks(baseline, grace=GRACE)
        assert len(found) == 1, found
        assert f"child process {child.pid}" in found[0]
        assert "leaked-child-marker" in found[0]
        # The caller can leave out processes (the session's broker) by pid.
        assert leaks.find_leaks(baseline, grace=GRACE, exclude_pids=lambda: {child.pid}) == []
    finally:
        child.stdin.close()  # end of input: the child exits
        child.wait(10)
    assert leaks.find_leaks(baseline, grace=GRACE) == []


def test_a_space_left_open_is_named_with_its_agents_and_facts():
    baseline = leaks.take_baseline()
    space = DataspaceSpace()
    try:
        space.add(Keeper, "keeper")
        facts = space.fact_count()
        assert facts > 0
        found = leaks.find_leaks(baseline, grace=GRACE)
        text = "\n".join(found)
        assert "space DataspaceSpace opened at tests/runtime/test_no_leaks.py:" in text
        assert f"1 agent(s) ['keeper'], {facts} fact(s)" in text
        # Its runtime and the runtime's thread are open too, and named.
        assert "runtime opened at" in text and "'keeper'" in text and "drain_forever" in text
        assert "thread 'dataspace-space-assertion'" in text
    finally:
        space.destroy()
    assert leaks.find_leaks(baseline, grace=GRACE) == []


def test_a_background_runtime_left_open_is_named_with_its_tasks():
    baseline = leaks.take_baseline()
    runtime = BackgroundRuntime(name="leaky-runtime")
    try:
        def start(rt) -> None:
            rt.system.nursery.start_soon(trio.sleep_forever, name="a_task_left_running")
        runtime.call(start)
        text = "\n".join(leaks.find_leaks(baseline, grace=GRACE))
        assert "runtime opened at" in text and "(thread 'leaky-runtime')" in text
        assert "a_task_left_running" in text
        assert "thread 'leaky-runtime'" in text
    finally:
        runtime.close()
    assert leaks.find_leaks(baseline, grace=GRACE) == []


async def test_a_server_still_serving_is_named_with_its_facts():
    baseline = leaks.take_baseline()
    async with open_server() as server:
        text = "\n".join(leaks.find_leaks(baseline, grace=GRACE))
        assert f"is still serving on {server.tcp_address_text}" in text
        assert "0 connection(s)" in text
        assert "runtime opened at" in text  # the server's own runtime
    assert leaks.find_leaks(baseline, grace=GRACE) == []


def test_the_check_raises_a_leak_error_listing_each_leak():
    baseline = leaks.take_baseline()
    release = threading.Event()
    thread = threading.Thread(target=release.wait, name="leaked-for-the-error", daemon=True)
    thread.start()
    try:
        try:
            leaks.check_no_leaks(baseline, grace=GRACE)
        except leaks.LeakError as exc:
            assert str(exc).startswith("1 leak(s) left over:\n  - thread 'leaked-for-the-error'")
        else:
            raise AssertionError("check_no_leaks did not raise")
    finally:
        release.set()
        thread.join(5)
    leaks.check_no_leaks(baseline, grace=GRACE)


async def test_a_cancelled_areceive_leaves_no_thread_and_takes_nothing():
    # A leak the check found (tests/classic/test_interactive.py): areceive's helper thread used to
    # outlive a cancelled await, then swallow the next message meant for receive().
    with QueueSpace() as space:
        me, other = space.connect("me"), space.connect("other")
        baseline = leaks.take_baseline()
        with trio.move_on_after(0.1):
            await me.areceive()  # nothing arrives; cancelled
        assert leaks.find_leaks(baseline) == []  # its thread ended (within the grace)
        other.send("me", "note", args={"text": "after the cancel"})
        got = await trio.to_thread.run_sync(me.receive, 5.0)
        assert got["action"] == {"name": "note", "args": {"text": "after the cancel"}}
