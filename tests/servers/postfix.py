"""A private Postfix on a free loopback port that delivers the test domains into Dovecot by LMTP.

Nothing can leave the machine: the test domains are virtual mailbox domains delivered over
LMTP to the private Dovecot, and every other destination (``default_transport``,
``relay_transport``, ``local_transport``) is the ``discard:`` transport. Mail for a test
domain that Dovecot refuses (an unknown user) bounces to its sender, like on a real server.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

from .process import (
    LOOPBACK,
    ServerStartError,
    check_folder,
    free_port,
    greeted,
    log_tail,
    read_pid,
    run,
    spawn,
    stop_server,
    wait_until,
)

STARTUP_TIMEOUT = 20.0
SYSTEM_MASTER_CF = Path("/etc/postfix/master.cf")
# mail_owner: the Debian package creates this user and group.
MAIL_OWNER = "postfix"
QUEUES = ("maildrop", "incoming", "active", "deferred", "hold")

MAIN_CF = """\
# Private test instance written by tests/servers/postfix.py.
compatibility_level = 3.6
queue_directory = {root}/queue
data_directory = {root}/data
myhostname = mx.test.example
mydomain = test.example
myorigin = $myhostname
inet_interfaces = {host}
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
# start() checks that it is this instance that answers.
smtpd_banner = $myhostname ESMTP {greeting}
# No syslog here, and Postfix reports fatal start-up errors only to the log: without a log
# file it silently refuses to start.
maillog_file = {root}/maillog
maillog_file_prefixes = /var, /dev/stdout, {root}
# Only the test domains are delivered, into Dovecot; everything else is thrown away.
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
virtual_mailbox_domains = {domains}
virtual_mailbox_maps = {mailbox_maps}
smtpd_reject_unlisted_recipient = {reject_unlisted}
virtual_transport = lmtp:inet:{host}:{lmtp_port}
local_transport = discard:
default_transport = discard:
relay_transport = discard:
smtpd_relay_restrictions = permit_mynetworks, reject
biff = no
append_dot_mydomain = no
# Tests: retry deferred mail at once, and never slow a client down on purpose.
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
in_flow_delay = 0
smtpd_error_sleep_time = 0
delay_warning_time = 0
"""


def master_cf(system_text: str, smtp_port: int, host: str = LOOPBACK) -> str:
    """Return the system master.cf with smtpd on host:smtp_port and no service chrooted."""
    lines = []
    for line in system_text.splitlines():
        fields = line.split()
        if line[:1].isspace() or line.startswith("#") or len(fields) < 8:
            lines.append(line)
            continue
        if fields[:2] == ["smtp", "inet"]:
            fields[0] = f"{host}:{smtp_port}"
        # The private queue is not set up inside a chroot jail.
        fields[4] = "n"
        lines.append("  ".join(fields))
    return "\n".join(lines) + "\n"


class Postfix:
    """A private Postfix whose queue and configuration live under ``tmpdir/postfix``.

    ``domains`` are delivered to ``127.0.0.1:lmtp_port``. With ``recipients`` (addresses),
    SMTP refuses other addresses in those domains with 550 at RCPT TO; without, every
    address is accepted and Dovecot's refusals bounce. The SMTP port is chosen at the first
    start() and kept across restarts. Needs root.
    """

    def __init__(
        self,
        tmpdir: str | os.PathLike,
        lmtp_port: int,
        domains: list[str],
        *,
        recipients: list[str] | None = None,
    ) -> None:
        self.root = Path(tmpdir) / "postfix"
        self.lmtp_port = lmtp_port
        self.domains = list(domains)
        self.recipients = recipients
        self.host = LOOPBACK
        self.smtp_port: int | None = None
        self._proc: subprocess.Popen | None = None
        self.greeting = f"triage-test-postfix-{uuid.uuid4().hex[:12]}"

    @property
    def config_dir(self) -> Path:
        return self.root / "etc"

    @property
    def log_path(self) -> Path:
        return self.root / "maillog"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        """Start Postfix and wait until SMTP answers; raise ServerStartError if it does not."""
        if self.running:
            return
        if self.smtp_port is None:
            self._start_on_new_port()
        else:
            self._start_once()

    def stop(self) -> None:
        """Stop Postfix by the master's PID (``postfix stop`` does the same) and wait."""
        if self._proc is None:
            return
        # SIGTERM to the master is what "postfix stop" does: the master stops its workers.
        master = read_pid(self.root / "queue" / "pid" / "master.pid")
        stop_server(self._proc, master, group=False, timeout=15)
        self._proc = None

    def restart(self) -> None:
        """Stop and start again on the same port; queued mail stays queued."""
        self.stop()
        self.start()

    def postqueue(self, *args: str) -> str:
        """Run ``postqueue -c CONFIG_DIR ARGS`` against this instance and return its output."""
        return run(["postqueue", "-c", str(self.config_dir), *args], "postqueue")

    def flush(self) -> None:
        """Ask Postfix to retry all deferred mail now (``postqueue -f``)."""
        self.postqueue("-f")

    def queued(self) -> int:
        """Return how many messages are still in the queue (not yet delivered or discarded)."""
        queue = self.root / "queue"
        return sum(len(files) for name in QUEUES for _dir, _subdirs, files in os.walk(queue / name))

    def wait_delivered(self, timeout: float = 10.0) -> None:
        """Wait until the queue is empty (all mail handed to Dovecot or discarded).

        Flushes the queue first so deferred mail is retried at once. Raises TimeoutError with
        the log tail when mail is still queued after ``timeout`` seconds.
        """
        if self.queued() and self.running:
            self.flush()
        if not wait_until(lambda: self.queued() == 0, timeout, interval=0.02):
            raise TimeoutError(
                f"{self.queued()} message(s) still in the Postfix queue after {timeout} s\n"
                + log_tail(self.log_path)
            )

    def remove(self) -> None:
        """Stop the server and delete its folder."""
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def _start_on_new_port(self) -> None:
        # The port was free when chosen, but another process may take it first: choose again.
        for attempt in range(3):
            self.smtp_port = free_port()
            try:
                return self._start_once()
            except ServerStartError as error:
                if attempt == 2 or "Address already in use" not in str(error):
                    raise

    def _start_once(self) -> None:
        self._write_files()
        if (self.root / "queue" / "active").is_dir():
            # The queue was set up by an earlier start: skip "postfix check" (0.3 s).
            (self.root / "queue" / "quick-start").touch()
        # start-fg keeps the master a child of postfix-script, so the reaper can wait for it.
        self._proc = spawn(
            ["postfix", "-c", str(self.config_dir), "start-fg"], self.root / "postfix.stderr"
        )
        if not wait_until(self._answers, STARTUP_TIMEOUT):
            self._fail(f"did not answer within {STARTUP_TIMEOUT:.0f} s")

    def _answers(self) -> bool:
        if self._proc.poll() is not None:
            self._fail(f"exited with status {self._proc.returncode}")
        return greeted(self.smtp_port, self.greeting)

    def _fail(self, reason: str) -> None:
        self.stop()
        raise ServerStartError(
            f"Postfix ({self.config_dir}, SMTP port {self.smtp_port}) {reason}\n"
            + log_tail(self.log_path, self.root / "postfix.stderr")
        )

    def _write_files(self) -> None:
        check_folder(self.root.parent)
        for folder in (self.root, self.config_dir, self.root / "queue", self.root / "data"):
            folder.mkdir(mode=0o755, exist_ok=True)
        # The master takes its lock there after dropping root (post-install does not fix it).
        shutil.chown(self.root / "data", user=MAIL_OWNER, group=MAIL_OWNER)
        (self.config_dir / "main.cf").write_text(self._main_cf())
        (self.config_dir / "master.cf").write_text(
            master_cf(SYSTEM_MASTER_CF.read_text(), self.smtp_port, self.host)
        )
        if self.recipients is not None:
            lines = [f"{address.lower()} ok" for address in self.recipients]
            (self.config_dir / "recipients").write_text("\n".join(lines) + "\n")
        # Postfix will not read a table written in the last two seconds (it waits, 300 ms at a
        # time, in case the file is still being written): date the files back.
        past = time.time() - 10
        for path in self.config_dir.iterdir():
            os.utime(path, (past, past))

    def _main_cf(self) -> str:
        listed = self.recipients is not None
        return MAIN_CF.format(
            root=self.root,
            greeting=self.greeting,
            host=self.host,
            lmtp_port=self.lmtp_port,
            domains=", ".join(self.domains),
            # texthash: needs no postmap run (Postfix reads the text file at start-up).
            mailbox_maps=f"texthash:{self.config_dir / 'recipients'}" if listed else "",
            reject_unlisted="yes" if listed else "no",
        )
