"""Database tables: mailbox sync state, messages seen, tickets, their events, the outbox."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, LargeBinary, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


class Disposition(StrEnum):
    """What became of one incoming message."""

    ticket = "ticket"  # opened a new ticket
    followup = "followup"  # added to an existing ticket
    duplicate = "duplicate"  # same Message-ID seen before (another helpdesk, a re-delivery)
    not_technical = "not_technical"  # opened a not_technical ticket
    ignored = "ignored"  # automatic mail: never answered
    quarantined = "quarantined"  # could not be handled: set aside with a reason


class TicketStatus(StrEnum):
    open = "open"
    not_technical = "not_technical"
    closed = "closed"


class OutboxStatus(StrEnum):
    pending = "pending"
    sending = "sending"
    sent = "sent"
    failed = "failed"


class MailboxState(SQLModel, table=True):
    __tablename__ = "mailbox_state"

    name: str = Field(primary_key=True, max_length=64)
    uidvalidity: int | None = None
    last_uid: int = 0
    last_poll: datetime | None = None
    last_success: datetime | None = None
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    error_count: int = 0
    backlog: int = 0


class MessageRecord(SQLModel, table=True):
    """One message as found in one mailbox, and what was done with it."""

    __tablename__ = "message"
    __table_args__ = (UniqueConstraint("mailbox", "uidvalidity", "uid", name="uq_message_uid"),)

    id: int | None = Field(default=None, primary_key=True)
    mailbox: str = Field(index=True, max_length=64)
    uidvalidity: int
    uid: int
    message_id: str = Field(index=True, max_length=998)
    sender: str = Field(default="", max_length=320)
    subject: str = Field(default="", sa_column=Column(Text))
    received: datetime
    # Enums are stored as plain strings: a new value then needs no ALTER TYPE on PostgreSQL.
    disposition: Disposition = Field(sa_type=String(32))
    reason: str = Field(default="", sa_column=Column(Text))
    ticket_id: int | None = Field(default=None, foreign_key="ticket.id", index=True)
    folder: str = Field(default="", max_length=255)
    moved: bool = False


class Ticket(SQLModel, table=True):
    __tablename__ = "ticket"

    id: int | None = Field(default=None, primary_key=True)
    mailbox: str = Field(index=True, max_length=64)
    message_id: str = Field(unique=True, max_length=998)
    sender: str = Field(index=True, max_length=320)
    sender_name: str = Field(default="", max_length=255)
    subject: str = Field(default="", sa_column=Column(Text))
    body: str = Field(default="", sa_column=Column(Text))
    created: datetime = Field(index=True)
    updated: datetime
    status: TicketStatus = Field(index=True, sa_type=String(32))
    technical: bool | None = None
    topic: str | None = Field(default=None, max_length=32)
    faq: str | None = Field(default=None, max_length=64)
    confidence: float | None = None
    review: bool = False
    explain: str = Field(default="", sa_column=Column(Text))
    # Who the ticket is assigned to (desk/route.py): a specialist or the coordinator.
    assignee: str | None = Field(default=None, index=True, max_length=320)
    assignee_role: str | None = Field(default=None, max_length=16)
    assigned_at: datetime | None = None
    # Other helpdesks the same mail was sent to, comma-separated mailbox names.
    also_to: str = Field(default="", max_length=512)


class TicketEvent(SQLModel, table=True):
    """Why each decision on a ticket was taken: which stage, filter, score or template."""

    __tablename__ = "ticket_event"

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id", index=True)
    at: datetime
    kind: str = Field(max_length=64)
    stage: str = Field(default="", max_length=64)
    detail: str = Field(default="", sa_column=Column(Text))


class OutboxMessage(SQLModel, table=True):
    """A mail to send, written in the same transaction as the decision that caused it."""

    __tablename__ = "outbox"

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int | None = Field(default=None, foreign_key="ticket.id", index=True)
    kind: str = Field(max_length=32)
    sender: str = Field(max_length=320)
    recipient: str = Field(index=True, max_length=320)
    message_id: str = Field(unique=True, max_length=998)
    raw: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    status: OutboxStatus = Field(default=OutboxStatus.pending, index=True, sa_type=String(32))
    attempts: int = 0
    created: datetime = Field(index=True)
    next_attempt: datetime
    claimed_at: datetime | None = None
    # "host:pid" of the process sending it, so a restart can tell its own orphans.
    claimed_by: str | None = Field(default=None, max_length=300)
    sent_at: datetime | None = None
    last_error: str | None = Field(default=None, sa_column=Column(Text))
