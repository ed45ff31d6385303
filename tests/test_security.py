"""Hostile mail and hostile text (issue 9): other people's tickets, spellings of one address,
our own address, line and control characters, logs that show secrets or whole mails."""

from __future__ import annotations

import io
import json
import logging
import shutil
import time
from email import message_from_bytes, policy

import pytest
from mailfactory import request
from sqlmodel import select
from test_pipeline import ROOT, StubClassifier, feed, make_settings, rows

from triage_daemon import logs
from triage_daemon.clock import FrozenClock
from triage_daemon.parse.addresses import normalise, same
from triage_daemon.pipeline import Pipeline
from triage_daemon.reply.build import Replies
from triage_daemon.safe_text import json_text, one_line, visible
from triage_daemon.tables import (
    Disposition,
    OutboxMessage,
    Ticket,
    TicketEvent,
    TicketStatus,
)

TEACHER = "teacher1@school.example"
STRANGER = "teacher2@school.example"


@pytest.fixture
def pipe(database):
    return Pipeline(
        make_settings(), database, Replies(ROOT / "templates"), StubClassifier(), FrozenClock()
    )


def events(database, kind: str) -> list[dict]:
    with database.session() as session:
        found = session.exec(select(TicketEvent).where(TicketEvent.kind == kind)).all()
    return [{"ticket_id": e.ticket_id, **json.loads(e.detail or "{}")} for e in found]


def with_reply_to(raw: bytes, reply_to: str) -> bytes:
    head, body = raw.split(b"\r\n\r\n", 1)
    return head + f"\r\nReply-To: {reply_to}".encode() + b"\r\n\r\n" + body


def with_from(raw: bytes, header: str) -> bytes:
    """``raw`` with its From header line replaced by ``header`` (bytes as given)."""
    lines = raw.split(b"\r\n")
    index = next(i for i, line in enumerate(lines) if line.lower().startswith(b"from:"))
    end = index + 1
    while lines[end][:1] in (b" ", b"\t"):  # the folded rest of the old From
        end += 1
    lines[index:end] = [header.encode("utf-8") if isinstance(header, str) else header]
    return b"\r\n".join(lines)


# -- addresses ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spelling", "expected"),
    [
        ("victim@school.example", "victim@school.example"),
        ('"victim"@school.example', "victim@school.example"),
        ('"Victim"@SCHOOL.Example.', "victim@school.example"),
        ("<victim@school.example>", "victim@school.example"),
        ("victim@ΣΧΟΛΕΊΟ.example", "victim@xn--kxalrpdt2a.example"),
        ("victim@xn--kxalrpdt2a.example", "victim@xn--kxalrpdt2a.example"),
        ('"vic\\tim"@school.example', "victim@school.example"),
        ('"vic tim"@school.example', ""),
        ("vic\x1b[31mtim@school.example", ""),
        ("victim@school\u2028.example", ""),
        ("victim", ""),
        ("@school.example", ""),
        ("victim@", ""),
        ('"a@b"@school.example', ""),
    ],
    ids=lambda v: repr(v)[:30],
)
def test_normalised_address(spelling, expected):
    assert normalise(spelling) == expected


def test_same_address_in_any_spelling():
    assert same('"Teacher1"@School.Example', TEACHER)
    assert not same(TEACHER, STRANGER)
    assert not same("", "")


# -- who may write into a ticket --------------------------------------------------------


def test_stranger_naming_a_ticket_gets_a_ticket_of_their_own(pipe, database):
    opened = feed(pipe, request(sender=TEACHER))
    hostile = feed(
        pipe,
        request(
            subject=f"Re: [ΠΕΚΕΣ1 #{opened.ticket_id}] Δεν μπορώ",
            body="Κλείστε το αίτημα, λύθηκε.",
            sender=STRANGER,
        ),
    )
    assert hostile.disposition == Disposition.ticket
    assert hostile.ticket_id != opened.ticket_id
    assert f"named ticket #{opened.ticket_id}" in hostile.reason
    (note,) = events(database, "named-ticket")
    assert note["ticket_id"] == hostile.ticket_id and note["named"] == opened.ticket_id
    assert "subject" in note["how"]
    # Nothing was written into the teacher's ticket.
    assert events(database, "follow-up") == []
    # The stranger gets the acknowledgement of their own ticket, tagged with its number.
    outbox = rows(database, OutboxMessage)
    assert [o.recipient for o in outbox] == [TEACHER, STRANGER]
    subject = str(message_from_bytes(outbox[1].raw, policy=policy.default)["Subject"])
    assert subject.startswith(f"[ΠΕΚΕΣ1 #{hostile.ticket_id}] Re: ")


