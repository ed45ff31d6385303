"""A coordinator's corrections: reclassify a ticket; corrections become training examples."""

import json
from datetime import UTC, datetime

import pytest
from sqlmodel import select

from triage_daemon.errors import TriageError
from triage_daemon.tables import Ticket, TicketEvent, TicketStatus
from triage_daemon.triage.corrections import corrections, reclassify

NOW = datetime(2020, 3, 24, 9, 0, tzinfo=UTC)


def add_ticket(database, **fields) -> int:
    values = {"mailbox": "pekes1", "message_id": "m@sch.gr", "sender": "t@sch.gr",
              "subject": "Ερώτηση", "body": "Πώς μπαίνω στην η-τάξη;", "created": NOW,
              "updated": NOW, "status": TicketStatus.not_technical, "technical": False}
    values.update(fields)
    with database.session() as session:
        ticket = Ticket(**values)
        session.add(ticket)
        session.flush()
        return ticket.id


def test_not_technical_made_technical_becomes_open(database):
    ticket_id = add_ticket(database)
    ticket = reclassify(database, ticket_id, technical=True, topic="eclass", faq="eclass-login")
    assert ticket.status == TicketStatus.open
    assert (ticket.technical, ticket.topic, ticket.faq) == (True, "eclass", "eclass-login")
    with database.session() as session:
        (event,) = session.exec(select(TicketEvent)).all()
    detail = json.loads(event.detail)
    assert event.kind == "reclassified"
    assert detail["before"]["technical"] is False and detail["after"]["topic"] == "eclass"


def test_corrections_are_training_examples(database):
    add_ticket(database, message_id="a@sch.gr")
    corrected = add_ticket(database, message_id="b@sch.gr", subject="Κωδικός e-me")
    reclassify(database, corrected, technical=True, topic="eme", faq="eme-login")
    (example,) = corrections(database)
    assert example["subject"] == "Κωδικός e-me"
    assert (example["technical"], example["topic"], example["faq"]) == (True, "eme", "eme-login")


@pytest.mark.parametrize(
    ("topic", "faq", "message"),
    [("zoom", "none", "topic 'zoom'"), ("eme", "webex-lobby", "FAQ key 'webex-lobby'")],
)
def test_labels_must_fit_the_catalogue(database, topic, faq, message):
    ticket_id = add_ticket(database)
    with pytest.raises(TriageError, match=message):
        reclassify(database, ticket_id, technical=True, topic=topic, faq=faq)


def test_unknown_ticket(database):
    with pytest.raises(TriageError, match="no ticket #99"):
        reclassify(database, 99, technical=False)
