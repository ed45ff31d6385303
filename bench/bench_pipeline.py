"""Benchmark triage-daemon on private Dovecot and Postfix: the I/O floor, `run --once`, idle polls.

Run as root (Dovecot needs it, like the end-to-end tests), from the repository:

    .venv/bin/python bench/bench_pipeline.py [--mails 2000] [--smtp sink|postfix|both]

It prints a table and writes the same figures to bench/results-<date>T<hhmm>.json; see
bench/README.md for what each figure means and how it is measured.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import platform
import pwd
import shutil
import signal
import smtplib
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from email.header import Header
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "bench"), str(ROOT)]

from e2e import ATTICA, attica_env, attica_settings  # noqa: E402
from mails import HELPDESKS, BenchMail, generate, teacher_logins  # noqa: E402
from servers import Dovecot, Postfix, default_addresses  # noqa: E402

from triage_daemon.fetch import MailboxConnection  # noqa: E402

PASSWORD = "bench-password"
BATCH = 100
PR_SET_PDEATHSIG = 1


@dataclass
class Endpoints:
    """The servers as tests/e2e.py's attica_env reads them."""

    dovecot: Dovecot
    smtp_host: str
    smtp_port: int
    password: str = PASSWORD

    @property
    def imap_host(self) -> str:
        return self.dovecot.host

    @property
    def imap_port(self) -> int:
        return self.dovecot.imap_port


# --- servers ------------------------------------------------------------------------------


def start_servers(stack: contextlib.ExitStack, n: int, with_postfix: bool):
    """Dovecot (helpdesks and every teacher that writes) and, if asked, Postfix; all stopped
    and removed when ``stack`` closes."""
    root = tempfile.mkdtemp(prefix="triage-bench-", dir="/tmp")
    stack.callback(shutil.rmtree, root, ignore_errors=True)
    os.chmod(root, 0o755)
    users = {login: PASSWORD for login in (*HELPDESKS, *teacher_logins(n))}
    dovecot = Dovecot(root, users)
    stack.callback(dovecot.stop)
    dovecot.start()
    postfix = None
    if with_postfix:
        domains = sorted({address.split("@")[1] for address in default_addresses(list(users))})
        postfix = Postfix(root, dovecot.lmtp_port, domains, recipients=list(dovecot.addresses))
        stack.callback(postfix.stop)
        postfix.start()
    return Path(root), dovecot, postfix


class Sink:
    """tests/smtp_sink.py's SMTPSink in a child process of its own (so that it does not share
    a GIL with the client being measured); ``stop()`` returns how many mails it accepted."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--sink-child"], stdout=subprocess.PIPE, text=True,
            start_new_session=True)
        line = self.proc.stdout.readline()
        if not line.strip().isdigit():
            self.proc.kill()
            raise RuntimeError(f"the SMTP sink did not start (said {line!r})")
        self.port = int(line)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        out = self.proc.communicate(timeout=30)[0].strip()
        return int(out) if out.isdigit() else -1


def sink_child() -> None:
    """The sink process: print the port, run until SIGTERM, print the count."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    from smtp_sink import SMTPSink

    sink = SMTPSink()
    sink.start()
    print(sink.port, flush=True)
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    print(len(sink.received), flush=True)
    sink.stop()


# --- mailboxes ----------------------------------------------------------------------------


def by_mailbox(mails: list[BenchMail]) -> dict[str, list[BenchMail]]:
    boxes: dict[str, list[BenchMail]] = defaultdict(list)
    for mail in mails:
        boxes[mail.mailbox].append(mail)
    return boxes


def in_threads(function, items) -> list:
    """Run function(item) for each item in a thread of its own; re-raise the first error."""
    results, errors = {}, []

    def run(key, item):
        try:
            results[key] = function(item)
        except BaseException as exc:  # noqa: BLE001 (re-raised below)
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(k, item)) for k, item in enumerate(items)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return [results[k] for k in range(len(items))]


