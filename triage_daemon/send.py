"""Sending the outbox over SMTP: each reply at most once, and one bad reply never stops the rest.

A relay that cannot be reached is the relay's fault, not the mail's: the sender backs
off as a whole and no row spends an attempt. A 4xx answer to one mail puts that row
back with exponential backoff; a 5xx, too many attempts, or any other error in one
mail's transaction (an address the SMTP client refuses, say) marks that row failed
with the reason, for `status` to show, and the next one goes.

Never twice: the final dot of each mail is preceded by a durable line in the sent
journal (journal.py says why there and not after the 250), so a reply the relay may
have is never put back for sending, whether the daemon is killed or the connection
breaks while the relay answers. What remains is the other side of that choice: a
crash in the microseconds between that line and the dot's write() loses the reply
(it is counted as sent), as does one while a relay that would have refused the mail
at the dot is answering.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum

import aiosmtplib
from aiosmtplib import SMTPDataError, SMTPStatus

from .config import SMTPSettings, TLSMode
from .journal import JournalError, Outcomes, SentJournal, recover
from .outbox import Claimed, Outbox

log = logging.getLogger(__name__)

# RFC 5321 section 4.5.3.2.6: wait 10 minutes for the answer to the final dot, however
# short the other timeouts; giving up sooner is what RFC 1047 says makes duplicates.
DOT_TIMEOUT = 600.0
LINE_END = re.compile(rb"\r\n|\r|\n")
# RFC 5321 section 4.5.2: a line of the message that starts with "." gets one more.
LEADING_DOT = re.compile(rb"^\.", re.MULTILINE)


class PauseSending(Exception):
    """Nothing can be sent now (relay unreachable, journal unwritable): back off as a whole."""


class RelayDown(PauseSending):
    """The SMTP relay cannot be reached."""


class DotUnanswered(Exception):
    """The final dot was written but no answer was read: the relay may have the mail."""


class Result(Enum):
    sent = "sent"  # the relay said 250
    assumed = "assumed"  # the dot went out, the connection died before the answer
    failed = "failed"  # recorded as a failed attempt; the connection is usable
    broken = "broken"  # recorded as a failed attempt; the connection is not


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


class Sender:
    """Sends claimed rows over ``connections`` parallel SMTP connections."""

    def __init__(self, outbox: Outbox, smtp: SMTPSettings, journal: SentJournal):
        self.outbox = outbox
        self.smtp = smtp
        self.journal = journal
        self.clock = outbox.clock
        self.down_since: datetime | None = None
        self.retry_at: datetime | None = None
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

        Never raises for SMTP trouble or for one mail's error; a database error is
        raised after the claimed rows that were not handed over have been put back.
        """
        if self.retry_at is not None and self.clock.now() < self.retry_at:
            return 0
        if self.journal.unsettled:
            # An earlier batch reached the relay but its database update failed.
            await asyncio.to_thread(self._settle, self.journal.outcomes())
        results = await asyncio.gather(
            *(self._worker() for _ in range(self.smtp.connections)), return_exceptions=True
        )
        self.journal.compact()
        paused = [r for r in results if isinstance(r, PauseSending)]
        for other in results:
            if isinstance(other, BaseException) and not isinstance(other, PauseSending):
                raise other
        if paused and not any(isinstance(r, int) and r for r in results):
            self._pause(str(paused[0]))
        else:
            self.failures, self.retry_at, self.down_since = 0, None, None
        return sum(r for r in results if isinstance(r, int))

    def close(self) -> None:
        self.journal.close()

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
            client = await self._connect()
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise RelayDown(str(exc) or repr(exc)) from exc
        sent = 0
        try:
            while batch := await asyncio.to_thread(self.outbox.claim):
                done, usable = await self._send_batch(client, Batch(batch))
                sent += done
                if not usable:
                    break
            return sent
        finally:
            await _close(client)

    async def _send_batch(self, client: aiosmtplib.SMTP, batch: Batch) -> tuple[int, bool]:
        """Send one batch; returns how many went and whether the connection is still usable.

        Whatever happens, the rows that went are settled and the untried ones put back.
        """
        try:
            for item in batch.items:
                result = await self._send_one(client, item)
                batch.record(item, result)
                if result in (Result.broken, Result.assumed):
                    break
        finally:
            await asyncio.to_thread(self._finish, batch)
        sent = len(batch.outcomes.accepted) + len(batch.outcomes.assumed)
        return sent, len(batch.done) == len(batch.items) and client.is_connected

    def _finish(self, batch: Batch) -> None:
        try:
            if batch.outcomes:
                self._settle(batch.outcomes)
        finally:
            self.outbox.release(batch.untried())

    def _settle(self, outcomes: Outcomes) -> None:
        self.outbox.settle(outcomes)
        self.journal.settled([*outcomes.accepted, *outcomes.assumed])

    async def _send_one(self, client: aiosmtplib.SMTP, item: Claimed) -> Result:
        """One mail's transaction; every outcome but an unwritable journal is recorded."""
        try:
            await self._transaction(client, item)
            return Result.sent
        except DotUnanswered as exc:
            log.warning("outbox #%s to %r: %s", item.id, item.recipient, exc)
            return Result.assumed
        except JournalError as exc:
            raise PauseSending(str(exc)) from exc
        except aiosmtplib.SMTPResponseException as exc:
            # RFC 5321 section 4.2.1: 4yz is transient, 5yz permanent.
            return await self._failed(client, item, str(exc), exc.code >= 500)
        except (aiosmtplib.SMTPException, OSError) as exc:
            # The connection broke before the dot: that mail spends an attempt.
            client.close()
            await asyncio.to_thread(self.outbox.failed, item, str(exc) or repr(exc), False)
            return Result.broken
        except Exception as exc:
            # Not the relay's answer but this mail's own fault (aiosmtplib refuses a
            # control character in an address with ValueError): it will fail again.
            log.exception("outbox #%s to %r: cannot be sent", item.id, item.recipient)
            reason = f"cannot be sent: {type(exc).__name__}: {exc}"
            return await self._failed(client, item, reason, True)

    async def _failed(
        self, client: aiosmtplib.SMTP, item: Claimed, reason: str, permanent: bool
    ) -> Result:
        await asyncio.to_thread(self.outbox.failed, item, reason, permanent)
        if await _reset(client):
            return Result.failed
        return Result.broken

    async def _transaction(self, client: aiosmtplib.SMTP, item: Claimed) -> None:
        # RFC 3834 section 3.3: automatic replies go with a null envelope sender, so that
        # nothing bounces back into a loop.
        await client.mail("")
        await client.rcpt(item.recipient)
        reply = await client.execute_command(b"DATA")
        if reply.code != SMTPStatus.start_input:
            raise SMTPDataError(reply.code, reply.message)
        await self._data(client, item)

    async def _data(self, client: aiosmtplib.SMTP, item: Claimed) -> None:
        """The message, the journal line, then the final dot.

        aiosmtplib writes the message and its final dot in one piece and has no hook
        between them, which is the one place the journal line must go: before it the
        relay cannot have the mail (a connection closed before the dot is discarded,
        RFC 5321 section 4.1.1.4), after it the relay may. So this part of the DATA
        exchange is written here, on the client's own protocol object.
        """
        protocol = client.protocol
        if protocol is None or protocol.transport is None:
            raise aiosmtplib.SMTPServerDisconnected("connection lost before the data")
        protocol.write(_stuffed(item.raw))
        try:
            await _flushed(protocol.transport, self.smtp.timeout)
            self.journal.before_dot(item.message_id)
        except BaseException:
            # Inside DATA only the dot ends the mail, and no command can be sent: drop the
            # connection, and the relay discards what it has.
            client.close()
            raise
        try:
            protocol.write(b".\r\n")
            reply = await protocol.read_response(timeout=DOT_TIMEOUT)
        except (aiosmtplib.SMTPException, OSError) as exc:
            client.close()
            raise DotUnanswered(f"no answer to the final dot ({exc or repr(exc)})") from exc
        if reply.code != SMTPStatus.completed:
            self.journal.refused(item.message_id)
            raise SMTPDataError(reply.code, reply.message)
        self.journal.accepted(item.message_id)

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


