"""Hostile mail on real Dovecot and Postfix (issue 9): each mail that once did harm, again.

A stranger naming a teacher's ticket, one address spelled several ways, a Reply-To that
names the helpdesk, a name with a line separator, header-less auto-responders, two
helpdesks answering each other, and a debug log of a real run.
"""

from __future__ import annotations

import json
import subprocess
import sys
from email.header import Header

import pytest
from e2e import ATTICA, attica_env, attica_settings, parse
from mailfactory import request
from sqlmodel import select
from typer.testing import CliRunner

from triage_daemon.cli import app
from triage_daemon.daemon import Daemon
from triage_daemon.tables import MessageRecord, OutboxMessage, Ticket, TicketEvent

pytestmark = pytest.mark.e2e

HELPDESK = "helpdesk@pekes{}.att.example"


@pytest.fixture
def servers(fresh_mail_servers):
    return fresh_mail_servers


@pytest.fixture
def make_daemon(servers, db_url, tmp_path):
    made = []

    def make(mailboxes=None, database=None, **daemon_settings):
        """A daemon on the Attica example; only ``mailboxes`` (names) if given, on its
        own ``database`` URL if given."""
        name = f"daemon{len(made)}"
        settings = attica_settings(servers, database or db_url, tmp_path / name, **daemon_settings)
        if mailboxes:
            settings.mailboxes = [m for m in settings.mailboxes if m.name in mailboxes]
        daemon = Daemon(settings)
        made.append(daemon)
        return daemon

    yield make
    for daemon in made:
        daemon.db.dispose()


def with_header(raw: bytes, name: str, value: str) -> bytes:
    head, body = raw.split(b"\r\n\r\n", 1)
    return head + f"\r\n{name}: {value}".encode() + b"\r\n\r\n" + body


def with_from(raw: bytes, header: bytes) -> bytes:
    """``raw`` with its (folded) From header replaced by the line ``header``."""
    lines = raw.split(b"\r\n")
    index = next(i for i, line in enumerate(lines) if line.lower().startswith(b"from:"))
    end = index + 1
    while lines[end][:1] in (b" ", b"\t"):
        end += 1
    lines[index:end] = [header]
    return b"\r\n".join(lines)


def rows(daemon, table):
    with daemon.db.session() as session:
        return session.exec(select(table).order_by(table.id)).all()


def test_a_stranger_cannot_write_into_a_teachers_ticket(servers, make_daemon):
    servers.send(request(), "teacher1@school.example", HELPDESK.format(1))
    servers.wait_for("pekes1")
    daemon = make_daemon()
    daemon.run_once()
    (ack,) = [parse(raw) for raw in servers.wait_for("teacher1")]
    hostile = request(
        subject=f"Re: {ack['Subject']}",
        body="Λύθηκε, κλείστε το αίτημα.",
        sender="teacher2@school.example",
        in_reply_to=ack["Message-ID"].strip().strip("<>"),
    )
    servers.send(hostile, "teacher2@school.example", HELPDESK.format(1))
    servers.wait_for("pekes1")
    daemon.run_once()
    first, second = rows(daemon, Ticket)
    assert first.sender == "teacher1@school.example"
    assert second.sender == "teacher2@school.example"
    kinds = [(e.ticket_id, e.kind) for e in rows(daemon, TicketEvent)]
    assert (first.id, "follow-up") not in kinds and (second.id, "named-ticket") in kinds
    # The stranger is answered on their own ticket; the teacher hears nothing more.
    (answer,) = [parse(raw) for raw in servers.wait_for("teacher2")]
    assert str(answer["Subject"]).startswith(f"[ΠΕΚΕΣ1 #{second.id}] Re: ")
    servers.postfix.wait_delivered()
    assert servers.dovecot.count("teacher1") == 1


def test_replies_go_to_people_not_spellings_and_never_to_ourselves(servers, make_daemon):
    victim = "teacher3@school.example"
    mails = [
        with_header(
            request(subject=f"Α{n}", sender=f"teacher{10 + n}@school.example"), "Reply-To", victim
        )
        for n in range(6)
    ]
    mails += [
        with_from(
            request(subject=f"Β{n}"), f'From: "Victim {n}" <"teacher3"@School.Example>'.encode()
        )
        for n in range(6)
    ]
    mails.append(
        with_header(request(sender="teacher4@school.example"), "Reply-To", HELPDESK.format(1))
    )
    # As a mail program sends it: the separator inside an RFC 2047 encoded-word.
    name = Header("Ελένη\u2028Ρήγα", "utf-8").encode()
    mails.append(
        with_from(
            request(sender="teacher5@school.example"),
            f"From: {name} <teacher5@school.example>".encode(),
        )
    )
    for raw in mails:
        servers.send(raw, "teacher9@school.example", HELPDESK.format(1))
    servers.wait_for("pekes1", count=len(mails))
    daemon = make_daemon()
    daemon.run_once()
    assert len(rows(daemon, Ticket)) == len(mails)
    servers.postfix.wait_delivered()
    # Five replies an hour to one person, however the address was spelled.
    received = servers.wait_for("teacher3", count=5)
    assert len(received) == 5
    assert {parse(r)["To"].addresses[0].addr_spec for r in received} == {victim}
    # The Reply-To named our own helpdesk: no reply, to anyone.
    assert servers.dovecot.count("pekes1", "INBOX") == 0
    assert sum(servers.dovecot.count(f"teacher{n}") for n in (4, 9, 10, 11, 12)) == 0
    # A line separator in the name leaves the greeting one line (the first name, vocative).
    (reply,) = [parse(r) for r in servers.wait_for("teacher5")]
    assert reply.get_body(("plain",)).get_content().splitlines()[0] == "Γεια σας, Ελένη,"


