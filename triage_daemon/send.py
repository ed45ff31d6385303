"""The outbox: claim due mail from the database and send it over SMTP, each exactly once.

A row is claimed (pending -> sending) by a conditional UPDATE, so several workers,
or several daemons sharing one PostgreSQL, never send the same row. A temporary
failure (server down, 4xx) puts it back with exponential backoff; a permanent one
(5xx for the recipient) or too many attempts marks it failed, for `status` to show.
A row left in `sending` by a crash between the SMTP server's acceptance and our
commit is sent again after ``STALE_CLAIM`` (same Message-ID: a receiver that
deduplicates sees one mail); that window is the only at-least-once gap.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta

import aiosmtplib
from sqlalchemy import update
from sqlmodel import select

from .clock import Clock
from .config import SMTPSettings, TLSMode
from .db import Database
from .tables import OutboxMessage, OutboxStatus

log = logging.getLogger(__name__)

STALE_CLAIM = timedelta(minutes=10)
CLAIM_BATCH = 20


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

    def claim(self, limit: int = CLAIM_BATCH) -> list[Claimed]:
        now = self.clock.now()
        with self.db.session() as session:
            rows = session.exec(
                select(OutboxMessage.id, OutboxMessage.recipient, OutboxMessage.attempts)
                .where(OutboxMessage.status == OutboxStatus.pending, OutboxMessage.next_attempt <= now)
                .order_by(OutboxMessage.id)
                .limit(limit)
            ).all()
            claimed_ids = []
            for row_id, _recipient, _attempts in rows:
                result = session.exec(
                    update(OutboxMessage)
                    .where(OutboxMessage.id == row_id, OutboxMessage.status == OutboxStatus.pending)
                    .values(status=OutboxStatus.sending, claimed_at=now)
                )
                if result.rowcount == 1:
                    claimed_ids.append(row_id)
            if not claimed_ids:
                return []
            full = session.exec(select(OutboxMessage).where(OutboxMessage.id.in_(claimed_ids))).all()
            return [Claimed(m.id, m.recipient, m.raw, m.attempts) for m in full]

    def sent(self, row_id: int) -> None:
        with self.db.session() as session:
            session.exec(update(OutboxMessage).where(OutboxMessage.id == row_id).values(
                status=OutboxStatus.sent, sent_at=self.clock.now(), last_error=None))

    def failed(self, item: Claimed, error: str, permanent: bool) -> None:
        attempts = item.attempts + 1
        give_up = permanent or attempts >= self.smtp.max_attempts
        delay = min(self.smtp.retry_base_seconds * 2 ** (attempts - 1), self.smtp.retry_max_seconds)
        with self.db.session() as session:
            session.exec(update(OutboxMessage).where(OutboxMessage.id == item.id).values(
                status=OutboxStatus.failed if give_up else OutboxStatus.pending,
                attempts=attempts, last_error=error[:2000],
                next_attempt=self.clock.now() + timedelta(seconds=delay)))
        log.warning("outbox #%s to %s: %s (%s)", item.id, item.recipient, error,
                    "gave up" if give_up else f"retry in {delay:.0f} s")

    def release_stale(self) -> int:
        """Put back rows left in `sending` by a process that died."""
        cutoff = self.clock.now() - STALE_CLAIM
        with self.db.session() as session:
            result = session.exec(update(OutboxMessage).where(
                OutboxMessage.status == OutboxStatus.sending, OutboxMessage.claimed_at < cutoff
            ).values(status=OutboxStatus.pending))
            return result.rowcount

    def due(self) -> int:
        """How many rows are pending and due now."""
        with self.db.session() as session:
            return len(session.exec(select(OutboxMessage.id).where(
                OutboxMessage.status == OutboxStatus.pending,
                OutboxMessage.next_attempt <= self.clock.now())).all())


class Sender:
    """Sends claimed rows over ``connections`` parallel SMTP connections."""

    def __init__(self, outbox: Outbox, smtp: SMTPSettings):
        self.outbox = outbox
        self.smtp = smtp

    async def drain(self) -> int:
        """Send everything due now; returns how many were sent. Never raises for SMTP trouble."""
        counts = await asyncio.gather(*(self._worker() for _ in range(self.smtp.connections)))
        return sum(counts)

    async def _worker(self) -> int:
        sent = 0
        client: aiosmtplib.SMTP | None = None
        try:
            while True:
                batch = await asyncio.to_thread(self.outbox.claim)
                if not batch:
                    return sent
                for index, item in enumerate(batch):
                    try:
                        client = client or await self._connect()
                        # RFC 3834 section 3.3: automatic replies go with a null envelope
                        # sender, so that nothing bounces back into a loop.
                        await client.sendmail("", [item.recipient], item.raw)
                    except aiosmtplib.SMTPRecipientsRefused as exc:
                        await asyncio.to_thread(self.outbox.failed, item, str(exc), _permanent(exc))
                        continue
                    except (aiosmtplib.SMTPException, OSError) as exc:
                        client = await _close(client)
                        permanent = isinstance(exc, aiosmtplib.SMTPResponseException) and exc.code >= 500
                        for rest in batch[index:]:
                            await asyncio.to_thread(self.outbox.failed, rest, str(exc) or repr(exc), permanent and rest is item)
                        return sent
                    await asyncio.to_thread(self.outbox.sent, item.id)
                    sent += 1
        finally:
            await _close(client)

    async def _connect(self) -> aiosmtplib.SMTP:
        s = self.smtp
        client = aiosmtplib.SMTP(hostname=s.host, port=s.port, timeout=s.timeout,
                                 use_tls=s.tls == TLSMode.ssl,
                                 start_tls=True if s.tls == TLSMode.starttls else False)
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
