"""End to end on real Dovecot and Postfix, SQLite and PostgreSQL: mail in, tickets, replies out.

Teachers' mail is submitted to Postfix, delivered over LMTP into Dovecot, read by the
daemon over IMAP; its replies go back through Postfix into the teachers' mailboxes.
"""

from __future__ import annotations

import threading
import time

import pytest
from e2e import attica_settings, parse
from mailfactory import request
from sqlmodel import select

from triage_daemon.clock import Clock, FrozenClock
from triage_daemon.daemon import Daemon
from triage_daemon.fetch import MailboxConnection
from triage_daemon.tables import MessageRecord, OutboxMessage, Ticket

pytestmark = pytest.mark.e2e

HELPDESK = "helpdesk@pekes{}.att.example"


@pytest.fixture
def servers(fresh_mail_servers):
    return fresh_mail_servers


@pytest.fixture
def make_daemon(servers, db_url, tmp_path):
    made = []

    def make(clock=None, **daemon_settings):
        settings = attica_settings(servers, db_url, tmp_path / "data", **daemon_settings)
        daemon = Daemon(settings, clock=clock)
        made.append(daemon)
        return daemon

    yield make
    for daemon in made:
        daemon.db.dispose()


def deliver(servers, raw: bytes, to: list[str], sender="teacher1@school.example"):
    servers.send(raw, sender, to)


def tickets(daemon) -> list[Ticket]:
    with daemon.db.session() as session:
        return session.exec(select(Ticket).order_by(Ticket.id)).all()


def test_request_becomes_one_ticket_and_one_reply(servers, make_daemon):
    deliver(servers, request(), [HELPDESK.format(1)])
    servers.wait_for("pekes1")
    daemon = make_daemon()
    report = daemon.run_once()
    assert report.errors == {}
    (ticket,) = tickets(daemon)
    assert ticket.mailbox == "pekes1" and ticket.sender == "teacher1@school.example"
    (reply,) = servers.wait_for("teacher1")
    msg = parse(reply)
    assert str(msg["Subject"]).startswith(f"[ΠΕΚΕΣ1 #{ticket.id}] Re: ")
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["In-Reply-To"].strip() == f"<{ticket.message_id}>"
    assert msg.get_body(("plain",)).get_content().count(f"ΠΕΚΕΣ1 #{ticket.id}") >= 1
    # The original was moved out of INBOX to the outcome folder, never deleted.
    assert servers.dovecot.count("pekes1", "INBOX") == 0
    folders = servers.dovecot.folders("pekes1")
    tickets_folder = next(f for f in folders if f.replace(".", "/") == "Triage/Tickets")
    assert servers.dovecot.count("pekes1", tickets_folder) == 1
    # A second pass finds nothing new and sends nothing more.
    daemon.run_once()
    assert len(tickets(daemon)) == 1
    time.sleep(0.5)
    servers.postfix.wait_delivered()
    assert servers.dovecot.count("teacher1") == 1


def test_follow_up_threads_into_its_ticket(servers, make_daemon):
    deliver(servers, request(), [HELPDESK.format(2)])
    servers.wait_for("pekes2")
    daemon = make_daemon()
    daemon.run_once()
    (reply,) = servers.wait_for("teacher1")
    ack = parse(reply)
    follow = request(
        subject=f"Re: {ack['Subject']}",
        body="Δοκίμασα ξανά, δεν γίνεται.",
        in_reply_to=ack["Message-ID"].strip().strip("<>"),
        to=HELPDESK.format(2),
    )
    deliver(servers, follow, [HELPDESK.format(2)])
    servers.wait_for("pekes2")
    daemon.run_once()
    assert len(tickets(daemon)) == 1
    with daemon.db.session() as session:
        records = session.exec(select(MessageRecord).order_by(MessageRecord.id)).all()
    assert [r.disposition for r in records] == ["ticket", "followup"]
    assert records[1].ticket_id == records[0].ticket_id
    servers.postfix.wait_delivered()
    assert servers.dovecot.count("teacher1") == 1  # no second automatic reply


AUTOMATIC = {
    "out-of-office": {"Auto-Submitted": "auto-replied"},
    "x-autoreply": {"X-Autoreply": "yes"},
    "newsletter": {"List-Id": "<news.example>", "Precedence": "bulk"},
}


def bounce() -> bytes:
    return (
        b"From: MAILER-DAEMON@mail.school.example (Mail Delivery System)\r\n"
        b"To: helpdesk@pekes3.att.example\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        b"Message-ID: <bounce-1@mail.school.example>\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        b"--B\r\nContent-Type: text/plain\r\n\r\n"
        b"This is the mail system. Your mail could not be delivered.\r\n"
        b"--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        b"Reporting-MTA: dns; mail.school.example\r\n\r\n"
        b"Final-Recipient: rfc822; nobody@school.example\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        b"--B--\r\n"
    )


