"""`triage-daemon demo`: the real daemon on embedded mail servers, fed sample mail, shown live.

Everything runs in this process on 127.0.0.1: pymap holds the six helpdesk
mailboxes in memory, aiosmtpd delivers the sample mails into them and takes the
daemon's replies, and the database is SQLite in a temporary folder removed at the
end. The daemon is the production one, started from a configuration file written
like any other; only the servers are stand-ins (see demo_servers.py).
"""

from __future__ import annotations

import logging
import queue
import secrets
import shutil
import signal
import smtplib
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from email import message_from_bytes, policy
from email.utils import getaddresses, parseaddr
from importlib.resources import files
from pathlib import Path

from rich.console import Console
from rich.live import Live
from rich.panel import Panel
from sqlmodel import select

from ..config import load_settings
from ..errors import TriageError
from ..pipeline import Outcome
from ..tables import Disposition, MessageRecord, OutboxMessage, Ticket
from .servers import MailServers, Relayed
from .view import reply_panel, summary_lines, table

log = logging.getLogger(__name__)

MAILBOXES = 6
DONE_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0


@dataclass(frozen=True)
class Sample:
    """A sample mail (``demo/mail/<file>``), its round of arrival, and the Disposition
    value it was written to get."""

    file: str
    round: int
    expect: str


# The order of arrival; a follow-up comes after the mail it answers.
SAMPLES: tuple[Sample, ...] = (
    Sample("01-webex-account.eml", 1, "ticket"),
    Sample("02-eclass-login-greeklish.eml", 1, "ticket"),
    Sample("03-not-technical-hours.eml", 1, "not_technical"),
    Sample("04-webex-lobby.eml", 1, "ticket"),
    Sample("05-out-of-office.eml", 1, "ignored"),
    Sample("06-eme-hive-html-only.eml", 2, "ticket"),
    Sample("07-webex-audio-windows-1253.eml", 2, "ticket"),
    Sample("08-bounce.eml", 2, "ignored"),
    Sample("09-psd-account.eml", 2, "ticket"),
    Sample("10-webex-room-link-greeklish.eml", 2, "ticket"),
    Sample("11-follow-up-to-01.eml", 3, "followup"),
    Sample("12-eclass-assignment.eml", 3, "ticket"),
    Sample("13-webex-mobile.eml", 3, "ticket"),
    Sample("14-laptop-wifi.eml", 3, "ticket"),
    Sample("15-webex-share.eml", 4, "ticket"),
    Sample("16-eclass-course-greeklish.eml", 4, "ticket"),
    Sample("17-webex-phone.eml", 4, "ticket"),
    Sample("18-eme-login.eml", 4, "ticket"),
    # To two helpdesks at once: a ticket in one mailbox, a duplicate in the other.
    Sample("19-psd-password-two-helpdesks.eml", 4, "ticket"),
)


@dataclass
class Row:
    """One sample mail as it arrived in one mailbox, and what became of it."""

    sample: Sample
    mailbox: str
    message_id: str
    sender: str
    subject: str
    delivered: datetime
    outcome: Outcome | None = None
    handled: datetime | None = None
    topic: str | None = None
    faq: str | None = None
    review: bool = False
    reply_received: bool = False


@dataclass
class DemoSummary:
    """What the demo did: returned by ``run_demo(until_done=True)``."""

    rows: list[Row]
    relayed: list[Relayed]
    folders: dict[str, int]
    imap_port: int
    smtp_port: int
    workdir: Path
    outbox: dict[str, int] = field(default_factory=dict)
    finished: bool = False

    @property
    def handled(self) -> list[Row]:
        return [r for r in self.rows if r.outcome is not None]

    def count(self, disposition: Disposition) -> int:
        return sum(1 for r in self.handled if r.outcome.disposition == disposition)

    @property
    def tickets_opened(self) -> int:
        return self.count(Disposition.ticket) + self.count(Disposition.not_technical)

    @property
    def replies_queued(self) -> int:
        return sum(1 for r in self.handled if r.outcome.reply)

    @property
    def replies_received(self) -> list[Relayed]:
        return [m for m in self.relayed if m.message.get("X-Triage-Ticket")]


# -- set-up and delivery ------------------------------------------------------


def mailbox_users() -> dict[str, str]:
    """Helpdesk address -> IMAP login, for the six PEKES."""
    return {f"helpdesk@pekes{n}.att.example": f"pekes{n}" for n in range(1, MAILBOXES + 1)}


