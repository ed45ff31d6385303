"""The demo's mail servers: IMAP (pymap, in memory) and SMTP (aiosmtpd), in one thread.

Both listen on free loopback ports and share one event loop. The SMTP server plays
the mail system of the region: mail for a helpdesk address is delivered into that
helpdesk's IMAP INBOX (with a Return-Path, as a delivery agent writes it), and mail
for any other address, the teachers', is kept in memory as "relayed" for the demo
to show and count. No file, no process and no network beyond 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from argparse import Namespace
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage

from aiosmtpd.smtp import SMTP, Envelope, Session
from proxyprotocol.reader import ProxyProtocolReader
from pymap.backend.dict import Config, Identity, Login
from pymap.backend.dict.filter import FilterSet
from pymap.backend.dict.mailbox import MailboxData, MailboxSet
from pymap.concurrent import Subsystem
from pymap.imap import IMAPServer
from pymap.parsing.message import AppendMessage
from pymap.user import Passwords, UserMetadata
from pysasl.hashing import BuiltinHash

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
HOSTNAME = "mail.att.example"
START_TIMEOUT = 10.0
IDLE_REPORT_DELAY = 0.2


@dataclass
class Relayed:
    """A mail the SMTP server accepted for an address outside the helpdesk mailboxes."""

    sender: str
    recipients: list[str]
    raw: bytes
    at: datetime
    message: EmailMessage = field(init=False)

    def __post_init__(self) -> None:
        self.message = message_from_bytes(self.raw, policy=policy.default)

    @property
    def subject(self) -> str:
        return str(self.message.get("Subject", ""))


class _WholeResponses:
    """A StreamWriter that sends what was written since the last ``drain()`` in one piece.

    pymap writes one response in several pieces ("* 2 FETCH (", the attributes,
    CRLF), and asyncio sends each at once. imapclient's ``idle_check`` reads with a
    non-blocking socket and takes a piece that has no CRLF yet for a broken line
    ("unterminated line"). pymap drains after every whole response, so holding the
    pieces until then sends whole lines, as Dovecot does.
    """

    def __init__(self, writer: asyncio.StreamWriter):
        self._writer = writer
        self._pending = bytearray()

    def write(self, data: bytes) -> None:
        self._pending += data

    async def drain(self) -> None:
        if self._pending:
            self._writer.write(bytes(self._pending))
            self._pending.clear()
        await self._writer.drain()

    def __getattr__(self, name: str):
        return getattr(self._writer, name)


class _Config(Config):
    """The dict backend's settings, with a fixed greeting: pymap's default looks up the
    host's FQDN, a DNS query in the event loop, for every connection."""

    @property
    def greeting(self) -> bytes:
        return b"Server ready " + HOSTNAME.encode("ascii")


class _Mailbox(MailboxData):
    """pymap's in-memory mailbox, with IDLE that reports what changed before it began.

    pymap's IDLE waits for the next change only: a mail appended between the client's
    last command and its IDLE went unannounced until some later change. Dovecot reports
    it when IDLE begins; so does this, ``IDLE_REPORT_DELAY`` after the "+ Idling."
    continuation: imapclient's ``idle()`` reads the continuation through imaplib's
    buffered file, and an EXISTS arriving in the same read would sit in that buffer,
    unseen by ``idle_check()``, which polls the socket.
    """

    async def update_selected(self, selected, *, wait_on=None):
        known = selected.mod_sequence
        if wait_on is not None and known is not None and self._mod_sequences.highest > known:
            await asyncio.sleep(IDLE_REPORT_DELAY)
            wait_on = None
        return await super().update_selected(selected, wait_on=wait_on)


class _Mailboxes(MailboxSet):
    """pymap's in-memory folder set, made of ``_Mailbox`` folders."""

    def __init__(self) -> None:
        super().__init__()
        self._inbox = _Mailbox(self._content_cache, self._thread_cache)

    async def add_mailbox(self, name: str):
        async with self._set_lock.write_lock():
            if name in self._set:
                raise ValueError(name)
            self._set[name] = mailbox = _Mailbox(self._content_cache, self._thread_cache)
            return mailbox.mailbox_id


class _IMAPServer(IMAPServer):
    """pymap's connection factory, with each response sent whole."""

    async def __call__(self, reader, writer, sock_info) -> None:
        await super().__call__(reader, _WholeResponses(writer), sock_info)


class _Delivery:
    """aiosmtpd handler: local addresses into IMAP, all others kept as relayed mail."""

    def __init__(self, servers: MailServers):
        self.servers = servers

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8")
        # aiosmtpd keeps the null sender (RFC 5321 "MAIL FROM:<>") as "<>".
        sender = "" if envelope.mail_from in (None, "", "<>") else envelope.mail_from
        outside = []
        for recipient in envelope.rcpt_tos:
            login = self.servers.users.get(recipient.lower())
            if login is None:
                outside.append(recipient)
                continue
            # RFC 5321 section 4.4: the final delivery records the envelope sender.
            stamped = f"Return-Path: <{sender}>\r\n".encode() + raw
            await self.servers.append_now(login, stamped)
        if outside:
            self.servers.add_relayed(Relayed(sender, outside, raw, datetime.now(UTC)))
        return "250 Message accepted"


