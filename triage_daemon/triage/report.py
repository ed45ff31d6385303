"""The coordinator's triage report: what people corrected, and what the model sent for review."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func
from sqlmodel import select

from ..db import Database
from ..safe_text import visible
from ..tables import Ticket, TicketEvent
from .classify import HEADS
from .corrections import RECLASSIFIED

# Tickets opened before corrections recorded anyone (or made by hand) count as the coordinator's.
UNKNOWN_BY = "coordinator"
HEAD_TITLES = {"technical": "τεχνικό / technical", "topic": "θέμα / topic", "faq": "FAQ"}


@dataclass
class TopicReview:
    """How many tickets of one topic there were, and how many the model flagged for review."""

    topic: str | None
    tickets: int
    flagged: int

    @property
    def share(self) -> float:
        return self.flagged / self.tickets if self.tickets else 0.0


@dataclass
class TriageReport:
    """The figures of `triage-daemon triage report`, every list most frequent first."""

    since: datetime | None
    # Per head: how many tickets ended with another label than the one they had before.
    corrected: dict[str, int] = field(default_factory=dict)
    # Per head: ((from, to), tickets), the most confused pairs first.
    pairs: dict[str, list[tuple[tuple, int]]] = field(default_factory=dict)
    by: list[tuple[str, int]] = field(default_factory=list)
    review: list[TopicReview] = field(default_factory=list)
    review_faqs: list[tuple[str, int]] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "since": self.since.isoformat() if self.since else None,
            "heads": {
                head: {
                    "corrected": self.corrected[head],
                    "pairs": [{"from": a, "to": b, "tickets": n} for (a, b), n in self.pairs[head]],
                }
                for head in HEADS
            },
            "by": [{"by": who, "corrections": n} for who, n in self.by],
            "review": [
                {
                    "topic": r.topic,
                    "tickets": r.tickets,
                    "flagged": r.flagged,
                    "share": round(r.share, 4),
                }
                for r in self.review
            ],
            "review_faqs": [{"faq": key, "tickets": n} for key, n in self.review_faqs],
        }


def triage_report(db: Database, since: datetime | None = None) -> TriageReport:
    """The report over the corrections made, and the tickets opened, at or after ``since``."""
    report = TriageReport(since)
    with db.session() as session:
        events = _corrections(session, since)
        by = _by_counts(session, since)
        tickets = _review_rows(session, since)
    _add_corrections(report, events)
    report.by = by
    _add_review(report, tickets)
    return report


def _corrections(session, since: datetime | None) -> dict[int, list[dict]]:
    """Each corrected ticket's reclassification details, oldest first."""
    query = select(TicketEvent.ticket_id, TicketEvent.detail).where(
        TicketEvent.kind == RECLASSIFIED
    )
    if since is not None:
        query = query.where(TicketEvent.at >= since)
    per_ticket: dict[int, list[dict]] = {}
    for ticket_id, detail in session.exec(query.order_by(TicketEvent.at, TicketEvent.id)):
        per_ticket.setdefault(ticket_id, []).append(_detail(detail))
    return per_ticket


def _by_counts(session, since: datetime | None) -> list[tuple[str, int]]:
    """Who made how many corrections: the person is in the event's JSON detail."""
    query = select(TicketEvent.detail).where(TicketEvent.kind == RECLASSIFIED)
    if since is not None:
        query = query.where(TicketEvent.at >= since)
    counts = Counter(_detail(d).get("by") or UNKNOWN_BY for d in session.exec(query))
    return _ranked(counts)


def _add_corrections(report: TriageReport, per_ticket: dict[int, list[dict]]) -> None:
    """Count, per head, each ticket's net change: its label before the first correction
    against its label after the last (a label changed and changed back is no confusion)."""
    pairs: dict[str, Counter] = {head: Counter() for head in HEADS}
    for events in per_ticket.values():
        before, after = events[0].get("before", {}), events[-1].get("after", {})
        for head in HEADS:
            if before.get(head) != after.get(head):
                pairs[head][(before.get(head), after.get(head))] += 1
    for head in HEADS:
        report.corrected[head] = sum(pairs[head].values())
        report.pairs[head] = _ranked(pairs[head])


def _review_rows(session, since: datetime | None) -> list[tuple]:
    """(topic, faq, flagged) per ticket. A correction clears ``Ticket.review``, so the
    flag the model gave is read back from the ticket's "opened" event as well."""
    opened = (
        select(TicketEvent.ticket_id, func.min(TicketEvent.detail).label("detail"))
        .where(TicketEvent.kind == "opened")
        .group_by(TicketEvent.ticket_id)
        .subquery()
    )
    query = select(Ticket.topic, Ticket.faq, Ticket.review, opened.c.detail).outerjoin(
        opened, opened.c.ticket_id == Ticket.id
    )
    if since is not None:
        query = query.where(Ticket.created >= since)
    return [
        (topic, faq, bool(review) or _detail(detail).get("review") is True)
        for topic, faq, review, detail in session.exec(query)
    ]


def _add_review(report: TriageReport, rows: list[tuple]) -> None:
    tickets, flagged, faqs = Counter(), Counter(), Counter()
    for topic, faq, is_flagged in rows:
        tickets[topic] += 1
        if is_flagged:
            flagged[topic] += 1
            if faq is not None:
                faqs[faq] += 1
    report.review = sorted(
        (TopicReview(topic, n, flagged[topic]) for topic, n in tickets.items()),
        key=lambda r: (-r.share, -r.tickets, str(r.topic)),
    )
    report.review_faqs = _ranked(faqs)


def _detail(text: str | None) -> dict:
    """An event's JSON detail; an unreadable one counts as empty rather than stopping the report."""
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _ranked(counts: Counter) -> list:
    """Most frequent first; ties in a stable order (by the key's text)."""
    return sorted(counts.items(), key=lambda item: (-item[1], str(item[0])))


def report_text(report: TriageReport) -> str:
    """The report as plain text for the coordinator: Greek headings, English after " / "."""
    since = f" από / since {report.since.isoformat()}" if report.since else ""
    lines = [f"Αναφορά διαλογής / Triage report{since}", ""]
    lines.append("Διορθώσεις ανά κεφαλή / Corrections per head")
    for head in HEADS:
        lines.append(f"  {HEAD_TITLES[head]}: {report.corrected[head]} διορθωμένα / corrected")
        for (before, after), n in report.pairs[head]:
            lines.append(f"    {_label(head, before)} → {_label(head, after)}: {n}")
    lines += ["", "Ποιος διόρθωσε / Who corrected"]
    lines += [f"  {visible(who)}: {n}" for who, n in report.by] or ["  —"]
    lines += ["", "Για έλεγχο ανά θέμα / Flagged for review per topic"]
    lines += [
        f"  {_label('topic', r.topic)}: {r.flagged} / {r.tickets} ({r.share:.0%})"
        for r in report.review
    ] or ["  —"]
    lines += ["", "Συχνότερα FAQ στα αιτήματα για έλεγχο / Most frequent FAQ keys in review"]
    lines += [f"  {visible(key)}: {n}" for key, n in report.review_faqs] or ["  —"]
    return "\n".join(lines)


def _label(head: str, value: object) -> str:
    if head == "technical":
        return {True: "τεχνικό / technical", False: "μη τεχνικό / not technical"}.get(
            value, "χωρίς ετικέτα / unlabelled"
        )
    return "μη τεχνικό / not technical" if value is None else visible(str(value))
