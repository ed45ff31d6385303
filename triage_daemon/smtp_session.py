"""One SMTP connection to the relay: the envelope, the message, and a final dot the journal sends.

aiosmtplib writes a message and its final dot in one call, and reads the answer in the
same call, with no hook between them; that is the one place the journal must act:
before the dot leaves, the relay cannot have the mail (a connection dropped inside DATA
is no mail, RFC 5321 section 4.1.1.4), after it, it may. So the DATA exchange is written
here, on the client's own protocol object, as aiosmtplib writes it, and on a plain
connection the dot itself is sent by the journal writer (journal.py says why).
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass

import aiosmtplib
from aiosmtplib import SMTPDataError, SMTPStatus

from .config import SMTPSettings, TLSMode
from .journal import SentJournal

FINAL_DOT = b".\r\n"
# RFC 5321 section 4.5.3.2.6: wait 10 minutes for the answer to the final dot, however
# short the other timeouts; giving up sooner is what RFC 1047 says makes duplicates.
DOT_TIMEOUT = 600.0
LINE_END = re.compile(rb"\r\n|\r|\n")
# RFC 5321 section 4.5.2: a line of the message that starts with "." gets one more.
LEADING_DOT = re.compile(rb"^\.", re.MULTILINE)


class DotUnanswered(Exception):
    """The final dot went out but no answer was read: the relay may have the mail."""


class JournalDown(Exception):
    """The journal writer cannot be asked: no dot may go out."""


@dataclass
class Session:
    """An aiosmtplib client and, on a plain connection, its id at the journal writer."""

    client: aiosmtplib.SMTP
    journal: SentJournal
    writer_id: str | None

    @classmethod
    async def open(cls, smtp: SMTPSettings, journal: SentJournal) -> Session:
        """Connect (and log in); raises aiosmtplib.SMTPException or OSError."""
        client = aiosmtplib.SMTP(
            hostname=smtp.host,
            port=smtp.port,
            timeout=smtp.timeout,
            use_tls=smtp.tls == TLSMode.ssl,
            start_tls=True if smtp.tls == TLSMode.starttls else False,
        )
        await client.connect()
        if smtp.user:
            await client.login(smtp.user, smtp.password)
        session = cls(client, journal, None)
        transport = client.transport
        sock = transport.get_extra_info("socket") if transport else None
        # Over TLS the dot must be encrypted by our own transport: the writer cannot send it.
        if sock is not None and transport.get_extra_info("ssl_object") is None:
            session.writer_id = journal.open_connection(sock)
        return session

    @property
    def usable(self) -> bool:
        return self.client.is_connected

    async def send(self, sender: str, recipient: str, raw: bytes, message_id: str) -> None:
        """One mail transaction. Raises aiosmtplib's errors, ValueError for an address it
        refuses, DotUnanswered, or JournalDown."""
        await self.client.mail(sender)
        await self.client.rcpt(recipient)
        reply = await self.client.execute_command(b"DATA")
        if reply.code != SMTPStatus.start_input:
            raise SMTPDataError(reply.code, reply.message)
        await self._data(raw, message_id)

    async def _data(self, raw: bytes, message_id: str) -> None:
        protocol = self.client.protocol
        if protocol is None or protocol.transport is None:
            raise aiosmtplib.SMTPServerDisconnected("connection lost before the data")
        transport = protocol.transport
        # As aiosmtplib's own DATA does: an answer that comes before read_response() is
        # awaited is kept, not dropped as unsolicited.
        protocol._response_pending = True
        protocol.write(_stuffed(raw))
        try:
            await _flushed(transport, self.client.timeout or DOT_TIMEOUT)
            by_writer = await self._final_dot(transport, message_id)
        except BaseException:
            # Whatever of the dot is still in our buffer: abort() drops it (close() would
            # send it); the relay then has no mail.
            self.abort()
            raise
        if by_writer:
            # If the writer cannot send the dot after all, the relay will never answer.
            self.journal.on_lost_dot(message_id, self.abort)
        try:
            reply = await protocol.read_response(timeout=DOT_TIMEOUT)
        except (aiosmtplib.SMTPException, OSError) as exc:
            self.abort()
            if not by_writer or self.journal.dot_went(message_id):
                raise DotUnanswered(f"no answer to the final dot ({exc or repr(exc)})") from exc
            raise
        finally:
            self.journal.on_lost_dot(message_id, None)
        if reply.code != SMTPStatus.completed:
            self.journal.refused(message_id)
            raise SMTPDataError(reply.code, reply.message)
        self.journal.accepted(message_id)

    async def _final_dot(self, transport: asyncio.WriteTransport, message_id: str) -> bool:
        """Send the dot and record it; True if the journal writer sent it."""
        if self.writer_id is not None:
            # Our buffer is empty (_flushed), so the writer's dot follows the message.
            if not self.journal.send_dot(self.writer_id, message_id):
                raise JournalDown(str(self.journal.failing))
            return True
        transport.write(FINAL_DOT)
        await _flushed(transport, self.client.timeout or DOT_TIMEOUT)
        # A kill between the dot's leaving and this line sends the reply twice (TLS only).
        self.journal.dot_written(message_id)
        return False

    async def reset(self) -> bool:
        """RSET after a mail's failure, so the next starts on a clean envelope; False if
        the connection is no longer usable."""
        if not self.usable:
            return False
        try:
            await self.client.rset()
        except (aiosmtplib.SMTPException, OSError):
            self.abort()
            return False
        return True

    def abort(self) -> None:
        """Drop the connection now, and the writer's copy of it."""
        if self.client.transport is not None:
            self.client.transport.abort()
        self.client.close()
        self._forget()

    async def close(self) -> None:
        """QUIT politely when the connection is usable, then let the writer close its copy."""
        if self.usable:
            try:
                await self.client.quit()
            except (aiosmtplib.SMTPException, OSError):
                self.client.close()
        self._forget()

    def _forget(self) -> None:
        if self.writer_id is not None:
            writer_id, self.writer_id = self.writer_id, None
            self.journal.close_connection(writer_id)


def _stuffed(raw: bytes) -> bytes:
    """The message as DATA carries it: CRLF line ends, leading dots doubled, a final CRLF."""
    data = LEADING_DOT.sub(b"..", LINE_END.sub(b"\r\n", raw))
    return data if data.endswith(b"\r\n") else data + b"\r\n"


async def _flushed(transport: asyncio.WriteTransport, timeout: float) -> None:
    """Wait until what was written has left our buffer for the kernel's (at once, unless
    the relay reads slowly): the kernel delivers it even if we die next."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while transport.get_write_buffer_size():
        if loop.time() > deadline:
            raise aiosmtplib.SMTPTimeoutError("the relay stopped reading the message")
        await asyncio.sleep(0.001)