def _stuffed(raw: bytes) -> bytes:
    """The message as DATA carries it: CRLF line ends, leading dots doubled, a final CRLF."""
    data = LEADING_DOT.sub(b"..", LINE_END.sub(b"\r\n", raw))
    return data if data.endswith(b"\r\n") else data + b"\r\n"


async def _flushed(transport: asyncio.BaseTransport, timeout: float) -> None:
    """Wait until the message has left our buffers: the dot's write() is then the moment
    the relay can have the mail, and the journal line just before it says so."""
    deadline = asyncio.get_running_loop().time() + timeout
    while transport.get_write_buffer_size():  # type: ignore[attr-defined]
        if asyncio.get_running_loop().time() > deadline:
            raise aiosmtplib.SMTPTimeoutError("the relay stopped reading the message")
        await asyncio.sleep(0.001)


async def _reset(client: aiosmtplib.SMTP) -> bool:
    """RSET after a mail's failure, so the next starts on a clean envelope; False if the
    connection is no longer usable."""
    if not client.is_connected:
        return False
    try:
        await client.rset()
    except (aiosmtplib.SMTPException, OSError):
        client.close()
        return False
    return True


async def _close(client: aiosmtplib.SMTP | None) -> None:
    if client is None or not client.is_connected:
        return None
    try:
        await client.quit()
    except (aiosmtplib.SMTPException, OSError):
        client.close()
    return None
