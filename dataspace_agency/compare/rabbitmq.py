"""A private RabbitMQ broker (Debian's rabbitmq-server, 3.10.x), for the tests and for
``dataspace-agency compare --rabbitmq start``.

`private_broker()` (a context manager) or `RabbitMQBroker` starts
`/usr/lib/rabbitmq/bin/rabbitmq-server` in the background with all of its state under
its own temporary directory (HOME and so the Erlang cookie, the Mnesia data, logs, pid
file, an empty enabled-plugins file: no management plugin), a unique node name
(`dsa-<random>@localhost`), loopback-only listeners and free ports of its own: the AMQP
port, the Erlang distribution port, and an `epmd` on a port of its own, which this module
starts itself (in the foreground, as its own child) so that it never shares, or kills,
another broker's epmd on 4369.

Readiness is a TCP connect plus a real AMQP handshake (pika), bounded by a deadline; if the
broker does not come up, the error carries the tail of its logs. Stopping is
`rabbitmqctl stop <pidfile>` against that node (which waits for the node's OS process to
exit), then waiting for the launcher, then ending the epmd this module started, all by
PID. Nothing is ever stopped by process name.

`restart()` stops the node and starts it again on the same ports and the same data
directory (durable queues and persistent messages survive), for fault tests.

    with private_broker() as broker:
        url = broker.amqp_url   # amqp://guest:guest@127.0.0.1:<port>/%2F
        broker.restart()
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

RABBITMQ_BIN = Path("/usr/lib/rabbitmq/bin")
RABBITMQ_SERVER = RABBITMQ_BIN / "rabbitmq-server"
RABBITMQCTL = RABBITMQ_BIN / "rabbitmqctl"
HOST = "127.0.0.1"


def rabbitmq_installed() -> bool:
    """Whether Debian's rabbitmq-server (and epmd) are installed on this machine."""
    return RABBITMQ_SERVER.exists() and RABBITMQCTL.exists() and shutil.which("epmd") is not None


class BrokerError(RuntimeError):
    """The private broker could not be started or stopped."""



_ERL_ARGS = "-start_epmd false -kernel inet_dist_use_interface {127,0,0,1}"

# rabbitmqctl's own Erlang node listens on one of these (rabbitmq-env's default range).
CTL_DIST_PORTS = range(35672, 35683)


def _free_ports(n: int) -> list[int]:
    """n distinct free loopback ports, picked by the kernel and held open together while
    choosing (so they differ), none in rabbitmqctl's distribution range."""
    socks: list[socket.socket] = []
    try:
        while len([s for s in socks if s.getsockname()[1] not in CTL_DIST_PORTS]) < n:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((HOST, 0))
            socks.append(s)
        return [p for p in (s.getsockname()[1] for s in socks) if p not in CTL_DIST_PORTS][:n]
    finally:
        for s in socks:
            s.close()


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the broker binds
        try:
            s.bind((HOST, port))
        except OSError:
            return False
        return True


def _port_open(port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=timeout):
            return True
    except OSError:
        return False


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); treat it as gone.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


