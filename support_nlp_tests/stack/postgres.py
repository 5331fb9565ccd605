"""A throwaway PostgreSQL server from the distribution's package: `initdb` into a temporary folder, then
`postgres` on 127.0.0.1 and a free port, its unix socket inside that folder, password authentication only."""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg2
import pytest

from support_nlp_tests.stack.processes import free_ports, running, start, stop, wait_until
from support_nlp_tests.system_binaries import missing_system_binary

POSTGRES_VERSIONS = Path("/usr/lib/postgresql")
STARTUP_TIMEOUT_S = 60
DATABASE = "dagster"
USER = "dagster"


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    user: str
    password: str
    database: str

    def connect(self, database: str | None = None):
        return psycopg2.connect(
            host=self.host, port=self.port, user=self.user, password=self.password, dbname=database or self.database
        )

    def environment(self) -> dict[str, str]:
        """The variables deploy/*/dagster.yaml reads its storage settings from."""
        return {
            "DAGSTER_PG_HOST": self.host,
            "DAGSTER_PG_PORT": str(self.port),
            "DAGSTER_PG_USER": self.user,
            "DAGSTER_PG_PASSWORD": self.password,
            "DAGSTER_PG_DB": self.database,
        }


def postgres_bin_dir() -> Path:
    """Debian and Ubuntu keep each major version's server binaries apart; take the newest installed."""
    versions = [path for path in POSTGRES_VERSIONS.glob("*") if path.name.isdigit() and (path / "bin/initdb").exists()]
    if not versions:
        missing_system_binary(
            f"a PostgreSQL server in {POSTGRES_VERSIONS}/*/bin", "run `make system-deps` (package postgresql)"
        )
    return max(versions, key=lambda path: int(path.name)) / "bin"


def server_user() -> str | None:
    """postgres refuses to run as root: as root, run it as the distribution's `postgres` account."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("postgres").pw_name
    except KeyError:
        pytest.fail("running as root, but there is no `postgres` user to run the server as")


def accepts_connections(server: PostgresServer) -> bool:
    try:
        server.connect("postgres").close()
    except psycopg2.OperationalError:
        return False
    return True


@contextlib.contextmanager
def postgres(log_dir: Path) -> Iterator[PostgresServer]:
    bin_dir, user = postgres_bin_dir(), server_user()
    # Not under pytest's tmp_path: that is private to the user running pytest, and the server may run as another.
    root = Path(tempfile.mkdtemp(prefix="support_nlp_postgres_"))
    try:
        if user:
            shutil.chown(root, user)
        server = PostgresServer("127.0.0.1", free_ports(1)[0], USER, secrets.token_hex(16), DATABASE)
        password_file = root / "password"
        password_file.write_text(server.password)
        if user:
            shutil.chown(password_file, user)
        env = {"PATH": os.environ["PATH"], "LANG": "C.UTF-8"}
        initdb = start(
            "initdb",
            [
                str(bin_dir / "initdb"),
                f"--pgdata={root / 'data'}",
                f"--username={server.user}",
                f"--pwfile={password_file}",
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
                # A throwaway cluster: skipping the fsyncs saves seconds per start.
                "--no-sync",
            ],
            log_dir,
            env,
            cwd=root,
            user=user,
        )
        try:
            initdb_status = initdb.popen.wait(timeout=STARTUP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            stop(initdb)
            raise
        if initdb_status != 0:
            raise RuntimeError(f"initdb failed:\n{initdb.log_tail()}")
        command = [
            str(bin_dir / "postgres"),
            "-D",
            str(root / "data"),
            "-h",
            server.host,
            "-p",
            str(server.port),
            "-k",
            str(root),
            # Throwaway data: the tests exercise Dagster, not the disk.
            "-c",
            "fsync=off",
        ]
        # SIGINT is postgres' "fast" shutdown: it does not wait for clients to disconnect.
        with running(start("postgres", command, log_dir, env, cwd=root, user=user), signal.SIGINT) as process:
            wait_until(lambda: accepts_connections(server), "PostgreSQL up", STARTUP_TIMEOUT_S, [process])
            with contextlib.closing(server.connect("postgres")) as connection:
                connection.autocommit = True
                connection.cursor().execute(f"CREATE DATABASE {server.database}")
            yield server
    finally:
        shutil.rmtree(root, ignore_errors=True)
