"""A private PostgreSQL cluster for tests that restart it; never the machine's shared one.

    with PrivatePostgres() as postgres:          # initdb into a temporary directory, then start
        url = postgres.create_database("shop")   # postgres://postgres@127.0.0.1:<port>/shop
        postgres.restart()                       # pg_ctl restart -m fast
        postgres.restart(down_for=2)             # stop, 2 s down, start

The cluster listens on 127.0.0.1 on a free port and on a socket in its own directory, trusts
every local connection, and skips durability (fsync off): it lives for one test. PostgreSQL
refuses to run as root, so as root the server commands run as the ``postgres`` OS user, which
owns the directory. The test is skipped when the server binaries are not installed.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

import psycopg
import pytest

from tests.redis_server import free_port

SERVER_USER = "postgres"
COMMAND_TIMEOUT_SECONDS = 60


def server_bin_dir() -> Path | None:
    """Where ``initdb`` and ``pg_ctl`` are: on PATH, else Debian's newest versioned directory."""
    on_path = shutil.which("pg_ctl")
    if on_path and shutil.which("initdb"):
        return Path(on_path).parent
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
        key=lambda path: int(path.parent.parent.name) if path.parent.parent.name.isdigit() else 0,
    )
    return versions[-1].parent if versions else None


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


class PrivatePostgres:
    def __init__(self) -> None:
        bin_dir = server_bin_dir()
        if bin_dir is None:
            pytest.skip("the PostgreSQL server binaries (initdb, pg_ctl) are not installed")
        self.bin_dir = bin_dir
        self.as_server_user: list[str] = []
        if os.geteuid() == 0:
            if shutil.which("runuser") is None or not _user_exists(SERVER_USER):
                pytest.skip(
                    f"PostgreSQL refuses root, and there is no {SERVER_USER} user to run as"
                )
            self.as_server_user = ["runuser", "-u", SERVER_USER, "--"]
        self.port = free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="private-postgres-"))
        self.data = self.directory / "data"
        self.log = self.directory / "server.log"
        self.initialized = False

    # --- lifecycle ------------------------------------------------------------------------------

    def __enter__(self) -> PrivatePostgres:
        try:
            return self.start()
        except BaseException:
            self.remove()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.remove()

    def start(self) -> PrivatePostgres:
        """Create the cluster on first use, then start it and wait until it accepts connections."""
        if not self.initialized:
            self._initdb()
        self._pg_ctl("start", "-l", str(self.log), "-o", self._server_options())
        return self

    def stop(self) -> None:
        """Stop in fast mode: open transactions are rolled back, clients disconnected."""
        if self.running:
            self._pg_ctl("stop", "-m", "fast")

    def restart(self, *, down_for: float = 0) -> None:
        """``pg_ctl restart -m fast``: every client connection is cut, then the server is back.

        ``down_for``: stop, stay down this many seconds, then start, as a slower restart would.
        """
        if down_for:
            self.stop()
            time.sleep(down_for)
            self.start()
        else:
            self._pg_ctl("restart", "-m", "fast", "-l", str(self.log), "-o", self._server_options())

    def remove(self) -> None:
        """Stop the server (if it runs) and delete the cluster."""
        try:
            if self.initialized:
                self.stop()
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)

    @property
    def running(self) -> bool:
        status = subprocess.run(
            [*self.as_server_user, str(self.bin_dir / "pg_ctl"), "status", "-D", str(self.data)],
            capture_output=True,
            timeout=COMMAND_TIMEOUT_SECONDS,
            check=False,
        )
        return status.returncode == 0

    # --- databases ------------------------------------------------------------------------------

    def url(self, database: str = "postgres") -> str:
        return f"postgres://{SERVER_USER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """A new, empty database; answers its URL."""
        with psycopg.connect(self.url(), autocommit=True, connect_timeout=10) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')  # a name from the test, not input
        return self.url(name)

    # --- plumbing -------------------------------------------------------------------------------

    def _initdb(self) -> None:
        if self.as_server_user:
            shutil.chown(self.directory, user=SERVER_USER, group=SERVER_USER)
        self._run(
            str(self.bin_dir / "initdb"),
            "--pgdata",
            str(self.data),
            "--username",
            SERVER_USER,
            "--auth",
            "trust",
            "--encoding",
            "UTF8",
            "--no-sync",
        )
        self.initialized = True

    def _server_options(self) -> str:
        return (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.directory} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )

    def _pg_ctl(self, action: str, *options: str) -> None:
        self._run(
            str(self.bin_dir / "pg_ctl"),
            action,
            "-D",
            str(self.data),
            "-w",
            "-t",
            str(COMMAND_TIMEOUT_SECONDS),
            *options,
        )

    def _run(self, *command: str) -> None:
        result = subprocess.run(
            [*self.as_server_user, *command],
            capture_output=True,
            timeout=COMMAND_TIMEOUT_SECONDS + 10,
            check=False,
        )
        if result.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(
                f"{Path(command[0]).name} {command[1]} failed ({result.returncode}):\n"
                f"{result.stdout.decode(errors='replace')}{result.stderr.decode(errors='replace')}"
                f"{log}"
            )
