"""IMAP: connect to one helpdesk mailbox, find new mail by UID, fetch it, move it when done.

INBOX stays selected between polls: a poll is NOOP + ``UID SEARCH UID n:*``, whose
cost does not grow with the mailbox (a fresh SELECT makes Dovecot re-read its whole
uid list). IDLE (RFC 2177) is used to hear of new mail at once where offered.
"""

from __future__ import annotations

import imaplib
import logging
import socket
import ssl
import threading
import time
from collections.abc import Iterator

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError

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


class MailboxConnection:
    """One logged-in IMAP session with INBOX selected (not thread-safe: one per worker)."""

    def __init__(self, box: MailboxSettings):
        self.box = box
        self.client: IMAPClient | None = None
        self.uidvalidity = 0
        self.delimiter = "/"
        self.can_move = False
        self.can_idle = False

    def open(self) -> None:
        """Connect, log in, create the outcome folders if missing, select INBOX."""
        imap = self.box.imap
        try:
            client = IMAPClient(
                imap.host, port=imap.port, ssl=imap.tls == TLSMode.ssl, timeout=imap.timeout
            )
            if imap.tls == TLSMode.starttls:
                client.starttls(ssl.create_default_context())
            client.login(imap.user, imap.password)
            self.client = client
            capabilities = set(client.capabilities())
            self.can_move = b"MOVE" in capabilities
            self.can_idle = b"IDLE" in capabilities
            self._ensure_folders()
            self.select()
        except CONNECTION_ERRORS as exc:
            self.close()
            raise MailboxError(
                f"{self.box.name}: cannot open {imap.user}@{imap.host}:{imap.port}: {describe(exc)}"
            ) from exc

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

    def new_uids(self, after: int) -> list[int]:
        """UIDs above ``after`` in INBOX, ascending. ``UID n:*`` always matches the
        highest message even below n (RFC 3501 6.4.8), so the result is filtered."""
        client = self._client()
        try:
            client.noop()
            uids = client.search(["UID", f"{after + 1}:*"])
        except CONNECTION_ERRORS as exc:
            raise MailboxError(f"{self.box.name}: search failed: {describe(exc)}") from exc
        return sorted(uid for uid in uids if uid > after)

    def fetch(self, uids: list[int]) -> dict[int, bytes]:
        """The raw bytes of each UID still present (BODY.PEEK: the \\Seen flag is untouched)."""
        client = self._client()
        try:
            data = client.fetch(uids, [b"BODY.PEEK[]"])
        except CONNECTION_ERRORS as exc:
            raise MailboxError(f"{self.box.name}: fetch failed: {describe(exc)}") from exc
        return {uid: item[b"BODY[]"] for uid, item in data.items() if b"BODY[]" in item}

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
            raise MailboxError(
                f"{self.box.name}: moving to {name} failed: {describe(exc)}"
            ) from exc

    def wait(self, seconds: float, stop: threading.Event) -> bool:
        """Wait up to ``seconds`` for new mail (IDLE where offered); True if some came.

        Returns early, False, when ``stop`` is set: IDLE is checked once a second.
        """
        client = self._client()
        if self._exists_announced(client):
            return True
        if not self.can_idle:
            stop.wait(seconds)
            return False
        deadline = time.monotonic() + seconds
        try:
            client.idle()
            try:
                while not stop.is_set() and time.monotonic() < deadline:
                    responses = client.idle_check(timeout=1)
                    if any(len(r) > 1 and r[1] in (b"EXISTS", b"RECENT") for r in responses):
                        return True
            finally:
                client.idle_done()
        except CONNECTION_ERRORS as exc:
            raise MailboxError(f"{self.box.name}: IDLE failed: {describe(exc)}") from exc
        return False

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
        client, self.client = self.client, None
        if client is None:
            return
        try:
            client.logout()
        except Exception:  # the connection may already be gone; nothing to save
            try:
                client.shutdown()
            except Exception:
                pass

    def _client(self) -> IMAPClient:
        if self.client is None:
            raise MailboxError(f"{self.box.name}: not connected")
        return self.client


def batches(uids: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(uids), size):
        yield uids[start : start + size]


def describe(exc: BaseException) -> str:
    text = str(exc) or exc.__class__.__name__
    if isinstance(exc, bytes):
        text = exc.decode(errors="replace")
    return f"{exc.__class__.__name__}: {text}"
