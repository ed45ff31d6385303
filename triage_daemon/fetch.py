"""IMAP: connect to one helpdesk mailbox, find new mail by UID, fetch it, move it when done.

INBOX stays selected between polls: a poll is NOOP + ``UID SEARCH UID n:*``, whose
cost does not grow with the mailbox (a fresh SELECT makes Dovecot re-read its whole
uid list). IDLE (RFC 2177) is used to hear of new mail at once where offered; a
connection that closes, says BYE or fails during IDLE ends the wait at once
(ConnectionLost), and one that stops answering is caught when IDLE is renewed.
Sizes (RFC822.SIZE) are asked before any body, so that a mail too big to handle is
never downloaded: only its header is.
"""

from __future__ import annotations

import imaplib
import logging
import select
import socket
import ssl
import threading
import time
from collections.abc import Iterator

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError, LoginError

from .config import MailboxSettings, TLSMode
from .errors import MailboxError

log = logging.getLogger(__name__)

# Errors that mean the connection or the server failed, not our code.
CONNECTION_ERRORS = (
    IMAPClientError,
    imaplib.IMAP4.error,
    OSError,
    socket.timeout,
    ssl.SSLError,
    EOFError,
)
TRIAGED = b"$Triaged"
SEEN = b"\\Seen"
# How often an IDLE wait looks at the stop event.
STOP_CHECK_SECONDS = 1.0
# An oversized mail is quarantined from its header; a header is read up to this size
# (a partial FETCH, RFC 3501 6.4.5), so that not even a giant header is downloaded whole.
HEADER_BYTES = 64 * 1024
NEW_MAIL = (b"EXISTS", b"RECENT")
# Untagged responses that imaplib keeps for ever unless someone reads them: a MOVE of
# 100 mails leaves 100 EXPUNGEs and a COPYUID (RFC 4315), about 40 bytes a mail for
# the connection's whole life.
UNREAD_UNTAGGED = ("EXPUNGE", "FETCH", "RECENT", "COPYUID")


class ConnectionLost(MailboxError):
    """The connection failed: refused, closed, reset, timed out or ended by the server's
    BYE. Worth reconnecting soon, unlike a login the server refuses."""


