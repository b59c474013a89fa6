"""A throwaway PostgreSQL server as a local process: initdb in a temp dir, start, stop, remove.

For tests and benchmarks on a machine with Debian's ``postgresql`` package. PostgreSQL refuses
to run as root, so as root the data directory belongs to, and the server runs as, the
``postgres`` user. Auth is ``trust`` and it listens on 127.0.0.1 only.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import psycopg

from shakedown.errors import ConfigError
from shakedown.ports import free_port
from shakedown.waiting import wait_for

FAST_SETTINGS = ("fsync=off", "synchronous_commit=off", "full_page_writes=off",
                 "max_connections=300", "shared_buffers=128MB")


def postgres_bin() -> Path:
    """Directory of the newest installed server binaries (or $SHAKEDOWN_PG_BIN)."""
    if os.environ.get("SHAKEDOWN_PG_BIN"):
        return Path(os.environ["SHAKEDOWN_PG_BIN"])
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"),
                   key=lambda p: int(p.split("/")[4]))
    if not found:
        raise ConfigError("no PostgreSQL server found under /usr/lib/postgresql; "
                          "run scripts/setup or apt-get install postgresql")
    return Path(found[-1]).parent


class PostgresProcess:
    """``with PostgresProcess() as pg: pg.create_database("node_100"); pg.dsn("node_100")``"""

    def __init__(self, port: int | None = None, settings: tuple[str, ...] = FAST_SETTINGS):
        self.port = port or free_port()
        self.settings = settings
        self.bin = postgres_bin()
        self.datadir = Path(tempfile.mkdtemp(prefix="shakedown-pg-"))
        self.logfile = self.datadir.parent / f"{self.datadir.name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def _as_owner(self) -> list[str]:
        return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def start(self) -> PostgresProcess:
        if os.geteuid() == 0:
            shutil.chown(self.datadir, "postgres", "postgres")
        subprocess.run([*self._as_owner(), str(self.bin / "initdb"), "-D", str(self.datadir),
                        "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"],
                       check=True, capture_output=True)
        args = [*self._as_owner(), str(self.bin / "postgres"), "-D", str(self.datadir),
                "-p", str(self.port), "-k", str(self.datadir), "-c", "listen_addresses=127.0.0.1"]
        for setting in self.settings:
            args += ["-c", setting]
        with open(self.logfile, "wb") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        wait_for(lambda: psycopg.connect(self.dsn("postgres"), connect_timeout=2).close(),
                 lambda _: True, timeout=30, what=f"postgres on port {self.port}")
        return self

    def dsn(self, dbname: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, name: str) -> str:
        """Create (or recreate, empty) a database; returns its DSN."""
        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.dsn(name)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(2)  # SIGINT: fast shutdown
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        shutil.rmtree(self.datadir, ignore_errors=True)
        self.logfile.unlink(missing_ok=True)

    def __enter__(self) -> PostgresProcess:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()
