"""The outbox: each row sent at most once, retried with backoff while SMTP is down, 5xx gives up,
and one mail's error never stops the others."""

import asyncio
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from smtp_sink import Sink, SMTPSink
from sqlalchemy import update
from sqlmodel import select

from triage_daemon import outbox as outbox_module
from triage_daemon.clock import FrozenClock
from triage_daemon.config import SMTPSettings
from triage_daemon.journal import SentJournal
from triage_daemon.outbox import Outbox
from triage_daemon.send import Sender
from triage_daemon.tables import OutboxMessage, OutboxStatus


@pytest.fixture
def sink():
    server = SMTPSink()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def journal(tmp_path):
    journal = SentJournal(tmp_path / "journal")
    yield journal
    journal.close()


def sender_for(database, clock, smtp: SMTPSettings, journal: SentJournal) -> Sender:
    return Sender(Outbox(database, smtp, clock), smtp, journal)


def settings(port: int, **extra) -> SMTPSettings:
    values = {"connections": 3, "retry_base_seconds": 60, **extra}
    return SMTPSettings(host="127.0.0.1", port=port, **values)


def queue(database, clock, count: int, recipient="teacher@sch.gr"):
    with database.session() as session:
        for n in range(count):
            raw = (
                f"From: helpdesk@pekes1.att.example\r\nTo: {recipient}\r\n"
                f"Subject: reply {n}\r\nMessage-ID: <r{n}@pekes1>\r\n\r\nbody {n}\r\n"
            ).encode()
            session.add(
                OutboxMessage(
                    kind="ack",
                    sender="helpdesk@pekes1.att.example",
                    recipient=recipient,
                    message_id=f"r{n}-{recipient}",
                    raw=raw,
                    created=clock.now(),
                    next_attempt=clock.now(),
                )
            )


def statuses(database) -> list[str]:
    return [getattr(r.status, "value", r.status) for r in rows(database)]


def rows(database) -> list[OutboxMessage]:
    with database.session() as session:
        return session.exec(select(OutboxMessage).order_by(OutboxMessage.id)).all()


def test_each_row_sent_exactly_once(database, sink, journal):
    clock = FrozenClock()
    queue(database, clock, 25)
    sender = sender_for(database, clock, settings(sink.port), journal)
    assert asyncio.run(sender.drain()) == 25
    assert asyncio.run(sender.drain()) == 0
    subjects = sorted(r.data.split(b"Subject: ")[1].split(b"\r\n")[0] for r in sink.received)
    assert subjects == sorted(f"reply {n}".encode() for n in range(25))
    # RFC 3834: automatic replies use a null envelope sender.
    assert {r.mail_from for r in sink.received} == {"<>"}
    assert statuses(database) == ["sent"] * 25


def test_smtp_down_then_up(database, sink, journal):
    clock = FrozenClock()
    queue(database, clock, 4)
    sink.stop()
    sender = sender_for(database, clock, settings(sink.port), journal)
    assert asyncio.run(sender.drain()) == 0
    # A relay that is down costs the mail nothing: no attempt spent, nothing claimed.
    assert statuses(database) == ["pending"] * 4
    with database.session() as session:
        assert all(r.attempts == 0 for r in session.exec(select(OutboxMessage)).all())
    assert sender.retry_at == clock.now() + timedelta(seconds=60)
    # The sender waits out its backoff even once the server is back.
    sink.start()
    assert asyncio.run(sender.drain()) == 0
    clock.advance(seconds=61)
    assert asyncio.run(sender.drain()) == 4
    assert sender.retry_at is None
    assert len(sink.received) == 4
    assert statuses(database) == ["sent"] * 4


def test_relay_backoff_doubles(database, sink, journal):
    clock = FrozenClock()
    queue(database, clock, 1)
    sink.stop()
    sender = sender_for(database, clock, settings(sink.port), journal)
    waits = []
    for _ in range(3):
        asyncio.run(sender.drain())
        waits.append(sender.retry_at - clock.now())
        clock.advance(seconds=waits[-1].total_seconds())
    assert waits == [timedelta(seconds=60), timedelta(seconds=120), timedelta(seconds=240)]


def test_temporary_refusal_retried_later(database, sink, journal):
    clock = FrozenClock()
    sink.sink.defer.add("busy@sch.gr")
    queue(database, clock, 1, recipient="busy@sch.gr")
    sender = sender_for(database, clock, settings(sink.port), journal)
    assert asyncio.run(sender.drain()) == 0
    assert statuses(database) == ["pending"]
    sink.sink.defer.clear()
    clock.advance(seconds=61)
    assert asyncio.run(sender.drain()) == 1