class MailboxConnection:
    """One logged-in IMAP session with INBOX selected (not thread-safe: one per worker)."""

    def __init__(self, box: MailboxSettings):
        self.box = box
        self.client: IMAPClient | None = None
        self.uidvalidity = 0
        self.delimiter = "/"
        self.can_move = False
        self.can_idle = False
        # Set when the connection failed: closing it then must not wait for a LOGOUT answer.
        self.broken = False

    def open(self) -> None:
        """Connect, log in, create the outcome folders if missing, select INBOX.

        Raises ConnectionLost when the server cannot be reached, MailboxError otherwise.
        """
        imap = self.box.imap
        self.broken = False
        try:
            client = IMAPClient(
                imap.host, port=imap.port, ssl=imap.tls == TLSMode.ssl, timeout=imap.timeout
            )
            self.client = client
            if imap.tls == TLSMode.starttls:
                client.starttls(ssl.create_default_context())
            client.login(imap.user, imap.password)
            capabilities = set(client.capabilities())
            self.can_move = b"MOVE" in capabilities
            self.can_idle = b"IDLE" in capabilities
            self._ensure_folders()
            self.select()
        except CONNECTION_ERRORS as exc:
            error = self._failure(f"cannot open {imap.user}@{imap.host}:{imap.port}", exc)
            self.close()
            raise error from exc

    def _ensure_folders(self) -> None:
        assert self.client is not None
        listed = self.client.list_folders(directory="", pattern="INBOX")
        if listed and listed[0][1]:
            delimiter = listed[0][1]
            self.delimiter = delimiter.decode() if isinstance(delimiter, bytes) else delimiter
        folders = self.box.folders
        wanted = {
            folders.tickets,
            folders.followups,
            folders.not_technical,
            folders.ignored,
            folders.quarantine,
        }
        for folder in sorted(wanted):
            name = self.server_name(folder)
            if not self.client.folder_exists(name):
                log.info("%s: creating folder %s", self.box.name, name)
                self.client.create_folder(name)
                self.client.subscribe_folder(name)

    def server_name(self, folder: str) -> str:
        """The folder's name on the server: our '/' becomes the server's delimiter."""
        return folder.replace("/", self.delimiter)

    def select(self) -> None:
        assert self.client is not None
        response = self.client.select_folder(self.server_name(self.box.folders.inbox))
        self.uidvalidity = int(response[b"UIDVALIDITY"])
        # SELECT's EXISTS is the count, not news: left aside, it would end the first wait.
        self._exists_announced(self.client)

    def new_uids(self, after: int) -> list[int]:
        """UIDs above ``after`` in INBOX, ascending. ``UID n:*`` always matches the
        highest message even below n (RFC 3501 6.4.8), so the result is filtered."""
        client = self._client()
        try:
            client.noop()
            uids = client.search(["UID", f"{after + 1}:*"])
        except CONNECTION_ERRORS as exc:
            raise self._failure("search failed", exc) from exc
        forget_unread(client)
        return sorted(uid for uid in uids if uid > after)

    def sizes(self, uids: list[int]) -> dict[int, int]:
        """The size (RFC822.SIZE) of each UID still present: what fetching it would bring.

        Only the numbers travel; the server keeps them in its index.
        """
        if not uids:
            return {}
        data = self._fetch(uids, [b"RFC822.SIZE"], "fetching sizes")
        return {
            uid: int(data[uid][b"RFC822.SIZE"])
            for uid in uids
            if b"RFC822.SIZE" in data.get(uid, {})
        }

    def fetch(self, uids: list[int]) -> dict[int, bytes]:
        """The raw bytes of each UID still present (BODY.PEEK: the \\Seen flag is untouched)."""
        if not uids:
            return {}
        data = self._fetch(uids, [b"BODY.PEEK[]"], "fetch")
        return {uid: data[uid][b"BODY[]"] for uid in uids if b"BODY[]" in data.get(uid, {})}

    def fetch_headers(self, uids: list[int], limit: int = HEADER_BYTES) -> dict[int, bytes]:
        """The header of each UID still present, cut at ``limit`` bytes; the body is not read."""
        if not uids:
            return {}
        data = self._fetch(uids, [f"BODY.PEEK[HEADER]<0.{limit}>".encode()], "fetching headers")
        # A partial fetch is answered as BODY[HEADER]<0> (RFC 3501 7.4.2).
        return {
            uid: data[uid][b"BODY[HEADER]<0>"]
            for uid in uids
            if b"BODY[HEADER]<0>" in data.get(uid, {})
        }

    def _fetch(self, uids: list[int], items: list[bytes], what: str) -> dict:
        client = self._client()
        try:
            return client.fetch(uids, items)
        except CONNECTION_ERRORS as exc:
            raise self._failure(f"{what} failed", exc) from exc

    def move(self, uids: list[int], folder: str) -> None:
        """Move ``uids`` to ``folder``; without MOVE, copy them and flag the originals
        \\Seen and $Triaged (mail is never deleted by the daemon)."""
        if not uids:
            return
        client = self._client()
        name = self.server_name(folder)
        try:
            if self.can_move:
                client.move(uids, name)
            else:
                client.copy(uids, name)
                client.add_flags(uids, [SEEN, TRIAGED])
        except CONNECTION_ERRORS as exc:
            raise self._failure(f"moving to {name} failed", exc) from exc
        forget_unread(client)

    def wait(self, seconds: float, stop: threading.Event) -> bool:
        """Wait up to ``seconds`` for new mail (IDLE where offered); True if some came.

        Returns early, False, when ``stop`` is set: IDLE looks at it once a second. Raises
        ConnectionLost as soon as the connection closes, the server says BYE or a read
        fails, and when the server does not answer the DONE that ends the wait within the
        read timeout: renewing IDLE every ``seconds`` is the keep-alive that catches a
        connection gone half-open (RFC 2177 asks for it at least every 29 minutes).
        """
        client = self._client()
        if self._exists_announced(client):
            return True
        if not self.can_idle:
            stop.wait(seconds)
            return False
        deadline = time.monotonic() + seconds
        try:
            while True:
                client.idle()
                heard = self._idle_until(client, deadline, stop)
                _text, responses = client.idle_done()
                self._check_bye(responses)
                if heard is not None:
                    return heard
        except ConnectionLost:
            raise
        except CONNECTION_ERRORS as exc:
            raise self._failure("IDLE failed", exc) from exc

    def _idle_until(
        self, client: IMAPClient, deadline: float, stop: threading.Event
    ) -> bool | None:
        """Listen in IDLE: True on new mail, False at the deadline or on stop, None when
        the socket was readable but held nothing: the DONE exchange must then tell a
        closed connection from a TLS record that carried no data."""
        sock = client.socket()
        while not stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if not readable(sock, min(STOP_CHECK_SECONDS, left)):
                continue
            # idle_check swallows end of file and returns nothing, again and again, on a
            # closed socket (mjs/imapclient#565): that was a busy loop until the deadline.
            responses = client.idle_check(timeout=0)
            if not responses:
                return None
            self._check_bye(responses)
            if any(len(r) > 1 and r[1] in NEW_MAIL for r in responses):
                return True
        return False

    def _check_bye(self, responses: list) -> None:
        """Raise ConnectionLost when the server said BYE: it is about to close (RFC 3501 7.1.5)."""
        for response in responses:
            if response and response[0] == b"BYE":
                text = b" ".join(part for part in response[1:] if isinstance(part, bytes))
                self.broken = True
                raise ConnectionLost(
                    f"{self.box.name}: the server ended the session: BYE "
                    f"{text.decode(errors='replace')}"
                )

    @staticmethod
    def _exists_announced(client: IMAPClient) -> bool:
        """Did the server announce new mail (EXISTS) in the answer to an earlier command?

        imaplib keeps such untagged responses aside and IDLE does not repeat them, so a
        mail that arrived during a poll would wait a whole IDLE period. imapclient has no
        public accessor for them: this reads imaplib's ``untagged_responses``.
        """
        pending = getattr(getattr(client, "_imap", None), "untagged_responses", None)
        return isinstance(pending, dict) and pending.pop("EXISTS", None) is not None

    def close(self) -> None:
        """Log out; a broken connection is just shut, not waited on for LOGOUT's answer."""
        client, self.client = self.client, None
        if client is None:
            return
        if not self.broken:
            try:
                client.logout()
                return
            except Exception:  # the connection may already be gone; nothing to save
                pass
        try:
            client.shutdown()
        except Exception:
            pass

    def _failure(self, what: str, exc: BaseException) -> MailboxError:
        """The error to raise for ``exc``: ConnectionLost when the connection itself failed."""
        message = f"{self.box.name}: {what}: {describe(exc)}"
        if not connection_failed(exc):
            return MailboxError(message)
        self.broken = True
        return ConnectionLost(message)

    def _client(self) -> IMAPClient:
        if self.client is None:
            raise MailboxError(f"{self.box.name}: not connected")
        return self.client