def test_automatic_mail_and_bounces_get_no_reply(servers, make_daemon):
    for n, headers in enumerate(AUTOMATIC.values(), start=1):
        deliver(
            servers,
            request(headers=headers, sender=f"teacher{n}@school.example"),
            [HELPDESK.format(3)],
            sender=f"teacher{n}@school.example",
        )
    deliver(servers, bounce(), [HELPDESK.format(3)], sender="")
    servers.wait_for("pekes3", count=4)
    daemon = make_daemon()
    daemon.run_once()
    assert tickets(daemon) == []
    with daemon.db.session() as session:
        assert session.exec(select(OutboxMessage)).all() == []
        records = session.exec(select(MessageRecord)).all()
    assert sorted(r.disposition for r in records) == ["ignored"] * 4
    servers.postfix.wait_delivered()
    assert sum(servers.dovecot.count(f"teacher{n}") for n in range(1, 4)) == 0


def test_same_mail_to_two_helpdesks_is_one_ticket(servers, make_daemon):
    raw = request(to=f"{HELPDESK.format(4)}, {HELPDESK.format(5)}")
    deliver(servers, raw, [HELPDESK.format(4), HELPDESK.format(5)])
    servers.wait_for("pekes4")
    servers.wait_for("pekes5")
    daemon = make_daemon()
    daemon.run_once()
    (ticket,) = tickets(daemon)
    assert {ticket.mailbox, ticket.also_to} == {"pekes4", "pekes5"}
    servers.postfix.wait_delivered()
    assert len(servers.wait_for("teacher1")) == 1


def test_smtp_down_then_up_every_reply_delivered_once(servers, make_daemon):
    for n in range(1, 6):
        deliver(
            servers,
            request(subject=f"Πρόβλημα {n}", sender=f"teacher{n}@school.example"),
            [HELPDESK.format(6)],
            sender=f"teacher{n}@school.example",
        )
    servers.wait_for("pekes6", count=5)
    servers.postfix.stop()
    clock = FrozenClock(Clock().now())
    daemon = make_daemon(clock=clock)
    report = daemon.run_once()
    assert report.sent == 0 and len(tickets(daemon)) == 5
    with daemon.db.session() as session:
        assert {o.status for o in session.exec(select(OutboxMessage)).all()} == {"pending"}
    servers.postfix.start()
    clock.advance(hours=1)
    assert daemon.run_once().sent == 5
    assert daemon.run_once().sent == 0
    servers.postfix.wait_delivered()
    for n in range(1, 6):
        assert len(servers.wait_for(f"teacher{n}")) == 1


def test_imap_restart_daemon_reconnects(servers, make_daemon):
    daemon = make_daemon(idle_seconds=2, poll_seconds=1)
    runner = threading.Thread(target=daemon.serve, daemon=True)
    runner.start()
    try:
        deliver(servers, request(subject="Πρώτο"), [HELPDESK.format(1)])
        wait_until(lambda: len(tickets(daemon)) == 1, 20)
        servers.dovecot.restart()
        deliver(
            servers,
            request(subject="Δεύτερο", sender="teacher2@school.example"),
            [HELPDESK.format(1)],
            sender="teacher2@school.example",
        )
        wait_until(lambda: len(tickets(daemon)) == 2, 60)
    finally:
        daemon.stop()
        runner.join(30)
    assert not runner.is_alive()
    assert sorted(t.subject for t in tickets(daemon)) == ["Δεύτερο", "Πρώτο"]


def test_idle_picks_up_new_mail_within_seconds(servers, make_daemon):
    daemon = make_daemon(idle_seconds=120, poll_seconds=120)
    runner = threading.Thread(target=daemon.serve, daemon=True)
    runner.start()
    try:
        time.sleep(1.5)  # connected and idling
        start = time.monotonic()
        deliver(servers, request(), [HELPDESK.format(2)])
        wait_until(lambda: len(tickets(daemon)) == 1, 15)
        elapsed = time.monotonic() - start
    finally:
        daemon.stop()
        runner.join(30)
    # Far below the 120 s poll interval: IDLE told us.
    assert elapsed < 10
    assert len(servers.wait_for("teacher1")) == 1


def test_uidvalidity_change_no_mail_skipped_none_twice(servers, make_daemon, monkeypatch):
    for n in range(1, 4):
        deliver(
            servers,
            request(subject=f"Αίτημα {n}", sender=f"teacher{n}@school.example"),
            [HELPDESK.format(1)],
            sender=f"teacher{n}@school.example",
        )
    servers.wait_for("pekes1", count=3)
    daemon = make_daemon()
    # The first pass records its outcomes but "crashes" before moving any mail.
    monkeypatch.setattr(MailboxConnection, "move", lambda self, uids, folder: None)
    daemon.run_once()
    monkeypatch.undo()
    assert len(tickets(daemon)) == 3
    old = servers.dovecot.uidvalidity("pekes1")
    servers.dovecot.set_uidvalidity("pekes1", "INBOX", old + 1000)
    assert servers.dovecot.uidvalidity("pekes1") == old + 1000
    deliver(
        servers,
        request(subject="Αίτημα 4", sender="teacher4@school.example"),
        [HELPDESK.format(1)],
        sender="teacher4@school.example",
    )
    servers.wait_for("pekes1", count=4)
    daemon.run_once()
    assert sorted(t.subject for t in tickets(daemon)) == [f"Αίτημα {n}" for n in range(1, 5)]
    assert servers.dovecot.count("pekes1", "INBOX") == 0
    servers.postfix.wait_delivered()
    for n in range(1, 5):
        assert len(servers.wait_for(f"teacher{n}")) == 1


