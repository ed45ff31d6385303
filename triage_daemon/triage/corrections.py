"""A person's corrections of the model: reclassify a ticket, and feed that back to training."""

from __future__ import annotations

import json

from sqlmodel import select

from .. import track
from ..catalogue import FAQ_TOPIC, NO_FAQ, TOPICS
from ..clock import Clock
from ..db import Database
from ..errors import TriageError
from ..tables import Ticket, TicketEvent, TicketStatus

RECLASSIFIED = "reclassified"


def reclassify(
    db: Database,
    ticket_id: int,
    *,
    technical: bool,
    topic: str | None = None,
    faq: str | None = None,
    by: str = "coordinator",
    clock: Clock | None = None,
) -> Ticket:
    """Set a ticket's labels by hand. A non-technical ticket made technical becomes open.

    ``by`` is who made the correction (an address, or "coordinator"); it is stored on the
    event so the triage report and the training examples can say who corrected what.
    Raises TriageError naming the bad value when the labels break the catalogue.
    """
    by = _who(by)
    if technical:
        topic = topic or "other"
        faq = faq or NO_FAQ
        if topic not in TOPICS:
            raise TriageError(f"topic {topic!r} is not one of {', '.join(TOPICS)}")
        if faq != NO_FAQ and FAQ_TOPIC.get(faq) != topic:
            raise TriageError(f"FAQ key {faq!r} does not exist for topic {topic!r}")
    else:
        topic = faq = None
    now = (clock or Clock()).now()
    with db.session() as session:
        ticket = session.get(Ticket, ticket_id)
        if ticket is None:
            raise TriageError(f"there is no ticket #{ticket_id}")
        before = {"technical": ticket.technical, "topic": ticket.topic, "faq": ticket.faq}
        ticket.technical, ticket.topic, ticket.faq, ticket.review = technical, topic, faq, False
        if technical and ticket.status == TicketStatus.not_technical:
            ticket.status = TicketStatus.open
        elif not technical and ticket.status == TicketStatus.open:
            ticket.status = TicketStatus.not_technical
        ticket.updated = now
        session.add(ticket)
        track.add_event(
            session,
            ticket,
            RECLASSIFIED,
            now,
            "coordinator",
            by=by,
            before=before,
            after={"technical": technical, "topic": topic, "faq": faq},
        )
    return ticket


def _who(by: str) -> str:
    """The corrector as stored: an address in lower case; an empty name is refused."""
    who = (by or "").strip()
    if not who:
        raise TriageError("say who made the correction (an address, or 'coordinator')")
    return who.lower()


def corrections(db: Database) -> list[dict]:
    """Reclassified tickets as training examples (the corpus's shape), each with
    ``corrected_by``: who made its latest correction."""
    with db.session() as session:
        events = session.exec(
            select(TicketEvent.ticket_id, TicketEvent.detail)
            .where(TicketEvent.kind == RECLASSIFIED)
            .order_by(TicketEvent.at, TicketEvent.id)
        ).all()
        # The latest correction wins, as it set the ticket's labels.
        who = {ticket_id: _by_of(detail) for ticket_id, detail in events}
        tickets = session.exec(select(Ticket).where(Ticket.id.in_(set(who)))).all() if who else []
        return [
            {
                "id": f"ticket-{t.id}",
                "subject": t.subject,
                "body": t.body,
                "technical": bool(t.technical),
                "topic": t.topic,
                "faq": t.faq,
                "lang": "el",
                "corrected_by": who[t.id],
            }
            for t in tickets
        ]


def _by_of(detail: str) -> str:
    try:
        value = json.loads(detail) if detail else {}
    except ValueError:
        value = {}
    return (value.get("by") if isinstance(value, dict) else None) or "coordinator"
