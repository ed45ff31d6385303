"""PostgreSQL stopped and started again during the work: nothing lost, nothing doubled (issue 9).

Every test runs on a private PostgreSQL cluster of this module (tests/servers/postgres.py),
stopped with ``pg_ctl -m fast`` (every session ends at once, as in a restart) and started
again on the same port; never on the machine's shared PostgreSQL. The mail tests use the
real Dovecot and Postfix, the daemon as tests/test_e2e_crash.py runs it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter

import pytest
from e2e import ATTICA, attica_env, attica_settings, parse
from mailfactory import message_id_of, request
from servers import postgres
from smtp_sink import SMTPSink
from sqlalchemy import event, func, text
from sqlmodel import Session, select

from triage_daemon.clock import FrozenClock
from triage_daemon.config import SMTPSettings
from triage_daemon.daemon import Daemon
from triage_daemon.db import Database, DatabaseUnavailable, make_engine
from triage_daemon.journal import SentJournal
from triage_daemon.outbox import Outbox
from triage_daemon.pipeline import Pipeline
from triage_daemon.poll import MailboxPoller
from triage_daemon.reply.build import Replies
from triage_daemon.send import DATABASE_RETRY, Sender
from triage_daemon.tables import Disposition, MessageRecord, OutboxMessage, Ticket

pytestmark = [pytest.mark.e2e, pytest.mark.chaos]

BOXES = range(1, 7)
# How long the database stays down in the daemon test: longer than the watchers' first
# backoff (5 s) would only make the test slower.
OUTAGE_SECONDS = 3.0


@pytest.fixture(scope="module")
def cluster():
    reason = postgres.unavailable()
    if reason:
        (pytest.fail if os.environ.get("CI") else pytest.skip)(f"no private PostgreSQL: {reason}")
    postgres.remove_stale_clusters()
    pg = postgres.PrivatePostgres()
    try:
        pg.init()
        yield pg
    finally:
        pg.destroy()


@pytest.fixture
def pg(cluster):
    """The module's cluster, running (a test may have left it stopped)."""
    if not cluster.running:
        cluster.start()
    return cluster


@pytest.fixture
def pg_url(pg) -> str:
    """An empty database of its own on the private cluster."""
    return pg.create_database(f"triage_chaos_{uuid.uuid4().hex[:12]}")


def count(engine, table, *where) -> int:
    """Rows of ``table``; 0 while the database is down or the tables do not exist yet."""
    try:
        with Session(engine) as session:
            return session.exec(select(func.count()).select_from(table).where(*where)).one()
    except Exception:
        return 0


def requests_for_every_box(servers, total: int) -> None:
    """``total`` requests spread over the six helpdesks, at most 5 per teacher (the
    Attica config's automatic-reply limit), appended straight into the INBOXes."""
    raws: dict[int, list[bytes]] = {box: [] for box in BOXES}
    for n in range(total):
        box, teacher = n % 6 + 1, n % 20 + 1
        raws[box].append(
            request(
                subject=f"Αίτημα {n}: δεν μπαίνω στο webex",
                sender=f"teacher{teacher}@school.example",
                to=f"helpdesk@pekes{box}.att.example",
            )
        )
    for box, mails in raws.items():
        servers.dovecot.append_many(f"pekes{box}", mails)


def inbox_counts(servers) -> list[int]:
    return [servers.dovecot.count(f"pekes{box}", "INBOX") for box in BOXES]


def assert_each_mail_one_ticket_one_reply(engine, servers, total: int) -> None:
    """Every request one ticket and one sent reply, none quarantined, INBOXes empty, and
    each teacher got one reply per request (counted by In-Reply-To)."""
    with Session(engine) as session:
        tickets = session.exec(select(Ticket)).all()
        outbox = session.exec(select(OutboxMessage)).all()
        records = session.exec(select(MessageRecord)).all()
    assert len(tickets) == total
    assert sorted(int(t.subject.split()[1].rstrip(":")) for t in tickets) == list(range(total))
    assert Counter(o.ticket_id for o in outbox) == Counter({t.id: 1 for t in tickets})
    assert {o.status for o in outbox} == {"sent"}
    assert len(records) == total
    assert Disposition.quarantined not in {r.disposition for r in records}
    assert inbox_counts(servers) == [0] * 6
    servers.postfix.wait_delivered(timeout=60)
    replies = [raw for n in range(1, 21) for raw in servers.dovecot.fetch_all(f"teacher{n}")]
    in_reply_to = Counter(parse(raw)["In-Reply-To"].strip() for raw in replies)
    assert len(replies) == total
    assert max(in_reply_to.values()) == 1