def fill(dovecot: Dovecot, mails: list[BenchMail]) -> float:
    """Empty the six helpdesks (folders too), then APPEND ``mails`` (MULTIAPPEND, 100 a
    command, one connection per mailbox); return the seconds the APPENDs took."""
    for login in HELPDESKS:
        dovecot.clear(login)
    start = time.perf_counter()

    def append(item):
        login, box_mails = item
        with dovecot.connect(login) as client:
            for i in range(0, len(box_mails), BATCH):
                client.multiappend("INBOX", [m.raw for m in box_mails[i:i + BATCH]])

    in_threads(append, list(by_mailbox(mails).items()))
    elapsed = time.perf_counter() - start
    held = sum(dovecot.count(login) for login in HELPDESKS)
    if held != len(mails):
        raise RuntimeError(f"the helpdesks hold {held} mails after filling {len(mails)}")
    return elapsed


def deliver_maildir(dovecot: Dovecot, login: str, raws: list[bytes]) -> None:
    """Deliver mail straight into the user's Maildir (tmp/ then rename into new/, the
    Maildir delivery protocol, safe while Dovecot runs); Dovecot indexes it on next sync."""
    maildir = dovecot.home(login) / "Maildir"
    owner = pwd.getpwnam(dovecot.mail_user)
    stamp = int(time.time())
    for index, raw in enumerate(raws):
        # Stored as Dovecot stores an APPEND: LF line ends, S= the file size, W= with CRLF.
        data = raw.replace(b"\r\n", b"\n")
        name = f"{stamp}.M{index}P{os.getpid()}.bench,S={len(data)},W={len(raw)}"
        tmp = maildir / "tmp" / name
        tmp.write_bytes(data)
        os.chown(tmp, owner.pw_uid, owner.pw_gid)
        os.rename(tmp, maildir / "new" / name)


# --- the floor ----------------------------------------------------------------------------

REPLY_SUBJECT = Header("Λάβαμε το αίτημά σας", "utf-8").encode()
REPLY_BODY = ("Λάβαμε το μήνυμά σας και θα σας απαντήσουμε σύντομα.\r\n"
              "Με εκτίμηση,\r\nΗ ομάδα υποστήριξης\r\n").encode()


def small_reply(mail: BenchMail, index: int) -> bytes:
    """A short Greek acknowledgement (about 400 bytes), built without parsing the request."""
    headers = (f"From: helpdesk@{mail.mailbox}.att.example\r\nTo: {mail.sender}\r\n"
               f"Subject: {REPLY_SUBJECT}\r\n"
               f"Message-ID: <floor.{index}@{mail.mailbox}.att.example>\r\n"
               "Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n"
               "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n")
    return headers.encode() + REPLY_BODY


def floor(dovecot: Dovecot, mails: list[BenchMail], smtp_port: int) -> dict:
    """Fetch every mail (the six mailboxes one after the other, one connection each, BODY.PEEK[]
    in batches of 100), then send one small reply per mail over one SMTP connection."""
    start = time.perf_counter()
    fetched = 0
    for login in HELPDESKS:
        with dovecot.connect(login) as client:
            client.select_folder("INBOX")
            uids = sorted(client.search(["UID", "1:*"]))
            for i in range(0, len(uids), BATCH):
                data = client.fetch(uids[i:i + BATCH], [b"BODY.PEEK[]"])
                fetched += sum(1 for item in data.values() if b"BODY[]" in item)
    fetch_s = time.perf_counter() - start
    if fetched != len(mails):
        raise RuntimeError(f"the floor fetched {fetched} mails, expected {len(mails)}")
    start = time.perf_counter()
    with smtplib.SMTP(dovecot.host, smtp_port, timeout=30) as smtp:
        for index, mail in enumerate(mails):
            smtp.sendmail("", [mail.sender], small_reply(mail, index))
    send_s = time.perf_counter() - start
    total = fetch_s + send_s
    return {"fetch_s": fetch_s, "fetch_per_s": len(mails) / fetch_s, "send_s": send_s,
            "send_per_s": len(mails) / send_s, "total_s": total, "mails_per_s": len(mails) / total}