def test_permanent_refusal_gives_up(database, sink, journal):
    clock = FrozenClock()
    sink.sink.refuse.add("gone@sch.gr")
    queue(database, clock, 1, recipient="gone@sch.gr")
    queue(database, clock, 1, recipient="here@sch.gr")
    sender = sender_for(database, clock, settings(sink.port), journal)
    assert asyncio.run(sender.drain()) == 1
    assert statuses(database) == ["failed", "sent"]


def test_too_many_attempts_gives_up(database, sink, journal):
    clock = FrozenClock()
    sink.sink.defer.add("teacher@sch.gr")
    queue(database, clock, 1)
    smtp = settings(sink.port, max_attempts=2)
    sender = sender_for(database, clock, smtp, journal)
    asyncio.run(sender.drain())
    clock.advance(hours=2)
    asyncio.run(sender.drain())
    assert statuses(database) == ["failed"]


def test_stale_claim_released(database):
    clock = FrozenClock()
    queue(database, clock, 2)
    outbox = Outbox(database, settings(1), clock)
    claimed = outbox.claim()
    assert len(claimed) == 2
    assert outbox.claim() == []  # nobody else gets them
    assert outbox.release_stale() == 0  # this process is alive
    clock.advance(minutes=11)
    assert outbox.release_stale() == 2
    assert len(outbox.claim()) == 2


def test_claims_of_a_dead_process_released_at_once(database):
    clock = FrozenClock()
    queue(database, clock, 3)
    outbox = Outbox(database, settings(1), clock)
    assert len(outbox.claim()) == 3
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    with database.session() as session:
        session.exec(update(OutboxMessage).values(claimed_by=f"{outbox_module.HOST}:{dead.pid}"))
    assert outbox.release_stale() == 3


def test_backoff_grows(database):
    clock = FrozenClock()
    queue(database, clock, 1)
    outbox = Outbox(database, settings(1), clock)
    delays = []
    for _ in range(3):
        clock.advance(days=1)
        item = outbox.claim()[0]
        outbox.failed(item, "down", permanent=False)
        with database.session() as session:
            row = session.exec(select(OutboxMessage)).one()
            delays.append(row.next_attempt - clock.now())
    assert delays == [timedelta(seconds=60), timedelta(seconds=120), timedelta(seconds=240)]
    assert statuses(database) == [OutboxStatus.pending.value]


# -- one mail's error never stops the others ---------------------------------------------

# Passes header parsing (a quoted local part), but aiosmtplib refuses the control
# characters on the RCPT line with ValueError (issue 9).
BAD_ADDRESS = '"a\tb\x0bc"@school.example'


def test_one_bad_address_never_stops_the_outbox(database, sink, journal):
    clock = FrozenClock()
    queue(database, clock, 1, recipient=BAD_ADDRESS)
    queue(database, clock, 9, recipient="innocent@sch.gr")
    sender = sender_for(database, clock, settings(sink.port), journal)
    assert asyncio.run(sender.drain()) == 9
    assert statuses(database) == ["failed"] + ["sent"] * 9
    bad = rows(database)[0]
    assert "ValueError" in bad.last_error and "control character" in bad.last_error
    assert len(sink.received) == 9
    # Failed for good: it is not tried again, and the next drain has nothing to do.
    clock.advance(days=1)
    assert asyncio.run(sender.drain()) == 0
    assert statuses(database) == ["failed"] + ["sent"] * 9


class FlakyOutbox(Outbox):
    """The database fails once, at the method named ``broken``."""

    def __init__(self, *args, broken: str):
        super().__init__(*args)
        self.broken = broken

    def _fail_once(self, name: str) -> None:
        if self.broken == name:
            self.broken = ""
            raise OSError(f"database unreachable ({name})")

    def failed(self, item, error, permanent):
        self._fail_once("failed")
        super().failed(item, error, permanent)

    def settle(self, outcomes):
        self._fail_once("settle")
        return super().settle(outcomes)


