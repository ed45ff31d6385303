"""A seeded SIGKILL campaign while mail is fetched, processed and answered: none lost, none doubled.

Issue 9: kills that landed while replies were going out made the teacher receive the
same answer twice. Here the daemon runs as a real process on the Attica example config
against real Dovecot and Postfix and is killed with SIGKILL dozens of times: first with
the relay down, while mail is fetched and processed, then with the relay up, while
replies go out and the rest of the mail is processed. What reaches the teachers'
mailboxes is then counted by Message-ID.

The campaign also checks that it hit what it is about: kills that left replies
accepted by the relay but not yet recorded in the database, and kills that landed
between the final dot and the relay's answer (the sent journal's two windows).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from e2e import ATTICA, attica_env, parse
from mailfactory import request
from smtp_sink import free_port
from sqlalchemy import func
from sqlmodel import Session, select

from triage_daemon.db import make_engine
from triage_daemon.journal import ACCEPTED, DOT, SUFFIX, read_states
from triage_daemon.tables import MessageRecord, OutboxMessage, OutboxStatus, Ticket

pytestmark = [pytest.mark.e2e, pytest.mark.chaos, pytest.mark.slow]

# Another seed for another campaign: TRIAGE_CHAOS_SEED=7 pytest tests/test_chaos_send.py
SEED = int(os.environ.get("TRIAGE_CHAOS_SEED", "9"))
MAILS = 400
TEACHERS = 20
KILLS_PROCESSING = 5
KILLS_SENDING = 24
CYCLE_TIMEOUT = 30.0
FORKER = Path(__file__).with_name("daemon_forker.py")


@dataclass
class Kill:
    phase: str
    # Rows the killed process had claimed and left 'sending'.
    in_flight: int = 0
    # Replies whose final dot had gone out, the relay's answer not yet read.
    unanswered: int = 0
    # Replies the relay had accepted that the database did not record as sent yet.
    unrecorded: int = 0


class Forker:
    """tests/daemon_forker.py: `run` children started in milliseconds, reaped by it."""

    def __init__(self, config: Path, env: dict[str, str], log_path: Path):
        with open(log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, str(FORKER), str(config)],
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
            )
        assert self.ask("") == "ready", log_path.read_text()[-3000:]

    def ask(self, command: str) -> str:
        if command:
            self.proc.stdin.write(command + "\n")
            self.proc.stdin.flush()
        return self.proc.stdout.readline().strip()

    def start(self, smtp_port: int | None = None) -> int:
        return int(self.ask(f"start {smtp_port or ''}".strip()))

    def reap(self, pid: int) -> int:
        return int(self.ask(f"reap {pid}"))

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)
        self.proc.stdout.close()


@dataclass
class Campaign:
    command: list[str]
    env: dict[str, str]
    data_dir: Path
    engine: object
    log_path: Path
    rng: random.Random
    forker: Forker
    kills: list[Kill] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    def count(self, table, *where) -> int:
        try:
            with Session(self.engine) as session:
                return session.exec(select(func.count()).select_from(table).where(*where)).one()
        except Exception:  # the tables may not exist yet while the first daemon starts
            return 0

    def journal_states(self, pid: int) -> dict[str, str]:
        states: dict[str, str] = {}
        for path in (self.data_dir / "outbox-journal").glob(f"{pid}-*{SUFFIX}"):
            states.update(read_states(path))
        return states

    def dots_written(self, pid: int) -> int:
        return sum(
            path.read_bytes().count(b'["dot"')
            for path in (self.data_dir / "outbox-journal").glob(f"{pid}-*{SUFFIX}")
        )

    def kill_when(
        self, phase: str, ready: Callable[[int], bool], smtp_port: int | None = None
    ) -> Kill:
        """Start the daemon, SIGKILL it soon after ``ready(pid)``, and say where it landed."""
        pid = self.forker.start(smtp_port)
        try:
            deadline = time.monotonic() + CYCLE_TIMEOUT
            while not ready(pid) and time.monotonic() < deadline:
                assert running(pid), self.log_path.read_text()[-3000:]
                time.sleep(0.003)
            # Not in step with the polling above.
            time.sleep(self.rng.uniform(0, 0.015))
        finally:
            os.kill(pid, signal.SIGKILL)
            status = self.forker.reap(pid)
        assert status == -signal.SIGKILL, self.log_path.read_text()[-3000:]
        kill = self.inspect(phase, pid)
        self.kills.append(kill)
        return kill

    def inspect(self, phase: str, pid: int) -> Kill:
        states = self.journal_states(pid)
        with Session(self.engine) as session:
            status = dict(
                session.exec(select(OutboxMessage.message_id, OutboxMessage.status)).all()
            )
        unrecorded = [m for m, s in states.items() if s == ACCEPTED and status.get(m) != "sent"]
        unanswered = [m for m, s in states.items() if s == DOT and status.get(m) != "sent"]
        in_flight = self.count(OutboxMessage, OutboxMessage.status == OutboxStatus.sending)
        return Kill(phase, in_flight, len(unanswered), len(unrecorded))

    def work_left(self) -> bool:
        return self.count(MessageRecord) < MAILS or bool(
            self.count(OutboxMessage, OutboxMessage.status != OutboxStatus.sent)
        )


def running(pid: int) -> bool:
    """Not ended (a child of the forker that has ended stays a zombie until reaped)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def fill_mailboxes(servers) -> None:
    batches: dict[int, list[bytes]] = {box: [] for box in range(1, 7)}
    for n in range(MAILS):
        box, teacher = n % 6 + 1, n % TEACHERS + 1
        batches[box].append(
            request(
                subject=f"Αίτημα {n}: δεν μπαίνω στο webex",
                sender=f"teacher{teacher}@school.example",
                to=f"helpdesk@pekes{box}.att.example",
            )
        )
    for box, raws in batches.items():
        servers.dovecot.append_many(f"pekes{box}", raws)