# --- the daemon ---------------------------------------------------------------------------


@dataclass
class Workspace:
    """Where the daemon runs keep their data folders, and the configuration they run."""

    folder: Path
    config: Path = ATTICA


@dataclass
class DaemonRun:
    seconds: float
    cpu_s: float
    max_rss_mb: float
    status: int
    db: Path
    log: Path


def run_daemon(ws: Workspace, servers: Endpoints, name: str,
               wrapper: tuple[str, ...] = ()) -> DaemonRun:
    """`python -m triage_daemon run --once` on the Attica example with a fresh SQLite database,
    timed from start to exit; its peak RSS comes from wait4()."""
    data = ws.folder / name
    data.mkdir(parents=True)
    db = data / "triage.db"
    env = attica_env(servers, f"sqlite:///{db}", data)
    command = [*wrapper, sys.executable, "-m", "triage_daemon", "run", "--once",
               "--config", str(ws.config)]
    log = data / "daemon.log"
    with open(log, "wb") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                                stdout=out, stderr=out, start_new_session=True)
        try:
            _pid, wait_status, usage = os.wait4(proc.pid, 0)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(wait_status)
    # ru_maxrss is in KiB on Linux.
    return DaemonRun(seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024,
                     proc.returncode, db, log)


def check_run(run: DaemonRun, expected: int | None) -> dict:
    """Count what the daemon wrote; raise when it failed or did not handle ``expected`` mails."""
    with contextlib.closing(sqlite3.connect(run.db)) as con:
        messages = con.execute("SELECT count(*) FROM message").fetchone()[0]
        dispositions = dict(con.execute(
            "SELECT disposition, count(*) FROM message GROUP BY disposition").fetchall())
        outbox = dict(con.execute("SELECT status, count(*) FROM outbox GROUP BY status").fetchall())
    counts = {"messages": messages, "dispositions": dispositions, "outbox": outbox}
    tail = run.log.read_text(errors="replace").splitlines()[-15:]
    if run.status != 0 or (expected is not None and messages != expected):
        raise RuntimeError(f"run --once exited {run.status} with {messages} message rows "
                           f"(expected {expected}); {counts}\n" + "\n".join(tail))
    answered = dispositions.get("ticket", 0) + dispositions.get("not_technical", 0)
    if dispositions.get("quarantined") or outbox.get("sent", 0) != answered:
        # Every generated mail deserves a ticket and a reply (mails.py keeps each sender
        # under the daemon's reply limit): anything else is a failure, not a figure.
        raise RuntimeError(f"the daemon did not handle the mail as expected: {counts}\n"
                           + "\n".join(tail))
    return counts


def startup(ws: Workspace, servers: Endpoints, runs: int) -> dict:
    """The same command on empty mailboxes (fresh database, no folders yet): its start-up."""
    done = []
    for k in range(runs):
        for login in HELPDESKS:
            servers.dovecot.clear(login)
        run = run_daemon(ws, servers, f"{servers.smtp_port}-startup-{k}")
        check_run(run, 0)
        done.append(run)
    return {"median_s": statistics.median(r.seconds for r in done),
            "cpu_median_s": statistics.median(r.cpu_s for r in done),
            "runs_s": [r.seconds for r in done], "max_rss_mb": max(r.max_rss_mb for r in done)}


def daemon(ws: Workspace, servers: Endpoints, mails: list[BenchMail], start: dict) -> dict:
    """The timed run over the N mails; its rate net of the start-up, its CPU time per mail."""
    fill(servers.dovecot, mails)
    run = run_daemon(ws, servers, f"{servers.smtp_port}-full")
    counts = check_run(run, len(mails))
    processing = run.seconds - start["median_s"]
    cpu_per_mail = (run.cpu_s - start["cpu_median_s"]) / len(mails)
    return {"wall_s": run.seconds, "startup_s": start["median_s"], "processing_s": processing,
            "mails_per_s": len(mails) / processing, "cpu_s": run.cpu_s,
            "cpu_ms_per_mail": 1000 * cpu_per_mail, "max_rss_mb": run.max_rss_mb, **counts}


