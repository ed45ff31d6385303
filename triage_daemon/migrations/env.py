"""Alembic environment: runs migrations on the connection triage-daemon hands it."""

from alembic import context
from sqlmodel import SQLModel

from triage_daemon import tables  # noqa: F401  (registers the tables on the metadata)

target_metadata = SQLModel.metadata


def run_migrations() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("triage-daemon runs its migrations itself: use `triage-daemon migrate`")
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
