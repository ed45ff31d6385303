"""kill -9 in the middle of a batch, then restart: nothing lost, nothing doubled.

The daemon runs as a real process on the Attica example config against real Dovecot
and Postfix; it is killed with SIGKILL while it works through the mailboxes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
from e2e import ATTICA, attica_env, parse
from mailfactory import request
from sqlalchemy import func
from sqlmodel import Session, select

from triage_daemon.db import make_engine
from triage_daemon.tables import MessageRecord, OutboxMessage, Ticket

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# 20 teachers x 5 mails: each stays within the per-sender limit of automatic replies.
MAILS = 100


def count(engine, table) -> int:
    try:
        with Session(engine) as session:
            return session.exec(select(func.count()).select_from(table)).one()
    except Exception:  # the tables may not exist yet while the daemon starts
        return 0


def test_kill_9_mid_batch_then_restart(fresh_mail_servers, db_url, tmp_path):
    servers = fresh_mail_servers
    batches: dict[int, list[bytes]] = {box: [] for box in range(1, 7)}
    for n in range(MAILS):
        box, teacher = n % 6 + 1, n % 20 + 1
        batches[box].append(
            request(
                subject=f"Αίτημα {n}: δεν μπαίνω στο webex",
                sender=f"teacher{teacher}@school.example",
                to=f"helpdesk@pekes{box}.att.example",
            )
        )
    for box, raws in batches.items():
        servers.dovecot.append_many(f"pekes{box}", raws)
    # The relay is down while the daemon works: nothing can be mid-send when it dies.
    servers.postfix.stop()
    env = attica_env(servers, db_url, tmp_path / "data")
    command = [sys.executable, "-m", "triage_daemon", "run", "--config", str(ATTICA)]
    engine = make_engine(db_url)
    log = open(tmp_path / "daemon.log", "wb")
    daemon = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while count(engine, MessageRecord) < MAILS // 4:
            assert daemon.poll() is None, (tmp_path / "daemon.log").read_text()
            assert time.monotonic() < deadline, "the daemon processed too little in 60 s"
            time.sleep(0.01)
    finally:
        os.kill(daemon.pid, signal.SIGKILL)
        daemon.wait()
    killed_at = count(engine, MessageRecord)
    assert 0 < killed_at < MAILS, "the kill should land in the middle of the work"

    servers.postfix.start()
    once = subprocess.run([*command, "--once"], env=env, capture_output=True, timeout=300)
    assert once.returncode == 0, once.stderr.decode()

    with Session(engine) as session:
        tickets = session.exec(select(Ticket)).all()
        outbox = session.exec(select(OutboxMessage)).all()
        records = session.exec(select(MessageRecord)).all()
    assert len(tickets) == MAILS
    assert len({t.message_id for t in tickets}) == MAILS
    assert sorted(int(t.subject.split()[1].rstrip(":")) for t in tickets) == list(range(MAILS))
    assert Counter(o.ticket_id for o in outbox) == Counter({t.id: 1 for t in tickets})
    assert {o.status for o in outbox} == {"sent"}
    assert len(records) == MAILS
    for box in range(1, 7):
        assert servers.dovecot.count(f"pekes{box}", "INBOX") == 0
    servers.postfix.wait_delivered(timeout=60)
    replies = [raw for n in range(1, 21) for raw in servers.dovecot.fetch_all(f"teacher{n}")]
    in_reply_to = Counter(parse(raw)["In-Reply-To"].strip() for raw in replies)
    assert len(replies) == MAILS
    assert max(in_reply_to.values()) == 1
    engine.dispose()


def test_sigterm_stops_cleanly(fresh_mail_servers, db_url, tmp_path):
    servers = fresh_mail_servers
    env = attica_env(servers, db_url, tmp_path / "data")
    command = [sys.executable, "-m", "triage_daemon", "run", "--config", str(ATTICA)]
    log_path = tmp_path / "daemon.log"
    with open(log_path, "wb") as log:
        daemon = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            servers.send(request(), "teacher1@school.example", ["helpdesk@pekes1.att.example"])
            servers.wait_for("teacher1", timeout=60)
            daemon.send_signal(signal.SIGTERM)
            assert daemon.wait(timeout=30) == 0
        finally:
            if daemon.poll() is None:
                daemon.kill()
                daemon.wait()
    assert "stopped cleanly" in log_path.read_text()
    engine = make_engine(db_url)
    assert count(engine, Ticket) == 1
    engine.dispose()