def test_sessions_reconnect_after_a_restart(pg, pg_url):
    db = Database(pg_url)
    db.migrate()
    with db.session() as session:
        session.add(ticket_row("before@restart"))
    pg.stop()
    with pytest.raises(DatabaseUnavailable, match="is unavailable"), db.session() as session:
        session.exec(select(Ticket)).all()
    pg.start()
    # The same Database, not disposed: the pool replaces its dead connections itself.
    with db.session() as session:
        assert [t.message_id for t in session.exec(select(Ticket))] == ["before@restart"]
    # Stopped inside a transaction: the session raises, and nothing of it was committed.
    with pytest.raises(DatabaseUnavailable), db.session() as session:
        session.add(ticket_row("during@restart"))
        session.flush()
        pg.stop()
    pg.start()
    with db.connection() as connection:
        assert connection.execute(text("SELECT count(*) FROM ticket")).scalar() == 1
    db.dispose()


def ticket_row(message_id: str) -> Ticket:
    now = FrozenClock().now()
    return Ticket(
        mailbox="pekes1",
        message_id=message_id,
        sender="t@sch.gr",
        created=now,
        updated=now,
        status="open",
    )


def test_poll_stopped_mid_batch_moves_nothing_then_finishes(
    fresh_mail_servers, pg, pg_url, tmp_path
):
    servers = fresh_mail_servers
    mails = [
        request(subject=f"Αίτημα {n}: δεν μπαίνω στο webex", sender=f"teacher{n + 1}@sch.example")
        for n in range(12)
    ]
    servers.dovecot.append_many("pekes1", mails)
    settings = attica_settings(servers, pg_url, tmp_path / "data")
    db = Database(pg_url)
    db.migrate()
    pipeline = Pipeline(settings, db, Replies(settings.daemon.templates_dir))
    handled: list[int] = []

    def stop_after_five(_box, uid, _outcome):
        handled.append(uid)
        if len(handled) == 5:
            pg.stop()

    poller = MailboxPoller(
        settings.mailbox("pekes1"), pipeline, db, pipeline.clock, on_outcome=stop_after_five
    )
    with pytest.raises(DatabaseUnavailable):
        poller.poll_once()
    # The batch stopped at the sixth mail: none was quarantined for the outage, and none
    # was moved, not even the five whose outcome was committed.
    assert servers.dovecot.count("pekes1", "INBOX") == 12
    assert servers.dovecot.count("pekes1", "Quarantine") == 0
    pg.start()
    engine = make_engine(pg_url)
    assert count(engine, MessageRecord) == 5
    result = poller.poll_once()
    poller.close()
    # The five committed ones are moved, the seven others processed: each exactly once.
    assert len(result.outcomes) == 7
    assert not any(o.repeated for o in result.outcomes)
    assert count(engine, Ticket) == 12
    assert count(engine, OutboxMessage) == 12
    assert count(engine, MessageRecord, MessageRecord.disposition == "quarantined") == 0
    assert servers.dovecot.count("pekes1", "INBOX") == 0
    assert servers.dovecot.count("pekes1", "Quarantine") == 0
    engine.dispose()
    db.dispose()


