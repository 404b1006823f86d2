"""A long fuzzing campaign: the wire decoder, the server, the classic mapping and validator.

    .venv/bin/python benchmarks/fuzz_campaign.py --seconds 600 [--target decoder|server|classic|all]
                                                 [--seed N] [--hang-seconds S]

The generators are the CI fuzz tests' (``tests/fuzz_strategies.py``; the server harness is
``tests/fuzz_server.py``): this script puts ``tests/`` on its path rather than moving them
into the package, because they are test code and the tests must not depend on
``benchmarks/``. The time is shared equally between the targets; each runs hypothesis in
rounds of 200 cases (generation only, no shrinking: a failure is recorded, not raised).

* decoder: bytes into a ``PacketReader`` whole and cut in random pieces: values or a
  ``ProtocolError``, the same either way; what it accepts preserves reads the same.
* server: a server process, a good client connected all along; each case a fresh
  connection (half after the gatekeeper handshake). Bad input must get an Error packet
  (the codec is the oracle), the connection must close within ``--hang-seconds``, the
  server must live; the good client does a round trip after every 20 cases.
* classic: JSON round trips (identity; fast and careful walks agree), one planted non-JSON
  part (NotJSON naming its path), messages with a wrong field (MessageError naming it).

Reports, per target, cases tried and distinct failures by kind (crash: an exception other
than the expected one; hang; server died; good client affected; property: an answer that
breaks a property) and exits 1 if there was any.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from collections import Counter
from typing import Any, Callable

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

import preserves  # noqa: E402
from hypothesis import HealthCheck, Phase, given, seed, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.markup import escape  # noqa: E402
from rich.table import Table  # noqa: E402

from dataspace_agency.classic import values  # noqa: E402
from dataspace_agency.classic.message import MessageError, validate_message  # noqa: E402
from dataspace_agency.protocol.codec import ProtocolError, decode  # noqa: E402

import fuzz_strategies as S  # noqa: E402
from fuzz_server import FuzzServer  # noqa: E402

ROUND = 200  # cases per hypothesis run
KINDS = ("crash", "hang", "server died", "good client affected", "property")


class _Hang(BaseException):
    """Raised by the alarm in a case that ran too long (BaseException: not caught as a
    crash of the code under test)."""


class Tally:
    """Cases tried and failures of one target; failures are distinct by (kind, what)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.cases = 0
        self.refused = 0  # server: connections answered with an Error packet
        self.seconds = 0.0
        self.failures: dict[tuple[str, str], tuple[int, bytes | str]] = {}  # -> (count, eg)

    def fail(self, kind: str, what: str, example: Any) -> None:
        key = (kind, what[:160])
        count, eg = self.failures.get(key, (0, example))
        self.failures[key] = (count + 1, eg)

    def by_kind(self) -> Counter:
        return Counter(kind for kind, _ in self.failures)


def _guarded(tally: Tally, hang_seconds: float, case: Callable[[], None], example: Any) -> None:
    """Run one case under an alarm; record a hang or an unexpected exception."""
    tally.cases += 1
    signal.setitimer(signal.ITIMER_REAL, hang_seconds)
    try:
        case()
    except _Hang:
        tally.fail("hang", f"no result within {hang_seconds} s", example)
    except AssertionError as exc:
        tally.fail("property", str(exc) or "assertion", example)
    except Exception as exc:  # noqa: BLE001 - that is what a fuzzer looks for
        tally.fail("crash", f"{type(exc).__name__}: {exc}", example)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


# --- targets ---------------------------------------------------------------------------------

S_MAX_PACKET = 4096


def decoder_case(data: bytes, cuts: list[int]) -> None:
    whole = S.read_in_pieces(data, [], S_MAX_PACKET)
    pieces = S.read_in_pieces(data, cuts, S_MAX_PACKET)
    assert S.same_ending(pieces[1], whole[1]) and pieces[0] == whole[0], (
        f"cut in pieces the reader says {pieces[1]!r}, whole {whole[1]!r}")
    if b"\x86" not in data:
        try:
            ours = decode(data)
        except ProtocolError:
            return
        assert S.comparable(preserves.decode(data)) == S.comparable(ours), (
            "preserves reads it differently")


def classic_case(kind: str, value: Any) -> None:
    if kind == "json":
        p = values.to_preserves(value)
        assert S.json_equal(values.from_preserves(p), value), "round trip changed the value"
        careful = values._run(values._walk_json, value, values._PRESERVES, "value")
        assert preserves.encode(p) == preserves.encode(careful), "fast and careful walks differ"
        assert S.json_equal(values.json_copy(value), value), "json_copy changed the value"
    elif kind == "bad":
        bad_value, path, _ = value
        for convert in (values.to_preserves, values.check_json, values.json_copy):
            try:
                convert(bad_value)
            except values.NotJSON as exc:
                assert str(exc).startswith(f"{path}: "), f"NotJSON names the wrong path: {exc}"
            else:
                raise AssertionError(f"{convert.__name__} accepted a non-JSON value")
    else:  # a message with one wrong field
        field, wrong = value
        where, _, named = S.FIELDS[field]
        message = S.valid_message()
        target = message
        for step in where[:-1]:
            target = target[step]
        target[where[-1]] = wrong
        try:
            validate_message(message)
        except MessageError as exc:
            assert named in str(exc), f"MessageError does not name {named}: {exc}"
        else:
            raise AssertionError(f"a wrong {field} was accepted")


