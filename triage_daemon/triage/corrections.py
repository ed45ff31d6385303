"""A person's corrections of the model: reclassify a ticket, and feed that back to training."""

from __future__ import annotations

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

    Raises TriageError naming the bad value when the labels break the catalogue.
    """
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


def corrections(db: Database) -> list[dict]:
    """Reclassified tickets as training examples (the corpus's shape)."""
    with db.session() as session:
        ids = session.exec(
            select(TicketEvent.ticket_id).where(TicketEvent.kind == RECLASSIFIED)
        ).all()
        tickets = session.exec(select(Ticket).where(Ticket.id.in_(set(ids)))).all() if ids else []
        return [
            {
                "id": f"ticket-{t.id}",
                "subject": t.subject,
                "body": t.body,
                "technical": bool(t.technical),
                "topic": t.topic,
                "faq": t.faq,
                "lang": "el",
            }
            for t in tickets
        ]
