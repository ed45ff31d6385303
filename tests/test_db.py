"""Migrations keep data; a database outage is told apart from an error about the data.

The outage tests with a real restart of PostgreSQL are in test_chaos_db.py.
"""

import socket
from datetime import UTC, datetime

import psycopg
import psycopg.errors as pg_errors
import pytest
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import exc as sa_exc
from sqlalchemy import text
from sqlmodel import select

from triage_daemon.db import MIGRATIONS, Database, DatabaseUnavailable, is_outage
from triage_daemon.tables import Ticket, TicketStatus


def test_migrations_reach_head_and_keep_data(db_url):
    db = Database(db_url)
    db.migrate()
    now = datetime(2020, 3, 24, 9, 0, tzinfo=UTC)
    with db.session() as session:
        session.add(
            Ticket(
                mailbox="pekes1",
                message_id="a@b",
                sender="t@sch.gr",
                created=now,
                updated=now,
                status=TicketStatus.open,
            )
        )
    db.migrate()  # an upgrade on a database that is already current
    with db.session() as session:
        (ticket,) = session.exec(select(Ticket)).all()
    assert ticket.message_id == "a@b" and ticket.created == now
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    with db.engine.connect() as connection:
        assert MigrationContext.configure(connection).get_current_revision() == head
    db.dispose()


def test_sqlite_runs_in_wal_mode(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'x.sqlite3'}")
    with db.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    db.dispose()


def ticket(message_id: str) -> Ticket:
    now = datetime(2020, 3, 24, 9, 0, tzinfo=UTC)
    return Ticket(
        mailbox="pekes1",
        message_id=message_id,
        sender="t@sch.gr",
        created=now,
        updated=now,
        status=TicketStatus.open,
    )


def unused_port() -> int:
    """A loopback port nothing listens on: connections to it are refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wrapped(orig: Exception, invalidated: bool = False) -> sa_exc.DBAPIError:
    """``orig`` as SQLAlchemy hands it on."""
    return sa_exc.DBAPIError.instance(
        "SELECT 1", {}, orig, psycopg.Error, connection_invalidated=invalidated
    )


@pytest.mark.parametrize(
    ("error", "outage"),
    [
        (psycopg.OperationalError("connection failed: Connection refused"), True),
        (pg_errors.AdminShutdown("terminating connection due to administrator command"), True),
        (pg_errors.CannotConnectNow("the database system is starting up"), True),
        (pg_errors.TooManyConnections("too many clients already"), True),
        (pg_errors.DiskFull("could not extend file"), True),
        (pg_errors.DeadlockDetected("deadlock detected"), True),
        (psycopg.InterfaceError("the connection is closed"), True),
        (wrapped(pg_errors.AdminShutdown("terminating connection")), True),
        (wrapped(psycopg.DatabaseError("server closed the connection"), invalidated=True), True),
        (sa_exc.TimeoutError("QueuePool limit of size 10 overflow 10 reached"), True),
        # A statement timeout or a value too big for an index may be one mail's doing: that
        # mail is quarantined rather than holding its mailbox up for ever.
        (pg_errors.QueryCanceled("canceling statement due to statement timeout"), False),
        (pg_errors.ProgramLimitExceeded("index row size exceeds maximum"), False),
        (wrapped(pg_errors.UniqueViolation("duplicate key")), False),
        (wrapped(pg_errors.UndefinedTable("relation does not exist")), False),
        (ValueError("not a database error"), False),
    ],
    ids=[
        "refused",
        "admin-shutdown",
        "starting-up",
        "too-many-connections",
        "disk-full",
        "deadlock",
        "interface-closed",
        "wrapped-shutdown",
        "invalidated",
        "pool-timeout",
        "query-canceled",
        "program-limit",
        "unique-violation",
        "undefined-table",
        "value-error",
    ],
)
def test_outage_told_from_data_errors(error, outage):
    assert is_outage(error) is outage


def test_outage_found_as_the_cause():
    try:
        try:
            raise pg_errors.AdminShutdown("terminating connection")
        except psycopg.Error as exc:
            raise RuntimeError("while recording the mail") from exc
    except RuntimeError as exc:
        assert is_outage(exc)


def test_refused_postgresql_is_unavailable_and_named_without_password():
    port = unused_port()
    db = Database(f"postgresql://triage:s3cret@127.0.0.1:{port}/triage")
    for use in (db.session, db.connection):
        with pytest.raises(DatabaseUnavailable) as info, use() as handle:
            handle.execute(text("SELECT 1"))
        message = str(info.value)
        assert f"127.0.0.1:{port}/triage is unavailable" in message
        assert "Connection refused" in message
        assert "s3cret" not in message
    with pytest.raises(DatabaseUnavailable):
        db.migrate()
    db.dispose()


def test_sqlite_that_cannot_be_opened_is_unavailable(tmp_path):
    # A folder where the database file should be: SQLite answers SQLITE_CANTOPEN.
    db = Database(f"sqlite:///{tmp_path}")
    with pytest.raises(DatabaseUnavailable, match="unable to open database file"):
        db.migrate()
    db.dispose()


def test_errors_about_the_data_pass_through(database):
    with database.session() as session:
        session.add(ticket("same@id"))
    with pytest.raises(sa_exc.IntegrityError), database.session() as session:
        session.add(ticket("same@id"))
    # SQLite reports a missing table as an OperationalError, PostgreSQL as a
    # ProgrammingError: neither is an outage.
    with pytest.raises(sa_exc.DBAPIError) as info, database.connection() as connection:
        connection.execute(text("SELECT * FROM no_such_table"))
    assert not isinstance(info.value, DatabaseUnavailable)
    assert not is_outage(info.value)


def test_the_migrations_make_the_schema_the_tables_describe(db_url):
    """A column or index added to tables.py without a migration (or the reverse) fails."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext
    from sqlmodel import SQLModel

    db = Database(db_url)
    db.migrate()
    try:
        with db.engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": False})
            diffs = compare_metadata(context, SQLModel.metadata)
    finally:
        db.dispose()
    # alembic_version is Alembic's own table.
    assert [d for d in diffs if "alembic_version" not in repr(d)] == []