classic_inputs = st.one_of(
    st.tuples(st.just("json"), S.json_values),
    st.tuples(st.just("bad"), S.json_with_one_bad_part()),
    st.sampled_from(sorted(S.FIELDS)).flatmap(
        lambda f: st.tuples(st.just("message"), st.tuples(st.just(f), S.FIELDS[f][1]))),
)


def run_rounds(strategy: st.SearchStrategy, body: Callable[..., None], deadline: float,
               first_seed: int) -> None:
    """Run ``body`` on cases of ``strategy`` in rounds of ROUND until ``deadline``."""
    config = settings(max_examples=ROUND, deadline=None, database=None, phases=[Phase.generate],
                      suppress_health_check=list(HealthCheck))
    n = 0
    while time.monotonic() < deadline:
        @seed(first_seed + n)
        @config
        @given(strategy)
        def one_round(case: Any) -> None:
            if time.monotonic() < deadline:
                body(case)
        one_round()
        n += 1


def fuzz_decoder(tally: Tally, deadline: float, first_seed: int, hang: float) -> None:
    cases = S.wire_inputs.flatmap(
        lambda data: st.tuples(st.just(data), st.lists(st.integers(0, len(data)), max_size=5)))
    run_rounds(cases, lambda c: _guarded(tally, hang, lambda: decoder_case(*c), c[0]),
               deadline, first_seed)


def fuzz_classic(tally: Tally, deadline: float, first_seed: int, hang: float) -> None:
    run_rounds(classic_inputs, lambda c: _guarded(tally, hang, lambda: classic_case(*c),
                                                  S.safe_text(c)),
               deadline, first_seed)


def fuzz_server(tally: Tally, deadline: float, first_seed: int, hang: float) -> None:
    import fuzz_server as harness
    harness.TIMEOUT = hang
    server = FuzzServer()
    try:
        def body(case: tuple[bytes, bool]) -> None:
            nonlocal server
            data, handshake = case
            tally.cases += 1
            try:
                outcome = server.attack(data, handshake)
            except Exception as exc:  # noqa: BLE001 - the harness itself failed: a finding
                tally.fail("crash", f"{type(exc).__name__}: {exc}", data)
                return
            tally.refused += outcome.refused
            for line in server.crashes():
                tally.fail("crash", f"server logged: {line}", data)
            if outcome.problem is not None:
                kind = ("server died" if "died" in outcome.problem else
                        "hang" if outcome.problem.startswith("hang") else "property")
                tally.fail(kind, outcome.problem, data)
            if not server.alive:
                server.close()
                server = FuzzServer()  # go on fuzzing a fresh one
            elif tally.cases % 20 == 0:
                problem = server.good_client_works()
                if problem is not None:
                    tally.fail("good client affected", problem, data)
        run_rounds(st.tuples(S.wire_inputs, st.booleans()), body, deadline, first_seed)
        left = server.leftovers()
        if left:
            tally.fail("property", f"{len(left)} assertions left by closed connections",
                       S.safe_text(left))
        problem = server.good_client_works()
        if problem is not None:
            tally.fail("good client affected", problem, b"")
    finally:
        server.close()


TARGETS = {"decoder": fuzz_decoder, "server": fuzz_server, "classic": fuzz_classic}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="total time (all targets)")
    parser.add_argument("--target", choices=[*TARGETS, "all"], default="all")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--hang-seconds", type=float, default=10.0,
                        help="a case taking longer is a hang")
    args = parser.parse_args(argv)

    def on_alarm(*_: Any) -> None:
        raise _Hang()
    signal.signal(signal.SIGALRM, on_alarm)

    names = list(TARGETS) if args.target == "all" else [args.target]
    share = args.seconds / len(names)
    console = Console(width=130)
    tallies = []
    for i, name in enumerate(names):
        tally = Tally(name)
        console.print(f"fuzzing {name} for {share:.0f} s (seed {args.seed + 1000 * i}) ...")
        start = time.monotonic()
        TARGETS[name](tally, start + share, args.seed + 1000 * i, args.hang_seconds)
        tally.seconds = time.monotonic() - start
        tallies.append(tally)

    table = Table(title=f"fuzz campaign: {args.seconds:.0f} s, seed {args.seed}")
    table.add_column("target")
    table.add_column("cases", justify="right")
    table.add_column("cases/s", justify="right")
    table.add_column("Error packets", justify="right")
    for kind in KINDS:
        table.add_column(kind, justify="right")
    for tally in tallies:
        kinds = tally.by_kind()
        table.add_row(tally.name, f"{tally.cases:,}", f"{tally.cases / tally.seconds:,.0f}",
                      f"{tally.refused:,}" if tally.name == "server" else "-",
                      *[str(kinds[k]) for k in KINDS])
    console.print(table)
    failed = False
    for tally in tallies:
        for (kind, what), (count, example) in tally.failures.items():
            failed = True
            console.print(f"[red]{escape(f'{tally.name}: {kind} x{count}: {what}')}[/red]\n"
                          f"    e.g. {escape(S.safe_text(example))}", highlight=False)
    console.print("no failures" if not failed else "FAILURES (distinct, above)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