def write_config(
    workdir: Path, servers: MailServers, password: str, models_dir: Path | None = None
) -> Path:
    """A configuration file like a production one, pointing at the embedded servers."""
    lines = [
        "# Written by `triage-daemon demo`; removed when the demo stops.",
        "[daemon]",
        f'data_dir = "{workdir}"',
        "poll_seconds = 2",
        "# Short IDLE cycles: the demo's mail comes in bursts, and a new-mail notice that",
        "# reaches the daemon while it is busy with the previous mail can be missed.",
        "idle_seconds = 10",
        *([f'models_dir = "{models_dir}"'] if models_dir else []),
        "",
        "[smtp]",
        f'host = "127.0.0.1"\nport = {servers.smtp_port}\ntls = "none"',
        "connections = 2\nretry_base_seconds = 2",
        "",
    ]
    for n in range(1, MAILBOXES + 1):
        lines += [
            "[[mailbox]]",
            f'name = "pekes{n}"\ntag = "ΠΕΚΕΣ{n}"',
            f'display_name = "{n}ο ΠΕΚΕΣ Αττικής – Τεχνική υποστήριξη"',
            f'address = "helpdesk@pekes{n}.att.example"',
            f'imap = {{ host = "127.0.0.1", port = {servers.imap_port}, tls = "none", '
            f'user = "pekes{n}", password = "{password}", timeout = 10 }}',
            "",
        ]
    path = workdir / "config.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def sample_bytes(sample: Sample) -> bytes:
    return files(__package__).joinpath("mail", sample.file).read_bytes()


def schedule(per_round: int | None) -> list[list[Sample]]:
    """The samples in rounds: as SAMPLES says, or ``per_round`` at a time in the same order."""
    if per_round:
        return [list(SAMPLES[i : i + per_round]) for i in range(0, len(SAMPLES), per_round)]
    rounds: dict[int, list[Sample]] = {}
    for sample in SAMPLES:
        rounds.setdefault(sample.round, []).append(sample)
    return [rounds[n] for n in sorted(rounds)]


def deliver(sample: Sample, servers: MailServers, now: datetime) -> list[Row]:
    """Send ``sample`` through the embedded SMTP server into each addressed helpdesk's INBOX.

    A delivery report travels with the null envelope sender (RFC 3464), as a real one does.
    """
    raw = sample_bytes(sample)
    mail = message_from_bytes(raw, policy=policy.default)
    addressed = getaddresses(mail.get_all("To", []) + mail.get_all("Cc", []))
    recipients = [a for _, a in addressed if a.lower() in servers.users]
    name, address = parseaddr(str(mail.get("From", "")))
    envelope_from = "" if mail.get_content_type() == "multipart/report" else address
    with smtplib.SMTP(
        "127.0.0.1", servers.smtp_port, local_hostname="localhost", timeout=10
    ) as client:
        client.sendmail(envelope_from, recipients, raw)
    message_id = str(mail.get("Message-ID", "")).strip().strip("<>")
    subject = str(mail.get("Subject", ""))
    return [
        Row(sample, servers.users[r.lower()], message_id, name or address, subject, now)
        for r in recipients
    ]


# -- what happened ------------------------------------------------------------


