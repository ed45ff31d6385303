"""`triage-daemon demo` end to end: the real daemon on embedded pymap (IMAP) and aiosmtpd (SMTP).

This is also the smoke test that the daemon works on an IMAP server other than Dovecot.
It runs twice: with a stand-in classifier (always: the plumbing), and with the trained
model shipped in models/ (skipped, saying so, when there is none yet).
"""

from __future__ import annotations

import io
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from rich.console import Console

from triage_daemon.context import ParsedMail, Triage
from triage_daemon.demo.run import SAMPLES, Row, run_demo, sample_bytes, schedule
from triage_daemon.demo.servers import port_open
from triage_daemon.tables import Disposition
from triage_daemon.triage.classify import METADATA_FILE, MODEL_FILE

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "models"
REQUESTS = ("ticket", "not_technical")


class KeywordClassifier:
    """A stand-in for the model: enough to steer every branch the samples need."""

    def classify(self, mail: ParsedMail) -> Triage:
        text = f"{mail.subject} {mail.text}".lower()
        if "υπερωρίες" in text:
            return Triage(False, None, None, {"technical": 0.95})
        if "αίθουσα αναμονής" in text or "lobby" in text:
            confidence = {"technical": 0.95, "topic": 0.9, "faq": 0.9}
            return Triage(True, "webex", "webex-lobby", confidence)
        topic = "webex" if "webex" in text else "other"
        return Triage(True, topic, "none", {"technical": 0.9, "topic": 0.8, "faq": 0.5})


@pytest.fixture(scope="module", params=["stand-in", "model"])
def summary(request):
    trained = all((MODELS / name).exists() for name in (MODEL_FILE, METADATA_FILE))
    if request.param == "model" and not trained:
        pytest.skip(f"no trained model in {MODELS}: run `triage-daemon train` to include it")
    classifier = KeywordClassifier() if request.param == "stand-in" else None
    console = Console(file=io.StringIO(), width=160)
    result = run_demo(until_done=True, rounds_delay=0.2, console=console, classifier=classifier,
                      done_timeout=45)
    result.console_output = console.file.getvalue()
    return result


def rows_of(summary, file: str) -> list[Row]:
    return [r for r in summary.rows if r.sample.file == file]


def only(summary, file: str) -> Row:
    rows = rows_of(summary, file)
    assert len(rows) == 1, f"{file}: expected one mailbox, got {[r.mailbox for r in rows]}"
    return rows[0]


def test_every_sample_mail_got_an_outcome(summary):
    assert {r.sample.file for r in summary.rows} == {s.file for s in SAMPLES}
    unhandled = [(r.sample.file, r.mailbox) for r in summary.rows if r.outcome is None]
    assert unhandled == []
    assert summary.finished, f"not every reply reached the SMTP server; outbox: {summary.outbox}"
    quarantined = [(r.sample.file, r.outcome.reason) for r in summary.rows
                   if r.outcome.disposition == Disposition.quarantined]
    assert quarantined == []


def test_requests_open_one_ticket_each(summary):
    single = [s for s in SAMPLES if s.expect in REQUESTS and len(rows_of(summary, s.file)) == 1]
    assert len(single) >= 14
    tickets = []
    for sample in single:
        row = only(summary, sample.file)
        assert row.outcome.disposition.value in REQUESTS, (sample.file, row.outcome.reason)
        assert row.outcome.ticket_id is not None
        tickets.append(row.outcome.ticket_id)
    assert len(set(tickets)) == len(tickets)


def test_mail_to_two_helpdesks_is_one_ticket_and_a_duplicate(summary):
    rows = rows_of(summary, "19-psd-password-two-helpdesks.eml")
    assert sorted(r.mailbox for r in rows) == ["pekes5", "pekes6"]
    kinds = sorted(r.outcome.disposition.value for r in rows)
    assert kinds == ["duplicate", "ticket"]
    assert rows[0].outcome.ticket_id == rows[1].outcome.ticket_id
    assert sum(1 for r in rows if r.outcome.reply) == 1