def connection_failed(exc: BaseException) -> bool:
    """Did the connection fail (refused, closed, reset, timed out), rather than the server
    refuse a command or our login? imapclient turns every error during LOGIN, a lost
    connection too, into LoginError: its cause tells them apart."""
    if isinstance(exc, LoginError):
        # RFC 5530: UNAVAILABLE is a temporary failure of a subsystem (an auth process
        # still starting), not a wrong password.
        if "[UNAVAILABLE]" in str(exc):
            return True
        cause = exc.__context__
        return cause is not None and cause is not exc and connection_failed(cause)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return False  # a wrong certificate does not fix itself in a few seconds
    return isinstance(exc, imaplib.IMAP4.abort | OSError | EOFError)


def forget_unread(client: IMAPClient) -> None:
    """Drop the untagged responses nobody reads (EXISTS stays: the next wait reads it).

    We address mail by UID only, so sequence numbers in EXPUNGE and FETCH are no news.
    imapclient has no public way to do this: it is imaplib's ``untagged_responses``.
    """
    pending = getattr(getattr(client, "_imap", None), "untagged_responses", None)
    if isinstance(pending, dict):
        for name in UNREAD_UNTAGGED:
            pending.pop(name, None)


def readable(sock: socket.socket, timeout: float) -> bool:
    """Is there something to read on ``sock`` (data, end of file or an error) within ``timeout``?"""
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLIN | select.POLLPRI)
    return bool(poller.poll(timeout * 1000))


def batches(uids: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(uids), size):
        yield uids[start : start + size]


def describe(exc: BaseException) -> str:
    text = str(exc) or exc.__class__.__name__
    if isinstance(exc, bytes):
        text = exc.decode(errors="replace")
    return f"{exc.__class__.__name__}: {text}"
