"""The automatic reply to a new ticket: acknowledgement, FAQ answer or polite redirect.

Refused, with the reason on the ticket, to an address we cannot use, to one of our
own addresses, and past the per-person limit (counted by the normalised address the
reply goes to, so that spellings of one address share one limit).
"""

from __future__ import annotations

from datetime import timedelta

import jinja2

from .. import track
from ..context import MailContext
from ..reply.build import ACK, FAQ, NOT_TECHNICAL, reply_recipient
from ..tables import OutboxMessage
from . import Deps


class Acknowledge:
    name = "acknowledge"

    def __init__(self, deps: Deps):
        self.replies = deps.replies
        self.limits = deps.settings.replies
        self.own_addresses = deps.own_addresses

    def run(self, ctx: MailContext) -> None:
        triage, ticket = ctx.triage, ctx.ticket
        kind, faq = ACK, None
        if triage is not None and not triage.technical:
            kind = NOT_TECHNICAL
        elif triage is not None and triage.faq and triage.faq != "none":
            kind, faq = FAQ, triage.faq
        recipient = reply_recipient(ctx.mail)
        refused = self._refuse(ctx, recipient)
        if refused:
            track.add_event(ctx.session, ticket, refused[0], ctx.now, "reply", reason=refused[1])
            return
        try:
            reply = self.replies.build(
                kind=kind,
                faq=faq,
                mailbox=ctx.box,
                ticket_id=ticket.id,
                mail=ctx.mail,
                date=ctx.now,
                recipient=recipient,
            )
            raw = reply.as_bytes()
        except (ValueError, TypeError, UnicodeError, jinja2.TemplateError) as exc:
            track.add_event(
                ctx.session, ticket, "reply-impossible", ctx.now, "reply", reason=str(exc)
            )
            return
        ctx.session.add(
            OutboxMessage(
                ticket_id=ticket.id,
                kind=kind,
                sender=ctx.box.address,
                recipient=reply.recipient,
                message_id=reply.message_id,
                raw=raw,
                created=ctx.now,
                next_attempt=ctx.now,
            )
        )
        ctx.reply = f"faq/{faq}" if faq else f"reply/{kind}"
        track.add_event(
            ctx.session,
            ticket,
            "reply-queued",
            ctx.now,
            "reply",
            template=ctx.reply,
            message_id=reply.message_id,
        )

    def _refuse(self, ctx: MailContext, recipient: str) -> tuple[str, str] | None:
        """Why no automatic reply may go to ``recipient`` (event kind, reason), or None."""
        if not recipient:
            shown = ctx.mail.reply_to or ctx.mail.from_addr
            return "reply-impossible", f"no usable address to reply to ({shown!r})"
        if recipient in self.own_addresses:
            return "reply-suppressed", f"the reply would go to our own address {recipient}"
        since = ctx.now - timedelta(minutes=self.limits.window_minutes)
        if track.replies_since(ctx.session, recipient, since) >= self.limits.max_per_sender:
            return "reply-suppressed", (
                f"{self.limits.max_per_sender} automatic replies to {recipient} "
                f"in {self.limits.window_minutes} minutes already"
            )
        return None