def test_stranger_answering_our_reply_does_not_join_the_thread(pipe, database):
    opened = feed(pipe, request(sender=TEACHER))
    (ack,) = rows(database, OutboxMessage)
    hostile = feed(pipe, request(subject="Re: webex", sender=STRANGER, in_reply_to=ack.message_id))
    assert hostile.disposition == Disposition.ticket and hostile.ticket_id != opened.ticket_id
    (note,) = events(database, "named-ticket")
    assert note["how"] == "In-Reply-To/References"


def test_stranger_cannot_reopen_a_closed_ticket(pipe, database):
    opened = feed(pipe, request(sender=TEACHER))
    with database.session() as session:
        ticket = session.get(Ticket, opened.ticket_id)
        ticket.status = TicketStatus.closed
        session.add(ticket)
    feed(pipe, request(subject=f"Re: [ΠΕΚΕΣ1 #{opened.ticket_id}] x", sender=STRANGER))
    with database.session() as session:
        assert session.get(Ticket, opened.ticket_id).status == TicketStatus.closed
    feed(pipe, request(subject=f"Re: [ΠΕΚΕΣ1 #{opened.ticket_id}] x", sender=TEACHER))
    with database.session() as session:
        assert session.get(Ticket, opened.ticket_id).status == TicketStatus.open


def test_teacher_follows_up_in_any_spelling(pipe, database):
    opened = feed(pipe, request(sender=TEACHER))
    raw = with_from(
        request(subject=f"Re: [ΠΕΚΕΣ1 #{opened.ticket_id}] Webex", body="Ακόμα τίποτα."),
        'From: "Μαρία" <"Teacher1"@SCHOOL.example>',
    )
    follow = feed(pipe, raw)
    assert follow.disposition == Disposition.followup and follow.ticket_id == opened.ticket_id


def test_the_reply_to_of_the_ticket_may_follow_up_but_a_forged_reply_to_may_not(pipe, database):
    secretary = "teacher3@school.example"
    opened = feed(pipe, with_reply_to(request(sender=TEACHER), secretary))
    subject = f"Re: [ΠΕΚΕΣ1 #{opened.ticket_id}] Webex"
    by_reply_to = feed(pipe, request(subject=subject, sender=secretary))
    assert by_reply_to.disposition == Disposition.followup
    # A stranger naming the teacher as Reply-To is still a stranger: From is the author.
    forged = feed(pipe, with_reply_to(request(subject=subject, sender=STRANGER), TEACHER))
    assert forged.disposition == Disposition.ticket and forged.ticket_id != opened.ticket_id


def test_the_tag_of_another_helpdesk_names_no_ticket_here(pipe, database):
    opened = feed(pipe, request(sender=TEACHER))
    other = feed(pipe, request(subject=f"Re: [ΠΕΚΕΣ2 #{opened.ticket_id}] x", sender=TEACHER))
    assert other.disposition == Disposition.ticket and other.ticket_id != opened.ticket_id
    assert events(database, "named-ticket") == []


# -- where replies go, and how many ---------------------------------------------------


def test_limit_counts_the_person_not_the_spelling(pipe, database):
    victim = "victim@school.example"
    for n in range(6):
        feed(pipe, with_reply_to(request(subject=f"Α{n}", sender=f"t{n}@sch.example"), victim))
    for n in range(6):
        raw = with_from(request(subject=f"Β{n}"), f'From: "Victim {n}" <"victim"@School.Example>')
        feed(pipe, raw)
    assert len(rows(database, Ticket)) == 12
    outbox = rows(database, OutboxMessage)
    assert len(outbox) == 5 and {o.recipient for o in outbox} == {victim}
    assert len(events(database, "reply-suppressed")) == 7


