"""Tickets: find what a message belongs to, who may write into it, open tickets, record events."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from datetime import datetime

from sqlalchemy import bindparam, case, func
from sqlmodel import Session, select

from .context import ParsedMail, Triage
from .desk.route import NEVER, Load
from .parse.addresses import normalise
from .tables import (
    Disposition,
    MessageRecord,
    OutboxMessage,
    Ticket,
    TicketEvent,
    TicketStatus,
)

TICKET_REF = re.compile(r"\[([^\[\]#]{1,40})#(\d{1,12})\]")

# The queries every mail runs, built once with bound parameters: building a statement
# and its cache key on each call cost more than running it.
RECORD_BY_UID = select(MessageRecord).where(
    MessageRecord.mailbox == bindparam("mailbox"),
    MessageRecord.uidvalidity == bindparam("uidvalidity"),
    MessageRecord.uid == bindparam("uid"),
)
RECORDS_BY_MESSAGE_ID = select(MessageRecord).where(
    MessageRecord.message_id == bindparam("message_id")
)
OPENED_DETAIL = select(TicketEvent.detail).where(
    TicketEvent.ticket_id == bindparam("ticket_id"), TicketEvent.kind == "opened"
)
REPLIES_SINCE = select(func.count(OutboxMessage.id)).where(
    OutboxMessage.recipient == bindparam("recipient"),
    OutboxMessage.created >= bindparam("since"),
)


def find_record(session: Session, mailbox: str, uidvalidity: int, uid: int) -> MessageRecord | None:
    """The record of this exact mailbox message, if it was processed before."""
    params = {"mailbox": mailbox, "uidvalidity": uidvalidity, "uid": uid}
    return session.exec(RECORD_BY_UID, params=params).first()


def find_seen(session: Session, message_id: str) -> list[MessageRecord]:
    """Every record of a message with this Message-ID, in any mailbox."""
    return list(session.exec(RECORDS_BY_MESSAGE_ID, params={"message_id": message_id}).all())


def find_thread(
    session: Session, mail: ParsedMail, tags: Mapping[str, str] | None = None
) -> tuple[Ticket, str] | None:
    """The ticket ``mail`` answers, and how it was found: the ticket tag in the subject,
    or one of our Message-IDs (or the ticket's own mails') in In-Reply-To/References.

    With ``tags`` (mailbox name -> tag), a subject reference counts only with the tag
    of the ticket's own mailbox: "[ΠΕΚΕΣ2 #7]" does not name ticket 7 of ΠΕΚΕΣ1. Who
    may write into the ticket found is may_follow_up's question, not this one's.
    """
    for match in TICKET_REF.finditer(mail.subject):
        ticket = session.get(Ticket, int(match.group(2)))
        if ticket is not None and _tag_matches(match.group(1), ticket, tags):
            return ticket, f"ticket reference {match.group(0)} in the subject"
    refs = [r for r in [mail.in_reply_to, *mail.references] if r]
    if not refs:
        return None
    statement = select(OutboxMessage.ticket_id).where(OutboxMessage.message_id.in_(refs))
    ticket_id = session.exec(statement).first()
    if ticket_id is None:
        statement = select(MessageRecord.ticket_id).where(
            MessageRecord.message_id.in_(refs), MessageRecord.ticket_id.is_not(None)
        )
        ticket_id = session.exec(statement).first()
    if ticket_id is None:
        return None
    return session.get(Ticket, ticket_id), "In-Reply-To/References"


def _tag_matches(written: str, ticket: Ticket, tags: Mapping[str, str] | None) -> bool:
    if tags is None or ticket.mailbox not in tags:
        return True
    return written.strip().casefold() == tags[ticket.mailbox].strip().casefold()


def may_follow_up(session: Session, ticket: Ticket, mail: ParsedMail) -> bool:
    """Whether ``mail`` may be added to ``ticket`` as a follow-up (and reopen it).

    The one place that says who may act on a ticket. Today: its people (ticket_people),
    compared by normalised address with the mail's From -- not with its Reply-To, which
    anyone can set to the teacher's address. The workflow (specialists, coordinator)
    will extend this check.
    """
    author = normalise(mail.from_addr)
    return bool(author) and author in ticket_people(session, ticket)


def ticket_people(session: Session, ticket: Ticket) -> set[str]:
    """The normalised addresses of the ticket's teacher: the address it was opened from,
    and the Reply-To of that mail (kept in the "opened" event by people_detail)."""
    people = {normalise(ticket.sender)}
    with session.no_autoflush:
        for detail in session.exec(OPENED_DETAIL, params={"ticket_id": ticket.id}).all():
            reply_to = json.loads(detail or "{}").get("reply_to")
            if reply_to:
                people.add(reply_to)
    people.discard("")
    return people


def people_detail(mail: ParsedMail) -> dict[str, str]:
    """What the "opened" event keeps of the people of a new ticket besides its sender:
    the normalised Reply-To, when there is one that differs from From."""
    reply_to = normalise(mail.reply_to)
    if reply_to and reply_to != normalise(mail.from_addr):
        return {"reply_to": reply_to}
    return {}


def open_ticket(
    session: Session, *, mailbox: str, mail: ParsedMail, triage: Triage | None, now: datetime
) -> Ticket:
    """A new ticket for ``mail``, with the triage result when there is one."""
    technical = triage.technical if triage else None
    ticket = Ticket(
        mailbox=mailbox,
        message_id=mail.message_id,
        sender=mail.from_addr,
        sender_name=mail.from_name,
        subject=mail.subject,
        body=mail.new_text or mail.text,
        created=now,
        updated=now,
        status=TicketStatus.not_technical if technical is False else TicketStatus.open,
        technical=technical,
        topic=triage.topic if triage else None,
        faq=triage.faq if triage else None,
        confidence=min(triage.confidence.values()) if triage and triage.confidence else None,
        review=triage.review if triage else False,
        explain=json.dumps(triage.as_dict(), ensure_ascii=False) if triage else "",
    )
    session.add(ticket)
    session.flush()
    return ticket


def add_event(
    session: Session, ticket: Ticket, kind: str, now: datetime, stage: str = "", **detail
) -> TicketEvent:
    event = TicketEvent(
        ticket_id=ticket.id,
        at=now,
        kind=kind,
        stage=stage,
        detail=json.dumps(detail, ensure_ascii=False, default=str) if detail else "",
    )
    session.add(event)
    return event


def record_message(
    session: Session,
    *,
    mailbox: str,
    uidvalidity: int,
    uid: int,
    message_id: str,
    sender: str,
    subject: str,
    disposition: Disposition,
    reason: str,
    folder: str,
    now: datetime,
    ticket: Ticket | None = None,
) -> MessageRecord:
    record = MessageRecord(
        mailbox=mailbox,
        uidvalidity=uidvalidity,
        uid=uid,
        message_id=message_id[:998],
        sender=sender[:320],
        subject=subject,
        received=now,
        disposition=disposition,
        reason=reason,
        ticket_id=ticket.id if ticket else None,
        folder=folder,
    )
    session.add(record)
    return record


def replies_since(session: Session, recipient: str, since: datetime) -> int:
    """How many automatic replies went (or are going) to ``recipient`` since ``since``."""
    # The count does not depend on the ticket's pending events: flush them once, at commit.
    with session.no_autoflush:
        return session.exec(REPLIES_SINCE, params={"recipient": recipient, "since": since}).one()


def note_also_to(ticket: Ticket, mailboxes: Iterable[str]) -> None:
    names = [n for n in ticket.also_to.split(",") if n]
    for name in mailboxes:
        if name != ticket.mailbox and name not in names:
            names.append(name)
    ticket.also_to = ",".join(names)


def assignment_load(session: Session, addresses: list[str]) -> dict[str, Load]:
    """Each person's open tickets and last assignment, for routing (missing: none yet)."""
    if not addresses:
        return {}
    open_count = func.sum(case((Ticket.status == TicketStatus.open, 1), else_=0))
    statement = (
        select(Ticket.assignee, open_count, func.max(Ticket.assigned_at))
        .where(Ticket.assignee.in_(addresses))
        .group_by(Ticket.assignee)
    )
    with session.no_autoflush:
        rows = session.exec(statement).all()
    return {who: Load(int(count or 0), last or NEVER) for who, count, last in rows}
