"""Shared pytest fixtures: real mail servers (Dovecot, Postfix) and the two databases."""

from __future__ import annotations

import os
import shutil
import smtplib
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import pytest

# Database fixtures (db_url, database): every test that uses them runs on SQLite and on
# PostgreSQL.
from db_fixtures import database, db_url  # noqa: F401
from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError
from servers import Dovecot, Postfix, ServerStartError, binary, log_tail, system_user

# ======================================================================================
# Mail servers: a private Dovecot (IMAP + LMTP) and Postfix (SMTP) on free loopback ports.
# Owner: tests/servers/. Users pekes1..6 (helpdesk@pekesN.att.example) and teacher1..20
# (teacherN@school.example, teacherN@sch.example), all with MAIL_PASSWORD; see
# tests/servers/dovecot.py for how addresses map to IMAP users.
# ======================================================================================

MAIL_PASSWORD = "test-password"
HELPDESK_USERS = tuple(f"pekes{n}" for n in range(1, 7))
TEACHER_USERS = tuple(f"teacher{n}" for n in range(1, 21))
MAIL_DOMAINS = (
    *(f"{user}.att.example" for user in HELPDESK_USERS),
    "school.example",
    "sch.example",
)
MAIL_PROGRAMS = ("dovecot", "doveadm", "postfix", "postqueue")
MAIL_ROOT_PREFIX = "triage-mail-"


@dataclass
class MailServers:
    """The running mail servers and helpers to send mail and wait for it."""

    dovecot: Dovecot
    postfix: Postfix
    password: str = MAIL_PASSWORD

    @property
    def imap_host(self) -> str:
        return self.dovecot.host

    @property
    def imap_port(self) -> int:
        return self.dovecot.imap_port

    @property
    def smtp_host(self) -> str:
        return self.postfix.host

    @property
    def smtp_port(self) -> int:
        return self.postfix.smtp_port

    def send(
        self, message: bytes | EmailMessage, mail_from: str, rcpt_tos: list[str] | str
    ) -> dict:
        """Submit one message to Postfix over SMTP; return the refused recipients (see
        smtplib.SMTP.sendmail, which raises when all are refused)."""
        rcpt_tos = [rcpt_tos] if isinstance(rcpt_tos, str) else list(rcpt_tos)
        with smtplib.SMTP(self.smtp_host, self.smtp_port, timeout=10) as smtp:
            if isinstance(message, EmailMessage):
                return smtp.send_message(message, mail_from, rcpt_tos)
            return smtp.sendmail(mail_from, rcpt_tos, message)

    def wait_for(
        self, user: str, folder: str = "INBOX", count: int = 1, timeout: float = 10.0
    ) -> list[bytes]:
        """Poll a folder until it holds at least ``count`` messages; return them (UID order).

        Raises AssertionError naming what arrived and the Postfix log tail on timeout.
        """
        deadline = time.monotonic() + timeout
        with self.dovecot.connect(user) as client:
            while (found := _message_count(client, folder)) < count:
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"{user}/{folder} holds {found} message(s), expected {count} within "
                        f"{timeout} s; {self.postfix.queued()} still queued in Postfix\n"
                        + log_tail(self.postfix.log_path)
                    )
                time.sleep(0.05)
        return self.dovecot.fetch_all(user, folder)

    def reset(self) -> None:
        """Start any stopped server, let queued mail arrive, then empty every mailbox."""
        self.dovecot.start()
        self.postfix.start()
        self.postfix.wait_delivered()
        self.dovecot.clear_all()


def _message_count(client: IMAPClient, folder: str) -> int:
    try:
        return client.folder_status(folder, [b"MESSAGES"])[b"MESSAGES"]
    except IMAPClientError:
        # The folder does not exist (yet).
        return 0


def _mail_servers_unavailable() -> str | None:
    """Return why real mail servers cannot run here, or None when they can."""
    if os.geteuid() != 0:
        return "the real mail servers need root (Dovecot and Postfix drop privileges)"
    try:
        for program in MAIL_PROGRAMS:
            binary(program)
        system_user("triagemail")
    except ServerStartError as error:
        return str(error)
    return None


def _remove_stale_mail_roots() -> None:
    """Delete the server folders of test runs that died before their teardown.

    Their servers stopped with them (tests/servers/reaper.py); only the folders remain.
    """
    for root in Path("/tmp").glob(f"{MAIL_ROOT_PREFIX}*"):
        try:
            os.kill(int((root / "owner.pid").read_text()), 0)
        except ProcessLookupError:
            shutil.rmtree(root, ignore_errors=True)
        except (OSError, ValueError):
            # No owner written yet (a run starting right now) or not ours to judge.
            continue


@pytest.fixture(scope="session")
def mail_servers() -> Iterator[MailServers]:
    """Dovecot and Postfix for the whole session; prefer ``fresh_mail_servers`` in tests.

    Skipped with the reason when the servers are not installed, except on CI (CI set),
    where scripts/install-system-deps.sh has installed them and their absence is an error.
    """
    reason = _mail_servers_unavailable()
    if reason:
        (pytest.fail if os.environ.get("CI") else pytest.skip)(f"no real mail servers: {reason}")
    _remove_stale_mail_roots()
    # Under /tmp, not pytest's tmp_path: the servers' unprivileged workers must be able to
    # reach it (tmp_path's parents are private to root) and Unix socket paths must be short.
    root = tempfile.mkdtemp(prefix=MAIL_ROOT_PREFIX, dir="/tmp")
    os.chmod(root, 0o755)
    Path(root, "owner.pid").write_text(f"{os.getpid()}\n")
    users = {user: MAIL_PASSWORD for user in (*HELPDESK_USERS, *TEACHER_USERS)}
    dovecot = Dovecot(root, users)
    postfix = None
    try:
        dovecot.start()
        postfix = Postfix(
            root, dovecot.lmtp_port, list(MAIL_DOMAINS), recipients=list(dovecot.addresses)
        )
        postfix.start()
        yield MailServers(dovecot, postfix)
    finally:
        if postfix is not None:
            postfix.stop()
        dovecot.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def fresh_mail_servers(mail_servers: MailServers) -> MailServers:
    """The session's mail servers, both running, with every mailbox empty and no mail queued."""
    mail_servers.reset()
    return mail_servers


# ======================================================================================
# End of the mail-server fixtures.
# ======================================================================================
