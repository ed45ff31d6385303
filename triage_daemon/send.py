"""Sending the outbox over SMTP: each reply once, and one mail's error never stops the others.

A relay that cannot be reached is the relay's fault, not the mail's: the sender backs
off as a whole and no row spends an attempt. A 4xx answer to one mail puts that row
back with exponential backoff; a 5xx, too many attempts, or any other error in one
mail's transaction (an address the SMTP client refuses, say) marks that row failed
with the reason, for `status` to show, and the next one goes.

Never twice: the final dot of each mail is sent by the journal writer, which records
it in the sent journal straight after, before the answer is even read (journal.py
says why), so a reply the relay may have is never put back for sending, whether the
daemon is killed or the connection breaks while the relay answers.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum

import aiosmtplib

from .config import SMTPSettings
from .db import DatabaseUnavailable
from .journal import ACCEPTED, DOT, Outcomes, SentJournal
from .journal_recovery import recover
from .outbox import Claimed, Outbox
from .smtp_session import DotUnanswered, JournalDown, Session

log = logging.getLogger(__name__)


class PauseSending(Exception):
    """Nothing can be sent now (relay unreachable, journal unwritable): back off as a whole."""


class RelayDown(PauseSending):
    """The SMTP relay cannot be reached."""


class Result(Enum):
    sent = "sent"  # the relay said 250
    assumed = "assumed"  # the dot went out, the connection died before the answer
    failed = "failed"  # recorded as a failed attempt


@dataclass
class Batch:
    """One claimed batch on one connection, and what became of each of its rows."""

    items: list[Claimed]
    outcomes: Outcomes = field(default_factory=Outcomes)
    done: set[int] = field(default_factory=set)

    def record(self, item: Claimed, result: Result) -> None:
        self.done.add(item.id)
        if result is Result.sent:
            self.outcomes.accepted.append(item.message_id)
        elif result is Result.assumed:
            self.outcomes.assumed.append(item.message_id)

    def untried(self) -> list[Claimed]:
        return [item for item in self.items if item.id not in self.done]

    def adopt(self, journal_states: dict[str, str]) -> None:
        """Rows left without a result (the batch was interrupted) whose dot the journal
        has seen go are settled by what it says, never put back."""
        for item in self.untried():
            state = journal_states.get(item.message_id)
            if state == ACCEPTED:
                self.record(item, Result.sent)
            elif state == DOT:
                self.record(item, Result.assumed)


# While the database is unavailable the sender tries again this often.
DATABASE_RETRY = timedelta(seconds=5)


class Sender:
    """Sends claimed rows over ``connections`` parallel SMTP connections."""

    def __init__(self, outbox: Outbox, smtp: SMTPSettings, journal: SentJournal):
        self.outbox = outbox
        self.smtp = smtp
        self.journal = journal
        self.clock = outbox.clock
        self.down_since: datetime | None = None
        self.retry_at: datetime | None = None
        self.database_down_since: datetime | None = None
        self.failures = 0
        self.last_error = ""

    def recover(self) -> int:
        """At start-up, before anything is sent: apply the journals of dead processes to
        the outbox, then put back the rows they had claimed but not handed over.

        Returns how many rows the journals marked sent.
        """
        found = recover(self.journal.directory, self.outbox.settle)
        confirmed = sum(len(o.accepted) for o in found)
        assumed = sum(len(o.assumed) for o in found)
        if found:
            log.info(
                "sent journal: %d journal(s) of stopped processes applied: %d replies "
                "accepted by the relay, %d whose dot went out unanswered, counted as sent",
                len(found),
                confirmed,
                assumed,
            )
        released = self.outbox.release_stale()
        if released:
            log.info("outbox: %d claimed but unsent replies put back", released)
        return confirmed + assumed

    async def drain(self) -> int:
        """Send everything due now; returns how many were sent.

        Never raises for SMTP trouble, for one mail's error, nor when the database is
        unavailable: then it tries again every DATABASE_RETRY, and the rows it had in hand
        are settled once the database is back (those the relay has, from the journal;
        the others put back), not ten minutes later.
        """
        if self.retry_at is not None and self.clock.now() < self.retry_at:
            return 0
        try:
            if self.database_down_since is not None:
                await asyncio.to_thread(self._after_outage)
            return await self._drain()
        except DatabaseUnavailable as exc:
            self._database_down(exc)
            return 0

    def _after_outage(self) -> None:
        """The database is back: settle what the journal holds, put back the rest of this
        process's claims (between drains none of them is in flight)."""
        if self.journal.unsettled:
            self._settle(self.journal.outcomes())
        released = self.outbox.release_own()
        log.info("outbox: the database is back; %d claimed rows put back", released)
        self.database_down_since = None

    def _database_down(self, error: DatabaseUnavailable) -> None:
        if self.database_down_since is None:
            log.warning(
                "outbox: %s; trying again every %.0f s", error, DATABASE_RETRY.total_seconds()
            )
            self.database_down_since = self.clock.now()
        self.retry_at = self.clock.now() + DATABASE_RETRY

    async def _drain(self) -> int:
        if self.journal.unsettled:
            # An earlier batch reached the relay but its database update failed.
            await asyncio.to_thread(self._settle, self.journal.outcomes())
        if self.journal.stopped:
            await asyncio.to_thread(self._restart_journal)
        loop = asyncio.get_running_loop()
        self.journal.watch(loop)
        try:
            results = await asyncio.gather(
                *(self._worker() for _ in range(self.smtp.connections)), return_exceptions=True
            )
        finally:
            self.journal.unwatch(loop)
        self.journal.compact()
        paused = [r for r in results if isinstance(r, PauseSending)]
        for other in results:
            if isinstance(other, BaseException) and not isinstance(other, PauseSending):
                raise other
        if self.journal.failing:
            self._pause(str(self.journal.failing))
        elif paused and not any(isinstance(r, int) and r for r in results):
            self._pause(str(paused[0]))
        else:
            self.failures, self.retry_at, self.down_since = 0, None, None
        return sum(r for r in results if isinstance(r, int))

    def close(self) -> None:
        self.journal.close()

    def _restart_journal(self) -> None:
        """A new writer and journal; the old journal is applied to the outbox at once."""
        old = self.journal
        log.error("the journal writer of %s has stopped; starting another", old.path)
        old.close()
        self.journal = SentJournal(old.directory)
        # The old writer is gone, so its file is unlocked: applied now, not at the next
        # start (the new journal's writer holds its own, and is left alone).
        recover(old.directory, self.outbox.settle)

    def _pause(self, error: str) -> None:
        self.failures += 1
        delay = min(
            self.smtp.retry_base_seconds * 2 ** (self.failures - 1), self.smtp.retry_max_seconds
        )
        self.down_since = self.down_since or self.clock.now()
        self.retry_at = self.clock.now() + timedelta(seconds=delay)
        self.last_error = error
        log.warning(
            "sending paused (relay %s:%s): %s; next try in %.0f s",
            self.smtp.host,
            self.smtp.port,
            error,
            delay,
        )

    async def _worker(self) -> int:
        try:
            session = await Session.open(self.smtp, self.journal)
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise RelayDown(str(exc) or repr(exc)) from exc
        sent = 0
        try:
            while batch := await asyncio.to_thread(self.outbox.claim):
                sent += await self._send_batch(session, Batch(batch))
                if not session.usable or self.journal.failing:
                    break
            return sent
        finally:
            await session.close()

    async def _send_batch(self, session: Session, batch: Batch) -> int:
        """Send one batch; returns how many went. Whatever happens, the rows that went are
        settled and the untried ones put back."""
        try:
            for item in batch.items:
                result = await self._send_one(session, item)
                batch.record(item, result)
                # Without a journal the database is the only record: it gets this one's
                # outcome at once, and nothing more is sent until the journal works.
                if not session.usable or self.journal.failing:
                    break
        finally:
            batch.adopt(self.journal.unsettled)
            await asyncio.to_thread(self._finish, batch)
        return len(batch.outcomes.accepted) + len(batch.outcomes.assumed)

    def _finish(self, batch: Batch) -> None:
        try:
            if batch.outcomes:
                self._settle(batch.outcomes)
        finally:
            self.outbox.release(batch.untried())

    def _settle(self, outcomes: Outcomes) -> None:
        self.outbox.settle(outcomes)
        self.journal.settled([*outcomes.accepted, *outcomes.assumed])

    async def _send_one(self, session: Session, item: Claimed) -> Result:
        """One mail's transaction; whatever happens, its outcome is what it returns."""
        try:
            # RFC 3834 section 3.3: automatic replies go with a null envelope sender, so
            # that nothing bounces back into a loop.
            await session.send("", item.recipient, item.raw, item.message_id)
            return Result.sent
        except DotUnanswered as exc:
            log.warning("outbox #%s to %r: %s", item.id, item.recipient, exc)
            return Result.assumed
        except JournalDown as exc:
            # Not this mail's fault: it goes back untouched with the rest.
            raise PauseSending(str(exc)) from exc
        except aiosmtplib.SMTPResponseException as exc:
            # RFC 5321 section 4.2.1: 4yz is transient, 5yz permanent.
            return await self._failed(session, item, str(exc), exc.code >= 500)
        except (aiosmtplib.SMTPException, OSError) as exc:
            # The connection broke before the dot: that mail spends an attempt.
            session.abort()
            await asyncio.to_thread(self.outbox.failed, item, str(exc) or repr(exc), False)
            return Result.failed
        except Exception as exc:
            # Not the relay's answer but this mail's own fault (aiosmtplib refuses a
            # control character in an address with ValueError): it will fail again.
            log.exception("outbox #%s to %r: cannot be sent", item.id, item.recipient)
            reason = f"cannot be sent: {type(exc).__name__}: {exc}"
            return await self._failed(session, item, reason, True)

    async def _failed(self, session: Session, item: Claimed, reason: str, permanent: bool):
        await asyncio.to_thread(self.outbox.failed, item, reason, permanent)
        await session.reset()
        return Result.failed
