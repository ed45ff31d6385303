"""Benchmark the outbox's crash windows under load: how long a reply the relay has is unrecorded.

Run as root (Dovecot needs it, like the end-to-end tests), from the repository:

    .venv/bin/python bench/bench_send.py [--mails 1200] [--backend sqlite|postgresql]

The daemon runs `run_once` in this process on the Attica example against private Dovecot
and Postfix, with N generated mails in the six mailboxes: the mailbox threads parse,
classify and record mail while the outbox sends, which is the load the issue is about.
Timestamps are taken around each reply's final dot, its journal line and its database
record (wrappers, and bench/timed_journal_writer.py in place of the journal writer;
time.perf_counter() is CLOCK_MONOTONIC, the same clock in both processes), and printed
as p50/p99/max:

- daemon asks -> writer sends the dot: what the hand-over costs each mail. A SIGKILL of
  the daemon has no window: the request is one message, queued whole or not at all;
- writer: dot -> line written (from the dot's send() to the line's write(); a kill
  inside write() lets it finish): the window of a SIGKILL of the writer itself;
- dot -> line fdatasync'ed: a power cut in this window sends the reply twice;
- dot -> relay's 250 read: the relay's work; a journal written after the 250 would
  double every reply killed in this window;
- 250 -> database record: the window of the old design (the database as the only
  record), with the batched update of today and with one update per mail as before.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
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
from triage_daemon.daemon import Daemon  # noqa: E402
from triage_daemon.journal import Outcomes  # noqa: E402

TIMED_WRITER = ROOT / "bench" / "timed_journal_writer.py"


class Probe:
    """Per reply: when the daemon asked for its dot, when the writer sent it, wrote and
    synced its line, when the daemon read the 250, when the database recorded it."""

    def __init__(self) -> None:
        self.asked: dict[str, float] = {}
        self.dot: dict[str, float] = {}
        self.line: dict[str, float] = {}
        self.synced: dict[str, float] = {}
        self.answered: dict[str, float] = {}
        self.recorded: dict[str, float] = {}

    def read_writer(self, journal_dir: Path) -> None:
        for path in journal_dir.glob("*.timing"):
            for row in path.read_text().splitlines():
                message_id, dot, line, synced = row.rsplit(" ", 3)
                self.dot[message_id] = float(dot)
                self.line[message_id] = float(line)
                self.synced[message_id] = float(synced)

    def windows(self) -> dict[str, list[float]]:
        def gaps(start: dict[str, float], end: dict[str, float]) -> list[float]:
            return [1000 * (end[m] - start[m]) for m in start if m in end]

        return {
            "daemon asks -> writer sends the dot": gaps(self.asked, self.dot),
            "writer: dot -> line written (writer-kill window)": gaps(self.dot, self.line),
            "dot -> line synced (power-cut window)": gaps(self.dot, self.synced),
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
        def wrapped(self, connection: str, message_id: str) -> bool:
            probe.asked[message_id] = time.perf_counter()
            return original(self, connection, message_id)

        return wrapped

    def accepted(original):
        def wrapped(self, message_id: str) -> None:
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

    patch(journal_module.SentJournal, "send_dot", send_dot)
    patch(journal_module.SentJournal, "accepted", accepted)
    patch(send_module.Outbox, "settle", settle)
    patch(journal_module, "WRITER", lambda _original: TIMED_WRITER)
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
        started = time.perf_counter()
        report = daemon.run_once()
        seconds = time.perf_counter() - started
        daemon.sender.close()
        daemon.db.dispose()
    if report.errors or report.sent != len(probe.answered):
        raise RuntimeError(f"the run did not go as expected: {report}")
    probe.read_writer(settings.journal_dir)
    postfix.wait_delivered(timeout=120)
    print(f"  run_once: {len(mails)} mails in {seconds:.1f} s ({len(mails) / seconds:.0f}/s)")
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
                print(f"  {name:50} {percentiles(values)}")
            for login in dovecot.users:
                dovecot.clear(login)
    print(f"load average at the end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