# --- one SMTP mode ------------------------------------------------------------------------


@contextlib.contextmanager
def smtp_server(mode: str, postfix: Postfix | None):
    """Yield {"port": ...} of the sink (a fresh one) or of Postfix; on leaving, "accepted"
    says what it took: the sink's count, or how long Postfix took to deliver it all."""
    if mode == "postfix":
        info: dict = {"port": postfix.smtp_port}
        yield info
        info["accepted"] = settle(postfix)
        return
    sink = Sink()
    info = {"port": sink.port}
    try:
        yield info
    finally:
        info["accepted"] = sink.stop()


def smtp_mode(mode: str, ws: Workspace, dovecot: Dovecot, postfix: Postfix | None,
              mails: list[BenchMail], startup_runs: int, with_daemon: bool) -> dict:
    """The floor, then the daemon, against the sink or against Postfix."""
    result: dict = {"fill_s": fill(dovecot, mails)}
    with smtp_server(mode, postfix) as smtp:
        result["floor"] = floor(dovecot, mails, smtp["port"])
    result["floor"]["smtp_accepted"] = smtp["accepted"]
    if not with_daemon:
        return result
    with smtp_server(mode, postfix) as smtp:
        servers = Endpoints(dovecot, dovecot.host, smtp["port"])
        result["startup"] = startup(ws, servers, startup_runs)
        result["daemon"] = daemon(ws, servers, mails, result["startup"])
    result["daemon"]["smtp_accepted"] = smtp["accepted"]
    floor_rate, daemon_rate = result["floor"]["mails_per_s"], result["daemon"]["mails_per_s"]
    result["ratio_floor_to_daemon"] = floor_rate / daemon_rate
    return result


def settle(postfix: Postfix) -> str:
    """Wait for Postfix to deliver what it accepted, so the next phase starts quiet."""
    start = time.perf_counter()
    postfix.wait_delivered(timeout=600)
    return f"queue drained {time.perf_counter() - start:.1f} s after the last mail"


# --- idle polls ---------------------------------------------------------------------------


def idle_polls(work: Path, servers: Endpoints, mails: list[BenchMail], sizes: list[int],
               rounds: int) -> dict:
    """The daemon's poll (MailboxConnection.new_uids: NOOP + UID SEARCH UID n:*, INBOX kept
    selected) right after one new mail arrived by APPEND, at each mailbox size."""
    login = "pekes1"
    dovecot = servers.dovecot
    dovecot.clear(login)
    settings = attica_settings(servers, f"sqlite:///{work}/idle.db", work / "idle")
    held, result = 0, {}
    raws = [m.raw for m in mails]
    for size in sizes:
        start = time.perf_counter()
        deliver_maildir(dovecot, login, [raws[i % len(raws)] for i in range(held, size)])
        held = dovecot.count(login)
        if held != size:
            raise RuntimeError(f"{login} holds {held} mails after filling it to {size}")
        fill_s = time.perf_counter() - start
        result[str(size)] = {**poll_rounds(dovecot, settings.mailbox(login), raws, rounds),
                             "fill_s": fill_s}
        held = dovecot.count(login)
    first, last = result[str(sizes[0])], result[str(sizes[-1])]
    result["ratio_last_to_first"] = last["after_new_mail_ms"] / first["after_new_mail_ms"]
    return result


def poll_rounds(dovecot: Dovecot, box, raws: list[bytes], rounds: int) -> dict:
    connection = MailboxConnection(box)
    connection.open()
    try:
        last = max(connection.new_uids(0))
        with dovecot.connect(box.imap.user) as appender:
            after_new, unchanged = [], []
            for k in range(rounds):
                appender.append("INBOX", raws[k % len(raws)])
                start = time.perf_counter()
                uids = connection.new_uids(last)
                after_new.append(time.perf_counter() - start)
                if len(uids) != 1:
                    raise RuntimeError(f"poll found {len(uids)} new mails, expected 1")
                last = uids[0]
                start = time.perf_counter()
                connection.new_uids(last)
                unchanged.append(time.perf_counter() - start)
    finally:
        connection.close()
    return {"after_new_mail_ms": 1000 * statistics.median(after_new),
            "after_new_mail_p90_ms": 1000 * statistics.quantiles(after_new, n=10)[-1],
            "unchanged_ms": 1000 * statistics.median(unchanged), "rounds": rounds}


