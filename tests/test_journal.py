"""The sent journal: durable lines, damaged lines skipped, dead processes' files recovered once."""

import json
import logging
import subprocess
import sys
import time

import pytest

from triage_daemon import journal as journal_module
from triage_daemon.journal import JournalError, Outcomes, SentJournal, read_states, recover


@pytest.fixture
def journal(tmp_path):
    journal = SentJournal(tmp_path / "journal")
    yield journal
    journal.close()


def test_last_state_of_each_reply_wins(journal):
    journal.before_dot("a")
    journal.before_dot("b")
    journal.accepted("b")
    journal.before_dot("c")
    journal.refused("c")
    # A reply refused once and sent on a later attempt.
    journal.before_dot("d")
    journal.refused("d")
    journal.before_dot("d")
    journal.accepted("d")
    assert read_states(journal.path) == {"a": "dot", "b": "250", "c": "refused", "d": "250"}
    outcomes = journal.outcomes()
    assert (outcomes.accepted, outcomes.assumed) == (["b", "d"], ["a"])


def test_torn_last_line_and_damage_are_skipped(tmp_path, caplog):
    path = tmp_path / "1-1.journal"
    good = json.dumps(["250", "<x@pekes1>"]).encode()
    path.write_bytes(b"garbage\n" + good + b"\n" + b'["dot", "<torn')
    with caplog.at_level(logging.WARNING, logger="triage_daemon.journal"):
        assert read_states(path) == {"<x@pekes1>": "250"}
    # The damaged first line is reported; the torn last one is the normal trace of a crash.
    assert [r.getMessage() for r in caplog.records] == [
        f"{path} line 1 is not a journal entry; skipped: b'garbage'"
    ]


def test_settled_replies_leave_the_journal(journal):
    journal.before_dot("a")
    journal.accepted("a")
    journal.before_dot("b")
    journal.settled(["a"])
    assert journal.outcomes().assumed == ["b"] and journal.outcomes().accepted == []


def test_compacted_only_when_everything_is_settled(journal, monkeypatch):
    monkeypatch.setattr(journal_module, "COMPACT_BYTES", 100)
    for n in range(5):
        journal.before_dot(f"<reply-{n}@pekes1.att.example>")
    journal.compact()
    assert journal.path.stat().st_size > 100  # unsettled: kept whole
    journal.settled(f"<reply-{n}@pekes1.att.example>" for n in range(5))
    journal.compact()
    assert journal.path.stat().st_size == 0
    journal.before_dot("<later@pekes1>")
    assert read_states(journal.path) == {"<later@pekes1>": "dot"}


def test_close_deletes_the_file_only_when_settled(tmp_path):
    settled = SentJournal(tmp_path)
    settled.before_dot("a")
    settled.settled(["a"])
    settled.close()
    assert not settled.path.exists()
    unsettled = SentJournal(tmp_path)
    unsettled.before_dot("b")
    unsettled.close()
    assert read_states(unsettled.path) == {"b": "dot"}
    with pytest.raises(JournalError, match="closed"):
        unsettled.before_dot("c")


def test_unwritable_folder_is_a_clear_error(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(JournalError, match="data_dir must be a writable local folder"):
        SentJournal(tmp_path / "file" / "journal")


HOLDS_A_JOURNAL = """
import sys, time
from pathlib import Path
from triage_daemon.journal import SentJournal
journal = SentJournal(Path(sys.argv[1]))
journal.before_dot(sys.argv[2])
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
        journal.before_dot("mine")
        applied: list[Outcomes] = []
        found = recover(journal.directory, applied.append)
        # Only the killed process's journal: this process's and the live one are locked.
        assert [(o.accepted, o.assumed) for o in found] == [([], ["killed"])]
        assert applied == found
        assert sorted(p.name for p in journal.directory.iterdir()) == sorted(
            [journal.path.name, alive_path.rsplit("/", 1)[1]]
        )
        assert killed_path not in {str(p) for p in journal.directory.iterdir()}
        assert recover(journal.directory, applied.append) == []
    finally:
        alive.kill()
        alive.wait()
        alive.stdout.close()
        killed.stdout.close()


def test_a_journal_whose_update_fails_is_kept_for_the_next_start(tmp_path):
    dead = SentJournal(tmp_path)
    dead.before_dot("a")
    dead.close()  # unsettled: the file stays, unlocked, like a killed process's

    def database_down(outcomes):
        raise OSError("database unreachable")

    with pytest.raises(OSError):
        recover(tmp_path, database_down)
    assert dead.path.exists()
    assert [o.assumed for o in recover(tmp_path, lambda outcomes: None)] == [["a"]]
    assert not dead.path.exists()


def test_dot_line_is_durable_before_it_returns(journal, monkeypatch):
    """The one line that must reach the disk before the dot: fdatasync'ed each time."""
    synced = []
    monkeypatch.setattr(journal_module.os, "fdatasync", lambda fd: synced.append(time.time()))
    journal.before_dot("a")
    journal.accepted("a")
    journal.before_dot("b")
    journal.refused("b")
    assert len(synced) == 3
