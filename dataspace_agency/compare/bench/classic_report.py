"""The report of the classic agents benchmark (``bench/classic.py``): its goals, and
the tables and goal lines printed from the figures a run returns."""

from __future__ import annotations

from typing import Callable

from rich.console import Console
from rich.table import Table

from . import common
from ..machine import summary

GOAL_ROUND_TRIP_US = 100.0  # median agent-to-agent request() round trip, async to async
GOAL_MESSAGES = 50_000.0  # one-way messages per second, received
GOAL_ADD_MS = 1.0  # per space.add()
GOAL_IDLE_KB = 20.0  # memory per idle agent
AGENCY_ROUND_TRIP_MS = 103  # agency 1.6.3, for comparison
AGENCY_MESSAGES = 539

ROUND_TRIPS = (
    ("agent_async", "agent → async action (no thread hop)"),
    ("agent_thread", "agent → plain-function action (worker thread)"),
    ("sync_async", "sync caller → async action"),
    ("sync_thread", "sync caller → plain-function action"),
)


def _table(title: str, columns: list[str], caption: str | None = None) -> Table:
    """A report table: the first column and the ones named in ``_TEXT`` left-aligned,
    goal columns centred, the figures right-aligned."""
    table = Table(title=title, caption=caption)
    for i, name in enumerate(columns):
        justify = ("left" if i == 0 or name in _TEXT else
                   "center" if name.startswith("goal") else "right")
        table.add_column(name, justify=justify)
    return table


_TEXT = {"request() raised"}  # columns of words, not figures


def _by_mode(figures: dict, goal: str, describe: Callable[[dict], str]) -> str:
    return ", ".join(f"{mode} {describe(f)} {common.mark(figures['goals'][goal][mode])}"
                     for mode, f in figures["modes"].items())


