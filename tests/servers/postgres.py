"""A private PostgreSQL cluster on a free loopback port, for tests that stop and start it.

Never the machine's shared PostgreSQL on 127.0.0.1:5432: other engineers' tests use that
one. The cluster lives in a folder of its own under /tmp, runs as the ``postgres`` user
(PostgreSQL refuses to run as root) and is stopped and started with ``pg_ctl`` on its own
data directory, so nothing else is ever touched. Trust authentication, loopback only.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import psycopg

from .process import LOOPBACK, ServerStartError, free_port, log_tail, system_user

ROOT_PREFIX = "triage-pg-"
PG_USER = "postgres"
START_TIMEOUT = 30
# A test cluster: durability across power loss does not matter, speed does. A fast
# shutdown still writes a checkpoint, so what was committed survives stop and start.
SETTINGS = """
fsync = off
full_page_writes = off
synchronous_commit = off
max_connections = 200
"""


def pg_program(name: str) -> str:
    """The newest installed PostgreSQL's ``name`` (initdb, pg_ctl), or ServerStartError."""
    found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), key=_version)
    if not found:
        raise ServerStartError(
            f"no {name} under /usr/lib/postgresql/*/bin: run scripts/install-system-deps.sh"
        )
    return str(found[-1])


def _version(path: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in path.parts[-3].split(".") if part.isdigit())


def unavailable() -> str | None:
    """Why a private cluster cannot run here, or None when it can."""
    if os.geteuid() != 0:
        return "a private PostgreSQL needs root (to run it as the postgres user)"
    try:
        pg_program("initdb")
        system_user(PG_USER)
    except ServerStartError as error:
        return str(error)
    return None


class PrivatePostgres:
    """One cluster: ``init()`` once, then ``start()``/``stop()`` as often as a test likes.

    The port is chosen once and kept across restarts, so clients can reconnect.
    """

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix=ROOT_PREFIX, dir="/tmp"))
        (self.root / "owner.pid").write_text(f"{os.getpid()}\n")
        user = system_user(PG_USER)
        os.chown(self.root, user.pw_uid, user.pw_gid)
        os.chmod(self.root, 0o755)
        self.data = self.root / "data"
        self.log_path = self.root / "postgresql.log"
        self.host = LOOPBACK
        self.port = free_port()

    def init(self) -> None:
        """Create the cluster (initdb) and start it."""
        _as_postgres(
            [pg_program("initdb"), "-D", str(self.data), "-U", PG_USER, "-A", "trust"]
            + ["-E", "UTF8", "--locale=C.UTF-8"],
            "initdb",
        )
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write(SETTINGS)
        self.start()

    def start(self) -> None:
        """Start the cluster and wait until it accepts connections."""
        options = f"-c listen_addresses={self.host} -p {self.port} -k {self.root}"
        _as_postgres(
            [pg_program("pg_ctl"), "-D", str(self.data), "-l", str(self.log_path)]
            + ["-w", "-t", str(START_TIMEOUT), "-o", options, "start"],
            "pg_ctl start",
            self.log_path,
        )

    def stop(self, mode: str = "fast") -> None:
        """Stop the cluster: ``fast`` ends every session at once (what a restart does)."""
        if self.running:
            _as_postgres(
                [pg_program("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"],
                "pg_ctl stop",
                self.log_path,
            )

    @property
    def pid(self) -> int | None:
        """The postmaster's PID from its pid file, or None when it is not running."""
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    @property
    def running(self) -> bool:
        pid = self.pid
        if pid is None:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{PG_USER}@{self.host}:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create an empty database; return its SQLAlchemy URL."""
        conninfo = f"host={self.host} port={self.port} user={PG_USER} dbname=postgres"
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def destroy(self) -> None:
        """Stop the cluster (immediately) and delete its folder."""
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


def remove_stale_clusters() -> None:
    """Stop and delete the clusters of test runs that died before their teardown."""
    for root in Path("/tmp").glob(f"{ROOT_PREFIX}*"):
        try:
            os.kill(int((root / "owner.pid").read_text()), 0)
        except ProcessLookupError:
            if (root / "data" / "postmaster.pid").exists():
                subprocess.run(
                    ["runuser", "-u", PG_USER, "--", pg_program("pg_ctl")]
                    + ["-D", str(root / "data"), "-m", "immediate", "-w", "stop"],
                    capture_output=True,
                    timeout=60,
                    check=False,
                )
            shutil.rmtree(root, ignore_errors=True)
        except (OSError, ValueError):
            # No owner written yet (a run starting right now) or not ours to judge.
            continue


def _as_postgres(args: list[str], what: str, log: Path | None = None) -> None:
    done = subprocess.run(
        ["runuser", "-u", PG_USER, "--", *args],
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT + 30,
        check=False,
    )
    if done.returncode != 0:
        raise ServerStartError(
            f"{what} failed (exit {done.returncode}): {' '.join(args)}\n{done.stdout}"
            f"{done.stderr}\n" + (log_tail(log) if log else "")
        )