def wait_until(predicate, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(0.1)


def test_quarantine_shows_in_status_and_replays(servers, make_daemon):
    from triage_daemon.replay import replay
    from triage_daemon.report import status

    servers.dovecot.append("pekes2", b"\x00\x01\x02 not a mail, no header at all\r\n")
    daemon = make_daemon()
    daemon.run_once()
    report = status(daemon.settings, daemon.db)
    assert report.dispositions == {"quarantined": 1}
    assert "no mail header" in report.quarantined[0]["reason"]
    folders = servers.dovecot.folders("pekes2")
    quarantine = next(f for f in folders if f.endswith("Quarantine"))
    assert servers.dovecot.count("pekes2", quarantine) == 1
    assert replay(daemon.settings.mailbox("pekes2"), daemon.db) == 1
    assert servers.dovecot.count("pekes2", "INBOX") == 1
    daemon.run_once()
    # Still not mail: set aside again, once, and never answered.
    assert status(daemon.settings, daemon.db).dispositions == {"quarantined": 1}
    assert servers.dovecot.count("pekes2", quarantine) == 1


def test_mime_wild_every_message_ticketed_or_set_aside(servers, make_daemon):
    from pathlib import Path

    corpus = Path(__file__).resolve().parents[1].parent / "shared" / "corpora" / "mime-wild"
    if not corpus.is_dir():
        pytest.skip(f"{corpus} is absent: the shared corpus is not beside this checkout")
    files = sorted(corpus.rglob("*.eml"))
    servers.dovecot.append_many("pekes3", [path.read_bytes() for path in files])
    appended = servers.dovecot.count("pekes3")
    daemon = make_daemon()
    report = daemon.run_once()
    assert report.errors == {}
    handled = [o for p in report.polls for o in p.outcomes]
    assert len(handled) == appended
    assert servers.dovecot.count("pekes3", "INBOX") == 0
    with daemon.db.session() as session:
        records = session.exec(select(MessageRecord)).all()
    kinds = {r.disposition for r in records}
    assert len(records) == appended
    assert kinds <= {"ticket", "not_technical", "ignored", "duplicate", "followup", "quarantined"}
    quarantined = [r for r in records if r.disposition == "quarantined"]
    assert all(r.reason for r in quarantined)
    assert len(quarantined) < appended * 0.02


def test_one_failing_mailbox_does_not_stop_the_others(servers, db_url, tmp_path):
    settings = attica_settings(servers, db_url, tmp_path / "data")
    settings.mailbox("pekes2").imap.password = "wrong password"
    for box in (1, 2, 3):
        deliver(servers, request(subject=f"Για το {box}ο"), [HELPDESK.format(box)])
        servers.wait_for(f"pekes{box}")
    daemon = Daemon(settings)
    try:
        report = daemon.run_once()
        assert set(report.errors) == {"pekes2"}
        assert "pekes2" in report.errors["pekes2"]
        assert sorted(t.mailbox for t in tickets(daemon)) == ["pekes1", "pekes3"]
        from triage_daemon.report import status

        boxes = {b["name"]: b for b in status(settings, daemon.db).mailboxes}
        assert boxes["pekes2"]["errors"] == 1 and boxes["pekes2"]["last_error"]
        assert boxes["pekes1"]["errors"] == 0 and boxes["pekes1"]["last_success"]
        # Fixed: the next pass picks the waiting mail up.
        settings.mailbox("pekes2").imap.password = servers.password
        assert Daemon(settings).run_once().errors == {}
        assert sorted(t.mailbox for t in tickets(daemon)) == ["pekes1", "pekes2", "pekes3"]
    finally:
        daemon.db.dispose()


def test_without_move_mail_is_copied_and_flagged_never_deleted(servers, make_daemon, monkeypatch):
    original_open = MailboxConnection.open

    def open_without_move(self):
        original_open(self)
        self.can_move = False

    monkeypatch.setattr(MailboxConnection, "open", open_without_move)
    deliver(servers, request(), [HELPDESK.format(4)])
    servers.wait_for("pekes4")
    daemon = make_daemon()
    daemon.run_once()
    daemon.run_once()  # the flagged original is not taken for new mail
    assert len(tickets(daemon)) == 1
    assert servers.dovecot.count("pekes4", "INBOX") == 1
    folders = servers.dovecot.folders("pekes4")
    tickets_folder = next(f for f in folders if f.endswith("Tickets"))
    assert servers.dovecot.count("pekes4", tickets_folder) == 1
    with servers.dovecot.connect("pekes4") as client:
        client.select_folder("INBOX", readonly=True)
        flags = next(iter(client.get_flags(client.search("ALL")).values()))
    assert b"$Triaged" in flags and b"\\Seen" in flags
    servers.postfix.wait_delivered()
    assert len(servers.wait_for("teacher1")) == 1
