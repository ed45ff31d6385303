"""The outbox: claim due mail from the database and send it over SMTP, each exactly once.

A row is claimed (pending -> sending) by a conditional UPDATE, so several workers,
or several daemons sharing one PostgreSQL, never send the same row. A relay that
cannot be reached is the relay's fault, not the mail's: the sender backs off as a
whole and no row spends an attempt. A 4xx answer to one mail puts that row back
with exponential backoff; a 5xx, or too many attempts, marks it failed for
`status` to show. A row claimed by a process that died (kill -9) is put back at the
next start on the same host, or after ``STALE_CLAIM`` from anywhere; if that process
died in the instant between the relay's "250 OK" and our commit, the reply goes
twice with the same Message-ID: that instant is the only at-least-once gap.
A database that goes away mid-drain (issue 9) stops the drain, not the service: the
rows in hand are settled once it is back, those the relay accepted as sent.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta

import aiosmtplib
from sqlalchemy import bindparam, update
from sqlmodel import select

from .clock import Clock
from .config import SMTPSettings, TLSMode
from .db import Database, DatabaseUnavailable
from .tables import OutboxMessage, OutboxStatus

log = logging.getLogger(__name__)

STALE_CLAIM = timedelta(minutes=10)
# Small batches keep few rows in flight per connection when a process dies.
CLAIM_BATCH = 10
# While the database is unavailable the sender tries again this often (a try is one
# refused connection, or settling the rows in hand).
DATABASE_RETRY = timedelta(seconds=5)
HOST = socket.gethostname()
# Run once per mail: built once, with bound parameters.
MARK_SENT = (
    update(OutboxMessage)
    .where(OutboxMessage.id == bindparam("row_id"))
    .values(status=OutboxStatus.sent, sent_at=bindparam("sent_at"), last_error=None)
)


def process_tag() -> str:
    return f"{HOST}:{os.getpid()}"


@dataclass
class Claimed:
    id: int
    recipient: str
    raw: bytes
    attempts: int


class Outbox:
    """Database side of the outbox (synchronous; called through threads from async code)."""

    def __init__(self, db: Database, smtp: SMTPSettings, clock: Clock):
        self.db = db
        self.smtp = smtp
        self.clock = clock
        # Rows this process claimed and has not settled yet (sent, failed or put back), and
        # those of them the relay accepted. Were the database to go away in between,
        # ``recover`` settles them once it is back: an accepted row must never go again.
        self.in_hand: set[int] = set()
        self.accepted: set[int] = set()

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
                OutboxMessage.id, OutboxMessage.recipient, OutboxMessage.raw, OutboxMessage.attempts
            )
        )
        with self.db.connection() as connection:
            rows = connection.execute(statement).all()
        self.in_hand.update(row.id for row in rows)
        return sorted((Claimed(*row) for row in rows), key=lambda c: c.id)

    def sent(self, row_id: int) -> None:
        self.accepted.add(row_id)
        params = {"row_id": row_id, "sent_at": self.clock.now()}
        with self.db.connection() as connection:
            connection.execute(MARK_SENT, params)
        self.accepted.discard(row_id)
        self.in_hand.discard(row_id)

    def failed(self, item: Claimed, error: str, permanent: bool) -> None:
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
        self.in_hand.discard(item.id)
        log.warning(
            "outbox #%s to %s: %s (%s)",
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
        self.in_hand.difference_update(i.id for i in items)

    def recover(self) -> int:
        """Settle the rows left in hand when the database went away mid-drain: those the
        relay accepted are marked sent, the others put back. Returns how many were marked
        sent. Call it between drains only (no row in flight). Raises DatabaseUnavailable."""
        if not self.in_hand:
            return 0
        accepted, others = set(self.accepted), self.in_hand - self.accepted
        now = self.clock.now()
        with self.db.connection() as connection:
            if accepted:
                connection.execute(MARK_SENT, [{"row_id": i, "sent_at": now} for i in accepted])
            if others:
                connection.execute(
                    update(OutboxMessage)
                    .where(
                        OutboxMessage.id.in_(others),
                        OutboxMessage.status == OutboxStatus.sending,
                        OutboxMessage.claimed_by == process_tag(),
                    )
                    .values(status=OutboxStatus.pending, claimed_at=None, claimed_by=None)
                )
        self.accepted -= accepted
        self.in_hand -= accepted | others
        log.info("outbox: %d sent and %d untried rows settled", len(accepted), len(others))
        return len(accepted)

    def release_stale(self) -> int:
        """Put back rows left in `sending` by a process that died: one of this host's
        that no longer runs, or any claim older than STALE_CLAIM."""
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
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


class RelayDown(Exception):
    """The SMTP relay cannot be reached: back off as a whole."""


class Sender:
    """Sends claimed rows over ``connections`` parallel SMTP connections."""

    def __init__(self, outbox: Outbox, smtp: SMTPSettings):
        self.outbox = outbox
        self.smtp = smtp
        self.clock = outbox.clock
        self.down_since: datetime | None = None
        self.retry_at: datetime | None = None
        self.failures = 0
        self.last_error = ""
        self.database_down_since: datetime | None = None

    async def drain(self) -> int:
        """Send everything due now; returns how many were sent. Never raises for SMTP
        trouble, nor when the database is unavailable (it tries again later)."""
        if self.retry_at is not None and self.clock.now() < self.retry_at:
            return 0
        try:
            recovered = await asyncio.to_thread(self.outbox.recover)
        except DatabaseUnavailable as exc:
            self._database_down(exc)
            return 0
        results = await asyncio.gather(
            *(self._worker() for _ in range(self.smtp.connections)), return_exceptions=True
        )
        for other in results:
            if isinstance(other, BaseException) and not isinstance(
                other, RelayDown | DatabaseUnavailable
            ):
                raise other
        sent = recovered + sum(r for r in results if isinstance(r, int))
        unavailable = [r for r in results if isinstance(r, DatabaseUnavailable)]
        if unavailable:
            self._database_down(unavailable[0])
            return sent
        self._database_back()
        down = [r for r in results if isinstance(r, RelayDown)]
        if down and not any(isinstance(r, int) and r for r in results):
            self._relay_down(str(down[0]))
        else:
            self.failures, self.retry_at, self.down_since = 0, None, None
        return sent

    def _relay_down(self, error: str) -> None:
        self.failures += 1
        delay = min(
            self.smtp.retry_base_seconds * 2 ** (self.failures - 1), self.smtp.retry_max_seconds
        )
        self.down_since = self.down_since or self.clock.now()
        self.retry_at = self.clock.now() + timedelta(seconds=delay)
        self.last_error = error
        log.warning(
            "SMTP relay %s:%s unreachable (%s); next try in %.0f s",
            self.smtp.host,
            self.smtp.port,
            error,
            delay,
        )

    def _database_down(self, error: DatabaseUnavailable) -> None:
        if self.database_down_since is None:
            log.warning(
                "outbox: %s; trying again every %.0f s", error, DATABASE_RETRY.total_seconds()
            )
            self.database_down_since = self.clock.now()
        self.retry_at = self.clock.now() + DATABASE_RETRY

    def _database_back(self) -> None:
        if self.database_down_since is not None:
            log.info("outbox: the database is back")
            self.database_down_since = None

    async def _worker(self) -> int:
        sent = 0
        try:
            client = await self._connect()
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise RelayDown(str(exc) or repr(exc)) from exc
        try:
            while True:
                batch = await asyncio.to_thread(self.outbox.claim)
                if not batch:
                    return sent
                for index, item in enumerate(batch):
                    try:
                        # RFC 3834 section 3.3: automatic replies go with a null envelope
                        # sender, so that nothing bounces back into a loop.
                        await client.sendmail("", [item.recipient], item.raw)
                    except aiosmtplib.SMTPRecipientsRefused as exc:
                        await asyncio.to_thread(self.outbox.failed, item, str(exc), _permanent(exc))
                        continue
                    except aiosmtplib.SMTPResponseException as exc:
                        await asyncio.to_thread(self.outbox.failed, item, str(exc), exc.code >= 500)
                        continue
                    except (aiosmtplib.SMTPException, OSError) as exc:
                        # The connection broke mid-mail: that mail spends an attempt, the
                        # rest were never tried.
                        await asyncio.to_thread(
                            self.outbox.failed, item, str(exc) or repr(exc), False
                        )
                        await asyncio.to_thread(self.outbox.release, batch[index + 1 :])
                        return sent
                    await asyncio.to_thread(self.outbox.sent, item.id)
                    sent += 1
        finally:
            await _close(client)

    async def _connect(self) -> aiosmtplib.SMTP:
        s = self.smtp
        client = aiosmtplib.SMTP(
            hostname=s.host,
            port=s.port,
            timeout=s.timeout,
            use_tls=s.tls == TLSMode.ssl,
            start_tls=True if s.tls == TLSMode.starttls else False,
        )
        await client.connect()
        if s.user:
            await client.login(s.user, s.password)
        return client


def _permanent(exc: aiosmtplib.SMTPRecipientsRefused) -> bool:
    return all(getattr(r, "code", 0) >= 500 for r in exc.recipients)


async def _close(client: aiosmtplib.SMTP | None) -> None:
    if client is None:
        return None
    try:
        await client.quit()
    except (aiosmtplib.SMTPException, OSError):
        client.close()
    return None
