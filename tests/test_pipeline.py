"""The pipeline on a real database (both backends) with a stand-in classifier."""

from __future__ import annotations

import json
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from mailfactory import message_id_of, request
from sqlmodel import select

from triage_daemon.clock import FrozenClock
from triage_daemon.config import Settings
from triage_daemon.context import ParsedMail, Triage
from triage_daemon.pipeline import Incoming, Pipeline
from triage_daemon.reply.build import Replies
from triage_daemon.tables import (
    Disposition,
    MessageRecord,
    OutboxMessage,
    Ticket,
    TicketEvent,
)

ROOT = Path(__file__).resolve().parents[1]


class StubClassifier:
    """Decides by keywords in the subject: enough to steer the pipeline's branches."""

    def __init__(self):
        self.calls = 0

    def classify(self, mail: ParsedMail) -> Triage:
        self.calls += 1
        subject = mail.subject.lower()
        if "μισθοδοσία" in subject:
            return Triage(False, None, None, {"technical": 0.99})
        if "lobby" in subject:
            return Triage(
                True, "webex", "webex-lobby", {"technical": 0.99, "topic": 0.9, "faq": 0.9}
            )
        return Triage(True, "webex", "none", {"technical": 0.9, "topic": 0.8, "faq": 0.5})


def make_settings(**replies) -> Settings:
    boxes = [
        {
            "name": f"pekes{n}",
            "address": f"helpdesk@pekes{n}.att.example",
            "tag": f"ΠΕΚΕΣ{n}",
            "imap": {"host": "127.0.0.1", "port": 143, "user": f"pekes{n}", "password": "x"},
        }
        for n in (1, 2)
    ]
    return Settings.model_validate(
        {"smtp": {"host": "127.0.0.1", "port": 25}, "mailbox": boxes, "replies": replies or {}}
    )


@pytest.fixture
def pipe(database):
    settings = make_settings()
    return Pipeline(
        settings, database, Replies(ROOT / "templates"), StubClassifier(), FrozenClock()
    )


_uid = iter(range(1, 10_000))


def feed(pipe, raw, mailbox="pekes1", uid=None, uidvalidity=1):
    return pipe.process(Incoming(mailbox, uidvalidity, uid or next(_uid), raw))


def rows(database, table):
    with database.session() as session:
        return session.exec(select(table)).all()


def test_new_request_one_ticket_one_reply(pipe, database):
    outcome = feed(pipe, request())
    assert outcome.disposition == Disposition.ticket
    assert outcome.folder == "Triage/Tickets"
    tickets = rows(database, Ticket)
    assert len(tickets) == 1 and tickets[0].topic == "webex" and tickets[0].faq == "none"
    outbox = rows(database, OutboxMessage)
    assert (
        len(outbox) == 1
        and outbox[0].kind == "ack"
        and outbox[0].recipient == "teacher1@school.example"
    )
    sent = message_from_bytes(outbox[0].raw, policy=policy.default)
    assert str(sent["Subject"]).startswith(f"[ΠΕΚΕΣ1 #{tickets[0].id}] Re: ")
    kinds = [e.kind for e in rows(database, TicketEvent)]
    assert kinds == ["opened", "reply-queued"]


def test_same_uid_twice_processed_once(pipe, database):
    raw = request()
    first = feed(pipe, raw, uid=500)
    again = feed(pipe, raw, uid=500)
    assert again.repeated and again.ticket_id == first.ticket_id
    assert len(rows(database, Ticket)) == 1 and len(rows(database, OutboxMessage)) == 1
    assert pipe.classifier.calls == 1


def test_same_message_id_redelivered(pipe, database):
    raw = request()
    feed(pipe, raw)
    second = feed(pipe, raw)
    assert second.disposition == Disposition.duplicate
    assert second.folder == "Triage/Tickets"
    assert len(rows(database, Ticket)) == 1 and len(rows(database, OutboxMessage)) == 1


def test_sent_to_two_helpdesks_is_one_ticket(pipe, database):
    raw = request(to="helpdesk@pekes1.att.example, helpdesk@pekes2.att.example")
    feed(pipe, raw, mailbox="pekes1")
    second = feed(pipe, raw, mailbox="pekes2")
    assert second.disposition == Disposition.duplicate
    (ticket,) = rows(database, Ticket)
    assert ticket.also_to == "pekes2"
    assert len(rows(database, OutboxMessage)) == 1
    assert "also-sent-to" in [e.kind for e in rows(database, TicketEvent)]