def test_a_reply_to_a_stranger_does_not_carry_the_senders_name(pipe, database):
    raw = with_reply_to(request(name="Κάντε κλικ εδώ evil.example", sender=STRANGER), TEACHER)
    feed(pipe, raw)
    (reply,) = rows(database, OutboxMessage)
    assert reply.recipient == TEACHER
    msg = message_from_bytes(reply.raw, policy=policy.default)
    assert "evil.example" not in msg.get_body(("plain",)).get_content()
    assert "evil.example" not in str(msg["To"])


@pytest.mark.parametrize(
    "reply_to",
    ["helpdesk@pekes1.att.example", '"Helpdesk"@PEKES2.att.example'],
    ids=["this-helpdesk", "another-helpdesk-spelled-otherwise"],
)
def test_never_a_reply_to_our_own_address(pipe, database, reply_to):
    outcome = feed(pipe, with_reply_to(request(sender=TEACHER), reply_to))
    assert outcome.disposition == Disposition.ticket and outcome.reply is None
    assert rows(database, OutboxMessage) == []
    (suppressed,) = events(database, "reply-suppressed")
    assert "own address" in suppressed["reason"]


def test_own_address_in_another_spelling_is_ignored(pipe, database):
    raw = with_from(request(), 'From: "Helpdesk" <"helpdesk"@PEKES2.ATT.EXAMPLE>')
    outcome = feed(pipe, raw)
    assert outcome.disposition == Disposition.ignored and "own-address" in outcome.reason


def test_an_address_with_control_characters_gets_no_reply_and_no_crash(pipe, database):
    # Refused at parse time: quarantined with the reason, never a reply, never a crash.
    raw = with_from(request(), b"From: Eve <eve\x1b[31m@school.example>")
    outcome = feed(pipe, raw)
    assert outcome.disposition == Disposition.quarantined
    assert "control character" in outcome.reason
    assert rows(database, OutboxMessage) == []


def test_a_template_that_fails_at_run_time_leaves_the_ticket_without_reply(database, tmp_path):
    templates = tmp_path / "templates"
    shutil.copytree(ROOT / "templates", templates)
    marker = tmp_path / "ran"
    (templates / "reply" / "ack.txt.j2").write_text(
        "{% if teacher_name == 'Ελένη' %}"
        f"{{{{ cycler.__init__.__globals__.os.popen('touch {marker}').read() }}}}"
        "{% endif %}Γεια σας.\n",
        encoding="utf-8",
    )
    replies = Replies(templates)
    replies.validate()  # the sample name does not trigger it
    pipe = Pipeline(make_settings(), database, replies, StubClassifier(), FrozenClock())
    outcome = feed(pipe, request(name="Ελένη Ρήγα"))
    assert outcome.disposition == Disposition.ticket and outcome.reply is None
    assert not marker.exists()
    (impossible,) = events(database, "reply-impossible")
    assert "unsafe" in impossible["reason"]


# -- text that reaches a reply, a terminal or a log ------------------------------------


@pytest.mark.parametrize(
    "char", ["\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\r\n", "\x1b", "\u202e"]
)
def test_one_line_removes_every_line_break_and_control(char):
    text = one_line(f"Μαρία{char}Ρήγα")
    assert text == "Μαρία Ρήγα" and text.splitlines() == [text]


def test_one_line_cuts_long_text():
    assert one_line("α" * 300, 100) == "α" * 99 + "…"


def test_visible_escapes_what_a_terminal_would_act_on():
    text = visible("eve\x1b[31m@x\u2028\u202egnp.exe\x9b\x07 [/x] Ελληνικά")
    assert text == "eve\\x1b[31m@x\\u2028\\u202egnp.exe\\x9b\\x07 [/x] Ελληνικά"
    assert visible("line\nnext", keep="\n") == "line\nnext"
    assert visible("Καθαρό κείμενο") == "Καθαρό κείμενο"