def test_database_error_mid_batch_releases_the_claimed_rows(database, sink, journal):
    clock = FrozenClock()
    queue(database, clock, 2, recipient="first@sch.gr")
    queue(database, clock, 1, recipient="gone@sch.gr")
    queue(database, clock, 3, recipient="then@sch.gr")
    sink.sink.refuse.add("gone@sch.gr")
    smtp = settings(sink.port, connections=1)
    outbox = FlakyOutbox(database, smtp, clock, broken="failed")
    sender = Sender(outbox, smtp, journal)
    with pytest.raises(OSError, match="database unreachable"):
        asyncio.run(sender.drain())
    # The two sent are recorded; the one whose refusal could not be recorded and the
    # three never tried go back to pending, none is left "sending".
    assert statuses(database) == ["sent", "sent", "pending", "pending", "pending", "pending"]
    assert asyncio.run(sender.drain()) == 3
    assert statuses(database) == ["sent", "sent", "failed", "sent", "sent", "sent"]
    assert len(sink.received) == 5


def test_accepted_rows_whose_update_failed_are_settled_not_resent(database, sink, journal):
    clock = FrozenClock()
    queue(database, clock, 4)
    smtp = settings(sink.port, connections=1)
    sender = Sender(FlakyOutbox(database, smtp, clock, broken="settle"), smtp, journal)
    with pytest.raises(OSError, match="database unreachable"):
        asyncio.run(sender.drain())
    # The relay has them: they stay claimed, known to the journal, never released.
    assert statuses(database) == ["sending"] * 4
    assert len(journal.unsettled) == 4
    assert asyncio.run(sender.drain()) == 0
    assert statuses(database) == ["sent"] * 4
    assert not journal.unsettled
    assert len(sink.received) == 4


# -- the final dot and the journal ---------------------------------------------------------


class HangUpAtTheDot(Sink):
    """Takes the mail, then drops the connection instead of answering the final dot: what
    the daemon sees when it dies while the relay writes its queue file."""

    async def handle_DATA(self, server, session, envelope):
        await super().handle_DATA(server, session, envelope)
        server.transport.close()
        return "250 never heard"


class RefuseAtTheDot(Sink):
    async def handle_DATA(self, server, session, envelope):
        return "554 5.6.0 content refused"


def sink_with(handler: Sink) -> SMTPSink:
    server = SMTPSink()
    server.sink = handler
    server.start()
    return server


def test_connection_lost_after_the_dot_counts_as_sent(database, journal):
    clock = FrozenClock()
    queue(database, clock, 2)
    server = sink_with(HangUpAtTheDot())
    try:
        sender = sender_for(database, clock, settings(server.port, connections=1), journal)
        assert asyncio.run(sender.drain()) == 1
        first, second = rows(database)
        assert (first.status, second.status) == ("sent", "pending")
        assert "never read" in first.last_error
        assert second.attempts == 0  # never tried: the connection was gone
        clock.advance(days=1)
        asyncio.run(sender.drain())
        # Each reached the relay once; neither is ever sent again.
        assert [r.data.count(b"Subject: reply") for r in server.received] == [1, 1]
        assert statuses(database) == ["sent", "sent"]
    finally:
        server.stop()


def test_refused_at_the_dot_is_a_failure_not_a_send(database, journal):
    clock = FrozenClock()
    queue(database, clock, 1)
    server = sink_with(RefuseAtTheDot())
    try:
        sender = sender_for(database, clock, settings(server.port), journal)
        assert asyncio.run(sender.drain()) == 0
        assert statuses(database) == ["failed"]
        assert "554" in rows(database)[0].last_error
        assert journal.outcomes().accepted == journal.outcomes().assumed == []
    finally:
        server.stop()


def test_a_stopped_journal_writer_is_replaced(database, sink, journal):
    clock = FrozenClock()
    queue(database, clock, 3)
    journal._writer.kill()
    journal._writer.wait()
    sender = sender_for(database, clock, settings(sink.port), journal)
    assert asyncio.run(sender.drain()) == 3
    assert sender.journal is not journal and not sender.journal.stopped
    assert statuses(database) == ["sent"] * 3
    assert len(sink.received) == 3
    sender.close()