def chaos_config(tmp_path: Path) -> Path:
    """The Attica example, with a loop guard that lets every request here have its reply."""
    text = ATTICA.read_text(encoding="utf-8")
    assert "max_per_sender = 5\n" in text
    path = tmp_path / "config.toml"
    path.write_text(text.replace("max_per_sender = 5\n", "max_per_sender = 1000\n"), "utf-8")
    return path


def test_sigkill_campaign_no_reply_lost_or_doubled(fresh_mail_servers, db_url, tmp_path):
    servers = fresh_mail_servers
    fill_mailboxes(servers)
    config = chaos_config(tmp_path)
    env = attica_env(servers, db_url, tmp_path / "data")
    campaign = Campaign(
        command=[sys.executable, "-m", "triage_daemon", "run", "--config", str(config)],
        env=env,
        data_dir=tmp_path / "data",
        engine=make_engine(db_url),
        log_path=tmp_path / "daemon.log",
        rng=random.Random(SEED),
        forker=Forker(config, env, tmp_path / "daemon.log"),
    )
    try:
        started = time.monotonic()
        kill_while_processing(campaign)
        kill_while_sending(campaign)
        campaign.timings["kills"] = time.monotonic() - started
        once = subprocess.run(
            [*campaign.command, "--once"], env=campaign.env, capture_output=True, timeout=300
        )
        assert once.returncode == 0, once.stderr.decode()[-3000:]
        campaign.timings["run --once"] = time.monotonic() - started - campaign.timings["kills"]
        check_tickets_and_outbox(campaign.engine)
        servers.postfix.wait_delivered(timeout=60)
        check_mailboxes(servers, campaign.engine)
        campaign.timings["checks"] = time.monotonic() - started - sum(campaign.timings.values())
        check_the_campaign_hit_both_windows(campaign)
    finally:
        campaign.forker.close()
        campaign.engine.dispose()


def kill_while_processing(campaign: Campaign) -> None:
    # The relay is down (a port nobody listens on): nothing goes out, the kills land in
    # fetching and processing.
    closed = free_port()
    for _ in range(KILLS_PROCESSING):
        start = campaign.count(MessageRecord)
        target = start + campaign.rng.randint(5, 30)
        campaign.kill_when(
            "processing",
            lambda pid, target=target: campaign.count(MessageRecord) >= target,
            smtp_port=closed,
        )
    processed = campaign.count(MessageRecord)
    assert 0 < processed < MAILS, "the relay-down kills should leave mail to process"


def kill_while_sending(campaign: Campaign) -> None:
    while len([k for k in campaign.kills if k.phase == "sending"]) < KILLS_SENDING:
        assert campaign.work_left(), "the campaign ran out of replies before its kills"
        dots = campaign.rng.randint(1, 25)
        campaign.kill_when("sending", lambda pid, dots=dots: campaign.dots_written(pid) >= dots)


def check_tickets_and_outbox(engine) -> None:
    with Session(engine) as session:
        tickets = session.exec(select(Ticket)).all()
        outbox = session.exec(select(OutboxMessage)).all()
    # Every mail one ticket, every ticket one reply, and every reply sent.
    assert len(tickets) == MAILS
    assert sorted(int(t.subject.split()[1].rstrip(":")) for t in tickets) == list(range(MAILS))
    assert Counter(o.ticket_id for o in outbox) == Counter({t.id: 1 for t in tickets})
    assert Counter(o.status for o in outbox) == Counter({"sent": MAILS})


def check_mailboxes(servers, engine) -> None:
    replies = [
        raw for n in range(1, TEACHERS + 1) for raw in servers.dovecot.fetch_all(f"teacher{n}")
    ]
    delivered = Counter(parse(raw)["Message-ID"].strip().strip("<>") for raw in replies)
    doubled = {m: n for m, n in delivered.items() if n > 1}
    assert doubled == {}, f"{len(doubled)} replies reached a teacher more than once"
    with Session(engine) as session:
        queued = set(session.exec(select(OutboxMessage.message_id)).all())
    assert {m.strip("<>") for m in queued} == set(delivered), "replies lost"
    answered = Counter(parse(raw)["In-Reply-To"].strip() for raw in replies)
    assert len(answered) == MAILS and set(answered.values()) == {1}


def check_the_campaign_hit_both_windows(campaign: Campaign) -> None:
    sending = [k for k in campaign.kills if k.phase == "sending"]
    summary = (
        f"seed {SEED}: {len(campaign.kills)} SIGKILLs, {len(sending)} while sending; "
        f"{sum(k.in_flight > 0 for k in sending)} left claimed rows, "
        f"{sum(k.unrecorded for k in sending)} accepted replies not yet in the database "
        f"({sum(k.unrecorded > 0 for k in sending)} kills), "
        f"{sum(k.unanswered for k in sending)} replies between dot and answer "
        f"({sum(k.unanswered > 0 for k in sending)} kills); "
        + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in campaign.timings.items())
    )
    print(summary)
    # Without the journal each of these would have gone out twice.
    assert sum(k.unrecorded for k in sending) > 0, summary
    assert sum(k.unanswered for k in sending) > 0, summary
    assert sum(k.in_flight > 0 for k in sending) >= KILLS_SENDING // 2, summary