class Tracker:
    """Collects the daemon's outcomes (from its threads) and matches them to the rows."""

    def __init__(self, daemon):
        self.daemon = daemon
        self.events: queue.Queue[tuple[str, int, Outcome, datetime]] = queue.Queue()
        self.rows: list[Row] = []

    def on_outcome(self, mailbox: str, uid: int, outcome: Outcome) -> None:
        """The daemon's callback; runs in a mailbox thread, so it only queues."""
        self.events.put((mailbox, uid, outcome, datetime.now().astimezone()))

    def update(self, servers: MailServers, wait: float = 0.0) -> None:
        """Apply the outcomes that came (waiting up to ``wait`` s for the first), and replies."""
        while True:
            try:
                event = self.events.get(timeout=wait) if wait else self.events.get_nowait()
            except queue.Empty:
                break
            self._apply(*event)
            wait = 0.0
        answered = {
            (
                parseaddr(str(m.message.get("From", "")))[1].lower(),
                str(m.message.get("In-Reply-To", "")).strip().strip("<>"),
            )
            for m in servers.relayed
        }
        address = {login: a for a, login in mailbox_users().items()}
        for row in self.rows:
            row.reply_received = (address.get(row.mailbox, ""), row.message_id) in answered

    def _apply(self, mailbox: str, uid: int, outcome: Outcome, at: datetime) -> None:
        with self.daemon.db.session() as session:
            message_id = session.exec(
                select(MessageRecord.message_id)
                .where(MessageRecord.mailbox == mailbox, MessageRecord.uid == uid)
                .order_by(MessageRecord.id.desc())
            ).first()
            ticket = session.get(Ticket, outcome.ticket_id) if outcome.ticket_id else None
        row = next(
            (r for r in self.rows if r.mailbox == mailbox and r.message_id == message_id), None
        )
        if row is None:  # not a sample (someone else's mail): show it all the same
            row = Row(
                Sample("?", 0, ""), mailbox, message_id or "", outcome.sender, outcome.subject, at
            )
            self.rows.append(row)
        row.outcome, row.handled = outcome, at
        if ticket is not None:
            row.topic, row.faq, row.review = ticket.topic, ticket.faq, ticket.review

    def settled(self) -> bool:
        """Every row has its outcome, and every queued reply reached the SMTP server."""
        if any(r.outcome is None for r in self.rows):
            return False
        return all(r.reply_received for r in self.rows if r.outcome.reply)


# -- the run ------------------------------------------------------------------