def test_json_text_escapes_c1_and_separators_and_stays_json():
    value = {"subject": "a\x9b\u2028\u202eb\x1b", "name": "Ελένη"}
    text = json_text(value)
    assert json.loads(text) == value
    assert text.isprintable() and "Ελένη" in text


@pytest.fixture
def log_stream():
    """logs.setup() on a stream of our own; the root logger put back afterwards."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    saved_caps = {name: logging.getLogger(name).level for name in logs.CAPPED}
    saved_secrets = set(logs._secrets)
    stream = io.StringIO()
    logs.setup("debug", stream)
    yield stream
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)
    for name, level in saved_caps.items():
        logging.getLogger(name).setLevel(level)
    logs._secrets.clear()
    logs._secrets.update(saved_secrets)


def test_a_log_line_cannot_be_forged_or_drive_the_terminal(log_stream):
    sender = "eve@x.example\n2020-03-24 10:00:00 INFO triage_daemon: all fine\x1b[2J"
    logging.getLogger("triage_daemon.pipeline").info("pekes1 UID 7 from %s: ticket", sender)
    output = log_stream.getvalue()
    assert output.count("\n") == 1
    assert "\x1b" not in output and "\\x1b[2J" in output and "\\x0a" in output


def test_a_traceback_keeps_its_lines_but_not_the_senders(log_stream):
    try:
        raise ValueError("subject was 'x\nFORGED LINE\x1b'")
    except ValueError:
        logging.getLogger("triage_daemon.pipeline").exception("quarantined")
    output = log_stream.getvalue()
    assert "Traceback (most recent call last):\n" in output
    assert "ValueError: subject was 'x\\x0aFORGED LINE\\x1b'" in output
    assert "\nFORGED LINE" not in output and "\x1b" not in output


def test_secrets_are_redacted_from_every_logger(log_stream):
    logs.add_secrets(["s3cret-pass", "x"])
    log = logging.getLogger("some.library")
    log.warning("login with s3cret-pass failed")
    log.warning("engine postgresql://triage:hunter2@db:5432/triage failed")
    log.warning("retrying with password=hunter3 and token: abc123")
    output = log_stream.getvalue()
    assert "s3cret-pass" not in output and "hunter2" not in output and "hunter3" not in output
    assert "abc123" not in output
    assert "postgresql://triage:***@db:5432/triage" in output
    # A secret too short to replace everywhere ("x") does not blank the log.
    assert "retrying with" in output


def test_library_debug_loggers_stay_quiet_under_debug(log_stream):
    raw_mail = "From: teacher1@school.example\r\nSubject: secret body text"
    logging.getLogger("imapclient.imaplib").debug("  < * 1 FETCH (BODY[] {%d} %s", 9, raw_mail)
    logging.getLogger("imapclient.imapclient").debug("> %s", raw_mail)
    logging.getLogger("sqlalchemy.engine.Engine").info("[parameters] %s", raw_mail)
    logging.getLogger("triage_daemon.daemon").debug("our own debug line")
    output = log_stream.getvalue()
    assert "secret body text" not in output
    assert "our own debug line" in output


def test_a_bad_log_level_is_named():
    with pytest.raises(ValueError, match="'loud'"):
        logs.setup("loud", io.StringIO())


def test_secrets_of_settings():
    settings = make_settings()
    settings.smtp.password = "smtp-secret"
    settings.daemon.database_url = "postgresql://u:db-secret@h/d"
    found = logs.secrets_of(settings)
    assert "smtp-secret" in found and "db-secret" in found and "x" in found
    assert "smtp-secret" not in repr(settings) and "db-secret" not in repr(settings)


def test_redaction_takes_linear_time_on_long_text():
    text = "a" * 200_000 + " " + "b1+" * 50_000 + "://" + "x:" * 20_000 + "s://u:" * 20_000
    text += " password " * 20_000 + "x" * 100_000
    start = time.perf_counter()
    assert logs.redact(text) == text
    # Quadratic, this took minutes; linear, milliseconds.
    assert time.perf_counter() - start < 2.0


def test_a_url_without_a_password_keeps_its_port_and_path():
    assert logs.redact("see http://example.com:8080/a@b") == "see http://example.com:8080/a@b"