class RabbitMQBroker:
    """One private RabbitMQ node. `start()`, `stop()`, `restart()`; `amqp_url` once started."""

    def __init__(self, base_dir: str | os.PathLike[str] | None = None, *, startup_timeout: float = 60.0,
                 stop_timeout: float = 30.0) -> None:
        if not rabbitmq_installed():
            raise BrokerError(f"{RABBITMQ_SERVER} is not installed (apt-get install rabbitmq-server)")
        self._own_dir = base_dir is None
        self.base_dir = Path(tempfile.mkdtemp(prefix="dsa-rabbitmq-") if base_dir is None else base_dir)
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self.nodename = f"dsa-{secrets.token_hex(4)}@localhost"
        self.node_port, self.dist_port, self.epmd_port = _free_ports(3)
        self.pid_file = self.base_dir / "rabbitmq.pid"
        self.log_dir = self.base_dir / "log"
        self.out_log = self.base_dir / "rabbitmq-server.out"
        self.epmd_log = self.base_dir / "epmd.out"
        self._server: subprocess.Popen[bytes] | None = None
        self._epmd: subprocess.Popen[bytes] | None = None
        self.startup_seconds: float | None = None  # the last start, until AMQP answered
        self.stop_seconds: float | None = None  # the last stop of the node
        self._started_once = False
        self._env = self._make_env()

    # -- set-up ---------------------------------------------------------------------------

    def _make_env(self) -> dict[str, str]:
        d = self.base_dir
        home = d / "home"
        for sub in (home, d / "mnesia", self.log_dir, d / "plugins-expand"):
            sub.mkdir(parents=True, exist_ok=True)
        plugins = d / "enabled_plugins"
        plugins.write_text("[].\n")  # no plugins at all (no management)
        conf_env = d / "rabbitmq-env.conf"
        conf_env.write_text("")  # do not read /etc/rabbitmq/rabbitmq-env.conf
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "ERL_"))}
        env.update(
            HOME=str(home),
            RABBITMQ_CONF_ENV_FILE=str(conf_env),
            RABBITMQ_CONFIG_FILE=str(d / "rabbitmq"),  # rabbitmq.conf there: none, so defaults
            RABBITMQ_ADVANCED_CONFIG_FILE=str(d / "advanced.config"),
            RABBITMQ_MNESIA_BASE=str(d / "mnesia"),
            RABBITMQ_LOG_BASE=str(self.log_dir),
            RABBITMQ_PID_FILE=str(self.pid_file),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(plugins),
            RABBITMQ_PLUGINS_EXPAND_DIR=str(d / "plugins-expand"),
            RABBITMQ_NODENAME=self.nodename,
            RABBITMQ_NODE_IP_ADDRESS=HOST,
            RABBITMQ_NODE_PORT=str(self.node_port),
            RABBITMQ_DIST_PORT=str(self.dist_port),
            # The distribution listeners (the node's, and rabbitmqctl's own) on loopback only,
            # and no `epmd -daemon` of the VM's own: the one started here is the only epmd.
            RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=_ERL_ARGS,
            RABBITMQ_CTL_ERL_ARGS=_ERL_ARGS,
            ERL_EPMD_ADDRESS=HOST,
            ERL_EPMD_PORT=str(self.epmd_port),
        )
        return env

    @property
    def amqp_url(self) -> str:
        return f"amqp://guest:guest@{HOST}:{self.node_port}/%2F"

    @property
    def broker_pid(self) -> int | None:
        """The OS pid of the Erlang VM (from its pid file), if it wrote one."""
        try:
            return int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def process_ids(self) -> set[int]:
        """PIDs of this broker's processes now (launcher, Erlang VM, epmd and all their
        descendants): what a leak check of the tests must leave alone."""
        import psutil  # a dependency of the package; imported here, only leak checks ask

        roots = [p.pid for p in (self._server, self._epmd) if p is not None and p.poll() is None]
        roots += [self.broker_pid] if self.broker_pid is not None else []
        pids: set[int] = set()
        for pid in roots:
            with contextlib.suppress(psutil.Error):
                pids.add(pid)
                pids.update(child.pid for child in psutil.Process(pid).children(recursive=True))
        return pids

    @property
    def running(self) -> bool:
        return self._server is not None and self._server.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        parts = []
        for path in [self.out_log, *sorted(self.log_dir.glob("*.log"))]:
            tail = _tail(path, lines)
            if tail:
                parts.append(f"--- {path} ---\n{tail}")
        return "\n".join(parts) or "(no broker log)"

    # -- epmd -----------------------------------------------------------------------------

    def _start_epmd(self) -> None:
        if self._epmd is not None and self._epmd.poll() is None:
            return
        epmd = shutil.which("epmd") or "epmd"
        with open(self.epmd_log, "ab") as out:
            # Foreground (no -daemon): it stays our child, so we know its pid.
            self._epmd = subprocess.Popen(
                [epmd, "-port", str(self.epmd_port), "-address", HOST],
                env=self._env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 10
        while not _port_open(self.epmd_port, 0.2):
            if self._epmd.poll() is not None:
                raise BrokerError(f"epmd exited with {self._epmd.returncode}:\n{_tail(self.epmd_log)}")
            if time.monotonic() > deadline:
                self._stop_epmd()
                raise BrokerError(f"epmd did not listen on {HOST}:{self.epmd_port} within 10 s")
            time.sleep(0.05)

    def _stop_epmd(self) -> None:
        proc, self._epmd = self._epmd, None
        if proc is None or proc.poll() is not None:
            return
        # Ask it politely (only honoured when no node is registered), then by its own pid.
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run([shutil.which("epmd") or "epmd", "-port", str(self.epmd_port), "-kill"],
                           env=self._env, stdin=subprocess.DEVNULL, capture_output=True, timeout=5)
        try:
            proc.wait(timeout=3)
        except subprocess.TimeoutExpired:
            proc.terminate()
            try:
                proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=3)

    # -- broker ---------------------------------------------------------------------------

    def start(self) -> str:
        """Start the node (and its epmd); return the AMQP URL once it accepts AMQP connections.

        The first start picks new ports and tries once more if one of its ports was taken
        in the meantime; a restart keeps its ports."""
        if self.running:
            return self.amqp_url
        if not self._started_once and not all(map(_port_free, (self.node_port, self.dist_port))):
            self._new_ports()
        try:
            return self._start_node()
        except BrokerError:
            if self._started_once or not self._log_mentions("eaddrinuse"):
                raise
        self._new_ports()
        return self._start_node()

    def _new_ports(self) -> None:
        self.node_port, self.dist_port = _free_ports(2)
        self._env.update(RABBITMQ_NODE_PORT=str(self.node_port), RABBITMQ_DIST_PORT=str(self.dist_port))

    def _log_mentions(self, needle: str) -> bool:
        for path in [self.out_log, *self.log_dir.glob("*.log")]:
            with contextlib.suppress(OSError):
                if needle in path.read_text(errors="replace").lower():
                    return True
        return False

    def _start_node(self) -> str:
        self._start_epmd()
        with contextlib.suppress(FileNotFoundError):
            self.pid_file.unlink()
        started = time.monotonic()
        with open(self.out_log, "ab") as out:
            out.write(f"\n=== start at {time.strftime('%H:%M:%S')} ===\n".encode())
            out.flush()
            self._server = subprocess.Popen(
                [str(RABBITMQ_SERVER)], env=self._env, cwd=self.base_dir,
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            self._wait_ready(started + self.startup_timeout)
        except BaseException:
            self._kill_server()
            raise
        self.startup_seconds = time.monotonic() - started
        self._started_once = True
        return self.amqp_url

    def _wait_ready(self, deadline: float) -> None:
        import pika  # the dev extra; imported here so the module loads without it

        params = pika.URLParameters(self.amqp_url)
        params.connection_attempts = 1
        params.socket_timeout = 2
        params.blocked_connection_timeout = 5
        last_error: BaseException | None = None
        while True:
            assert self._server is not None
            if self._server.poll() is not None:
                raise BrokerError(
                    f"rabbitmq-server {self.nodename} exited with {self._server.returncode} before it was ready:\n"
                    + self.log_tail())
            if _port_open(self.node_port, 0.5):
                try:
                    conn = pika.BlockingConnection(params)
                except Exception as exc:  # noqa: BLE001 - still booting: retry until the deadline
                    last_error = exc
                else:
                    conn.close()
                    return
            if time.monotonic() > deadline:
                raise BrokerError(
                    f"rabbitmq-server {self.nodename} was not ready on {HOST}:{self.node_port} within "
                    f"{self.startup_timeout:.0f} s (last error: {last_error!r}):\n" + self.log_tail())
            time.sleep(0.2)

    def _ctl(self, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(RABBITMQCTL), "-n", self.nodename, *args], env=self._env,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)

    def stop_node(self) -> None:
        """Stop the Erlang node cleanly (`rabbitmqctl stop`), leaving epmd up."""
        proc = self._server
        if proc is None:
            return
        started = time.monotonic()
        beam_pid = self.broker_pid
        if proc.poll() is None:
            ctl_error = ""
            try:
                # With the pid file, rabbitmqctl waits until that OS process has exited.
                result = self._ctl("stop", str(self.pid_file), timeout=self.stop_timeout)
                if result.returncode != 0:
                    ctl_error = f"rabbitmqctl stop exited {result.returncode}: {result.stderr.strip()}"
            except subprocess.TimeoutExpired:
                ctl_error = f"rabbitmqctl stop took over {self.stop_timeout:.0f} s"
            try:
                proc.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                self._kill_server()
                raise BrokerError(f"rabbitmq-server {self.nodename} did not stop ({ctl_error}); killed it")
        self._server = None
        # The launcher is a shell around the VM; make sure the VM itself is gone too.
        if beam_pid is not None:
            deadline = time.monotonic() + self.stop_timeout
            while _pid_alive(beam_pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if _pid_alive(beam_pid):
                os.kill(beam_pid, signal.SIGKILL)
        self.stop_seconds = time.monotonic() - started

    def _kill_server(self) -> None:
        """Last resort: end the launcher's process group (ours, by its id) and the VM's pid."""
        proc, self._server = self._server, None
        if proc is None:
            return
        beam_pid = self.broker_pid
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        if beam_pid is not None and _pid_alive(beam_pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(beam_pid, signal.SIGKILL)

    def stop(self) -> None:
        """Stop the node, then the epmd this broker started."""
        try:
            self.stop_node()
        finally:
            self._stop_epmd()

    def restart(self) -> str:
        """Stop the node and start it again: same node name, ports and data directory."""
        self.stop_node()
        return self.start()

    def cleanup(self) -> None:
        """Stop everything and remove the temporary directory (if this object made it)."""
        try:
            self.stop()
        finally:
            if self._own_dir:
                shutil.rmtree(self.base_dir, ignore_errors=True)

    def __enter__(self) -> RabbitMQBroker:
        try:
            self.start()
        except BaseException:
            self.cleanup()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()


@contextlib.contextmanager
def private_broker(**kwargs: object) -> Iterator[RabbitMQBroker]:
    """Start a private broker for the duration of the block; stop it and remove its files."""
    with RabbitMQBroker(**kwargs) as broker:  # type: ignore[arg-type]
        yield broker
