"""The sent journal: an fsynced, append-only file of the replies that may have reached the relay.

Why a file and not the database: the old "sent" mark was a database commit after the
relay's 250, and on SQLite it waited behind the mailbox workers, each holding the one
writer lock for a whole mail's transaction; a SIGKILL in that wait sent the reply again
after the restart (issue 9: 17 doubles in one campaign). An append to a file of our own
waits for nobody but the disk (fdatasync 0.2 ms p50 here).

Why the record is written *before* the final dot, not after the 250: measured against
Postfix here, the relay spends 43-55 % of each transaction between our final dot and its
250 (queue file written and fsynced); a process killed in that time has handed the mail
over without hearing so, and with four connections nearly every kill during sending
lands there. So the journal says "the dot goes now" (fsynced) just before the dot is
written, and "250" after it (not fsynced: a lost "250" line reads as "the dot went",
which is handled the same way). At recovery a mail whose dot went out is counted as
sent, whether or not the 250 was read: never twice, at the price of one reply lost if
the process dies in the microseconds between this record and the dot's write(), or
while a relay that would have refused the mail at the dot was answering.

Each process writes its own file, named by its pid and start time, and holds an
exclusive flock on it for its whole life; the kernel drops the lock when the process
dies, however it dies. At start-up every file in the folder that can be locked belongs
to a process that is gone: it is read, applied to the outbox (idempotent per row, by
Message-ID), and deleted. Several daemons may therefore share one folder, and several
instances one database, each with its own folder.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .errors import TriageError

log = logging.getLogger(__name__)

SUFFIX = ".journal"
# The states a journal line records for one reply; the last line for a Message-ID wins.
DOT = "dot"  # the final dot is being written: the relay may have the mail from now on
ACCEPTED = "250"  # the relay accepted it
REFUSED = "refused"  # the relay answered the dot with an error: it does not have the mail
STATES = (DOT, ACCEPTED, REFUSED)
# Truncate the file once everything in it is in the database and it has grown this much:
# truncating after every drain would cost a metadata write each time for nothing.
COMPACT_BYTES = 256 * 1024


class JournalError(TriageError):
    """The journal cannot be written: no reply may be sent until it can."""


@dataclass
class Outcomes:
    """What a journal says about the replies it names, by Message-ID."""

    accepted: list[str] = field(default_factory=list)  # the relay said 250
    assumed: list[str] = field(default_factory=list)  # the dot went out, no answer was read

    def __bool__(self) -> bool:
        return bool(self.accepted or self.assumed)

    @classmethod
    def from_states(cls, states: dict[str, str]) -> Outcomes:
        outcomes = cls()
        for message_id, state in states.items():
            if state == ACCEPTED:
                outcomes.accepted.append(message_id)
            elif state == DOT:
                outcomes.assumed.append(message_id)
        return outcomes


class SentJournal:
    """This process's journal file, locked for its lifetime. Not thread-safe: one event loop."""

    def __init__(self, directory: Path):
        self.directory = directory
        try:
            directory.mkdir(parents=True, exist_ok=True)
            self.path = directory / f"{os.getpid()}-{time.time_ns()}{SUFFIX}"
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC
            self._fd: int | None = os.open(self.path, flags, 0o600)
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            # The new name must survive a power cut as well as the lines written into it.
            _fsync_directory(directory)
        except OSError as exc:
            raise JournalError(
                f"cannot create the sent journal in {directory}: {exc} "
                "(the daemon's data_dir must be a writable local folder)"
            ) from exc
        self.size = 0
        # Replies the journal knows about whose outcome the database does not have yet.
        self.unsettled: dict[str, str] = {}

    def before_dot(self, message_id: str) -> None:
        """Durably record that the final dot of ``message_id`` is about to be written."""
        self._append(DOT, message_id, sync=True)

    def accepted(self, message_id: str) -> None:
        # Not synced: if this line is lost, the durable "dot" line before it gives the same
        # verdict (sent).
        self._append(ACCEPTED, message_id, sync=False)

    def refused(self, message_id: str) -> None:
        # Synced: without it the "dot" line would make a refused mail count as sent.
        self._append(REFUSED, message_id, sync=True)
        self.unsettled.pop(message_id, None)

    def outcomes(self) -> Outcomes:
        """The replies not yet settled in the database."""
        return Outcomes.from_states(self.unsettled)

    def settled(self, message_ids: Iterable[str]) -> None:
        """The database now records these as sent."""
        for message_id in message_ids:
            self.unsettled.pop(message_id, None)

    def compact(self) -> None:
        """Empty the file when the database holds everything it says and it has grown."""
        if self._fd is None or self.unsettled or self.size < COMPACT_BYTES:
            return
        os.ftruncate(self._fd, 0)
        self.size = 0

    def close(self) -> None:
        """Release the file; it is deleted when everything in it is in the database."""
        if self._fd is None:
            return
        if not self.unsettled:
            self.path.unlink(missing_ok=True)
        os.close(self._fd)
        self._fd = None

    def _append(self, state: str, message_id: str, *, sync: bool) -> None:
        if self._fd is None:
            raise JournalError(f"the sent journal {self.path} is closed")
        line = (json.dumps([state, message_id], ensure_ascii=False) + "\n").encode()
        try:
            # One write() per line with O_APPEND: a crash leaves at most a torn last line.
            os.write(self._fd, line)
            if sync:
                os.fdatasync(self._fd)
        except OSError as exc:
            raise JournalError(f"cannot write the sent journal {self.path}: {exc}") from exc
        self.size += len(line)
        if state != REFUSED:
            self.unsettled[message_id] = state


def recover(directory: Path, apply: Callable[[Outcomes], object]) -> list[Outcomes]:
    """Apply the journals of processes that are gone, then delete them.

    ``apply`` writes one journal's outcomes to the database; if it raises, that journal
    is kept for the next start and the error propagates. Journals of live processes
    (this one's included) are locked and left alone. Returns what each journal held.
    """
    if not directory.is_dir():
        return []
    found = []
    for path in sorted(directory.glob(f"*{SUFFIX}")):
        outcomes = _recover_one(path, apply)
        if outcomes is not None:
            found.append(outcomes)
    return found


def _recover_one(path: Path, apply: Callable[[Outcomes], object]) -> Outcomes | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:  # another process recovered it first
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # its process is alive
            return None
        outcomes = Outcomes.from_states(read_states(path))
        if outcomes:
            apply(outcomes)
        path.unlink(missing_ok=True)
        return outcomes
    finally:
        os.close(fd)


def read_states(path: Path) -> dict[str, str]:
    """The last state of each Message-ID in a journal file; damaged lines are skipped."""
    states: dict[str, str] = {}
    try:
        lines = path.read_bytes().split(b"\n")
    except FileNotFoundError:
        return states
    # What follows the last newline is empty, or a line torn by a crash inside write():
    # that line's fdatasync never returned, so nothing was sent on its word.
    lines.pop()
    for number, line in enumerate(lines, 1):
        entry = _parse(line)
        if entry is None:
            log.warning("%s line %d is not a journal entry; skipped: %r", path, number, line)
            continue
        states[entry[1]] = entry[0]
    return states


def _parse(line: bytes) -> tuple[str, str] | None:
    try:
        entry = json.loads(line)
    except (UnicodeDecodeError, ValueError):
        return None
    if (
        isinstance(entry, list)
        and len(entry) == 2
        and entry[0] in STATES
        and isinstance(entry[1], str)
    ):
        return entry[0], entry[1]
    return None


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
