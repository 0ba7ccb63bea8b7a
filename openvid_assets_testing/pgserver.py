"""A real PostgreSQL server on loopback for the Dagster-on-Postgres tests.

``pg_server`` (session) runs ``initdb`` + ``pg_ctl start`` in a throwaway folder on
a free 127.0.0.1 port, with password (SCRAM) authentication over TCP, and stops
and deletes it at the end. ``pg_database`` gives each test a fresh database on
it; ``pg_instance`` a ``DagsterInstance`` whose run, event-log and schedule
storage live in that database (``dagster-postgres``), loaded from a
``dagster.yaml`` in a temporary ``DAGSTER_HOME`` exactly as a deployment loads it.

PostgreSQL refuses to run as root, so when the tests run as root the server runs
as the ``postgres`` system user (``runuser -u postgres --``) in a folder it owns.
The server binaries are required: without them the fixtures fail, they never
skip (``scripts/install.sh`` installs them from apt).
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
import textwrap
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import pytest

from openvid_assets_testing.ports import free_port

SUPERUSER = "dagster"
# SQLAlchemy 2.1 maps a bare "postgresql://" to psycopg 3, which dagster-postgres does not install;
# it depends on psycopg2, so name that driver (deploy/dagster.yaml does the same).
SCHEME = "postgresql+psycopg2"


@dataclass(frozen=True)
class PgParams:
    """Connection parameters, named as dagster-postgres' ``postgres_db`` config names them."""

    hostname: str
    port: int
    username: str
    password: str
    db_name: str

    def postgres_db(self) -> dict:
        return asdict(self)

    def url(self) -> str:
        return f"postgresql://{self.username}:{self.password}@{self.hostname}:{self.port}/{self.db_name}"

    def env(self) -> dict[str, str]:
        """The variables deploy/dagster.yaml reads."""
        return {
            "DAGSTER_PG_HOST": self.hostname,
            "DAGSTER_PG_PORT": str(self.port),
            "DAGSTER_PG_USER": self.username,
            "DAGSTER_PG_PASSWORD": self.password,
            "DAGSTER_PG_DB": self.db_name,
        }


def pg_bin_dir() -> Path:
    """The folder holding initdb and pg_ctl: on PATH, else Debian's /usr/lib/postgresql/<newest>/bin."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(os.path.realpath(found)).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if versions:
        return Path(versions[-1]).parent
    raise RuntimeError(
        "PostgreSQL server binaries (initdb, pg_ctl) not found on PATH nor under /usr/lib/postgresql/*/bin. "
        "The Postgres tests need a real server: run scripts/install.sh (apt-get install postgresql)."
    )


class PostgresServer:
    """One throwaway cluster: created, started, stopped and deleted by this object."""

    def __init__(self, bin_dir: Path):
        self.bin_dir = bin_dir
        self.as_postgres = os.geteuid() == 0
        # Directly under /tmp: the postgres user must reach it (pytest's tmp is 0700 root-only), and
        # the Unix socket's path inside it must stay under the ~107-byte limit whatever TMPDIR is.
        base = "/tmp" if os.path.isdir("/tmp") and os.access("/tmp", os.W_OK) else None
        self.root = Path(tempfile.mkdtemp(prefix="openvid-pg-", dir=base))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.password = secrets.token_hex(12)
        self.port = 0
        self.started_in_s = 0.0
        if self.as_postgres:
            try:
                user = pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError(
                    "running as root, but there is no 'postgres' system user to run the server "
                    "(apt-get install postgresql creates it)"
                ) from None
            os.chown(self.root, user.pw_uid, user.pw_gid)

    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        cmd = [str(self.bin_dir / args[0]), *args[1:]]
        if self.as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        done = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.root,
            env={**os.environ, "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"},
        )
        if done.returncode != 0:
            log = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""
            raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}\n{log}")
        return done

    def _write_owned(self, path: Path, text: str) -> None:
        path.write_text(text)
        path.chmod(0o600)
        if self.as_postgres:
            user = pwd.getpwnam("postgres")
            os.chown(path, user.pw_uid, user.pw_gid)

    def start(self) -> None:
        pwfile = self.root / "pwfile"
        self._write_owned(pwfile, self.password + "\n")
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            SUPERUSER,
            f"--pwfile={pwfile}",
            "--auth-host=scram-sha-256",
            "--auth-local=trust",
            "--encoding=UTF8",
            "--no-instructions",
        )
        pwfile.unlink()
        # TCP on loopback only; the Unix socket in our own folder (no /var/run/postgresql needed).
        options = f"-c listen_addresses=127.0.0.1 -c unix_socket_directories={self.root} -c max_connections=200"
        for attempt in range(3):  # a free port can be taken between choosing and binding it
            self.port = free_port()
            try:
                self._run(
                    "pg_ctl",
                    "-D",
                    str(self.data),
                    "-l",
                    str(self.log),
                    "-w",
                    "-t",
                    "60",
                    "-o",
                    f"-p {self.port} {options}",
                    "start",
                )
                return
            except RuntimeError:
                if attempt == 2:
                    raise

    def stop(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def params(self, db_name: str = "postgres") -> PgParams:
        return PgParams("127.0.0.1", self.port, SUPERUSER, self.password, db_name)

    def execute(self, sql: str, db_name: str = "postgres") -> None:
        import psycopg2

        conn = psycopg2.connect(**_dsn(self.params(db_name)))
        try:
            conn.autocommit = True  # CREATE/DROP DATABASE cannot run in a transaction
            with conn.cursor() as cur:
                cur.execute(sql)
        finally:
            conn.close()


def _dsn(p: PgParams) -> dict:
    return {"host": p.hostname, "port": p.port, "user": p.username, "password": p.password, "dbname": p.db_name}


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """A running PostgreSQL server for the whole session (fails, never skips, when Postgres is missing)."""
    server = PostgresServer(pg_bin_dir())
    try:
        started = time.monotonic()
        server.start()
        server.execute("CREATE DATABASE dagster")
        server.started_in_s = time.monotonic() - started
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def pg_params(pg_server: PostgresServer) -> PgParams:
    """Connection parameters of the session's ``dagster`` database."""
    return pg_server.params("dagster")


_db_counter = iter(range(1_000_000))


@pytest.fixture
def pg_database(pg_server: PostgresServer) -> Iterator[PgParams]:
    """A fresh, empty database for one test, dropped afterwards."""
    name = f"t{os.getpid()}_{next(_db_counter)}"
    pg_server.execute(f"CREATE DATABASE {name}")
    yield pg_server.params(name)
    pg_server.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def write_postgres_dagster_yaml(home: Path, params: PgParams) -> Path:
    """A dagster.yaml whose run, event-log and schedule storage are this Postgres database."""
    home.mkdir(parents=True, exist_ok=True)
    path = home / "dagster.yaml"
    path.write_text(
        textwrap.dedent(f"""\
        storage:
          postgres:
            postgres_db:
              hostname: {params.hostname}
              port: {params.port}
              username: {params.username}
              password: {params.password}
              db_name: {params.db_name}
              scheme: {SCHEME}
        telemetry:
          enabled: false
        """)
    )
    return path


@pytest.fixture
def pg_instance(pg_database: PgParams, tmp_path: Path):
    """A DagsterInstance backed by a fresh Postgres database, loaded from $DAGSTER_HOME/dagster.yaml."""
    from dagster import DagsterInstance

    home = tmp_path / "dagster_home_pg"
    write_postgres_dagster_yaml(home, pg_database)
    with DagsterInstance.from_config(str(home)) as instance:
        yield instance
