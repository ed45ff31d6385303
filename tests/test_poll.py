"""poll.py on a real Dovecot: an oversized mail is set aside from its header and never
downloaded, exactly once; one fetch brings at most ``batch_bytes``."""

from __future__ import annotations

import tracemalloc

import pytest
from e2e import attica_settings
from mailfactory import request
from sqlmodel import select

from triage_daemon.clock import Clock
from triage_daemon.fetch import ConnectionLost, MailboxConnection
from triage_daemon.pipeline import Pipeline
from triage_daemon.poll import MailboxPoller, chunks
from triage_daemon.reply import Replies
from triage_daemon.tables import MessageRecord, OutboxMessage

BOX = "pekes1"


@pytest.fixture
def servers(fresh_mail_servers):
    return fresh_mail_servers


@pytest.fixture
def make_poller(servers, db_url, database, tmp_path):
    """``make_poller(batch_bytes=..., **daemon_settings)``: a poller for pekes1 whose
    ``fetched`` lists the UIDs of every body fetch, and ``fetched_bytes`` their bytes."""
    made: list[MailboxPoller] = []

    def make(batch_bytes: int | None = None, **daemon) -> MailboxPoller:
        settings = attica_settings(servers, db_url, tmp_path / "data", **daemon)
        pipeline = Pipeline(settings, database, Replies(settings.daemon.templates_dir))
        extra = {"batch_bytes": batch_bytes} if batch_bytes else {}
        poller = MailboxPoller(
            settings.mailbox(BOX),
            pipeline,
            database,
            Clock(),
            settings.daemon.batch_size,
            max_message_bytes=settings.daemon.max_message_bytes,
            **extra,
        )
        poller.fetched, poller.fetched_bytes = [], []
        fetch = poller.connection.fetch

        def spied_fetch(uids):
            raws = fetch(uids)
            if uids:  # an empty call downloads nothing
                poller.fetched.append(list(uids))
                poller.fetched_bytes.append(sum(len(raw) for raw in raws.values()))
            return raws

        poller.connection.fetch = spied_fetch
        made.append(poller)
        return poller

    yield make
    for poller in made:
        poller.close()


