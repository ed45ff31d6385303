"""Builds test mail as raw bytes: a teacher's request, a reply to a ticket, an auto-reply."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid

_counter = itertools.count(1)


def request(
    subject: str = "Δεν μπορώ να μπω στο Webex",
    body: str = "Καλησπέρα σας,\nδεν μπορώ να ενεργοποιήσω τον λογαριασμό μου στο webex.sch.gr.\n"
    "Ευχαριστώ,\nΜαρία",
    sender: str = "teacher1@school.example",
    name: str = "Μαρία Παπαδοπούλου",
    to: str = "helpdesk@pekes1.att.example",
    message_id: str | None = None,
    headers: dict[str, str] | None = None,
    in_reply_to: str | None = None,
) -> bytes:
    msg = EmailMessage()
    msg["From"] = Address(name, addr_spec=sender)
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = format_datetime(datetime(2020, 3, 24, 9, 0, next(_counter) % 60, tzinfo=UTC))
    if message_id != "":
        msg["Message-ID"] = f"<{message_id}>" if message_id else make_msgid(domain="school.example")
    if in_reply_to:
        msg["In-Reply-To"] = f"<{in_reply_to}>"
        msg["References"] = f"<{in_reply_to}>"
    for key, value in (headers or {}).items():
        msg[key] = value
    msg.set_content(body)
    return msg.as_bytes(policy=SMTP)


def message_id_of(raw: bytes) -> str:
    for line in raw.split(b"\r\n"):
        if line.lower().startswith(b"message-id:"):
            return line.split(b":", 1)[1].strip().strip(b"<>").decode()
    raise ValueError("no Message-ID")
