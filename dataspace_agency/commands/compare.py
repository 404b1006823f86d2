"""``dataspace-agency compare``: the same classic agents and workloads on every backend,
agency 1.6.3 itself as the reference, written to results.json, report.md and PNG plots.

  --quick (the default)  in-process backends and agency's LocalSpace, under 3 minutes
  --full                 adds MultiprocessQueueSpace, RabbitMQ (when a broker is
                         reachable or started), agency's AMQPSpace, bigger sizes

Each repetition of each workload on each backend runs in a fresh process. See
docs/compare.md for what every workload measures and how to read the report.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

NAME = "compare"
HELP = "compare the dataspace with queue backends and agency 1.6.3 (tables and plots)"


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", dest="profile", action="store_const", const="quick",
                      help="in-process backends and agency LocalSpace, under 3 minutes"
                           " (the default)")
    size.add_argument("--full", dest="profile", action="store_const", const="full",
                      help="every backend and the bigger sizes (about 25 minutes)")
    size.add_argument("--tiny", dest="profile", action="store_const", const="tiny",
                      help=argparse.SUPPRESS)  # tests: everything runs, figures meaningless
    parser.set_defaults(profile="quick")
    parser.add_argument("--backends", type=_names, default=None, metavar="A,B,...",
                        help="backends to run (default: the profile's); see docs/compare.md")
    parser.add_argument("--workloads", type=_names, default=None, metavar="A,B,...",
                        help="workloads to run (default: all but the applications,"
                             " which --full adds): round_trip, throughput, broadcast,"
                             " scale, failure, late_join, state; tasks, churn, cancel")
    parser.add_argument("--repeat", type=int, default=None, metavar="N",
                        help="repetitions of each run (default: 2 quick, 3 full)")
    parser.add_argument("--out", type=Path, default=Path("compare-results"),
                        help="directory for results.json, report.md and the plots"
                             " (default: ./compare-results)")
    parser.add_argument("--amqp-url", default=None,
                        help="a RabbitMQ broker for the AMQP backends (default:"
                             " $DATASPACE_AGENCY_AMQP_URL)")
    parser.add_argument("--rabbitmq", choices=("start",), default=None,
                        help="start a private RabbitMQ broker for the run (needs Debian's"
                             " rabbitmq-server)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    import json

    from rich.console import Console

    from ..compare import backends, plots, report, runner
    console = Console(stderr=True)
    amqp_url = args.amqp_url or backends.amqp_url_from_env()
    broker = None
    broker_info = None
    if args.rabbitmq == "start" and not amqp_url:
        from ..compare.rabbitmq import RabbitMQBroker, rabbitmq_installed
        if not rabbitmq_installed():
            console.print("[red]--rabbitmq start: rabbitmq-server is not installed"
                          " (apt-get install rabbitmq-server)")
            return 2
        console.print("starting a private RabbitMQ broker ...")
        broker = RabbitMQBroker()
        try:
            amqp_url = broker.start()
        except Exception as exc:  # noqa: BLE001 - said clearly, then stop
            broker.cleanup()
            console.print(f"[red]could not start RabbitMQ: {exc}")
            return 1
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
            console.print(f"[red]{exc}")
            return 2
        for name, reason in the_plan.skipped.items():
            console.print(f"[yellow]skipping {name}: {reason}")
        if not the_plan.runs:
            console.print("[red]nothing to run")
            return 2
        console.print(f"{len(the_plan.runs)} runs: {len(the_plan.workloads)} workloads on"
                      f" {', '.join(b.name for b in the_plan.backends)},"
                      f" {the_plan.repeat} repetition(s), profile {the_plan.profile}")
        document = runner.execute(the_plan, command=["dataspace-agency", *sys.argv[1:]]
                                  if sys.argv and sys.argv[0].endswith("dataspace-agency")
                                  else sys.argv, progress=not args.no_progress,
                                  broker=broker_info)
        if broker is not None and broker.broker_pid:
            from ..compare.memory import tree_memory
            broker_info.update(tree_memory(broker.broker_pid))
    finally:
        if broker is not None:
            broker.cleanup()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(document, indent=1))
    written = plots.write_plots(document, out)
    (out / "report.md").write_text(report.render(document, written))
    failed = [r for r in document["runs"] if not r.get("ok")]
    for row in report.headline(report.aggregate(document)):
        console.print(f"{'[green]✓' if row['met'] else '[red]✗'}[/] {row['goal']}:"
                      f" {row['measured']}")
    console.print(f"wrote {out / 'results.json'}, {out / 'report.md'} and"
                  f" {len(written)} plots; {len(document['runs']) - len(failed)} of"
                  f" {len(document['runs'])} runs ok in {document['duration_s']:.0f} s")
    for run in failed:
        console.print(f"[yellow]failed: {run['workload']} on {run['backend']}:"
                      f" {run.get('error')}")
    return 1 if failed else 0