def big_mail(size: int, subject: str = "Στέλνω το αρχείο της εργασίας") -> bytes:
    body = "Σας στέλνω το αρχείο.\n" + ("Lorem ipsum dolor sit amet, consectetur.\n" * (size // 42))
    return request(subject=subject, sender="teacher2@school.example", body=body)


def records(database) -> list[MessageRecord]:
    with database.session() as session:
        return session.exec(select(MessageRecord).order_by(MessageRecord.uid)).all()


def quarantine_folder(servers) -> str:
    return next(f for f in servers.dovecot.folders(BOX) if f.endswith("Quarantine"))


def test_oversized_mail_is_quarantined_from_its_header_never_downloaded(
    servers, make_poller, database
):
    big = big_mail(300_000)
    servers.dovecot.append_many(BOX, [request(), big, request(subject="Και κάτι ακόμη")])
    poller = make_poller(max_message_bytes=100_000)
    result = poller.poll_once()
    assert [o.disposition for o in result.outcomes] == ["ticket", "quarantined", "ticket"]
    first, oversized, last = (r.uid for r in records(database))
    assert [uid for call in poller.fetched for uid in call] == [first, last]
    record = records(database)[1]
    assert record.disposition == "quarantined" and record.moved
    assert "RFC822.SIZE" in record.reason and "over the limit of 100000" in record.reason
    assert "not downloaded" in record.reason
    # The record names the mail from its header alone.
    assert record.sender == "teacher2@school.example"
    assert record.subject == "Στέλνω το αρχείο της εργασίας"
    assert record.message_id and not record.message_id.startswith("unparsed.")
    # The whole mail, untouched, in the quarantine folder; no reply to it.
    assert servers.dovecot.count(BOX, "INBOX") == 0
    (kept,) = servers.dovecot.fetch_all(BOX, quarantine_folder(servers))
    assert len(kept) >= len(big) - 100
    with database.session() as session:
        assert len(session.exec(select(OutboxMessage)).all()) == 2
    # Looked at again: nothing new, nothing recorded twice.
    assert poller.poll_once().outcomes == []
    assert len(records(database)) == 3


def test_oversized_mail_is_recorded_and_moved_exactly_once_across_a_failed_move(
    servers, make_poller, database, monkeypatch
):
    servers.dovecot.append(BOX, big_mail(300_000))
    poller = make_poller(max_message_bytes=100_000)
    real_move = MailboxConnection.move

    def dropped(self, uids, folder):
        raise ConnectionLost("pekes1: moving failed: connection reset")

    monkeypatch.setattr(MailboxConnection, "move", dropped)
    with pytest.raises(ConnectionLost):
        poller.poll_once()
    (record,) = records(database)
    assert record.disposition == "quarantined" and not record.moved
    monkeypatch.setattr(MailboxConnection, "move", real_move)
    poller.poll_once()
    (record,) = records(database)
    assert record.moved
    assert servers.dovecot.count(BOX, quarantine_folder(servers)) == 1
    assert servers.dovecot.count(BOX, "INBOX") == 0
    assert poller.fetched == []


def test_a_31_mb_mail_costs_the_poll_no_more_than_its_header(servers, make_poller, database):
    # Issue 9: one 31 MB mail made a 243 MB peak; the limit is the default 25 MB.
    servers.dovecot.append(BOX, big_mail(31 * 1024 * 1024))
    poller = make_poller()
    tracemalloc.start()
    try:
        result = poller.poll_once()
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [o.disposition for o in result.outcomes] == ["quarantined"]
    assert poller.fetched == []
    print(f"\npoll of one 31 MB mail: Python allocations peaked at {peak / 1e6:.1f} MB")
    assert peak < 8 * 1024 * 1024


def test_one_fetch_brings_at_most_batch_bytes(servers, make_poller, database):
    mails = [big_mail(110_000, subject=f"Αρχείο {n}") for n in range(6)]
    mails.insert(3, big_mail(400_000, subject="Μεγαλύτερο από μια παρτίδα"))
    servers.dovecot.append_many(BOX, mails)
    poller = make_poller(batch_bytes=300_000)
    result = poller.poll_once()
    assert len(result.outcomes) == 7
    assert {o.disposition for o in result.outcomes} == {"ticket"}
    # Two mails of 110 KB a fetch; the 400 KB one alone, since it fits no batch.
    assert [len(call) for call in poller.fetched] == [2, 1, 1, 2, 1]
    assert [b <= 300_000 for b in poller.fetched_bytes] == [True, True, False, True, True]
    assert servers.dovecot.count(BOX, "INBOX") == 0


@pytest.mark.parametrize(
    ("sizes", "budget", "expected"),
    [
        pytest.param({1: 10, 2: 10, 3: 10}, 100, [[1, 2, 3]], id="all-fit"),
        pytest.param({1: 60, 2: 60, 3: 60}, 100, [[1], [2], [3]], id="one-each"),
        pytest.param({1: 40, 2: 40, 3: 40}, 100, [[1, 2], [3]], id="two-then-one"),
        pytest.param({1: 10, 3: 10}, 100, [[1, 3]], id="expunged-skipped"),
        pytest.param({1: 500, 2: 10, 3: 10}, 100, [[1], [2, 3]], id="bigger-than-budget-alone"),
        # Over the 1,000-byte limit: it costs its header, at most HEADER_BYTES (64 KiB).
        pytest.param({1: 20_000, 2: 10**9, 3: 10_000}, 100_000, [[1, 2, 3]], id="oversized"),
    ],
)
def test_chunks_keep_the_order_and_the_byte_budget(sizes, budget, expected):
    assert (
        list(chunks([1, 2, 3], sizes, budget=budget, limit=1_000 if budget > 1_000 else 10**9))
        == expected
    )


def test_a_poll_that_does_not_keep_outcomes_still_counts_them(servers, make_poller, database):
    servers.dovecot.append_many(BOX, [request(subject=f"Αρ. {n}") for n in range(3)])
    result = make_poller().poll_once(keep_outcomes=False)
    assert result.handled == 3 and result.outcomes == []
    assert len(records(database)) == 3