def test_restart_inside_a_mails_transaction_does_not_quarantine_it(
    fresh_mail_servers, pg, pg_url, tmp_path
):
    """The database is back at once, so quarantining would succeed: it must not happen."""
    servers = fresh_mail_servers
    mails = [
        request(subject=f"Αίτημα {n}: webex", sender=f"teacher{n + 1}@sch.example")
        for n in range(8)
    ]
    servers.dovecot.append_many("pekes1", mails)
    settings = attica_settings(servers, pg_url, tmp_path / "data")
    db = Database(pg_url)
    db.migrate()
    pipeline = Pipeline(settings, db, Replies(settings.daemon.templates_dir))
    armed, handled = threading.Event(), []

    @event.listens_for(db.engine, "before_cursor_execute")
    def restart_before_an_insert(_conn, _cursor, statement, *_args):
        # In the fourth mail's transaction, after its look-ups and before its writes.
        if armed.is_set() and statement.lstrip().upper().startswith("INSERT"):
            armed.clear()
            pg.stop()
            pg.start()

    def arm_after_three(_box, uid, _outcome):
        handled.append(uid)
        if len(handled) == 3:
            armed.set()

    poller = MailboxPoller(
        settings.mailbox("pekes1"), pipeline, db, pipeline.clock, on_outcome=arm_after_three
    )
    with pytest.raises(DatabaseUnavailable):
        poller.poll_once()
    assert len(handled) == 3
    assert servers.dovecot.count("pekes1", "INBOX") == 8
    # The next poll (the daemon's retry) handles the rest, each once.
    result = poller.poll_once()
    poller.close()
    assert len(result.outcomes) == 5
    engine = make_engine(pg_url)
    assert count(engine, Ticket) == 8
    assert count(engine, MessageRecord, MessageRecord.disposition == "quarantined") == 0
    assert servers.dovecot.count("pekes1", "INBOX") == 0
    assert servers.dovecot.count("pekes1", "Quarantine") == 0
    engine.dispose()
    db.dispose()


