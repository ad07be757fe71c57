"""A PostgreSQL server of our own for tests: Debian's binaries, `initdb` in a temp dir, a free port.

Never the machine's 5432. PostgreSQL refuses to run as root, so when the tests run as root the
server runs as the `postgres` system user (the Debian package creates it) in a directory it owns.
Each test that wants PostgreSQL gets a fresh database on the one session-wide server.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg

_counter = itertools.count(1)


def postgres_bin_dir() -> Path | None:
    """The newest /usr/lib/postgresql/<major>/bin holding initdb, or None when not installed."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parent.parent.name)
    )
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PostgresServer:
    """One `postgres` process listening on 127.0.0.1:<free port>, trust auth, data in a temp dir."""

    def __init__(self) -> None:
        bin_dir = postgres_bin_dir()
        if bin_dir is None:
            raise RuntimeError(
                "PostgreSQL is not installed (/usr/lib/postgresql/*/bin/initdb): `make test` "
                "installs Debian's postgresql package"
            )
        self.bin_dir = bin_dir
        self.port = _free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="taskdeck-pg-"))
        self.data = self.directory / "data"
        self.log_path = self.directory / "postgres.log"
        self.process: subprocess.Popen | None = None
        self.user = None  # run as this system user (root cannot run PostgreSQL)
        if os.geteuid() == 0:
            self.user = "postgres"
            entry = pwd.getpwnam(self.user)
            os.chown(self.directory, entry.pw_uid, entry.pw_gid)

    def _run_as(self) -> dict:
        return {"user": self.user, "group": pwd.getpwnam(self.user).pw_gid} if self.user else {}

    def url(self, database: str = "postgres") -> str:
        """SQLAlchemy URL of a database on this server (psycopg 3 driver)."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def connect(self, database: str = "postgres") -> psycopg.Connection:
        return psycopg.connect(
            host="127.0.0.1",
            port=self.port,
            user="postgres",
            dbname=database,
            autocommit=True,
            connect_timeout=5,
        )

    def start(self, timeout: float = 60) -> PostgresServer:
        subprocess.run(
            [
                str(self.bin_dir / "initdb"),
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
            cwd=self.directory,
            **self._run_as(),
        )
        log = open(self.log_path, "ab")  # noqa: SIM115
        # Durability off: a test server that dies takes its data with it anyway.
        self.process = subprocess.Popen(
            [
                str(self.bin_dir / "postgres"),
                "-D",
                str(self.data),
                "-p",
                str(self.port),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                f"unix_socket_directories={self.directory}",
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=400",
                "-c",
                "shared_buffers=64MB",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.directory,
            start_new_session=True,
            **self._run_as(),
        )
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"postgres exited: {self.log_path.read_text()[-2000:]}")
            try:
                self.connect().close()
                return self
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def create_database(self, prefix: str = "taskdeck") -> str:
        """Create a fresh, empty database and return its SQLAlchemy URL."""
        name = f"{prefix}_{os.getpid()}_{next(_counter)}"
        with self.connect() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # "fast" shutdown: clients are cut off
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        shutil.rmtree(self.directory, ignore_errors=True)
