"""Shared fixtures. Tests run under trio (pytest-trio, trio_mode in pyproject.toml)."""

from __future__ import annotations

import faulthandler
import os
import signal

import pytest

import leaks
from dataspace_agency import open_dataspace
from rabbitmq import RabbitMQBroker, private_broker, rabbitmq_installed

# An external broker for the AMQP tests (instead of a private one started here).
AMQP_URL_ENV = "DATASPACE_AGENCY_AMQP_URL"


# A test still running after this long has hung: every thread's stack is printed and the run
# ends. pytest-timeout (pyproject.toml, 600 s) does this first when it can, but its watchdog
# is a Python thread: a hang that holds the GIL (a native library blocked, the GIL held, on a
# thread that needs the GIL to go on) stops it too. faulthandler's watchdog is a C thread that
# needs no GIL, so this one fires whatever the hang. A CI run once sat in such a hang until
# its 90-minute limit. DATASPACE_AGENCY_TEST_HARD_TIMEOUT sets another bound (seconds), e.g.
# to hunt a rare hang by running one test in a loop.
HARD_TIMEOUT = float(os.environ.get("DATASPACE_AGENCY_TEST_HARD_TIMEOUT", "660"))


def _terminal_stderr(config: pytest.Config) -> int:
    """The file descriptor of the run's real stderr: during a test pytest's fd capture
    points fd 2 at a temporary file, whose content an exiting process never shows. The
    capture manager keeps the original (a private attribute: fall back to fd 2, which is
    the terminal itself when capture is off)."""
    capture = config.pluginmanager.getplugin("capturemanager")
    err = getattr(getattr(capture, "_global_capturing", None), "err", None)
    saved = getattr(err, "targetfd_save", None)
    return saved if isinstance(saved, int) else 2


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):
    """Arm the hard timeout around each test's setup, call and teardown."""
    faulthandler.dump_traceback_later(HARD_TIMEOUT, exit=True,
                                      file=_terminal_stderr(item.config))
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()


# Session brokers started so far: their processes are the session's, not a module's leak.
_BROKERS: list[RabbitMQBroker] = []


def _broker_pids() -> set[int]:
    return set().union(*(broker.process_ids() for broker in _BROKERS))


leaks.SESSION_SERVICES.append(_broker_pids)  # every leak check leaves them alone


@pytest.fixture(scope="module", autouse=True)
def no_leaks():
    """After every test module: nothing it opened is left over (tests/leaks.py): no space,
    server or runtime still open (facts, tasks), no new thread, no new child process.
    Fails the module's teardown naming each leak."""
    baseline = leaks.take_baseline()
    yield
    found = leaks.find_leaks(baseline)
    if found:
        pytest.fail(f"this test module left things behind: {leaks.describe(found)}",
                    pytrace=False)


@pytest.fixture(scope="module")
def zenoh_router():
    """A Zenoh router in this process for a test module (the Zenoh spaces' tests)."""
    from dataspace_agency.zenoh import Router
    with Router() as router:
        yield router


@pytest.fixture
def ctrl_c_raises():
    """SIGINT raises ``KeyboardInterrupt`` in the main thread during the test, whatever the
    suite was started with: Python installs that handler only if SIGINT was not ignored at
    start, and a shell's background job (``pytest &``) or ``nohup`` starts it ignored.
    The previous handler is put back afterwards."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.fixture
async def ds():
    """A fresh in-process dataspace on its own runtime, shut down after the test."""
    async with open_dataspace() as handle:
        yield handle


def _rabbitmq_unavailable(reason: str) -> None:
    """An AMQP test cannot run: it fails in CI (it must never be skipped there), else skips."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: an AMQP test must run in CI, not skip)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def rabbitmq_broker():
    """A private RabbitMQ node (tests/rabbitmq.py) for the whole session, stopped at the end.

    The broker object has `amqp_url` and `restart()` (for fault tests)."""
    if os.environ.get(AMQP_URL_ENV):
        _rabbitmq_unavailable(
            f"{AMQP_URL_ENV} names an external broker, which these tests cannot restart: "
            f"unset it to use a private broker")
    if not rabbitmq_installed():
        _rabbitmq_unavailable(
            "rabbitmq-server is not installed: apt-get install rabbitmq-server, "
            f"or set {AMQP_URL_ENV}")
    with private_broker() as broker:
        _BROKERS.append(broker)
        try:
            yield broker
        finally:
            _BROKERS.remove(broker)


@pytest.fixture(scope="session")
def amqp_url(request: pytest.FixtureRequest) -> str:
    """The AMQP URL of a broker for the session: $DATASPACE_AGENCY_AMQP_URL if set, else a
    private broker started once per session (see `rabbitmq_broker`)."""
    url = os.environ.get(AMQP_URL_ENV)
    if url:
        return url
    return request.getfixturevalue("rabbitmq_broker").amqp_url
