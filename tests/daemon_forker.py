"""A fork server for kill campaigns: `triage-daemon run` started in milliseconds, dozens of times.

`python -m triage_daemon run` spends 2-7 s here importing and loading the model before it
does anything, which a campaign of dozens of SIGKILLs cannot afford. This process does
that once, then forks on request: each child builds its Daemon from the same settings
and serves exactly as `run` does (cli.run: logging, Daemon(settings), serve()), and is
a process of its own that a test can SIGKILL. The parent has started no thread and
opened no connection, so the fork copies nothing in use.

    python tests/daemon_forker.py CONFIG     (the environment as for `triage-daemon run`)

stdin, one command a line: "start [SMTP_PORT]" (answers the child's pid; SMTP_PORT, when
given, replaces the configured relay's port, a closed one to have the relay down),
"reap PID" (answers its exit status once it has ended); EOF ends the server.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from triage_daemon.check import load_classifier  # noqa: E402
from triage_daemon.cli.common import _logging  # noqa: E402
from triage_daemon.config import load_settings  # noqa: E402
from triage_daemon.daemon import Daemon  # noqa: E402


def serve_child(settings, classifier, smtp_port: str) -> None:
    try:
        _logging("info")
        if smtp_port:
            settings.smtp.port = int(smtp_port)
        Daemon(settings, classifier=classifier).serve()
    finally:
        os._exit(0)


def main() -> None:
    settings = load_settings(sys.argv[1])
    classifier = load_classifier(settings)
    print("ready", flush=True)
    for line in sys.stdin:
        command, _, argument = line.strip().partition(" ")
        if command == "start":
            pid = os.fork()
            if pid == 0:
                serve_child(settings, classifier, argument)
            print(pid, flush=True)
        elif command == "reap":
            _pid, status = os.waitpid(int(argument), 0)
            print(os.waitstatus_to_exitcode(status), flush=True)


if __name__ == "__main__":
    main()