def test_run_once_during_an_outage_exits_with_a_message_and_keeps_the_mail(
    fresh_mail_servers, pg, pg_url, tmp_path
):
    servers = fresh_mail_servers
    requests_for_every_box(servers, 12)
    env = attica_env(servers, pg_url, tmp_path / "data")
    cli = [sys.executable, "-m", "triage_daemon"]
    command = [*cli, "run", "--config", str(ATTICA), "--once"]
    pg.stop()
    once = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert once.returncode != 0
    # The console wraps long lines: compare with the whitespace squeezed.
    message = " ".join(once.stderr.split())
    assert f"127.0.0.1:{pg.port}/" in message and "is unavailable" in message, message
    assert "Connection refused" in message
    assert "Traceback" not in once.stderr, once.stderr
    assert inbox_counts(servers) == [2] * 6
    # What the operator runs next says the same.
    status = subprocess.run(
        [*cli, "status", "--config", str(ATTICA)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert status.returncode != 0
    assert "is unavailable" in " ".join(status.stderr.split()), status.stderr
    assert "Traceback" not in status.stderr, status.stderr
    # Once it is back the same mail is picked up, each once.
    pg.start()
    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    engine = make_engine(pg_url)
    assert_each_mail_one_ticket_one_reply(engine, servers, 12)
    engine.dispose()


def test_run_once_with_the_database_gone_mid_poll(fresh_mail_servers, pg, pg_url, tmp_path):
    servers = fresh_mail_servers
    requests_for_every_box(servers, 24)
    settings = attica_settings(servers, pg_url, tmp_path / "data")
    lock, handled = threading.Lock(), []

    def stop_after_ten(*_args):
        with lock:
            handled.append(1)
            if len(handled) == 10:
                pg.stop()

    daemon = Daemon(settings, on_outcome=stop_after_ten)
    report = daemon.run_once()
    # Every mailbox that met the outage says so; none crashed the run, none quarantined.
    assert report.errors
    assert all("is unavailable" in message for message in report.errors.values())
    assert sum(inbox_counts(servers)) >= 24 - 10
    assert [servers.dovecot.count(f"pekes{box}", "Quarantine") for box in BOXES] == [0] * 6
    pg.start()
    for poller in daemon.pollers:
        poller.on_outcome = None
    # The same process goes on: its outbox tries the database again after DATABASE_RETRY
    # and then settles the replies it held when the database went away.
    while daemon.sender.retry_at and daemon.clock.now() < daemon.sender.retry_at:
        time.sleep(0.1)
    report = daemon.run_once()
    assert report.errors == {}
    daemon.db.dispose()
    engine = make_engine(pg_url)
    assert_each_mail_one_ticket_one_reply(engine, servers, 24)
    engine.dispose()


def test_daemon_survives_a_restart_mid_batch(fresh_mail_servers, pg, pg_url, tmp_path):
    servers = fresh_mail_servers
    total = 100
    requests_for_every_box(servers, total)
    env = attica_env(servers, pg_url, tmp_path / "data")
    command = [sys.executable, "-m", "triage_daemon", "run", "--config", str(ATTICA)]
    engine = make_engine(pg_url)
    log_path = tmp_path / "daemon.log"
    with open(log_path, "wb") as log:
        daemon = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while count(engine, MessageRecord) < total // 4:
            assert daemon.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, "the daemon processed too little in 60 s"
            time.sleep(0.01)
        pg.stop()
        engine.dispose()  # the test's own connections died with the server
        time.sleep(OUTAGE_SECONDS)
        assert daemon.poll() is None, log_path.read_text()
        pg.start()
        back = time.monotonic()
        stopped_at = count(engine, MessageRecord)
        assert 0 < stopped_at < total, "the stop should land in the middle of the work"
        while count(engine, OutboxMessage, OutboxMessage.status == "sent") < total:
            assert daemon.poll() is None, log_path.read_text()
            assert time.monotonic() < back + 90, log_path.read_text()[-3000:]
            time.sleep(0.1)
        print(f"all {total} answered {time.monotonic() - back:.1f} s after the restart")
        assert daemon.poll() is None
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=30) == 0
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()
    text_log = log_path.read_text()
    assert "is unavailable" in text_log
    assert "Traceback" not in text_log, text_log[-3000:]
    assert_each_mail_one_ticket_one_reply(engine, servers, total)
    engine.dispose()


def queue_replies(db: Database, clock: FrozenClock, total: int) -> None:
    with db.session() as session:
        for n in range(total):
            raw = (
                f"From: helpdesk@pekes1.att.example\r\nTo: teacher@sch.gr\r\n"
                f"Subject: reply {n}\r\nMessage-ID: <r{n}@pekes1>\r\n\r\nbody {n}\r\n"
            ).encode()
            session.add(
                OutboxMessage(
                    kind="ack",
                    sender="helpdesk@pekes1.att.example",
                    recipient="teacher@sch.gr",
                    message_id=f"r{n}@pekes1",
                    raw=raw,
                    created=clock.now(),
                    next_attempt=clock.now(),
                )
            )


def test_outbox_marks_and_claims_survive_an_outage(pg, pg_url, tmp_path):
    db = Database(pg_url)
    db.migrate()
    clock = FrozenClock()
    queue_replies(db, clock, 25)
    sink = SMTPSink()
    handle_data = sink.sink.handle_DATA

    async def stop_database_at_the_third(server, session, envelope):
        # The relay accepts the mail, but the database is gone before it is marked sent.
        if len(sink.received) == 2:
            pg.stop()
        return await handle_data(server, session, envelope)

    sink.sink.handle_DATA = stop_database_at_the_third
    sink.start()
    smtp = SMTPSettings(host="127.0.0.1", port=sink.port, connections=3)
    sender = Sender(Outbox(db, smtp, clock), smtp, SentJournal(tmp_path / "journal"))
    try:
        assert asyncio.run(sender.drain()) < 25
        assert sender.journal.unsettled, "some accepted mail should be waiting for its mark"
        # Still down: the sender waits, and then fails again without raising.
        clock.advance(seconds=DATABASE_RETRY.total_seconds())
        assert asyncio.run(sender.drain()) == 0
        pg.start()
        assert asyncio.run(sender.drain()) == 0  # the retry is not due yet
        clock.advance(seconds=DATABASE_RETRY.total_seconds())
        # Back: what the journal holds is settled, the rest put back and sent.
        asyncio.run(sender.drain())
        assert sender.database_down_since is None
    finally:
        sink.stop()
        sender.close()
    received = Counter(message_id_of(r.data) for r in sink.received)
    assert received == Counter({f"r{n}@pekes1": 1 for n in range(25)})
    with db.session() as session:
        assert {r.status for r in session.exec(select(OutboxMessage))} == {"sent"}
    assert not sender.journal.unsettled
    db.dispose()
