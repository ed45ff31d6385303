"""Route a new technical ticket: its topic by the rules' overrides or the model, and the
person it is assigned to (desk/route.py decides; this step asks the database for each
candidate's load and records the decision with its reason)."""

from __future__ import annotations

from dataclasses import replace
from zoneinfo import ZoneInfo

from .. import track
from ..catalogue import FAQ_TOPIC, NO_FAQ
from ..context import MailContext
from ..desk.route import route
from . import Deps


class Route:
    name = "route"

    def __init__(self, deps: Deps):
        self.deps = deps

    def run(self, ctx: MailContext) -> None:
        rules, ticket = self.deps.rules, ctx.ticket
        pekes = ctx.item.mailbox
        if rules is None or ticket is None or ticket.technical is False:
            return
        if pekes not in rules.helpdesk.pekes:
            return  # `rules check` names a mailbox without its PEKES
        people = [s.address for s in rules.specialists.specialists if pekes in s.pekes]
        today = ctx.now.astimezone(ZoneInfo(rules.calendar.timezone)).date()
        decision = route(
            rules,
            pekes=pekes,
            topic=ticket.topic,
            review=ticket.review,
            sender=ctx.mail.from_addr,
            text=f"{ctx.mail.subject}\n{ctx.mail.new_text or ctx.mail.text}",
            today=today,
            load=track.assignment_load(ctx.session, people),
        )
        if decision.topic != ticket.topic:
            self._retopic(ctx, decision.topic)
        ticket.assignee, ticket.assignee_role = decision.assignee, decision.role
        ticket.assigned_at = ctx.now
        ctx.session.add(ticket)
        track.add_event(
            ctx.session,
            ticket,
            "assigned",
            ctx.now,
            "route",
            assignee=decision.assignee,
            name=decision.assignee_name,
            role=decision.role,
            topic=decision.topic,
            reason=decision.reason,
            override=decision.override,
        )
        ctx.reason += f", assigned to {decision.assignee}"

    @staticmethod
    def _retopic(ctx: MailContext, topic: str | None) -> None:
        """An override moved the ticket to another topic: an FAQ answer of the old topic
        no longer fits it, so a person answers."""
        ticket = ctx.ticket
        faq = ticket.faq if ticket.faq and FAQ_TOPIC.get(ticket.faq) == topic else NO_FAQ
        ticket.topic, ticket.faq = topic, faq
        if ctx.triage is not None:
            ctx.triage = replace(ctx.triage, topic=topic, faq=faq)
