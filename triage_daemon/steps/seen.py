"""A mail seen before by its Message-ID: a copy sent to two helpdesks, or delivered twice."""

from __future__ import annotations

from .. import track
from ..context import MailContext, Outcome
from ..tables import Disposition, Ticket
from . import Deps
from .record import record


class SeenBefore:
    name = "seen-before"

    def __init__(self, deps: Deps):
        pass

    def run(self, ctx: MailContext) -> Outcome | None:
        earlier = track.find_seen(ctx.session, ctx.mail.message_id)
        if not earlier:
            return None
        first, mailbox = earlier[0], ctx.item.mailbox
        ticket = ctx.session.get(Ticket, first.ticket_id) if first.ticket_id else None
        if ticket is not None and all(r.mailbox != mailbox for r in earlier):
            track.note_also_to(ticket, [mailbox])
            track.add_event(
                ctx.session, ticket, "also-sent-to", ctx.now, "duplicate", mailbox=mailbox
            )
            reason = f"same Message-ID as ticket #{ticket.id}: also sent to {mailbox}"
        else:
            reason = (
                f"same Message-ID already processed ({Disposition(first.disposition)}, "
                f"{first.mailbox} UID {first.uid})"
            )
        folder = first.folder if first.mailbox == mailbox else ctx.box.folders.tickets
        return record(ctx, Disposition.duplicate, reason, ticket=ticket, folder=folder)