class Demo:
    """Servers, configuration, daemon and view; ``close`` stops and removes it all."""

    def __init__(self, console: Console, classifier=None, models_dir: Path | None = None):
        self.console = console
        self.classifier = classifier
        self.models_dir = models_dir
        self.workdir = Path(tempfile.mkdtemp(prefix="triage-demo-"))
        self.password = secrets.token_urlsafe(12)
        self.servers = MailServers(mailbox_users(), self.password)
        self.config_path = self.workdir / "config.toml"
        self.daemon = None
        self.tracker: Tracker | None = None
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the servers, write the configuration, start the daemon (raises TriageError)."""
        from ..daemon import Daemon  # it loads scikit-learn: keep `triage-daemon --help` fast

        self.servers.start()
        write_config(self.workdir, self.servers, self.password, self.models_dir)
        settings = load_settings(self.config_path)
        self.daemon = Daemon(
            settings,
            classifier=self.classifier,
            on_outcome=lambda *args: self.tracker.on_outcome(*args),
        )
        self.tracker = Tracker(self.daemon)
        self.thread = threading.Thread(target=self.daemon.serve, name="triage-daemon", daemon=True)
        self.thread.start()

    def run_rounds(self, rounds: list[list[Sample]], delay: float, timeout: float) -> bool:
        """Deliver the rounds ``delay`` s apart with the table live; True once all mail was
        handled and answered, False if ``timeout`` s after the last round it was not."""
        title = (
            f"triage-daemon demo · IMAP (pymap) 127.0.0.1:{self.servers.imap_port} · "
            f"SMTP (aiosmtpd) 127.0.0.1:{self.servers.smtp_port}"
        )
        with Live(console=self.console, refresh_per_second=8) as live:

            def show(caption: str) -> None:
                live.update(table(self.tracker.rows, title, caption, self.console.width))

            for number, samples in enumerate(rounds, 1):
                now = datetime.now().astimezone()
                for sample in samples:
                    self.tracker.rows += deliver(sample, self.servers, now)
                if number < len(rounds):
                    self._pump(show, f"round {number} of {len(rounds)} delivered", delay)
            settled = self._pump(
                show, "all rounds delivered; finishing", timeout, until=self.tracker.settled
            )
            show("all mail handled" if settled else "timed out waiting for the daemon")
        return settled

    def _pump(self, show, caption: str, seconds: float, until=None) -> bool:
        """Show outcomes as they come for ``seconds`` s, or until ``until()`` is true."""
        deadline = time.monotonic() + seconds
        while True:
            self.tracker.update(self.servers, wait=0.1)
            left = deadline - time.monotonic()
            show(caption + (f" · next in {left:.0f} s" if until is None and left > 0.5 else ""))
            if until is not None and until():
                return True
            if left <= 0:
                return until is None

    def summary(self, finished: bool) -> DemoSummary:
        folders: Counter[str] = Counter()
        for login in sorted(set(mailbox_users().values())):
            folders.update(self.servers.folder_counts(login))
        with self.daemon.db.session() as session:
            outbox = Counter(
                str(getattr(s, "value", s))
                for s in session.exec(select(OutboxMessage.status)).all()
            )
        return DemoSummary(
            self.tracker.rows,
            self.servers.relayed,
            dict(folders),
            self.servers.imap_port,
            self.servers.smtp_port,
            self.workdir,
            dict(outbox),
            finished,
        )

    def show_summary(self, summary: DemoSummary) -> None:
        replies = summary.replies_received
        faq = [m for m in replies if ".faq." in str(m.message.get("Message-ID"))]
        for mail in (faq or replies)[:1]:
            self.console.print(reply_panel(mail))
        style = "green" if summary.finished else "red"
        self.console.print(
            Panel(
                "\n".join(summary_lines(summary)),
                title="Summary",
                title_align="left",
                border_style=style,
            )
        )
        self.console.print(
            "While the demo runs, look around from another terminal:\n"
            f"  triage-daemon tickets --config {self.config_path}\n"
            f"  triage-daemon status --config {self.config_path}",
            highlight=False,
        )

    def close(self) -> None:
        """Stop the daemon, then the servers; remove the temporary folder. Safe to repeat."""
        if self.daemon is not None:
            self.daemon.stop()
            if self.thread is not None:
                self.thread.join(timeout=STOP_TIMEOUT)
                if self.thread.is_alive():
                    log.warning("the daemon did not stop within %.0f s", STOP_TIMEOUT)
            self.daemon.db.dispose()
            self.daemon = None
        self.servers.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


def run_demo(
    per_round: int | None = None,
    *,
    rounds_delay: float = 3.0,
    until_done: bool = False,
    console: Console | None = None,
    classifier=None,
    models_dir: Path | None = None,
    done_timeout: float = DONE_TIMEOUT,
) -> DemoSummary | None:
    """Run the demo: ``per_round`` mails a round (default: SAMPLES' rounds), ``rounds_delay``
    seconds apart.

    Interactive (``until_done=False``): after the summary it waits for Ctrl-C (or SIGTERM),
    stops everything and returns None; a daemon that cannot start is explained and exits 2.
    With ``until_done=True`` it returns the DemoSummary once every mail was handled and
    answered (or ``done_timeout`` s after the last round), everything stopped, and raises
    TriageError if the daemon cannot start. ``classifier`` stands in for the trained model;
    ``models_dir`` names another model folder.
    """
    console = console or Console()
    _quiet_logging(console)
    demo = Demo(console, classifier, models_dir)
    previous = {} if until_done else _stop_on_signals()
    try:
        try:
            demo.start()
        except TriageError as exc:
            if until_done:
                raise
            _explain_failure(console, exc)
            raise SystemExit(2) from None
        finished = demo.run_rounds(schedule(per_round), rounds_delay, done_timeout)
        summary = demo.summary(finished)
        if until_done:
            return summary
        demo.show_summary(summary)
        console.print("[bold]Press Ctrl-C to stop the demo.[/]")
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        console.print()
    finally:
        demo.close()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if not until_done:
            console.print(
                "Demo stopped: daemon and servers shut down, temporary files "
                "removed. Next: examples/attica/config.toml for a real mail server.",
                highlight=False,
            )
    return None


def _stop_on_signals() -> dict:
    """SIGTERM and SIGHUP (a closed terminal) stop the demo as Ctrl-C does, so the servers
    stop and the temporary folder goes; returns the handlers to restore."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {
        signum: signal.signal(signum, signal.default_int_handler)
        for signum in (signal.SIGTERM, signal.SIGHUP)
    }


def _explain_failure(console: Console, exc: TriageError) -> None:
    console.print("[bold red]The demo could not start the daemon:[/]")
    for problem in getattr(exc, "problems", None) or [str(exc)]:
        console.print(f"  - {problem}", markup=False, highlight=False)


def _quiet_logging(console: Console) -> None:
    """Warnings and errors above the live table; nothing if logging is set up already."""
    if logging.getLogger().handlers:
        return
    from rich.logging import RichHandler

    logging.basicConfig(
        level=logging.WARNING,
        format="%(name)s: %(message)s",
        handlers=[RichHandler(console=console, show_path=False)],
    )