def report(figures: dict, console: Console) -> None:
    """Print ``figures`` (from :func:`run`) as tables and goal lines."""
    m, modes, sizes = figures["machine"], figures["modes"], figures["sizes"]
    console.print(f"[bold]Classic agents benchmark[/] ({figures['mode']} run):"
                  " DataspaceSpace, assertion and message modes")
    console.print(f"machine: {summary(m)}")

    # 1. round trips
    table = Table(title="request() round trip (µs per call; "
                        f"{sizes['round_trips']:,} timed calls each, after "
                        f"{sizes['warm_up']:,} untimed)")
    table.add_column("caller → action")
    for mode in modes:
        table.add_column(f"{mode}\nmedian µs", justify="right")
        table.add_column(f"{mode}\np99 µs", justify="right")
    table.add_column(f"goal median ≤ {GOAL_ROUND_TRIP_US:g} µs\n"
                     + " / ".join(modes), justify="center")
    for key, label in ROUND_TRIPS:
        cells = []
        for f in modes.values():
            rt = f["round_trips"][key]
            cells += [f"{rt['median_us']:,.1f}", f"{rt['p99_us']:,.1f}"]
        goal = (" / ".join(common.mark(ok) for ok in figures["goals"]["round_trip"].values())
                if key == "agent_async" else "")
        table.add_row(label, *cells, goal)
    table.caption = ("agent → agent: an async action on A loops 'await self.arequest(...)'"
                     "\nsync caller: a foreground agent's me.request(...) on the main thread")
    console.print(table)
    console.print(
        f"goal: agent → agent round trip median ≤ "
        f"{GOAL_ROUND_TRIP_US:g} µs (agency 1.6.3: {AGENCY_ROUND_TRIP_MS} ms): "
        + _by_mode(figures, "round_trip",
                   lambda f: f"{f['round_trips']['agent_async']['median_us']:,.1f} µs"))

    # 2. one-way messages
    any_f = next(iter(modes.values()))["messages"]
    table = _table(f"One-way messages: A's async action calls self.send(...) "
                   f"{any_f['messages']:,} times, B's async action counts",
                   ["mode", "messages", "s to last\nreceipt", "received/s",
                    f"goal\n≥ {GOAL_MESSAGES:,.0f}/s", "s to last\nreply", "replied/s",
                    "s sending"],
                   caption=(f"the sender yields every {sizes['batch']:,} sends; median of "
                            f"{any_f['runs']} run(s)\neach send is answered: the replies go "
                            "to A's handle_action_value (worker thread)"))
    for mode, f in modes.items():
        msg = f["messages"]
        table.add_row(mode, f"{msg['messages']:,}", f"{msg['receive_s']:.3f}",
                      f"{msg['received_per_s']:,.0f}",
                      common.mark(figures["goals"]["messages"][mode]), f"{msg['reply_s']:.3f}",
                      f"{msg['replied_per_s']:,.0f}", f"{msg['send_s']:.3f}")
    console.print(table)
    console.print(f"goal: one-way messages received per second ≥ {GOAL_MESSAGES:,.0f} "
                  f"(agency 1.6.3: {AGENCY_MESSAGES:,}): "
                  + _by_mode(figures, "messages",
                             lambda f: f"{f['messages']['received_per_s']:,.0f}/s"))
    errors = {mode: f["messages"]["errors"] for mode, f in modes.items()
              if f["messages"]["errors"]}
    if errors:
        console.print(f"[red]error answers to sends:[/] {errors}")

    # 3. adding agents
    table = _table("Adding idle agents with space.add(...) (fresh process per mode)",
                   ["mode", "agents", "ms per add", "ms per add,\nlast 10%",
                    f"goal\n≤ {GOAL_ADD_MS:g} ms", "KB per\nidle agent",
                    f"goal\n≤ {GOAL_IDLE_KB:g} KB", "facts in the\ndataspace",
                    "ms per\nremove"],
                   caption="memory: RSS delta / agents, gc.collect() before each reading;"
                           " remove: space.destroy() / agents")
    for mode, f in modes.items():
        a = f["adding"]
        table.add_row(mode, f"{a['agents']:,}", f"{a['add_ms']:.3f}", f"{a['add_tail_ms']:.3f}",
                      common.mark(figures["goals"]["add"][mode]), f"{a['idle_kb']:,.2f}",
                      common.mark(figures["goals"]["idle_memory"][mode]), f"{a['facts']:,}",
                      f"{a['remove_ms']:.3f}")
    console.print(table)
    console.print(f"goal: time per space.add() ≤ {GOAL_ADD_MS:g} ms: "
                  + _by_mode(figures, "add", lambda f: f"{f['adding']['add_ms']:.3f} ms"))
    console.print(f"goal: memory per idle agent ≤ {GOAL_IDLE_KB:g} KB: "
                  + _by_mode(figures, "idle_memory",
                             lambda f: f"{f['adding']['idle_kb']:,.2f} KB"))

    # 4. failure detection
    table = _table("Failure detection: the responder is removed while its action runs",
                   ["mode", "request timeout", "request() raised",
                    "ms after remove\n(median)", "ms after remove\n(max)",
                    "ms after request\n(median)", "removals"],
                   caption="time from space.remove() until the requester's request() raises")
    for mode, f in modes.items():
        fd = f["failure"]
        table.add_row(mode, f"{fd['timeout_s']:g} s", ", ".join(fd["raised"]),
                      f"{fd['median_ms']:,.2f}", f"{fd['max_ms']:,.2f}",
                      f"{fd['after_request_ms']:,.1f}", f"{fd['repeats']}")
    console.print(table)
    for mode, f in modes.items():
        fd = f["failure"]
        if mode == "assertion":
            console.print(f"failure detection, assertion mode: {', '.join(fd['raised'])} "
                          f"{fd['median_ms']:,.2f} ms after remove() (median of "
                          f"{fd['repeats']}; timeout {fd['timeout_s']:g} s never needed)")
        else:
            console.print(f"failure detection, message mode: timeout — "
                          f"{', '.join(fd['raised'])} only at the request timeout "
                          f"({fd['timeout_s']:g} s here), {fd['after_request_ms']:,.1f} ms"
                          " after the request")
    console.print(f"total benchmark time: {figures['seconds']:.1f} s")


# --- command line ----------------------------------------------------------------------------
