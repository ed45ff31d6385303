"""The triage report: corrections per head and pair, who corrected, review share and FAQ keys."""

import json
from datetime import UTC, datetime

import pytest
from typer.testing import CliRunner

from triage_daemon.cli import app
from triage_daemon.clock import FrozenClock
from triage_daemon.errors import TriageError
from triage_daemon.tables import Ticket, TicketEvent, TicketStatus
from triage_daemon.triage.corrections import corrections, reclassify
from triage_daemon.triage.report import report_text, triage_report

NOW = datetime(2020, 3, 24, 9, 0, tzinfo=UTC)
LATER = datetime(2020, 4, 1, 9, 0, tzinfo=UTC)


def add_ticket(database, number, *, topic=None, faq=None, review=False, created=NOW) -> int:
    """A ticket as the model left it, with the "opened" event that records its review flag."""
    technical = topic is not None
    with database.session() as session:
        ticket = Ticket(
            mailbox="pekes1",
            message_id=f"m{number}@sch.gr",
            sender="t@sch.gr",
            subject=f"Ερώτηση {number}",
            body="Δεν μπαίνω στην πλατφόρμα.",
            created=created,
            updated=created,
            technical=technical,
            topic=topic,
            faq=faq,
            review=review,
            status=TicketStatus.open if technical else TicketStatus.not_technical,
        )
        session.add(ticket)
        session.flush()
        detail = {"technical": technical, "topic": topic, "faq": faq, "review": review}
        session.add(
            TicketEvent(
                ticket_id=ticket.id,
                at=created,
                kind="opened",
                stage="classify",
                detail=json.dumps(detail),
            )
        )
        return ticket.id


def hand_made_set(database) -> None:
    """Five tickets, five corrections by two people (see the expected figures below)."""
    t1 = add_ticket(database, 1, topic="eclass", faq="eclass-login")
    t2 = add_ticket(database, 2, topic="eclass", faq="none", review=True)
    t3 = add_ticket(database, 3)
    add_ticket(database, 4, topic="webex", faq="webex-lobby", review=True)
    t5 = add_ticket(database, 5, topic="eclass", faq="eclass-login")
    reclassify(database, t1, technical=True, topic="eme", faq="eme-login", by="A@sch.gr")
    reclassify(database, t2, technical=True, topic="eme", faq="none", by="a@sch.gr")
    reclassify(database, t3, technical=True, topic="webex", faq="webex-lobby")
    # Changed and changed back: two corrections, but no confusion left to count.
    reclassify(database, t5, technical=True, topic="eme", faq="none")
    reclassify(database, t5, technical=True, topic="eclass", faq="eclass-login")


def test_report_counts_corrections_pairs_people_and_review(database):
    hand_made_set(database)
    report = triage_report(database)
    assert report.corrected == {"technical": 1, "topic": 3, "faq": 2}
    assert report.pairs["technical"] == [((False, True), 1)]
    assert report.pairs["topic"] == [(("eclass", "eme"), 2), ((None, "webex"), 1)]
    assert report.pairs["faq"] == [(("eclass-login", "eme-login"), 1), ((None, "webex-lobby"), 1)]
    assert report.by == [("coordinator", 3), ("a@sch.gr", 2)]
    # Ticket 2's flag survives its correction (which clears Ticket.review).
    assert [(r.topic, r.flagged, r.tickets) for r in report.review] == [
        ("eme", 1, 2),
        ("webex", 1, 2),
        ("eclass", 0, 1),
    ]
    assert report.review_faqs == [("none", 1), ("webex-lobby", 1)]


def test_report_since_leaves_out_older_corrections_and_tickets(database):
    old = add_ticket(database, 1, topic="eclass", faq="none", review=True)
    new = add_ticket(database, 2, topic="webex", faq="none", created=LATER)
    reclassify(database, old, technical=False, clock=FrozenClock(NOW))
    reclassify(
        database,
        new,
        technical=True,
        topic="eme",
        faq="none",
        by="b@sch.gr",
        clock=FrozenClock(LATER),
    )
    report = triage_report(database, since=LATER)
    assert report.corrected == {"technical": 0, "topic": 1, "faq": 0}
    assert report.by == [("b@sch.gr", 1)]
    assert [(r.topic, r.flagged, r.tickets) for r in report.review] == [("eme", 0, 1)]


def test_report_text_has_greek_and_english_headings(database):
    hand_made_set(database)
    text = report_text(triage_report(database))
    assert "Διορθώσεις ανά κεφαλή / Corrections per head" in text
    assert "    eclass → eme: 2" in text
    assert "    μη τεχνικό / not technical → τεχνικό / technical: 1" in text
    assert "  a@sch.gr: 2" in text
    assert "  eme: 1 / 2 (50%)" in text


def test_empty_database_gives_an_empty_report(database):
    report = triage_report(database)
    assert report.corrected == {"technical": 0, "topic": 0, "faq": 0}
    assert report.by == [] and report.review == []
    assert "Ποιος διόρθωσε / Who corrected\n  —" in report_text(report)


def test_corrections_say_who_made_them(database):
    ticket = add_ticket(database, 1, topic="eclass", faq="none")
    reclassify(database, ticket, technical=True, topic="eme", faq="none", by="x@sch.gr")
    reclassify(database, ticket, technical=True, topic="eme", faq="eme-login", by=" Y@sch.gr ")
    (example,) = corrections(database)
    assert example["corrected_by"] == "y@sch.gr"


def test_a_correction_needs_someone(database):
    ticket = add_ticket(database, 1)
    with pytest.raises(TriageError, match="say who made the correction"):
        reclassify(database, ticket, technical=True, by="  ")


def write_config(tmp_path, db_url):
    path = tmp_path / "config.toml"
    path.write_text(
        f"""
[daemon]
database_url = "{db_url}"
data_dir = "{tmp_path / "data"}"

[smtp]
host = "127.0.0.1"
port = 25

[[mailbox]]
name = "pekes1"
address = "helpdesk@pekes1.att.example"
imap = {{ host = "127.0.0.1", port = 1, user = "pekes1", password = "x", tls = "none" }}
""",
        encoding="utf-8",
    )
    return str(path)


def test_cli_reclassify_by_then_report(tmp_path, db_url):
    from triage_daemon.db import Database

    config = write_config(tmp_path, db_url)
    runner = CliRunner()
    assert runner.invoke(app, ["triage", "report", "--config", config]).exit_code == 0
    database = Database(db_url)
    try:
        ticket = add_ticket(database, 1, topic="eclass", faq="none", review=True)
    finally:
        database.dispose()
    fixed = runner.invoke(
        app,
        [
            "reclassify",
            str(ticket),
            "--technical",
            "--topic",
            "eme",
            "--by",
            "spec@sch.gr",
            "--config",
            config,
        ],
    )
    assert fixed.exit_code == 0, fixed.output
    result = runner.invoke(app, ["triage", "report", "--json", "--config", config])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output)
    assert figures["heads"]["topic"] == {
        "corrected": 1,
        "pairs": [{"from": "eclass", "to": "eme", "tickets": 1}],
    }
    assert figures["by"] == [{"by": "spec@sch.gr", "corrections": 1}]
    assert figures["review"] == [{"topic": "eme", "tickets": 1, "flagged": 1, "share": 1.0}]
    text = runner.invoke(app, ["triage", "report", "--since", "2000-01-01", "--config", config])
    assert "Αναφορά διαλογής / Triage report από / since 2000-01-01T00:00:00+00:00" in text.output
    bad = runner.invoke(app, ["triage", "report", "--since", "yesterday", "--config", config])
    assert bad.exit_code == 2
