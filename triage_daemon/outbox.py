"""The outbox's database side: claim due replies, record how each one went, put orphans back.

A row is claimed (pending -> sending) by a conditional UPDATE, so several workers, or
several daemons sharing one PostgreSQL, never send the same row. Whether a claimed row
reached the relay is first known to the sent journal (journal.py), then settled here
by Message-ID, idempotently; a row claimed by a process that died (kill -9) is put
back at the next start on the same host, after its journal has been applied, or after
``STALE_CLAIM`` from anywhere.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, update
from sqlmodel import select

from .clock import Clock
from .config import SMTPSettings
from .db import Database
from .journal import Outcomes, pid_alive
from .tables import OutboxMessage, OutboxStatus

log = logging.getLogger(__name__)

STALE_CLAIM = timedelta(minutes=10)
# Small batches keep few rows in flight per connection when a process dies.
CLAIM_BATCH = 10
# Well under SQLite's limit on bound parameters in one statement.
SETTLE_CHUNK = 500
HOST = socket.gethostname()
ASSUMED_SENT = (
    "the relay's answer to the end of the data was never read (the connection or the "
    "daemon died after the final dot): counted as sent, so that it is never sent twice"
)
# Run for every batch: built once, with bound parameters.
SETTLE = (
    update(OutboxMessage)
    .where(
        OutboxMessage.message_id.in_(bindparam("message_ids", expanding=True)),
        OutboxMessage.status != OutboxStatus.sent,
    )
    .values(status=OutboxStatus.sent, sent_at=bindparam("sent_at"), last_error=bindparam("note"))
)


def process_tag() -> str:
    return f"{HOST}:{os.getpid()}"


@dataclass
class Claimed:
    id: int
    message_id: str
    recipient: str
    raw: bytes
    attempts: int


class Outbox:
    """Database side of the outbox (synchronous; called through threads from async code)."""

    def __init__(self, db: Database, smtp: SMTPSettings, clock: Clock):
        self.db = db
        self.smtp = smtp
        self.clock = clock

    def claim(self, limit: int = CLAIM_BATCH) -> list[Claimed]:
        """Take up to ``limit`` due rows in one statement (pending -> sending).

        The UPDATE re-checks ``status = pending`` on each row it changes, so of two
        workers (or two daemons on one PostgreSQL) racing for a row only one gets it;
        on PostgreSQL the sub-select also skips rows another transaction holds.
        """
        now = self.clock.now()
        due = (
            select(OutboxMessage.id)
            .where(OutboxMessage.status == OutboxStatus.pending, OutboxMessage.next_attempt <= now)
            .order_by(OutboxMessage.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        statement = (
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(due), OutboxMessage.status == OutboxStatus.pending)
            .values(status=OutboxStatus.sending, claimed_at=now, claimed_by=process_tag())
            .returning(
                OutboxMessage.id,
                OutboxMessage.message_id,
                OutboxMessage.recipient,
                OutboxMessage.raw,
                OutboxMessage.attempts,
            )
        )
        with self.db.connection() as connection:
            rows = connection.execute(statement).all()
        return sorted((Claimed(*row) for row in rows), key=lambda c: c.id)

    def settle(self, outcomes: Outcomes) -> int:
        """Mark sent what the journal says reached the relay; returns the rows changed.

        Idempotent: rows already sent are left as they are, so a journal applied twice
        (a crash between this commit and the journal's deletion) changes nothing.
        """
        now = self.clock.now()
        changed = 0
        with self.db.connection() as connection:
            for ids, note in ((outcomes.accepted, None), (outcomes.assumed, ASSUMED_SENT)):
                for start in range(0, len(ids), SETTLE_CHUNK):
                    params = {
                        "message_ids": ids[start : start + SETTLE_CHUNK],
                        "sent_at": now,
                        "note": note,
                    }
                    changed += connection.execute(SETTLE, params).rowcount
        return changed

    def failed(self, item: Claimed, error: str, permanent: bool) -> None:
        """Record a failed attempt: back to pending with backoff, or failed for good."""
        attempts = item.attempts + 1
        give_up = permanent or attempts >= self.smtp.max_attempts
        delay = min(self.smtp.retry_base_seconds * 2 ** (attempts - 1), self.smtp.retry_max_seconds)
        with self.db.session() as session:
            session.exec(
                update(OutboxMessage)
                .where(OutboxMessage.id == item.id)
                .values(
                    status=OutboxStatus.failed if give_up else OutboxStatus.pending,
                    attempts=attempts,
                    last_error=error[:2000],
                    next_attempt=self.clock.now() + timedelta(seconds=delay),
                )
            )
        log.warning(
            "outbox #%s to %r: %s (%s)",
            item.id,
            item.recipient,
            error,
            "gave up" if give_up else f"retry in {delay:.0f} s",
        )

    def release(self, items: list[Claimed]) -> None:
        """Put claimed rows back untouched (they were never tried)."""
        if not items:
            return
        with self.db.session() as session:
            session.exec(
                update(OutboxMessage)
                .where(
                    OutboxMessage.id.in_([i.id for i in items]),
                    OutboxMessage.status == OutboxStatus.sending,
                )
                .values(status=OutboxStatus.pending, claimed_at=None, claimed_by=None)
            )

    def release_own(self) -> int:
        """Put back every row this process has in `sending` (call between drains only,
        after its journal was settled: none of them is then in flight or sent)."""
        with self.db.session() as session:
            result = session.exec(
                update(OutboxMessage)
                .where(
                    OutboxMessage.status == OutboxStatus.sending,
                    OutboxMessage.claimed_by == process_tag(),
                )
                .values(status=OutboxStatus.pending, claimed_at=None, claimed_by=None)
            )
            return result.rowcount or 0

    def release_stale(self) -> int:
        """Put back rows left in `sending` by a process that died: one of this host's
        that no longer runs, or any claim older than STALE_CLAIM.

        Call it only after the journals of dead processes have been settled: a row they
        had handed to the relay is `sent` by then, and only the others go back.
        """
        cutoff = self.clock.now() - STALE_CLAIM
        with self.db.session() as session:
            rows = session.exec(
                select(OutboxMessage.id, OutboxMessage.claimed_by, OutboxMessage.claimed_at).where(
                    OutboxMessage.status == OutboxStatus.sending
                )
            ).all()
            orphans = [row_id for row_id, by, at in rows if _orphan(by, at, cutoff)]
            if orphans:
                session.exec(
                    update(OutboxMessage)
                    .where(OutboxMessage.id.in_(orphans))
                    .values(status=OutboxStatus.pending, claimed_at=None, claimed_by=None)
                )
            return len(orphans)

    def due(self) -> int:
        """How many rows are pending and due now."""
        with self.db.session() as session:
            return len(
                session.exec(
                    select(OutboxMessage.id).where(
                        OutboxMessage.status == OutboxStatus.pending,
                        OutboxMessage.next_attempt <= self.clock.now(),
                    )
                ).all()
            )


def _orphan(claimed_by: str | None, claimed_at: datetime | None, cutoff: datetime) -> bool:
    if claimed_at is None or claimed_at < cutoff:
        return True
    host, _, pid = (claimed_by or "").rpartition(":")
    if host != HOST or not pid.isdigit() or int(pid) == os.getpid():
        return False
    return not pid_alive(int(pid))
