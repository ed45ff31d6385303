"""A new ticket for the request, with its triage and the people who may follow it up."""

from __future__ import annotations

from .. import track
from ..context import MailContext
from ..tables import Disposition
from . import Deps


class OpenTicket:
    name = "open-ticket"

    def __init__(self, deps: Deps):
        pass

    def run(self, ctx: MailContext) -> None:
        triage, session, now = ctx.triage, ctx.session, ctx.now
        ticket = track.open_ticket(
            session, mailbox=ctx.item.mailbox, mail=ctx.mail, triage=triage, now=now
        )
        detail = triage.as_dict() if triage else {"model": "none configured"}
        # The Reply-To is kept: its owner may follow up on the ticket too.
        detail.update(track.people_detail(ctx.mail))
        track.add_event(session, ticket, "opened", now, "classify", **detail)
        technical = triage is None or triage.technical
        ctx.ticket = ticket
        ctx.disposition = Disposition.ticket if technical else Disposition.not_technical
        ctx.reason = f"ticket #{ticket.id}" + (
            f", {triage.topic}/{triage.faq}" if triage and technical else ""
        )
        if ctx.named is not None:
            named, how = ctx.named
            track.add_event(
                session,
                ticket,
                "named-ticket",
                now,
                "follow-up",
                named=named.id,
                how=how,
                reason="the sender is not one of the people of that ticket",
            )
            ctx.reason += f"; named ticket #{named.id}, not from its teacher"
