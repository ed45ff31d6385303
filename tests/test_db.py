"""Migrations: an empty database gets the schema; running them again keeps the data."""

from datetime import UTC, datetime

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlmodel import select

from triage_daemon.db import MIGRATIONS, Database
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