def test_writer_dying_before_the_dot_costs_no_hang_and_no_mail(database, sink, journal):
    clock = FrozenClock()
    queue(database, clock, 2)
    sender = sender_for(database, clock, settings(sink.port, connections=1), journal)
    original = SentJournal.send_dot

    def writer_dies_with_the_request_unread(self, connection, message_id):
        SentJournal.send_dot = original
        os.kill(self._writer.pid, signal.SIGSTOP)
        asked = original(self, connection, message_id)
        asyncio.get_running_loop().call_later(0.3, os.kill, self._writer.pid, signal.SIGKILL)
        return asked

    SentJournal.send_dot = writer_dies_with_the_request_unread
    started = time.monotonic()
    try:
        assert asyncio.run(sender.drain()) == 0
    finally:
        SentJournal.send_dot = original
    # Not the relay's 10 minutes for an answer to a dot that never went.
    assert time.monotonic() - started < 30
    assert "journal writer" in sender.last_error
    first, second = rows(database)
    assert (first.status, first.attempts, second.status, second.attempts) == (
        "pending",
        1,
        "pending",
        0,
    )
    assert sink.received == []
    clock.advance(days=1)
    assert asyncio.run(sender.drain()) == 2
    assert len(sink.received) == 2
    sender.close()


def test_message_lines_are_carried_intact(database, sink, journal):
    clock = FrozenClock()
    raw = b"Subject: dots\n\n.starts with a dot\r\n..two\rlone CR\n.\nend"
    with database.session() as session:
        session.add(
            OutboxMessage(
                kind="ack",
                sender="helpdesk@pekes1.att.example",
                recipient="teacher@sch.gr",
                message_id="dots",
                raw=raw,
                created=clock.now(),
                next_attempt=clock.now(),
            )
        )
    assert asyncio.run(sender_for(database, clock, settings(sink.port), journal).drain()) == 1
    # aiosmtpd undoes the dot-stuffing (RFC 5321 section 4.5.2): the lines come back as sent,
    # with CRLF line ends.
    assert sink.received[0].data == (
        b"Subject: dots\r\n\r\n.starts with a dot\r\n..two\r\nlone CR\r\n.\r\nend\r\n"
    )


# -- recovery at start-up ------------------------------------------------------------------

DIES_AFTER_WRITING = """
import os, signal, sys
from pathlib import Path
from triage_daemon.journal import SentJournal
journal = SentJournal(Path(sys.argv[1]))
journal.dot_written("r0-teacher@sch.gr")                  # dot out, answer never read
journal.dot_written("r1-teacher@sch.gr"); journal.accepted("r1-teacher@sch.gr")
journal.dot_written("r2-teacher@sch.gr"); journal.refused("r2-teacher@sch.gr")
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_start_up_applies_a_dead_process_journal_before_sending(database, sink, journal):
    clock = FrozenClock()
    queue(database, clock, 4)
    outbox = Outbox(database, settings(sink.port), clock)
    assert len(outbox.claim()) == 4
    dead = subprocess.Popen([sys.executable, "-c", DIES_AFTER_WRITING, str(journal.directory)])
    assert dead.wait() == -signal.SIGKILL
    with database.session() as session:
        session.exec(update(OutboxMessage).values(claimed_by=f"{outbox_module.HOST}:{dead.pid}"))
    sender = Sender(outbox, settings(sink.port), journal)
    assert sender.recover() == 2
    assert statuses(database) == ["sent", "sent", "pending", "pending"]
    assert "never read" in rows(database)[0].last_error
    assert rows(database)[1].last_error is None
    # The dead process's journal is gone, this process's own is kept.
    assert list(journal.directory.iterdir()) == [journal.path]
    assert asyncio.run(sender.drain()) == 2
    assert sorted(r.data.split(b"Subject: ")[1][:7] for r in sink.received) == [
        b"reply 2",
        b"reply 3",
    ]
    # Applying it again changes nothing: recovery is idempotent per row.
    assert sender.recover() == 0


def test_interrupted_after_the_dot_settles_it_and_puts_back_the_rest(database, sink, journal):
    clock = FrozenClock()
    queue(database, clock, 3)
    sender = sender_for(database, clock, settings(sink.port, connections=1), journal)
    original = SentJournal.send_dot

    def then_cancelled(self, connection, message_id):
        original(self, connection, message_id)
        raise asyncio.CancelledError  # as on a shutdown, while the relay answers

    SentJournal.send_dot = then_cancelled
    try:
        with pytest.raises(asyncio.CancelledError):
            asyncio.run(sender.drain())
    finally:
        SentJournal.send_dot = original
    # The first one's dot went: it counts as sent, and is never sent again.
    assert statuses(database) == ["sent", "pending", "pending"]
    assert "never read" in rows(database)[0].last_error
    assert asyncio.run(sender.drain()) == 2
    assert sorted(r.data.split(b"Subject: ")[1][:7] for r in sink.received) == [
        b"reply 0",
        b"reply 1",
        b"reply 2",
    ]
