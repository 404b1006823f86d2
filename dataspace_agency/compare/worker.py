"""Run ONE repetition of one workload on one backend, in this (fresh) process, and print
the result as one JSON line.

    python -m dataspace_agency.compare.worker --backend queue --workload round_trip \\
        --params '{"count": 100, "warm_up": 10, "async_count": 100}'

The line starts with :data:`MARK` (so that anything else a backend prints is never taken
for the result) and holds ``{"ok", "figures", "samples", "outcome", "error",
"wall_s", "memory_end"}``. A workload that fails gives ``ok: false`` and the error, and
exit status 1. For agency's backends this process becomes
``reference/agency_reference.py`` (by ``exec``), a script outside the package that imports
nothing from it, so that agency's own processes stay as lean as agency makes them.

The process ends with ``os._exit`` once the result is printed: a backend that left a
thread behind (agency's pools after a SIGKILL) must not hold the run up.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback

MARK = "@@dsa-compare-result "


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", required=True)
    parser.add_argument("--workload", required=True)
    parser.add_argument("--params", default="{}", help="the workload's parameters, JSON")
    parser.add_argument("--amqp-url", default=None)
    parser.add_argument("--namespace", default=f"dsa-compare-{os.getpid()}")
    return parser.parse_args(argv)


def emit(result: dict) -> None:
    sys.stdout.write(MARK + json.dumps(result) + "\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    from . import backends
    try:
        backend = backends.get(args.backend)
        params = json.loads(args.params)
        if not isinstance(params, dict):
            raise ValueError("--params must be a JSON object")
    except ValueError as exc:
        emit({"ok": False, "error": f"{type(exc).__name__}: {exc}"})
        os._exit(2)
    if backend.reference:
        argv = [sys.executable, str(backends.REFERENCE_SCRIPT), "--workload", args.workload,
                "--params", json.dumps(params),
                "--space", "amqp" if backend.needs_broker else "local",
                "--namespace", args.namespace]
        if backend.stub_logging:
            argv.append("--stub-logging")
        if args.amqp_url:
            argv += ["--amqp-url", args.amqp_url]
        sys.stdout.flush()
        os.execv(sys.executable, argv)
    emit(run_one(backend, args.workload, params,
                 backends.Options(amqp_url=args.amqp_url, namespace=args.namespace)))
    sys.stderr.flush()
    os._exit(0)


def run_one(backend, workload_name: str, params: dict, options) -> dict:
    """Run the workload here and return the result dict (never raises for a workload's
    own failure: that is reported as ``ok: false``)."""
    from . import workloads
    from .memory import tree_memory
    started = time.perf_counter()
    try:
        workload = workloads.get(workload_name)
        reason = workload.supports(backend) or backend.unavailable(options)
        if reason:
            return {"ok": False, "skipped": True, "error": reason}
        outcome = workload.run(workloads.Context(backend, options), params)
    except Exception as exc:  # noqa: BLE001 - reported as data, the run goes on
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc(limit=8),
                "wall_s": time.perf_counter() - started}
    return {"ok": True, **outcome, "wall_s": time.perf_counter() - started,
            "memory_end": tree_memory()}


if __name__ == "__main__":
    main()
