"""What `status` and `tickets` show: mailbox health, outbox, quarantine, and the tickets."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field

from sqlalchemy import func
from sqlmodel import select

from .config import Settings
from .db import Database
from .tables import Disposition, MailboxState, MessageRecord, OutboxMessage, Ticket


@dataclass
class Status:
    mailboxes: list[dict] = field(default_factory=list)
    outbox: dict[str, int] = field(default_factory=dict)
    dispositions: dict[str, int] = field(default_factory=dict)
    quarantined: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "mailboxes": self.mailboxes,
            "outbox": self.outbox,
            "messages": self.dispositions,
            "quarantined": self.quarantined,
        }


def status(settings: Settings, db: Database, recent: int = 10) -> Status:
    result = Status()
    with db.session() as session:
        states = {s.name: s for s in session.exec(select(MailboxState)).all()}
        for box in settings.mailboxes:
            state = states.get(box.name)
            result.mailboxes.append(
                {
                    "name": box.name,
                    "address": box.address,
                    "last_poll": _iso(state.last_poll) if state else None,
                    "last_success": _iso(state.last_success) if state else None,
                    "backlog": state.backlog if state else None,
                    "errors": state.error_count if state else 0,
                    "last_error": state.last_error if state and state.error_count else None,
                }
            )
        rows = session.exec(
            select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
        )
        result.outbox = {str(getattr(s, "value", s)): n for s, n in rows.all()}
        rows = session.exec(
            select(MessageRecord.disposition, func.count()).group_by(MessageRecord.disposition)
        )
        result.dispositions = {str(getattr(d, "value", d)): n for d, n in rows.all()}
        quarantined = session.exec(
            select(MessageRecord)
            .where(MessageRecord.disposition == Disposition.quarantined)
            .order_by(MessageRecord.id.desc())
            .limit(recent)
        ).all()
        result.quarantined = [
            {
                "mailbox": q.mailbox,
                "uid": q.uid,
                "received": _iso(q.received),
                "sender": q.sender,
                "reason": q.reason,
            }
            for q in quarantined
        ]
    return result


def ticket_rows(db: Database, status: str | None = None) -> Iterator[dict]:
    """Every ticket as a JSON-ready dict, oldest first."""
    with db.session() as session:
        statement = select(Ticket).order_by(Ticket.id)
        if status:
            statement = statement.where(Ticket.status == status)
        for ticket in session.exec(statement).all():
            yield ticket_dict(ticket)


def ticket_dict(ticket: Ticket) -> dict:
    explain = json.loads(ticket.explain) if ticket.explain else {}
    return {
        "id": ticket.id,
        "mailbox": ticket.mailbox,
        "message_id": ticket.message_id,
        "sender": ticket.sender,
        "subject": ticket.subject,
        "created": _iso(ticket.created),
        "status": getattr(ticket.status, "value", ticket.status),
        "technical": ticket.technical,
        "topic": ticket.topic,
        "faq": ticket.faq,
        "confidence": explain.get("confidence", ticket.confidence),
        "review": ticket.review,
        "assignee": ticket.assignee,
        "also_to": [n for n in ticket.also_to.split(",") if n],
    }


def _iso(value) -> str | None:
    return value.isoformat() if value else None
