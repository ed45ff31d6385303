"""A follow-up: the mail names one of our tickets and comes from one of its people."""

from __future__ import annotations

from .. import track
from ..context import MailContext, Outcome
from ..tables import Disposition, TicketStatus
from . import Deps
from .record import record


class FollowUp:
    name = "follow-up"

    def __init__(self, deps: Deps):
        self.tags = deps.tags

    def run(self, ctx: MailContext) -> Outcome | None:
        thread = track.find_thread(ctx.session, ctx.mail, self.tags)
        if thread is None:
            return None
        ticket, how = thread
        if not track.may_follow_up(ctx.session, ticket, ctx.mail):
            # Naming a ticket is not enough to write into it: from anyone but its people,
            # the mail is a request of its own, with a note of the ticket it named.
            ctx.named = thread
            return None
        mail, now = ctx.mail, ctx.now
        track.add_event(
            ctx.session,
            ticket,
            "follow-up",
            now,
            "follow-up",
            how=how,
            message_id=mail.message_id,
            sender=mail.from_addr,
            text=(mail.new_text or mail.text)[:4000],
        )
        ticket.updated = now
        if ticket.status == TicketStatus.closed:
            ticket.status = TicketStatus.open
            track.add_event(ctx.session, ticket, "reopened", now, "follow-up")
        ctx.session.add(ticket)
        reason = f"follow-up to ticket #{ticket.id} ({how})"
        return record(ctx, Disposition.followup, reason, ticket=ticket)