@pytest.mark.parametrize(("file", "stage"), [
    ("05-out-of-office.eml", "auto-submitted"),
    ("08-bounce.eml", "bounce"),
], ids=["out-of-office", "bounce"])
def test_automatic_mail_is_ignored_and_not_answered(summary, file, stage):
    row = only(summary, file)
    assert row.outcome.disposition == Disposition.ignored
    assert row.outcome.reason.startswith(stage + ":")
    assert row.outcome.ticket_id is None and row.outcome.reply is None
    answers = [m for m in summary.relayed
               if row.message_id in str(m.message.get("In-Reply-To", ""))]
    assert answers == []


def test_follow_up_threads_onto_the_earlier_ticket(summary):
    first = only(summary, "01-webex-account.eml")
    follow_up = only(summary, "11-follow-up-to-01.eml")
    assert follow_up.outcome.disposition == Disposition.followup
    assert follow_up.outcome.ticket_id == first.outcome.ticket_id
    assert follow_up.outcome.reply is None


def test_every_ticket_is_answered_through_the_embedded_smtp_server(summary):
    opened = [r for r in summary.handled if r.outcome.disposition.value in REQUESTS]
    limited = [r for r in opened if not r.outcome.reply]  # the per-sender reply limit
    assert summary.tickets_opened == len(opened)
    assert len(summary.replies_received) == len(opened) - len(limited)
    assert summary.outbox == {"sent": len(opened) - len(limited)}
    for row in opened:
        assert row.reply_received == bool(row.outcome.reply)
    for mail in summary.replies_received:
        # RFC 3834: automatic replies are marked and go with a null envelope sender.
        assert mail.sender == ""
        assert mail.message["Auto-Submitted"] == "auto-replied"
        assert mail.recipients[0].endswith(".example")
        assert mail.message.get("X-Triage-Ticket") in {str(r.outcome.ticket_id) for r in opened}


def test_handled_mail_left_the_inbox(summary):
    counts = summary.folders
    assert counts.get("INBOX") == 0
    assert counts.get("Triage/Ignored") == 2
    handled = counts.get("Triage/Tickets", 0) + counts.get("Triage/NotTechnical", 0)
    assert handled == len(summary.rows) - 2


def test_servers_stopped_and_files_removed(summary):
    assert summary.imap_port and summary.smtp_port
    assert not port_open(summary.imap_port)
    assert not port_open(summary.smtp_port)
    assert not summary.workdir.exists()


def test_live_table_shows_every_mail(summary):
    output = summary.console_output
    for row in summary.rows:
        assert row.sender[:12] in output
    assert "all mail handled" in output


def test_the_non_technical_question_gets_the_polite_redirect(summary):
    row = only(summary, "03-not-technical-hours.eml")
    assert row.outcome.disposition == Disposition.not_technical
    assert row.outcome.reply == "reply/not_technical"


@pytest.mark.parametrize("per_round", [None, 1, 4, 7, 100], ids=lambda n: f"per_round={n}")
def test_schedule_keeps_the_order_of_arrival(per_round):
    rounds = schedule(per_round)
    assert [s for batch in rounds for s in batch] == list(SAMPLES)
    assert all(batch for batch in rounds)
    if per_round:
        assert all(len(batch) <= per_round for batch in rounds)


def test_sample_mails_are_what_the_demo_promises():
    mails = {s.file: message_from_bytes(sample_bytes(s), policy=policy.default) for s in SAMPLES}
    assert 15 <= len(mails) <= 25
    assert all(m["Message-ID"] for m in mails.values())
    assert len({m["Message-ID"] for m in mails.values()}) == len(mails)
    follow_up = mails["11-follow-up-to-01.eml"]
    assert follow_up["In-Reply-To"] == mails["01-webex-account.eml"]["Message-ID"]
    assert mails["05-out-of-office.eml"]["Auto-Submitted"].startswith("auto-replied")
    assert mails["08-bounce.eml"].get_content_type() == "multipart/report"
    assert mails["06-eme-hive-html-only.eml"].get_content_type() == "text/html"
    assert mails["07-webex-audio-windows-1253.eml"].get_content_charset() == "windows-1253"
    addressed = {a.addr_spec for m in mails.values() for h in ("To", "Cc") for a in
                 (m[h].addresses if m[h] else ())}
    assert addressed == {f"helpdesk@pekes{n}.att.example" for n in range(1, 7)}
