"""Benchmark the outbox's crash windows under load: how long a reply the relay has is unrecorded.

Run as root (Dovecot needs it, like the end-to-end tests), from the repository:

    .venv/bin/python bench/bench_send.py [--mails 1200] [--backend sqlite|postgresql]

The daemon runs `run_once` in this process on the Attica example against private Dovecot
and Postfix, with N generated mails in the six mailboxes: the mailbox threads parse,
classify and record mail while the outbox sends, which is the load the issue is about.
Timestamps are taken around the final dot, the journal line and the database record
of every reply (monkeypatched wrappers, nothing else changed), and printed as p50/p99/max:

- dot -> journal line written: from the dot's send() to the line's write() (a kill
  inside write() lets it finish); a SIGKILL in this window sends the reply twice;
- dot -> journal line fdatasync'ed: a power cut in this window sends it twice;
- dot -> relay's 250 read: the relay's work (a journal written after the 250 would
  double every reply killed in this window);
- 250 -> database record: the window of the old design (the database as the only
  record), with the batched update of today and with one update per mail as before.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import contextvars
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "bench"), str(ROOT)]

from bench_pipeline import Endpoints, fill, start_servers  # noqa: E402
from db_fixtures import create_pg_database, drop_pg_database  # noqa: E402
from e2e import attica_settings  # noqa: E402
from mails import generate  # noqa: E402

from triage_daemon import journal as journal_module  # noqa: E402
from triage_daemon import send as send_module  # noqa: E402
from triage_daemon import syscalls  # noqa: E402
from triage_daemon.daemon import Daemon  # noqa: E402
from triage_daemon.journal import Outcomes  # noqa: E402

DOT_START: contextvars.ContextVar[float] = contextvars.ContextVar("dot_start", default=0.0)


class Probe:
    """Per reply: when its dot was handed to the socket, its journal line written and
    synced, its 250 read, its database record committed."""

    def __init__(self) -> None:
        self.dot: dict[str, float] = {}
        self.line: dict[str, float] = {}
        self.synced: dict[str, float] = {}
        self.answered: dict[str, float] = {}
        self.recorded: dict[str, float] = {}
        self.current = ""

    def windows(self) -> dict[str, list[float]]:
        def gaps(start: dict[str, float], end: dict[str, float]) -> list[float]:
            return [1000 * (end[m] - start[m]) for m in start if m in end]

        return {
            "dot -> journal line written (kill window)": gaps(self.dot, self.line),
            "dot -> journal line synced (power-cut window)": gaps(self.dot, self.synced),
            "dot -> relay's 250 read": gaps(self.dot, self.answered),
            "250 -> database record": gaps(self.answered, self.recorded),
        }


def instrument(stack: contextlib.ExitStack, probe: Probe, per_mail_update: bool) -> None:
    """Wrap the few calls the windows begin and end at; undone when ``stack`` closes."""

    def patch(owner, name: str, wrapper: Callable) -> None:
        original = getattr(owner, name)
        setattr(owner, name, wrapper(original))
        stack.callback(setattr, owner, name, original)

    def send_dot(original):
        def send(fd: int, data: bytes) -> int:
            DOT_START.set(time.perf_counter())
            return original(fd, data)

        return send

    def write_line(original):
        def write(fd: int, data: bytes) -> None:
            # A kill inside write() lets it finish first: the window ends as it begins.
            if data.startswith(b'["dot"'):
                probe.line[probe.current] = time.perf_counter()
            original(fd, data)

        return write

    def dot_written(original):
        def wrapped(self, message_id: str, line: bytes | None = None) -> bool:
            probe.dot[message_id] = DOT_START.get()
            probe.current = message_id
            return original(self, message_id, line)

        return wrapped

    def accepted(original):
        def wrapped(self, message_id: str) -> bool:
            probe.answered[message_id] = time.perf_counter()
            return original(self, message_id)

        return wrapped

    def settle(original):
        def wrapped(self, outcomes: Outcomes) -> int:
            changed = original(self, outcomes)
            now = time.perf_counter()
            for message_id in outcomes.accepted:
                probe.recorded.setdefault(message_id, now)
            return changed

        return wrapped

    class TimedOs:
        """The journal's os module, with the end of its fdatasync() timed."""

        def __getattr__(self, name):
            return getattr(os, name)

        def fdatasync(self, fd: int) -> None:
            os.fdatasync(fd)
            probe.synced.setdefault(probe.current, time.perf_counter())

    patch(syscalls, "send", send_dot)
    patch(syscalls, "write", write_line)
    patch(journal_module.SentJournal, "dot_written", dot_written)
    patch(journal_module.SentJournal, "accepted", accepted)
    patch(send_module.Outbox, "settle", settle)
    patch(journal_module, "os", lambda _original: TimedOs())
    if per_mail_update:
        patch(send_module.Sender, "_send_one", update_each_mail)


def update_each_mail(original):
    """The old design's database record: one update per mail, from a thread, after its 250."""

    async def wrapped(self, client, item):
        result = await original(self, client, item)
        if result is send_module.Result.sent:
            await asyncio.to_thread(self.outbox.settle, Outcomes(accepted=[item.message_id]))
        return result

    return wrapped


def percentiles(values: list[float]) -> str:
    if not values:
        return "no samples"
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    return (
        f"p50 {statistics.median(ordered):8.3f} ms   p99 {p99:8.3f} ms   "
        f"max {ordered[-1]:8.3f} ms   (n={len(ordered)})"
    )


def run(dovecot, postfix, mails, db_url: str, work: Path, per_mail_update: bool) -> Probe:
    fill(dovecot, mails)
    servers = Endpoints(dovecot, postfix.host, postfix.smtp_port)
    settings = attica_settings(servers, db_url, work)
    # Every generated mail gets its reply (mails.py keeps senders under the loop guard).
    probe = Probe()
    with contextlib.ExitStack() as stack:
        instrument(stack, probe, per_mail_update)
        daemon = Daemon(settings)
        report = daemon.run_once()
        daemon.sender.close()
        daemon.db.dispose()
    if report.errors or report.sent != len(probe.answered):
        raise RuntimeError(f"the run did not go as expected: {report}")
    postfix.wait_delivered(timeout=120)
    return probe


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mails", type=int, default=1200)
    parser.add_argument(
        "--backend",
        choices=("sqlite", "postgresql"),
        default="sqlite",
        help="SQLite in a temporary folder, or a new database on $TRIAGE_TEST_PG",
    )
    parser.add_argument("--seed", type=int, default=2020)
    args = parser.parse_args()
    if os.geteuid() != 0:
        parser.error("run as root: the private Dovecot and Postfix need it (like the e2e tests)")
    mails = generate(args.mails, args.seed)
    with contextlib.ExitStack() as stack:
        _root, dovecot, postfix = start_servers(stack, args.mails, True)
        for per_mail in (False, True):
            work = Path(tempfile.mkdtemp(prefix="triage-bench-send-"))
            stack.callback(shutil.rmtree, work, ignore_errors=True)
            db_url = f"sqlite:///{work / 'triage.sqlite3'}"
            if args.backend == "postgresql":
                db_url, name = create_pg_database()
                stack.callback(drop_pg_database, name)
            label = "one database update per mail (before)" if per_mail else "as built"
            print(f"... {args.mails} mails, database updates {label}", flush=True)
            probe = run(dovecot, postfix, mails, db_url, work, per_mail)
            for name, values in probe.windows().items():
                print(f"  {name:48} {percentiles(values)}")
            for login in dovecot.users:
                dovecot.clear(login)
    print(f"load average at the end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
