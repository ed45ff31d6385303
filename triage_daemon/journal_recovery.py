"""Recovery at start-up: the sent journals of daemons that are gone, applied to the outbox.

A journal belongs to the daemon whose pid starts its name, and is locked (flock) by
that daemon's writer while it runs (journal.py). A journal that can be locked has no
writer left: it is read, handed to ``apply`` (the outbox settles it by Message-ID,
idempotently) and deleted. A journal whose daemon is gone but whose writer still holds
it is still being finished (the writer does every request queued before the daemon
died): recovery waits for it, since putting that daemon's claims back first could
send a reply twice.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable
from pathlib import Path

from .journal import SUFFIX, JournalError, Outcomes, pid_alive, read_states

# How long recovery waits for the writer of a daemon that died to finish its queue.
RECOVERY_WAIT = 30.0


def recover(directory: Path, apply: Callable[[Outcomes], object]) -> list[Outcomes]:
    """Apply the journals of daemons that are gone, then delete them.

    ``apply`` writes one journal's outcomes to the database; if it raises, that journal
    is kept for the next start and the error propagates. Journals of live daemons (this
    one's included) are left alone; a dead daemon's is read once its writer has done
    what it was asked. Returns what each journal held.
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
    except FileNotFoundError:  # another daemon recovered it first
        return None
    try:
        if not _lock(fd, path):
            return None
        outcomes = Outcomes.from_states(read_states(path))
        if outcomes:
            apply(outcomes)
        path.unlink(missing_ok=True)
        return outcomes
    finally:
        os.close(fd)


def _lock(fd: int, path: Path) -> bool:
    """Lock a journal: at once, or, when its daemon is gone, once its writer lets go."""
    owner_alive = _owner_alive(path)
    deadline = time.monotonic() + (0 if owner_alive else RECOVERY_WAIT)
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                if not owner_alive:
                    raise JournalError(
                        f"the journal writer of a stopped daemon still holds {path} after "
                        f"{RECOVERY_WAIT:.0f} s; stop that process, or wait and start again"
                    ) from None
                return False
            time.sleep(0.01)


def _owner_alive(path: Path) -> bool:
    pid = path.name.split("-", 1)[0]
    return pid.isdigit() and pid_alive(int(pid))
