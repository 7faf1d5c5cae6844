"""A real PostgreSQL server of the test's own: a fresh cluster (initdb) in a temporary folder
on a free port, for tests and benchmarks; each test gets a database of its own in it.

As root, the server runs as the ``postgres`` user (PostgreSQL refuses to run as root), so the
folder is given to that user. Needs the server binaries (Debian's ``postgresql`` package,
which ``make test`` installs).
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from tests.support.mosquitto import free_port, wait_listening


def find_bindir() -> Path | None:
    found = shutil.which("pg_ctl") or shutil.which("initdb")
    if found:
        return Path(found).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_major)
    return Path(versions[-1]).parent if versions else None


def _major(path: str) -> int:
    try:
        return int(Path(path).parent.parent.name)
    except ValueError:
        return 0


class Postgres:
    """``start``/``stop`` one server; ``new_database()`` gives a fresh, empty database URL."""

    def __init__(self, workdir: Path | None = None, port: int | None = None) -> None:
        bindir = find_bindir()
        if bindir is None:
            raise RuntimeError("PostgreSQL server not installed (make test installs it)")
        self.bindir = bindir
        self.port = port or free_port()
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="shian-pg-"))
        self.data = self.workdir / "data"
        self.log = self.workdir / "postgres.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._as_postgres = os.geteuid() == 0

    def _run(self, args: list[str]) -> None:
        cmd = ["runuser", "-u", "postgres", "--", *args] if self._as_postgres else args
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode:
            raise RuntimeError(f"{args[0]} failed: {res.stderr.strip() or res.stdout.strip()}")

    def start(self) -> Postgres:
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self._as_postgres:
            shutil.chown(self.workdir, "postgres", "postgres")
        if not self.data.exists():
            self._run(
                [str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres",
                 "-A", "trust", "-E", "UTF8", "--no-locale"]
            )  # fmt: skip
        args = [
            str(self.bindir / "postgres"), "-D", str(self.data), "-p", str(self.port),
            "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.workdir}",
            "-c", "max_connections=200", "-c", "fsync=on", "-c", "synchronous_commit=on",
        ]  # fmt: skip
        if self._as_postgres:
            args = ["runuser", "-u", "postgres", "--", *args]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=log)
        try:
            wait_listening(self.port, self.proc, timeout=30)
        except RuntimeError:
            raise RuntimeError(f"postgres did not start: {self.log.read_text()[-2000:]}") from None
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        import psycopg

        deadline = time.monotonic() + 30
        while True:
            try:
                psycopg.connect(self.url("postgres"), connect_timeout=2).close()
                return
            except psycopg.OperationalError as exc:  # "the database system is starting up"
                if time.monotonic() > deadline or (self.proc and self.proc.poll() is not None):
                    raise RuntimeError(f"postgres not ready: {exc}") from None
                time.sleep(0.05)  # polling for readiness

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def halt(self) -> None:
        """Stop the server, keeping its data (``start`` brings it back on the same port)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # "smart" would wait for clients; SIGTERM is "fast"
            self.proc.wait(30)
        self.proc = None

    def stop(self) -> None:
        self.halt()
        shutil.rmtree(self.workdir, ignore_errors=True)
