"""The "route" step in the pipeline, on both databases, with the Attica rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mailfactory import request
from sqlmodel import select
from test_pipeline import StubClassifier, feed, make_settings

from triage_daemon.clock import FrozenClock
from triage_daemon.pipeline import Pipeline
from triage_daemon.reply.build import Replies
from triage_daemon.rules import load_rules
from triage_daemon.tables import OutboxMessage, Ticket, TicketEvent

ROOT = Path(__file__).resolve().parents[1]
RULES = load_rules(ROOT / "examples" / "attica" / "rules")
KONSTANTINOU = "m.konstantinou@pekes1.att.example"
DIMAKIS = "a.dimakis@pekes1.att.example"


@pytest.fixture
def clock():
    return FrozenClock()


@pytest.fixture
def pipe(database, clock):
    return Pipeline(
        make_settings(),
        database,
        Replies(ROOT / "templates"),
        StubClassifier(),
        clock,
        rules=RULES,
    )


def ticket(database, ticket_id: int) -> Ticket:
    with database.session() as session:
        return session.get(Ticket, ticket_id)


def assigned_events(database) -> list[dict]:
    with database.session() as session:
        rows = session.exec(select(TicketEvent).where(TicketEvent.kind == "assigned")).all()
        return [json.loads(e.detail) for e in rows]


def test_requests_are_spread_over_the_topics_specialists(pipe, database, clock):
    who = []
    for n in range(4):
        outcome = feed(pipe, request(sender=f"teacher{n + 1}@school.example"))
        clock.advance(minutes=5)
        who.append(ticket(database, outcome.ticket_id).assignee)
        assert f"assigned to {who[-1]}" in outcome.reason
    # Fewest open first (K then D), then round-robin on a tie: K, D again.
    assert who == [KONSTANTINOU, DIMAKIS, KONSTANTINOU, DIMAKIS]
    first = ticket(database, 1)
    assert first.assignee_role == "specialist" and first.assigned_at is not None
    event = assigned_events(database)[0]
    assert event["assignee"] == KONSTANTINOU and event["role"] == "specialist"
    assert "λιγότερα ανοιχτά αιτήματα (0)" in event["reason"]


def test_an_override_moves_the_topic_and_drops_an_faq_of_the_old_one(pipe, database):
    raw = request(subject="webex lobby", body="Και στο myschool δεν μπαίνω, τι κάνω;")
    outcome = feed(pipe, raw)
    found = ticket(database, outcome.ticket_id)
    assert (found.topic, found.faq) == ("other", "none")
    assert found.assignee == DIMAKIS  # pekes1's only specialist for "other"
    with database.session() as session:
        (reply,) = session.exec(select(OutboxMessage)).all()
    assert reply.kind == "ack"  # not the Webex lobby answer
    assert "κανόνας 1 των overrides (phrase: myschool)" in assigned_events(database)[0]["reason"]


def test_not_technical_and_no_rules_are_not_routed(database, clock):
    routed = Pipeline(
        make_settings(),
        database,
        Replies(ROOT / "templates"),
        StubClassifier(),
        clock,
        rules=RULES,
    )
    outcome = feed(routed, request(subject="Μισθοδοσία Μαρτίου"))
    assert ticket(database, outcome.ticket_id).assignee is None
    plain = Pipeline(
        make_settings(), database, Replies(ROOT / "templates"), StubClassifier(), clock
    )
    outcome = feed(plain, request(sender="teacher9@school.example"))
    assert ticket(database, outcome.ticket_id).assignee is None
    assert assigned_events(database) == []
