"""The sent journal: its writer sends the dot and writes the line even when the daemon dies;
damaged lines are skipped; the journals of daemons that are gone are recovered once."""

import json
import logging
import signal
import socket
import subprocess
import sys

import pytest

from triage_daemon import journal as journal_module
from triage_daemon.journal import JournalError, Outcomes, SentJournal, read_states
from triage_daemon.journal_recovery import recover


@pytest.fixture
def journal(tmp_path):
    journal = SentJournal(tmp_path / "journal")
    yield journal
    journal.close()


@pytest.fixture
def relay():
    """A listening socket standing in for the relay: it only reads."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        yield server


def test_last_state_of_each_reply_wins(journal):
    journal.dot_written("a")
    journal.dot_written("b")
    journal.accepted("b")
    journal.dot_written("c")
    journal.refused("c")
    # A reply refused once and sent on a later attempt.
    journal.dot_written("d")
    journal.refused("d")
    journal.dot_written("d")
    journal.accepted("d")
    journal.sync()
    assert read_states(journal.path) == {"a": "dot", "b": "250", "c": "refused", "d": "250"}
    outcomes = journal.outcomes()
    assert (outcomes.accepted, outcomes.assumed) == (["b", "d"], ["a"])


def test_torn_last_line_and_damage_are_skipped(tmp_path, caplog):
    path = tmp_path / "1-1.journal"
    good = json.dumps(["250", "<x@pekes1>"]).encode()
    path.write_bytes(b"garbage\n" + good + b"\n" + b'["dot", "<torn')
    with caplog.at_level(logging.WARNING, logger="triage_daemon.journal"):
        assert read_states(path) == {"<x@pekes1>": "250"}
    # The damaged first line is reported; the torn last one is the trace of a power cut.
    assert [r.getMessage() for r in caplog.records] == [
        f"{path} line 1 is not a journal entry; skipped: b'garbage'"
    ]


DIES_AFTER_ASKING_FOR_THE_DOT = """
import os, signal, socket, sys
from pathlib import Path
from triage_daemon.journal import SentJournal
journal = SentJournal(Path(sys.argv[1]))
relay = socket.create_connection(("127.0.0.1", int(sys.argv[2])))
relay.sendall(b"Subject: reply\\r\\n\\r\\nbody\\r\\n")
relay.setblocking(False)
journal.send_dot(journal.open_connection(relay), "<reply@pekes1>")
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_the_dot_and_its_line_survive_a_kill_of_the_daemon(journal, relay):
    daemon = subprocess.Popen(
        [sys.executable, "-c", DIES_AFTER_ASKING_FOR_THE_DOT, str(journal.directory)]
        + [str(relay.getsockname()[1])]
    )
    connection, _ = relay.accept()
    assert daemon.wait(timeout=30) == -signal.SIGKILL
    with connection:
        connection.settimeout(10)
        received = b""
        while chunk := connection.recv(4096):
            received += chunk
    # The relay has the whole mail, dot included, and the journal says so.
    assert received == b"Subject: reply\r\n\r\nbody\r\n.\r\n"
    found = recover(journal.directory, lambda outcomes: None)
    assert [(o.accepted, o.assumed) for o in found] == [([], ["<reply@pekes1>"])]