# --- the report ---------------------------------------------------------------------------


def machine() -> dict:
    model = next((line.split(":", 1)[1].strip() for line in
                  Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")),
                 platform.processor())
    return {"nproc": len(os.sched_getaffinity(0)), "cpu": model,
            "python": platform.python_version(), "kernel": platform.release(),
            "load_avg_at_start": os.getloadavg(),
            "dovecot": subprocess.run(["dovecot", "--version"], capture_output=True,
                                      text=True).stdout.split()[0],
            "postfix": subprocess.run(["postconf", "-d", "-h", "mail_version"],
                                      capture_output=True, text=True).stdout.strip()}


def report(results: dict) -> str:
    m = results["machine"]
    lines = [f"triage-daemon benchmark {results['date']}  N={results['mails']} mails "
             f"({results['mail_kib']:.0f} KiB)  nproc={m['nproc']}  Python {m['python']}  "
             f"Dovecot {m['dovecot']}  Postfix {m['postfix']}", ""]
    row = "{:<44}" + "{:>16}" * len(results["smtp"])
    lines.append(row.format("SMTP server", *results["smtp"]))
    figures = [
        ("fill by MULTIAPPEND (mails/s)", lambda r: results["mails"] / r["fill_s"]),
        ("floor: fetch, 6 boxes in turn (mails/s)", lambda r: r["floor"]["fetch_per_s"]),
        ("floor: send, 1 SMTP connection (mails/s)", lambda r: r["floor"]["send_per_s"]),
        ("floor: fetch + send (mails/s)", lambda r: r["floor"]["mails_per_s"]),
        ("daemon start-up, empty boxes (s)", lambda r: r["startup"]["median_s"]),
        ("daemon run --once wall (s)", lambda r: r["daemon"]["wall_s"]),
        ("daemon wall minus start-up (mails/s)", lambda r: r["daemon"]["mails_per_s"]),
        ("daemon CPU net of start-up (ms/mail)", lambda r: r["daemon"]["cpu_ms_per_mail"]),
        ("floor / daemon (x slower)", lambda r: r["ratio_floor_to_daemon"]),
        ("daemon peak RSS (MB)", lambda r: r["daemon"]["max_rss_mb"]),
        ("daemon peak RSS, empty boxes (MB)", lambda r: r["startup"]["max_rss_mb"]),
        ("daemon message rows", lambda r: r["daemon"]["messages"]),
        ("daemon outbox rows sent", lambda r: r["daemon"]["outbox"].get("sent", 0)),
    ]
    for label, value in figures:
        lines.append(row.format(label, *(cell(value, results["runs"][mode])
                                         for mode in results["smtp"])))
    for mode in results["smtp"]:
        run = results["runs"][mode]
        lines.append(f"  {mode}: SMTP accepted, floor: {run['floor']['smtp_accepted']}")
        if "daemon" in run:
            lines.append(f"  {mode}: SMTP accepted, daemon: {run['daemon']['smtp_accepted']}; "
                         f"dispositions {run['daemon']['dispositions']}")
    idle = results.get("idle_poll")
    if idle:
        lines.append("")
        lines.append("idle poll (NOOP + UID SEARCH UID n:*), after 1 new mail / unchanged, median:")
        for size, figures_ in idle.items():
            if size.isdigit():
                lines.append(f"  {int(size):>6} mails: {figures_['after_new_mail_ms']:.2f} ms "
                             f"(p90 {figures_['after_new_mail_p90_ms']:.2f}) / "
                             f"{figures_['unchanged_ms']:.2f} ms, {figures_['rounds']} rounds")
        lines.append(f"  ratio largest/smallest: {idle['ratio_last_to_first']:.2f}")
    return "\n".join(lines)


def cell(value, run: dict) -> str:
    try:
        return f"{value(run):.2f}".rstrip("0").rstrip(".")
    except KeyError:
        return "-"


# --- profile -----------------------------------------------------------------------------

PROFILE_RATE = 200
OWN_CODE = "triage_daemon/"


def profile_run(ws: Workspace, dovecot: Dovecot, mails: list[BenchMail], folder: Path) -> dict:
    """Two more (untimed) runs against a sink under py-spy, which samples every thread
    (cProfile sees only the main thread, and the mailboxes run in worker threads): the
    samples of the thread holding the GIL (--gil: where the one Python CPU goes), then all
    samples of all threads (--idle: waiting on the network, the GIL or a lock too)."""
    spy = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
    if spy is None:
        raise SystemExit("--profile needs py-spy: .venv/bin/pip install py-spy")
    folder.mkdir(parents=True, exist_ok=True)
    summary = {}
    for kind, extra in (("gil", ("--gil",)), ("wall", ("--idle",))):
        fill(dovecot, mails)
        out = folder / f"{kind}.txt"
        wrapper = (spy, "record", "--format", "raw", "--rate", str(PROFILE_RATE), "--nonblocking",
                   "--function", *extra, "-o", str(out), "--")
        with smtp_server("sink", None) as smtp:
            run = run_daemon(ws, Endpoints(dovecot, dovecot.host, smtp["port"]), f"spy-{kind}",
                             wrapper)
        summary[kind] = hot_spots(out, len(mails))
        (folder / f"{kind}-top.txt").write_text(summary[kind] + "\n")
        print(f"py-spy {kind} profile (run took {run.seconds:.1f} s): {out}")
    return summary


# Which stage a sample belongs to: the first marker found walking from the innermost frame
# outwards (so the database time of track.py is "database", the email package's time under
# reply.py is "reply rendering").
STAGES = (
    ("database", ("(sqlalchemy/", "(sqlmodel/", "(sqlite3/")),
    ("SMTP (aiosmtplib)", ("(aiosmtplib/",)),
    ("IMAP (imapclient)", ("(imapclient/", "(imaplib.py")),
    ("logging", ("(logging/__init__.py",)),
    ("imports (start-up)", ("<frozen importlib._bootstrap",)),
    ("parse", ("(triage_daemon/parse", "(triage_daemon/html_text.py", "(triage_daemon/quotes.py",
               "(triage_daemon/headers", "(triage_daemon/charsets")),
    ("filters", ("(triage_daemon/filters/",)),
    ("classify", ("(triage_daemon/classify.py", "(triage_daemon/textprep.py")),
    ("reply rendering", ("(triage_daemon/reply.py",)),
    ("start-up (other)", ("Daemon.__init__ ",)),
    ("event loop / thread pool (waiting)", ("(asyncio/", "(concurrent/futures/", "(threading.py",
                                            "(selectors.py")),
    ("other own code", ("(" + OWN_CODE,)),
)


def hot_spots(path: Path, mails: int, top: int = 15) -> str:
    """The daemon's own functions by inclusive samples (every thread), and the samples by
    stage, as ms per mail (samples / rate / N: start-up is spread over the mails too)."""
    inclusive: dict[str, int] = defaultdict(int)
    stages: dict[str, int] = defaultdict(int)
    total = 0
    # Not splitlines(): py-spy --nonblocking now and then records a garbled frame, whose
    # bytes may include what Python counts as a line break (U+0085).
    for line in path.read_bytes().decode("utf-8", "replace").split("\n"):
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        frames, samples = stack.split(";"), int(count)
        total += samples
        for name in {f for f in frames if OWN_CODE in f}:
            inclusive[name] += samples
        stages[stage_of(frames)] += samples
    per_mail = 1000 / PROFILE_RATE / mails
    lines = [f"{'ms/mail':>8} {'share':>6}  function (inclusive, all threads)"]
    for name, samples in sorted(inclusive.items(), key=lambda kv: -kv[1])[:top]:
        lines.append(f"{samples * per_mail:8.2f} {samples / total:6.1%}  {short(name)}")
    lines.append(f"{'ms/mail':>8} {'share':>6}  stage (innermost marker)")
    for name, samples in sorted(stages.items(), key=lambda kv: -kv[1]):
        lines.append(f"{samples * per_mail:8.2f} {samples / total:6.1%}  {name}")
    return "\n".join(lines)


def stage_of(frames: list[str]) -> str:
    for frame in reversed(frames):
        for stage, markers in STAGES:
            if any(marker in frame for marker in markers):
                return stage
    return "other"


def short(frame: str) -> str:
    return frame.replace(str(ROOT) + "/", "")


def interrupt(_signum, _frame) -> None:
    raise KeyboardInterrupt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mails", type=int, default=2000, help="N, mails over the six boxes")
    parser.add_argument("--smtp", choices=("sink", "postfix", "both"), default="both",
                        help="the SMTP server for the floor and the daemon (default: both)")
    parser.add_argument("--startup-runs", type=int, default=3)
    parser.add_argument("--idle-sizes", default="1000,20000", help="mailbox sizes, or 'none'")
    parser.add_argument("--idle-rounds", type=int, default=50)
    parser.add_argument("--no-daemon", action="store_true",
                        help="only the floor and the idle polls (no model needed)")
    parser.add_argument("--profile", type=Path, metavar="FOLDER",
                        help="also profile two runs of the daemon with py-spy, into FOLDER")
    parser.add_argument("--seed", type=int, default=2020)
    parser.add_argument("--config", type=Path, default=ATTICA,
                        help="the daemon's configuration (default: the Attica example)")
    parser.add_argument("--out", type=Path,
                        help="the JSON file (default: bench/results-<date>.json)")
    parser.add_argument("--sink-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sink_child:
        return sink_child()
    if os.geteuid() != 0:
        parser.error("run as root: the private Dovecot and Postfix need it (like the e2e tests)")
    # Ctrl-C and SIGTERM stop the run and clean up (even when started with SIGINT ignored).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, interrupt)
    modes = ["sink", "postfix"] if args.smtp == "both" else [args.smtp]
    now = datetime.now().astimezone()
    results = {"date": now.isoformat(timespec="seconds"), "machine": machine(),
               "config": str(args.config), "mails": args.mails, "smtp": modes, "runs": {}}
    mails = generate(args.mails, args.seed)
    results["mail_kib"] = sum(len(m.raw) for m in mails) / 1024
    out = args.out or ROOT / "bench" / f"results-{now:%Y-%m-%dT%H%M}.json"
    with contextlib.ExitStack() as stack:
        root, dovecot, postfix = start_servers(stack, args.mails, "postfix" in modes)
        ws = Workspace(root / "work", args.config.resolve())
        for mode in modes:
            print(f"... floor and daemon against {mode}", flush=True)
            results["runs"][mode] = smtp_mode(mode, ws, dovecot, postfix, mails,
                                              args.startup_runs, not args.no_daemon)
            save(results, out)
        if args.idle_sizes != "none":
            print("... idle polls", flush=True)
            sizes = [int(s) for s in args.idle_sizes.split(",")]
            endpoints = Endpoints(dovecot, dovecot.host, postfix.smtp_port if postfix else 25)
            results["idle_poll"] = idle_polls(ws.folder, endpoints, mails, sizes, args.idle_rounds)
            save(results, out)
        if args.profile:
            print("... profiles", flush=True)
            results["profile"] = profile_run(ws, dovecot, mails, args.profile.resolve())
            save(results, out)
    print(report(results))
    for kind, text in results.get("profile", {}).items():
        print(f"\npy-spy, {kind} samples:\n{text}")
    print(f"\nwritten to {out}")


def save(results: dict, out: Path) -> None:
    """Write what is measured so far (a later failure or Ctrl-C keeps it)."""
    results["machine"]["load_avg_at_end"] = os.getloadavg()
    out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
