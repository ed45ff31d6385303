"""The database: engine set-up for SQLite (WAL) or PostgreSQL, migrations, and outages.

A database that is down or restarting is nobody's mail's fault: every session and
connection handed out here turns such an error into ``DatabaseUnavailable``, which the
pipeline never quarantines and the daemon retries with backoff. Reconnecting is
SQLAlchemy's: ``pool_pre_ping`` tests a pooled connection before lending it, and a
connection found dead mid-statement invalidates the pool, so the first session after
the restart gets fresh connections.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

import psycopg
from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Connection, Engine, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url
from sqlmodel import Session, create_engine

from .errors import ConfigError, TriageError

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# Seconds to wait for a connection to a PostgreSQL host that does not answer at all (a
# refused connection fails at once): the poll then reports the outage instead of hanging.
CONNECT_TIMEOUT = 10
# SQLSTATEs (PostgreSQL Appendix A) that mean the server cannot serve us right now:
# connection exceptions, insufficient resources (disk full, too many connections),
# operator intervention (shutdown, restart, "cannot connect now"), system I/O errors,
# and serialization failures and deadlocks (40001, 40P01), which pass when tried again.
# 57014 (query_canceled) is left out on purpose: a statement timeout may be caused by
# one mail, and that mail must not hold its mailbox up for ever.
TRANSIENT_SQLSTATE_CLASSES = ("08", "53", "58")
TRANSIENT_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "57P04", "57P05", "40001", "40P01"})
# SQLite's primary result codes for a database that is busy, unreadable or full.
SQLITE_OUTAGE_CODES = frozenset(
    {
        sqlite3.SQLITE_BUSY,
        sqlite3.SQLITE_LOCKED,
        sqlite3.SQLITE_NOMEM,
        sqlite3.SQLITE_READONLY,
        sqlite3.SQLITE_IOERR,
        sqlite3.SQLITE_FULL,
        sqlite3.SQLITE_CANTOPEN,
        sqlite3.SQLITE_PROTOCOL,
    }
)


class DatabaseUnavailable(TriageError):
    """The database cannot be used now (stopped, restarting, unreachable, full).

    Not any mail's fault: whoever meets it stops, leaves the mail where it is, and tries
    again later. The message names the database (without its password) and the cause.
    """


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` (or an error it wraps) means the database cannot be used right now,
    as opposed to an error about the data or the statement."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if _is_outage_error(current):
            return True
        current = getattr(current, "orig", None) or current.__cause__
    return False


def _is_outage_error(exc: BaseException) -> bool:
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    # DisconnectionError: a pre-ping that failed; TimeoutError: no pooled connection free.
    if isinstance(exc, sa_exc.DisconnectionError | sa_exc.TimeoutError | psycopg.InterfaceError):
        return True
    if isinstance(exc, psycopg.OperationalError):
        return _transient_sqlstate(exc.sqlstate)
    if isinstance(exc, sqlite3.OperationalError):
        # Extended result codes keep the primary code in their low byte.
        return (getattr(exc, "sqlite_errorcode", 0) & 0xFF) in SQLITE_OUTAGE_CODES
    return False


def _transient_sqlstate(sqlstate: str | None) -> bool:
    # No SQLSTATE: the client found the connection refused, lost or closed.
    if sqlstate is None:
        return True
    return sqlstate.startswith(TRANSIENT_SQLSTATE_CLASSES) or sqlstate in TRANSIENT_SQLSTATES


def describe_outage(url: str, exc: BaseException) -> str:
    """One line for the operator: which database (no password) and what went wrong."""
    cause = getattr(exc, "orig", None) or exc
    reason = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
    where = make_url(url).render_as_string(hide_password=True)
    return f"database {where} is unavailable: {reason}"


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL, a busy timeout and foreign keys."""
    try:
        parsed = make_url(url)
    except Exception as exc:  # SQLAlchemy raises ArgumentError, and ValueError for ports
        raise ConfigError([f"database URL {url!r} is not valid: {exc}"]) from None
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        # Use psycopg 3, the driver we install, when the URL names none.
        url = parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    connect_args = {} if "connect_timeout" in parsed.query else {"connect_timeout": CONNECT_TIMEOUT}
    # pool_pre_ping: a connection the server closed (a restart) is replaced before use.
    return create_engine(
        url, pool_size=10, max_overflow=10, pool_pre_ping=True, connect_args=connect_args
    )


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # NORMAL is durable in WAL mode except on power loss, where the last commits may roll back
    # and the mail is then processed again from IMAP (it is moved only after the commit).
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the schema up to ``revision`` with Alembic (creates it on an empty database)."""
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)


class Database:
    """The engine plus a session factory; one per process."""

    def __init__(self, url: str):
        self.url = url
        self.engine = make_engine(url)
        # SQLite has one writer at a time and, when locked, its busy handler sleeps for up
        # to 100 ms a try: six mailbox threads lost most of their time there. Taking turns
        # in-process costs nothing (the GIL serialises the work anyway). PostgreSQL has row
        # locks and needs none of it.
        self._turn = threading.RLock() if self.engine.dialect.name == "sqlite" else nullcontext()

    def migrate(self) -> None:
        """Bring the schema up to date; raises DatabaseUnavailable when it cannot be reached."""
        with self.outage_as_unavailable():
            migrate(self.engine)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session whose transaction commits on success and rolls back on error.

        Raises DatabaseUnavailable, from the block or the commit, when the database went
        away; then nothing of the block was committed, or (the connection lost during the
        commit itself) all of it was: callers that write by mailbox and UID tell which.
        """
        with (
            self._turn,
            self.outage_as_unavailable(),
            Session(self.engine, expire_on_commit=False) as session,
        ):
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        """A Core connection in a transaction (commits on success), for lean statements.
        Raises DatabaseUnavailable as ``session`` does."""
        with self._turn, self.outage_as_unavailable(), self.engine.begin() as connection:
            yield connection

    @contextmanager
    def outage_as_unavailable(self) -> Iterator[None]:
        """Turn an error that means the database is down into DatabaseUnavailable."""
        try:
            yield
        except DatabaseUnavailable:
            raise
        except Exception as exc:
            if not is_outage(exc):
                raise
            raise DatabaseUnavailable(describe_outage(self.url, exc)) from exc

    def dispose(self) -> None:
        self.engine.dispose()
