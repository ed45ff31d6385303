"""The outbox: each row sent once, retried with backoff while SMTP is down, 5xx gives up."""

import asyncio
import subprocess
import sys
from datetime import timedelta

import pytest
from smtp_sink import SMTPSink
from sqlalchemy import update
from sqlmodel import select

from triage_daemon import send
from triage_daemon.clock import FrozenClock
from triage_daemon.config import SMTPSettings
from triage_daemon.send import Outbox, Sender
from triage_daemon.tables import OutboxMessage, OutboxStatus


@pytest.fixture
def sink():
    server = SMTPSink()
    server.start()
    yield server
    server.stop()


def settings(port: int, **extra) -> SMTPSettings:
    return SMTPSettings(host="127.0.0.1", port=port, connections=3, retry_base_seconds=60, **extra)


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
    with database.session() as session:
        return [
            getattr(r.status, "value", r.status)
            for r in session.exec(select(OutboxMessage).order_by(OutboxMessage.id)).all()
        ]


def test_each_row_sent_exactly_once(database, sink):
    clock = FrozenClock()
    queue(database, clock, 25)
    sender = Sender(Outbox(database, settings(sink.port), clock), settings(sink.port))
    assert asyncio.run(sender.drain()) == 25
    assert asyncio.run(sender.drain()) == 0
    subjects = sorted(r.data.split(b"Subject: ")[1].split(b"\r\n")[0] for r in sink.received)
    assert subjects == sorted(f"reply {n}".encode() for n in range(25))
    # RFC 3834: automatic replies use a null envelope sender.
    assert {r.mail_from for r in sink.received} == {"<>"}
    assert statuses(database) == ["sent"] * 25


def test_smtp_down_then_up(database, sink):
    clock = FrozenClock()
    queue(database, clock, 4)
    sink.stop()
    outbox = Outbox(database, settings(sink.port), clock)
    sender = Sender(outbox, settings(sink.port))
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


def test_relay_backoff_doubles(database, sink):
    clock = FrozenClock()
    queue(database, clock, 1)
    sink.stop()
    sender = Sender(Outbox(database, settings(sink.port), clock), settings(sink.port))
    waits = []
    for _ in range(3):
        asyncio.run(sender.drain())
        waits.append(sender.retry_at - clock.now())
        clock.advance(seconds=waits[-1].total_seconds())
    assert waits == [timedelta(seconds=60), timedelta(seconds=120), timedelta(seconds=240)]


def test_temporary_refusal_retried_later(database, sink):
    clock = FrozenClock()
    sink.sink.defer.add("busy@sch.gr")
    queue(database, clock, 1, recipient="busy@sch.gr")
    sender = Sender(Outbox(database, settings(sink.port), clock), settings(sink.port))
    assert asyncio.run(sender.drain()) == 0
    assert statuses(database) == ["pending"]
    sink.sink.defer.clear()
    clock.advance(seconds=61)
    assert asyncio.run(sender.drain()) == 1


def test_permanent_refusal_gives_up(database, sink):
    clock = FrozenClock()
    sink.sink.refuse.add("gone@sch.gr")
    queue(database, clock, 1, recipient="gone@sch.gr")
    queue(database, clock, 1, recipient="here@sch.gr")
    sender = Sender(Outbox(database, settings(sink.port), clock), settings(sink.port))
    assert asyncio.run(sender.drain()) == 1
    assert statuses(database) == ["failed", "sent"]


def test_too_many_attempts_gives_up(database, sink):
    clock = FrozenClock()
    sink.sink.defer.add("teacher@sch.gr")
    queue(database, clock, 1)
    smtp = settings(sink.port, max_attempts=2)
    sender = Sender(Outbox(database, smtp, clock), smtp)
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
        session.exec(update(OutboxMessage).values(claimed_by=f"{send.HOST}:{dead.pid}"))
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
