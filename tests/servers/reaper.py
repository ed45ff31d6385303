"""Run a server in the foreground and reap every process it leaves behind (a tiny init).

Usage: ``python reaper.py COMMAND [ARG...]``; exits with COMMAND's status once COMMAND and
all its descendants have exited.

Why: a Postfix master exits on SIGTERM before its workers do, so they are re-parented to
PID 1, which in some containers (this one) never reaps them and they stay zombies. As a
"child subreaper" (prctl(2)) this process inherits them instead and reaps them, and the
test fixture waiting for it knows that every server process is gone. SIGTERM sent to its
process group does not stop it: it keeps reaping until the server has exited. If the
test run dies without stopping the server, it sends SIGTERM to all its descendants.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from pathlib import Path

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36


def descendants(root: int) -> list[int]:
    """Return the PIDs of all living descendants of root, read from /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # The command name (field 2) may hold spaces; the fields after ")" are safe.
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], list(children.get(root, []))
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def stop_descendants(*_args: object) -> None:
    """Send SIGTERM to every descendant (the test run that should stop them has died)."""
    for pid in descendants(os.getpid()):
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass


def main(command: list[str]) -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    parent = os.getppid()
    # A handler, not SIG_IGN: handlers are reset in the child at exec, SIG_IGN is inherited.
    signal.signal(signal.SIGTERM, lambda *_args: None)
    signal.signal(signal.SIGHUP, stop_descendants)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGHUP, 0, 0, 0)
    server = subprocess.Popen(command)
    if os.getppid() != parent:
        stop_descendants()
    status = None
    while True:
        try:
            pid, wait_status = os.waitpid(-1, 0)
        except ChildProcessError:
            return status if status is not None else 0
        if pid == server.pid:
            status = os.waitstatus_to_exitcode(wait_status)
            # Tell Popen not to wait for it again.
            server.returncode = status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