class MailServers:
    """IMAP and SMTP on free loopback ports, in a thread of their own; ``start``/``stop``.

    ``users`` maps each helpdesk address to its IMAP login; every login has ``password``.
    """

    def __init__(self, users: dict[str, str], password: str):
        self.users = {address.lower(): login for address, login in users.items()}
        self.password = password
        self.imap_port = 0
        self.smtp_port = 0
        self._relayed: list[Relayed] = []
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopped: asyncio.Event | None = None
        self._ready: Future[None] = Future()
        self._config: Config | None = None

    # -- life cycle -----------------------------------------------------------

    def start(self) -> None:
        """Start both servers; return once they accept connections. Raises what startup raised."""
        self._thread = threading.Thread(target=self._run, name="demo-mail-servers", daemon=True)
        self._thread.start()
        self._ready.result(timeout=START_TIMEOUT)

    def stop(self) -> None:
        """Close both listening sockets and every open session; wait for the thread."""
        if self._loop is None or self._thread is None:
            return
        if self._stopped is not None:
            self._loop.call_soon_threadsafe(self._stopped.set)
        self._thread.join(timeout=START_TIMEOUT)
        self._thread = None

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported to start(); nothing else is waiting
            if not self._ready.done():
                self._ready.set_exception(exc)
            else:
                log.exception("demo mail servers stopped with an error")

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        imap = await self._start_imap()
        smtp = await self._loop.create_server(
            lambda: SMTP(_Delivery(self), hostname=HOSTNAME, enable_SMTPUTF8=True), LOOPBACK, 0
        )
        self.imap_port = imap.sockets[0].getsockname()[1]
        self.smtp_port = smtp.sockets[0].getsockname()[1]
        self._ready.set_result(None)
        try:
            await self._stopped.wait()
        finally:
            for server in (smtp, imap):
                server.close()
            # close() only stops listening: end the sessions still open (an IDLE, say),
            # or wait_closed() would wait for them (Python 3.12+).
            await _cancel_others()
            for server in (smtp, imap):
                await asyncio.wait_for(server.wait_closed(), START_TIMEOUT)

    async def _start_imap(self) -> asyncio.AbstractServer:
        args = Namespace(passlib_cfg=None, proxy_protocol=None, inherited_sockets=None)
        # A throw-away password on the loopback: a cheap hash, checked in the loop, keeps six
        # logins from queueing for half a second each behind pymap's one-thread CPU pool.
        config = _Config(
            args,
            host=LOOPBACK,
            port=0,
            demo_data=False,
            demo_user="",
            demo_password="",
            tls_enabled=False,
            reject_dnsbl=False,
            invalid_user_sleep=0.0,
            hash_context=BuiltinHash(rounds=1000),
            cpu_subsystem=Subsystem.for_asyncio(),
        )
        config.apply_context()
        login = Login(config)
        hashed = await Passwords(config).hash_password(self.password)
        for name in sorted(set(self.users.values())):
            await Identity(name, login, None, frozenset()).set(
                UserMetadata(config, name, password=hashed)
            )
            config.set_cache[name] = (_Mailboxes(), FilterSet())
        self._config = config
        callback = ProxyProtocolReader(config.proxy_protocol).get_callback(
            _IMAPServer(login, config)
        )
        return await asyncio.start_server(callback, LOOPBACK, 0)

    # -- mail -----------------------------------------------------------------

    async def append_now(self, login: str, raw: bytes) -> None:
        """Append ``raw`` to ``login``'s INBOX (in the servers' loop); IDLE sessions hear of it."""
        assert self._config is not None
        mailbox_set, _filters = self._config.set_cache[login]
        inbox = await mailbox_set.get_mailbox("INBOX")
        await inbox.append(AppendMessage(raw, datetime.now(UTC), frozenset()), recent=True)

    def add_relayed(self, item: Relayed) -> None:
        with self._lock:
            self._relayed.append(item)

    @property
    def relayed(self) -> list[Relayed]:
        """A copy of every relayed mail so far, in the order received."""
        with self._lock:
            return list(self._relayed)

    def folder_counts(self, login: str) -> dict[str, int]:
        """How many messages each of ``login``'s folders holds (for the summary)."""
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(self._folder_counts(login), self._loop).result(5)

    async def _folder_counts(self, login: str) -> dict[str, int]:
        assert self._config is not None
        mailbox_set, _filters = self._config.set_cache[login]
        counts = {}
        for entry in (await mailbox_set.list_mailboxes()).list():
            try:
                mailbox = await mailbox_set.get_mailbox(entry.name)
            except KeyError:  # a parent that only exists in the hierarchy ("Triage")
                continue
            counts[entry.name] = (await mailbox.snapshot()).exists
        return counts


async def _cancel_others() -> None:
    current = asyncio.current_task()
    others = [t for t in asyncio.all_tasks() if t is not current]
    for task in others:
        task.cancel()
    await asyncio.gather(*others, return_exceptions=True)


def port_open(port: int, host: str = LOOPBACK) -> bool:
    """True when something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False
