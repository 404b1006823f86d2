"""``dataspace-agency compare``: the same classic agents and workloads on every backend,
agency 1.6.3 itself as the reference, written to results.json, report.md and PNG plots;
at the end, what the run found (what the dataspace buys, what it costs, each with its
figure and ratio).

Each repetition of each workload on each backend runs in a fresh process. Ctrl-C stops
the run and writes what finished, marked partial. See docs/compare.md for what every
workload measures and how to read the report.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

NAME = "compare"
HELP = "compare the dataspace with queue backends and agency 1.6.3 (tables and plots)"
INTERRUPTED = "interrupted (Ctrl-C)"


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", dest="profile", action="store_const", const="quick",
                      help="in-process backends and agency LocalSpace, under 3 minutes"
                           " (the default)")
    size.add_argument("--full", dest="profile", action="store_const", const="full",
                      help="adds MultiprocessQueueSpace, the remote dataspaces, RabbitMQ"
                           " (when a broker is reachable or started) and agency's"
                           " AMQPSpace, with bigger sizes (about 25 minutes)")
    size.add_argument("--tiny", dest="profile", action="store_const", const="tiny",
                      help=argparse.SUPPRESS)  # tests: everything runs, figures meaningless
    parser.set_defaults(profile="quick")
    from ..compare.backends import BACKENDS  # a light module: names only, no spaces
    parser.add_argument("--backends", type=_names, default=None, metavar="A,B,...",
                        help="backends to run (default: the profile's): "
                             + ", ".join(BACKENDS) + "; see docs/compare.md")
    parser.add_argument("--workloads", type=_names, default=None, metavar="A,B,...",
                        help="workloads to run (default: all but the applications,"
                             " which --full adds): round_trip, throughput, broadcast,"
                             " scale, failure, late_join, state; tasks, churn, cancel")
    parser.add_argument("--repeat", type=int, default=None, metavar="N",
                        help="repetitions of each run (default: 2 quick, 3 full)")
    parser.add_argument("--out", type=Path, default=Path("compare-results"), metavar="DIR",
                        help="directory for results.json, report.md and the plots"
                             " (default: ./compare-results; created if missing, checked"
                             " before anything runs)")
    parser.add_argument("--amqp-url", default=None,
                        help="a RabbitMQ broker for the AMQP backends (default:"
                             " $DATASPACE_AGENCY_AMQP_URL)")
    parser.add_argument("--rabbitmq", choices=("start",), default=None,
                        help="start a private RabbitMQ broker for the run (needs Debian's"
                             " rabbitmq-server)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def check_out(out: Path) -> None:
    """Make sure the results can be written to ``out`` before anything runs: a directory,
    created if missing, that we may write to."""
    from .failures import CommandFailed
    if out.exists() and not out.is_dir():
        raise CommandFailed(f"--out {out}: exists and is not a directory (name a directory;"
                            " it is created if missing)", 2)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CommandFailed(f"--out {out}: cannot create it: {exc.strerror or exc}", 2) \
            from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise CommandFailed(f"--out {out}: not writable", 2)


def run(args: argparse.Namespace) -> int:
    import json

    from rich.console import Console

    from ..compare import backends, plots, report, runner
    from .failures import EXIT_INTERRUPTED, CommandFailed
    # soft_wrap: lines as long as they are (a terminal wraps them; a log keeps them whole).
    console = Console(stderr=True, soft_wrap=True)
    amqp_url = args.amqp_url or backends.amqp_url_from_env()
    try:  # names and --repeat first, then the output location: both before any run
        runner.plan(args.profile, args.backends, args.workloads, args.repeat,
                    backends.Options(amqp_url=amqp_url))
    except ValueError as exc:
        raise CommandFailed(str(exc), 2) from None
    check_out(args.out)
    broker = None
    broker_info = None
    if args.rabbitmq == "start" and not amqp_url:
        from ..compare.rabbitmq import RabbitMQBroker, rabbitmq_installed
        if not rabbitmq_installed():
            raise CommandFailed("--rabbitmq start: rabbitmq-server is not installed"
                                " (apt-get install rabbitmq-server)", 2)
        console.print("starting a private RabbitMQ broker ...")
        broker = RabbitMQBroker()
        try:
            amqp_url = broker.start()
        except Exception as exc:  # noqa: BLE001 - said clearly, then stop
            broker.cleanup()
            raise CommandFailed(f"could not start RabbitMQ: {exc}") from None
        broker_info = {"source": "private broker started with --rabbitmq start"}
    elif amqp_url:
        broker_info = {"source": "external broker (--amqp-url or"
                                 f" ${backends.AMQP_URL_ENV})"}
    try:
        options = backends.Options(amqp_url=amqp_url)
        try:
            the_plan = runner.plan(args.profile, args.backends, args.workloads,
                                   args.repeat, options)
        except ValueError as exc:
            raise CommandFailed(str(exc), 2) from None
        for name, reason in the_plan.skipped.items():
            console.print(f"[yellow]skipping {name}: {reason}")
        if not the_plan.runs:
            raise CommandFailed("nothing to run", 2)
        console.print(f"{len(the_plan.runs)} runs: {len(the_plan.workloads)} workloads on"
                      f" {', '.join(b.name for b in the_plan.backends)},"
                      f" {the_plan.repeat} repetition(s), profile {the_plan.profile}")
        # Live bars on a terminal; elsewhere (a log, a pipe) a line per finished run.
        bars = not args.no_progress and console.is_terminal
        document = runner.execute(the_plan, command=["dataspace-agency", *sys.argv[1:]]
                                  if sys.argv and sys.argv[0].endswith("dataspace-agency")
                                  else sys.argv, progress=bars, broker=broker_info,
                                  on_result=None if bars else _run_line(console))
        if broker is not None and broker.broker_pid:
            from ..compare.memory import tree_memory
            broker_info.update(tree_memory(broker.broker_pid))
    finally:
        if broker is not None:
            broker.cleanup()
    out: Path = args.out
    (out / "results.json").write_text(json.dumps(document, indent=1))
    written = plots.write_plots(document, out)
    (out / "report.md").write_text(report.render(document, written))
    summarise(console, document)
    failed = [r for r in document["runs"] if not r.get("ok")]
    console.print(f"wrote {out / 'results.json'}, {out / 'report.md'} and"
                  f" {len(written)} plots; {len(document['runs']) - len(failed)} of"
                  f" {len(document['runs'])} runs ok in {document['duration_s']:.0f} s")
    for failure in failed:
        console.print(f"[yellow]failed: {failure['workload']} on {failure['backend']}:"
                      f" {failure.get('error')}")
    partial = document.get("partial")
    if partial:
        console.print(f"dataspace-agency compare: {partial['reason']} after"
                      f" {partial['finished']} of {partial['planned']} runs; the finished"
                      f" runs are written, marked partial")
        return EXIT_INTERRUPTED
    return 1 if failed else 0


def _run_line(console):
    def line(index: int, total: int, run: dict, result: dict) -> None:
        state = "ok" if result.get("ok") else f"failed: {result.get('error')}"
        console.print(f"[{index + 1}/{total}] {run['workload']} on {run['backend']}"
                      f" (repetition {run['repetition'] + 1}): {state}", highlight=False)
    return line


def summarise(console, document: dict) -> None:
    """What the run found, then the goals with where they come from (findings.py)."""
    from ..compare.figures import aggregate
    from ..compare.findings import GOALS_SHORT, findings, goals
    groups = aggregate(document)
    found = findings(groups, document)
    for key, title in (("buys", "What the dataspace buys"),
                       ("costs", "What it costs (against our QueueSpace, same work)"),
                       ("reference", "Against agency 1.6.3 as shipped (same work)")):
        if found[key]:
            console.print(f"[bold]{title}:")
            for finding in found[key]:
                console.print(f"  * {finding.text}", highlight=False)
    rows = goals(groups)
    if rows:
        console.print(f"[bold]Goals[/bold] ({GOALS_SHORT}; report.md says more):",
                      highlight=False)
        for row in rows:
            console.print(f"  {'met' if row['met'] else 'not met'}: {row['goal']}:"
                          f" {row['measured']}", highlight=False)
