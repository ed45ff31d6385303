"""Recording a mail's outcome: the message record, and the folder it is moved to."""

from __future__ import annotations

from .. import track
from ..config import MailboxSettings
from ..context import Incoming, MailContext, Outcome, ParsedMail
from ..tables import Disposition, MessageRecord, Ticket


def record(
    ctx: MailContext,
    disposition: Disposition,
    reason: str,
    *,
    ticket: Ticket | None = None,
    folder: str | None = None,
    reply: str | None = None,
) -> Outcome:
    """Record the outcome of the mail in ``ctx`` and return it."""
    return record_item(
        ctx.session,
        ctx.item,
        ctx.box,
        ctx.mail,
        disposition,
        reason,
        now=ctx.now,
        ticket=ticket,
        folder=folder,
        reply=reply,
    )


def record_item(
    session,
    item: Incoming,
    box: MailboxSettings,
    mail: ParsedMail | None,
    disposition: Disposition,
    reason: str,
    *,
    now,
    ticket: Ticket | None = None,
    folder: str | None = None,
    reply: str | None = None,
) -> Outcome:
    """Record what became of ``item`` (``mail`` is None when it could not be parsed)."""
    folder = folder or folder_for(box, disposition)
    sender = mail.from_addr if mail else ""
    subject = mail.subject if mail else ""
    message_id = (
        mail.message_id if mail else f"unparsed.{item.mailbox}.{item.uidvalidity}.{item.uid}"
    )
    track.record_message(
        session,
        mailbox=item.mailbox,
        uidvalidity=item.uidvalidity,
        uid=item.uid,
        message_id=message_id,
        sender=sender,
        subject=subject,
        disposition=disposition,
        reason=reason,
        folder=folder,
        now=now,
        ticket=ticket,
    )
    return Outcome(
        disposition, reason, folder, ticket.id if ticket else None, sender, subject, reply=reply
    )


def repeated(record: MessageRecord) -> Outcome:
    """The outcome already recorded for a mail seen again at the same mailbox and UID."""
    return Outcome(
        Disposition(record.disposition),
        record.reason,
        record.folder,
        record.ticket_id,
        record.sender,
        record.subject,
        repeated=True,
    )


def folder_for(box: MailboxSettings, disposition: Disposition) -> str:
    folders = box.folders
    return {
        Disposition.ticket: folders.tickets,
        Disposition.followup: folders.followups,
        Disposition.duplicate: folders.tickets,
        Disposition.not_technical: folders.not_technical,
        Disposition.ignored: folders.ignored,
        Disposition.quarantined: folders.quarantine,
    }[disposition]