def test_follow_up_by_subject_tag_and_by_references(pipe, database):
    opened = feed(pipe, request())
    ticket_id = opened.ticket_id
    by_tag = feed(
        pipe, request(subject=f"Re: [ΠΕΚΕΣ1 #{ticket_id}] Δεν μπορώ", body="Ακόμα δεν μπαίνω.")
    )
    assert by_tag.disposition == Disposition.followup and by_tag.ticket_id == ticket_id
    (reply,) = rows(database, OutboxMessage)
    by_ref = feed(
        pipe, request(subject="Re: webex", body="Ευχαριστώ, λύθηκε!", in_reply_to=reply.message_id)
    )
    assert by_ref.disposition == Disposition.followup and by_ref.ticket_id == ticket_id
    assert len(rows(database, Ticket)) == 1
    assert len(rows(database, OutboxMessage)) == 1  # follow-ups get no automatic reply
    events = [e for e in rows(database, TicketEvent) if e.kind == "follow-up"]
    assert len(events) == 2 and "λύθηκε" in json.loads(events[1].detail)["text"]


@pytest.mark.parametrize(
    "headers",
    [
        {"Auto-Submitted": "auto-replied"},
        {"Precedence": "bulk"},
        {"List-Id": "<x.example>"},
        {"X-Autoreply": "yes"},
    ],
    ids=["auto-submitted", "precedence", "list-id", "x-autoreply"],
)
def test_automatic_mail_never_answered(pipe, database, headers):
    outcome = feed(pipe, request(headers=headers))
    assert outcome.disposition == Disposition.ignored
    assert outcome.folder == "Triage/Ignored"
    assert rows(database, Ticket) == [] and rows(database, OutboxMessage) == []
    assert pipe.classifier.calls == 0


def test_own_address_never_answered(pipe, database):
    outcome = feed(pipe, request(sender="helpdesk@pekes2.att.example"))
    assert outcome.disposition == Disposition.ignored and "own-address" in outcome.reason


def test_not_technical_gets_redirect(pipe, database):
    outcome = feed(pipe, request(subject="Ερώτηση για μισθοδοσία"))
    assert outcome.disposition == Disposition.not_technical
    assert outcome.folder == "Triage/NotTechnical"
    (ticket,) = rows(database, Ticket)
    assert ticket.status == "not_technical" and ticket.assignee is None
    (reply,) = rows(database, OutboxMessage)
    assert reply.kind == "not_technical"


def test_faq_match_sends_faq_answer(pipe, database):
    feed(pipe, request(subject="Μαθητές στο lobby"))
    (reply,) = rows(database, OutboxMessage)
    assert reply.kind == "faq"
    events = {e.kind: json.loads(e.detail) for e in rows(database, TicketEvent)}
    assert events["reply-queued"]["template"] == "faq/webex-lobby"


def test_unparsable_mail_quarantined(pipe, database):
    outcome = feed(pipe, b"\x00\x01 this is not mail at all")
    assert outcome.disposition == Disposition.quarantined
    assert outcome.folder == "Triage/Quarantine"
    (record,) = rows(database, MessageRecord)
    assert record.reason


def test_crash_in_a_stage_quarantines_and_rolls_back(pipe, database, caplog):
    class Exploding:
        def classify(self, mail):
            raise RuntimeError("model exploded")

    pipe.classifier = Exploding()
    outcome = feed(pipe, request())
    assert outcome.disposition == Disposition.quarantined
    assert "model exploded" in outcome.reason
    assert rows(database, Ticket) == [] and rows(database, OutboxMessage) == []
    assert "model exploded" in caplog.text


def test_per_sender_reply_limit(database):
    settings = make_settings(max_per_sender=2, window_minutes=60)
    pipe = Pipeline(
        settings, database, Replies(ROOT / "templates"), StubClassifier(), FrozenClock()
    )
    for n in range(4):
        feed(pipe, request(subject=f"Πρόβλημα {n}"))
    assert len(rows(database, Ticket)) == 4
    assert len(rows(database, OutboxMessage)) == 2
    assert sum(e.kind == "reply-suppressed" for e in rows(database, TicketEvent)) == 2
    pipe.clock.advance(minutes=61)
    feed(pipe, request(subject="Πρόβλημα μετά"))
    assert len(rows(database, OutboxMessage)) == 3


def test_mail_without_message_id_gets_stable_one(pipe, database):
    raw = request(message_id="")
    first = feed(pipe, raw)
    second = feed(pipe, raw)
    assert first.disposition == Disposition.ticket
    assert second.disposition == Disposition.duplicate
    (ticket,) = rows(database, Ticket)
    assert ticket.message_id


def test_message_id_recorded(pipe, database):
    raw = request()
    feed(pipe, raw)
    (ticket,) = rows(database, Ticket)
    assert ticket.message_id == message_id_of(raw)


def test_every_step_name_resolves_once():
    from triage_daemon.errors import ConfigError
    from triage_daemon.pipeline import STEPS
    from triage_daemon.steps import build_steps, registry

    pipe_steps = [name for names in STEPS.values() for name in names]
    assert set(pipe_steps) <= set(registry())
    assert all(name == step.name for name, step in registry().items())
    with pytest.raises(ConfigError) as caught:
        build_steps(("classify", "no-such-step", "classify"), deps=None)
    assert caught.value.problems == [
        "pipeline: unknown step 'no-such-step'",
        "pipeline: step 'classify' named twice",
    ]