# Auto-responders that add no automatic-mail header and do not thread their answer.
AUTORESPONDERS = {
    "teacher5": ("Λήψη μηνύματος", "Το μήνυμά σας παραλήφθηκε και θα απαντηθεί σύντομα."),
    "teacher6": (
        "Thank you",
        "This is an automated message: we have received your e-mail. Please do not reply.",
    ),
    "teacher7": (
        "Eingangsbestätigung",
        "Dies ist eine automatische Antwort. Ihre Nachricht ist bei uns eingegangen.",
    ),
}


def test_headerless_autoresponders_get_one_reply_each(servers, make_daemon):
    for user in AUTORESPONDERS:
        servers.send(
            request(sender=f"{user}@school.example"), f"{user}@school.example", HELPDESK.format(2)
        )
    # A teacher whose question says "αυτόματο μήνυμα" is a teacher all the same.
    question = request(
        sender="teacher8@school.example",
        subject="Δεν έρχεται το αυτόματο μήνυμα",
        body="Καλησπέρα σας,\nδεν μου έρχεται το αυτόματο μήνυμα επιβεβαίωσης από το e-class "
        "όταν εγγράφω μαθητές. Τι να κάνω;\nΕυχαριστώ,\nΝίκος",
    )
    servers.send(question, "teacher8@school.example", HELPDESK.format(2))
    servers.wait_for("pekes2", count=len(AUTORESPONDERS) + 1)
    daemon = make_daemon()
    answered: dict[str, int] = dict.fromkeys(AUTORESPONDERS, 0)
    for _round in range(3):
        daemon.run_once()
        servers.postfix.wait_delivered()
        for user, (subject, body) in AUTORESPONDERS.items():
            inbox = servers.dovecot.fetch_all(user)
            for _new in inbox[answered[user] :]:
                auto = request(subject=subject, body=body, sender=f"{user}@school.example")
                servers.send(auto, f"{user}@school.example", HELPDESK.format(2))
            answered[user] = len(inbox)
        servers.postfix.wait_delivered()
    assert answered == dict.fromkeys(AUTORESPONDERS, 1)
    assert servers.dovecot.count("teacher8") == 1
    ignored = [r for r in rows(daemon, MessageRecord) if r.disposition == "ignored"]
    assert len(ignored) == len(AUTORESPONDERS)
    assert all(r.reason.startswith("acknowledgement:") for r in ignored)


def test_two_helpdesks_answering_each_other_stop_after_one_reply_each(
    servers, make_daemon, tmp_path
):
    # Two instances, each with the other's address as a sender it does not know as its own.
    first = make_daemon(mailboxes=["pekes1"])
    second = make_daemon(mailboxes=["pekes2"], database=f"sqlite:///{tmp_path / 'b.sqlite3'}")
    servers.send(request(sender=HELPDESK.format(2)), HELPDESK.format(2), HELPDESK.format(1))
    servers.send(request(sender=HELPDESK.format(1)), HELPDESK.format(1), HELPDESK.format(2))
    servers.wait_for("pekes1")
    servers.wait_for("pekes2")
    for _round in range(4):
        first.run_once()
        second.run_once()
        servers.postfix.wait_delivered()
    for daemon in (first, second):
        (reply,) = rows(daemon, OutboxMessage)
        assert reply.status == "sent"
        records = rows(daemon, MessageRecord)
        assert [r.disposition for r in records] == ["ticket", "ignored"]
        assert records[1].reason.startswith("auto-submitted:")
    assert servers.dovecot.count("pekes1", "INBOX") == servers.dovecot.count("pekes2", "INBOX") == 0


def test_a_debug_run_logs_no_mail_and_no_secret(servers, db_url, tmp_path):
    body = "Το webex δεν ανοίγει. ΣΩΜΑ-ΜΗΝΥΜΑΤΟΣ-7731"
    markup = request(subject="[/x] [bold]Webex[/bold] δεν ανοίγει", body=body)
    # An ESC inside the address: refused at parse time, quarantined with the reason.
    # Stored as a lax relay would deliver it: Postfix itself rewrites such a From.
    escaped = with_from(request(body=body), b"From: Eve <eve\x1b[31m@school.example>")
    servers.dovecot.append("pekes3", markup)
    servers.dovecot.append("pekes3", escaped)
    env = attica_env(servers, db_url, tmp_path / "data")
    env["COLUMNS"] = "250"

    def cli(*args: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "triage_daemon", *args, "--config", str(ATTICA)]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)

    run = cli("run", "--once", "--log-level", "debug")
    log = run.stdout + run.stderr
    assert run.returncode == 0, log
    assert "2 messages handled" in log
    assert "ΣΩΜΑ-ΜΗΝΥΜΑΤΟΣ-7731" not in log and "ΣΩΜΑ" not in log
    assert servers.password not in log
    assert "\x1b" not in log and "control character" in log
    # The tables, in this process: they set up no logging.
    table = CliRunner().invoke(app, ["tickets", "--config", str(ATTICA)], env=env)
    assert table.exit_code == 0, table.output
    assert "[/x] [bold]Webex[/bold]" in table.output and "\x1b" not in table.output
    status = CliRunner().invoke(app, ["status", "--config", str(ATTICA)], env=env)
    assert status.exit_code == 0, status.output
    assert "control character" in status.output and "\x1b" not in status.output
    as_json = CliRunner().invoke(app, ["tickets", "--json", "--config", str(ATTICA)], env=env)
    (row,) = [json.loads(line) for line in as_json.output.splitlines()]
    assert row["subject"].startswith("[/x] [bold]Webex[/bold]")
