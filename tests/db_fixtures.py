"""Database fixtures: the same tests run on SQLite and on a real PostgreSQL.

PostgreSQL is reached at $TRIAGE_TEST_PG (default: postgres on 127.0.0.1:5432, trust
auth); each test gets a database of its own, dropped afterwards. It is not skipped
when absent: `.ci/run` makes sure it answers, and a missing server is a failure.
"""

from __future__ import annotations

import os
import uuid

import psycopg
import pytest
from sqlalchemy.engine import make_url

PG_ADMIN_URL = os.environ.get("TRIAGE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
BACKENDS = ("sqlite", "postgresql")


def _admin_conninfo() -> str:
    url = make_url(PG_ADMIN_URL)
    parts = [
        f"host={url.host or '127.0.0.1'}",
        f"port={url.port or 5432}",
        f"user={url.username or 'postgres'}",
        f"dbname={url.database or 'postgres'}",
    ]
    if url.password:
        parts.append(f"password={url.password}")
    return " ".join(parts)


def create_pg_database() -> tuple[str, str]:
    """A new empty PostgreSQL database: (its URL, its name)."""
    name = f"triage_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_admin_conninfo(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(PG_ADMIN_URL).set(drivername="postgresql+psycopg", database=name)
    return url.render_as_string(hide_password=False), name


def drop_pg_database(name: str) -> None:
    with psycopg.connect(_admin_conninfo(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=BACKENDS)
def db_url(request, tmp_path):
    """A database URL for an empty database, once per backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'triage.sqlite3'}"
        return
    url, name = create_pg_database()
    try:
        yield url
    finally:
        drop_pg_database(name)


@pytest.fixture
def database(db_url):
    """A migrated triage_daemon Database on each backend."""
    from triage_daemon.db import Database

    db = Database(db_url)
    db.migrate()
    try:
        yield db
    finally:
        db.dispose()