DIES_WITH_REQUESTS_QUEUED = """
import os, signal, socket, sys, time
from pathlib import Path
from triage_daemon.journal import SentJournal
journal = SentJournal(Path(sys.argv[1]))
relay = socket.create_connection(("127.0.0.1", int(sys.argv[2])))
relay.setblocking(False)
journal.send_dot(journal.open_connection(relay), "<first@pekes1>")
time.sleep(0.5)  # the writer's answer ("sent") waits, never read
for n in range(200):
    journal.dot_written(f"<queued-{n}@pekes1>")
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_requests_queued_when_the_daemon_dies_are_all_done(journal, relay):
    daemon = subprocess.Popen(
        [sys.executable, "-c", DIES_WITH_REQUESTS_QUEUED, str(journal.directory)]
        + [str(relay.getsockname()[1])]
    )
    connection, _ = relay.accept()
    assert daemon.wait(timeout=30) == -signal.SIGKILL
    connection.close()
    found = recover(journal.directory, lambda outcomes: None)
    expected = ["<first@pekes1>", *(f"<queued-{n}@pekes1>" for n in range(200))]
    assert [sorted(o.assumed) for o in found] == [sorted(expected)]


def test_no_line_when_the_dot_cannot_go(journal, relay):
    client = socket.create_connection(relay.getsockname())
    client.setblocking(False)
    client.shutdown(socket.SHUT_WR)  # every send() now fails with EPIPE
    connection = journal.open_connection(client)
    assert journal.send_dot(connection, "<lost@pekes1>")
    assert journal.dot_went("<lost@pekes1>") is False
    journal.sync()
    assert read_states(journal.path) == {}
    assert not journal.unsettled
    client.close()


def test_settled_replies_leave_the_journal(journal):
    journal.dot_written("a")
    journal.accepted("a")
    journal.dot_written("b")
    journal.settled(["a"])
    assert journal.outcomes().assumed == ["b"] and journal.outcomes().accepted == []


def test_compacted_only_when_everything_is_settled(journal, monkeypatch):
    monkeypatch.setattr(journal_module, "COMPACT_BYTES", 100)
    for n in range(5):
        journal.dot_written(f"<reply-{n}@pekes1.att.example>")
    journal.compact()
    journal.sync()
    assert journal.path.stat().st_size > 100  # unsettled: kept whole
    journal.settled(f"<reply-{n}@pekes1.att.example>" for n in range(5))
    journal.compact()
    journal.sync()
    assert journal.path.stat().st_size == 0
    journal.dot_written("<later@pekes1>")
    journal.sync()
    assert read_states(journal.path) == {"<later@pekes1>": "dot"}


def test_close_deletes_the_file_only_when_settled(tmp_path):
    settled = SentJournal(tmp_path)
    settled.dot_written("a")
    settled.settled(["a"])
    settled.close()
    assert not settled.path.exists()
    unsettled = SentJournal(tmp_path)
    unsettled.dot_written("b")
    unsettled.close()
    assert read_states(unsettled.path) == {"b": "dot"}
    unsettled.dot_written("c")
    assert "journal writer is gone" in str(unsettled.failing)


def test_unwritable_folder_is_a_clear_error(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(JournalError, match="data_dir must be a writable local folder"):
        SentJournal(tmp_path / "file" / "journal")


HOLDS_A_JOURNAL = """
import sys, time
from pathlib import Path
from triage_daemon.journal import SentJournal
journal = SentJournal(Path(sys.argv[1]))
journal.dot_written(sys.argv[2])
journal.sync()
print(journal.path, flush=True)
time.sleep(60)
"""


def holder(directory, message_id: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", HOLDS_A_JOURNAL, str(directory), message_id],
        stdout=subprocess.PIPE,
        text=True,
    )


def test_recover_applies_dead_journals_once_and_leaves_live_ones(journal):
    alive, killed = holder(journal.directory, "alive"), holder(journal.directory, "killed")
    try:
        alive_path, killed_path = alive.stdout.readline().strip(), killed.stdout.readline().strip()
        killed.kill()
        killed.wait()
        journal.dot_written("mine")
        applied: list[Outcomes] = []
        found = recover(journal.directory, applied.append)
        # Only the killed daemon's journal: this one's and the live one's are in use.
        assert [(o.accepted, o.assumed) for o in found] == [([], ["killed"])]
        assert applied == found
        names = sorted(p.name for p in journal.directory.iterdir())
        assert names == sorted([journal.path.name, alive_path.rsplit("/", 1)[1]])
        assert killed_path.rsplit("/", 1)[1] not in names
        assert recover(journal.directory, applied.append) == []
    finally:
        alive.kill()
        alive.wait()
        alive.stdout.close()
        killed.stdout.close()


def test_a_journal_whose_update_fails_is_kept_for_the_next_start(tmp_path):
    dead = SentJournal(tmp_path)
    dead.dot_written("a")
    dead.close()  # unsettled: the file stays, unlocked, like a killed daemon's

    def database_down(outcomes):
        raise OSError("database unreachable")

    with pytest.raises(OSError):
        recover(tmp_path, database_down)
    assert dead.path.exists()
    assert [o.assumed for o in recover(tmp_path, lambda outcomes: None)] == [["a"]]
    assert not dead.path.exists()


def test_journals_live_in_the_data_directory_whatever_the_database(tmp_path):
    from triage_daemon.config import load_settings

    config = tmp_path / "config.toml"
    config.write_text(
        '[daemon]\ndata_dir = "state"\ndatabase_url = "postgresql://db.example/triage"\n'
        '[smtp]\nhost = "relay.example"\nport = 25\n'
        '[[mailbox]]\nname = "pekes1"\naddress = "helpdesk@pekes1.att.example"\n'
        'imap = { host = "imap.example", port = 993, user = "u", password = "p" }\n',
        encoding="utf-8",
    )
    settings = load_settings(config, env={})
    assert settings.journal_dir == (tmp_path / "state" / "outbox-journal").resolve()
