"""A private Dovecot (IMAP and LMTP) on free loopback ports, with helpers to inspect mailboxes.

Mail addresses map to IMAP users in Dovecot's own userdb, so the mapping holds for mail
delivered through Postfix and for mail handed straight to LMTP alike:

- ``helpdesk@pekesN.att.example`` -> user ``pekesN`` (for every user named ``pekes<digits>``);
- ``LOGIN@school.example`` and ``LOGIN@sch.example`` -> user ``LOGIN`` (for every user, so
  ``teacher1@school.example`` -> ``teacher1``);
- ``LOGIN`` itself.

Each address is a userdb entry (LMTP looks the recipient up there) with the home of its IMAP
user, so the mail lands in that user's Maildir; only the IMAP logins have a password. An
address that maps to no user is refused at RCPT TO with "550 5.1.1 User doesn't exist".
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import uuid
from pathlib import Path

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError

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
    system_user,
    wait_until,
)

STARTUP_TIMEOUT = 15.0
TEACHER_DOMAINS = ("school.example", "sch.example")
HELPDESK_USER = re.compile(r"pekes\d+")
# The group of Dovecot's default_internal_user, created by the Debian package.
INTERNAL_GROUP = "dovecot"
VIRTUAL_FOLDER_FLAGS = {b"\\Noselect", b"\\NonExistent"}

CONFIG = """\
# Private test instance written by tests/servers/dovecot.py; nothing is included from /etc.
instance_name = {instance}
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap lmtp
listen = {host}
# IMAP and LMTP greet with it: start() knows it is this instance that answers.
login_greeting = {greeting}
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
# Tests of a wrong password should not wait the default 2 s.
auth_failure_delay = 0
first_valid_uid = {uid}
last_valid_uid = {uid}
first_valid_gid = {gid}
last_valid_gid = {gid}
mail_location = maildir:~/Maildir
# A test server: durability across power loss does not matter, speed does.
mail_fsync = never
# The daemon under test, the fixtures and the tests may all be logged in at once.
mail_max_userip_connections = 200
namespace inbox {{
  inbox = yes
  separator = /
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%Lu {root}/passwd
}}
userdb {{
  driver = passwd-file
  args = username_format=%Lu {root}/userdb
}}
service imap-login {{
  inet_listener imap {{
    address = {host}
    port = {imap_port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service lmtp {{
  inet_listener lmtp {{
    address = {host}
    port = {lmtp_port}
  }}
}}
# No growing delay (2-15 s) for every login from 127.0.0.1 after a failed one: tests of a
# wrong password would slow down the logins of all later tests.
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
# IMAP processes run as the mail user, which is not in the "dovecot" group.
service stats {{
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
"""


def default_addresses(logins: list[str]) -> dict[str, str]:
    """Return the mail address -> IMAP login mapping described in the module docstring."""
    addresses = {}
    for login in logins:
        if HELPDESK_USER.fullmatch(login):
            addresses[f"helpdesk@{login}.att.example"] = login
        for domain in TEACHER_DOMAINS:
            addresses[f"{login}@{domain}"] = login
    return addresses


class Dovecot:
    """A private Dovecot serving Maildirs under ``tmpdir/dovecot`` as the system mail user.

    ``users`` maps IMAP logins to passwords. Ports are chosen at the first start() and kept
    across restart() so clients and Postfix can reconnect. Needs root (Dovecot drops to the
    mail user itself) and a ``tmpdir`` whose parents other users can search.
    """

    def __init__(
        self,
        tmpdir: str | os.PathLike,
        users: dict[str, str],
        *,
        mail_user: str = "triagemail",
        addresses: dict[str, str] | None = None,
    ) -> None:
        self.root = Path(tmpdir) / "dovecot"
        self.users = {login.lower(): password for login, password in users.items()}
        self.addresses = addresses if addresses is not None else default_addresses(list(users))
        self.mail_user = mail_user
        self.host = LOOPBACK
        self.imap_port: int | None = None
        self.lmtp_port: int | None = None
        self._proc: subprocess.Popen | None = None
        self.greeting = f"triage-test-dovecot-{uuid.uuid4().hex[:12]}"

    @property
    def config_path(self) -> Path:
        return self.root / "dovecot.conf"

    @property
    def log_path(self) -> Path:
        return self.root / "dovecot.log"

    def home(self, login: str) -> Path:
        """Return the home folder of an IMAP user (its mail is in ``home/Maildir``)."""
        return self.root / "mail" / login

    def start(self) -> None:
        """Start Dovecot and wait until IMAP and LMTP answer; raise ServerStartError if not."""
        if self.running:
            return
        if self.imap_port is None:
            self._start_on_new_ports()
        else:
            self._start_once()

    def stop(self) -> None:
        """Stop Dovecot (the process group of the PID in ``base_dir/master.pid``) and wait."""
        if self._proc is None:
            return
        # Signalling the whole group is what makes stopping fast: a Dovecot master signalled
        # alone waits 1-6 s for its workers before it exits.
        pid = read_pid(self.root / "run" / "master.pid")
        stop_server(self._proc, pid, group=True)
        self._proc = None

    def restart(self) -> None:
        """Stop and start again on the same ports; stored mail stays."""
        self.stop()
        self.start()

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def doveadm(self, *args: str) -> str:
        """Run ``doveadm -c CONF ARGS`` against this instance and return its output."""
        return run(["doveadm", "-c", str(self.config_path), *args], "doveadm")

    def _start_on_new_ports(self) -> None:
        # The ports were free when chosen, but another process may take one before Dovecot
        # binds it; choose again when that happens.
        for attempt in range(3):
            self.imap_port, self.lmtp_port = free_port(), free_port()
            try:
                return self._start_once()
            except ServerStartError as error:
                if attempt == 2 or "Address already in use" not in str(error):
                    raise

    def _start_once(self) -> None:
        self._write_files()
        # -F keeps the master in the foreground, so the reaper can wait for it.
        self._proc = spawn(
            ["dovecot", "-F", "-c", str(self.config_path)], self.root / "dovecot.stderr"
        )
        if not wait_until(self._answers, STARTUP_TIMEOUT):
            self._fail(f"did not answer within {STARTUP_TIMEOUT:.0f} s")

    def _answers(self) -> bool:
        if self._proc.poll() is not None:
            self._fail(f"exited with status {self._proc.returncode}")
        return greeted(self.imap_port, self.greeting) and greeted(self.lmtp_port, self.greeting)

    def _fail(self, reason: str) -> None:
        self.stop()
        raise ServerStartError(
            f"Dovecot ({self.config_path}, IMAP port {self.imap_port}, LMTP port "
            f"{self.lmtp_port}) {reason}\n" + log_tail(self.log_path, self.root / "dovecot.stderr")
        )

    def _write_files(self) -> None:
        check_folder(self.root.parent)
        owner = system_user(self.mail_user)
        self.root.mkdir(mode=0o755, exist_ok=True)
        (self.root / "mail").mkdir(mode=0o755, exist_ok=True)
        for login in self.users:
            self.home(login).mkdir(mode=0o700, exist_ok=True)
            os.chown(self.home(login), owner.pw_uid, owner.pw_gid)
        self.config_path.write_text(
            CONFIG.format(
                instance=self.greeting,
                greeting=self.greeting,
                root=self.root,
                host=self.host,
                uid=owner.pw_uid,
                gid=owner.pw_gid,
                imap_port=self.imap_port,
                lmtp_port=self.lmtp_port,
            )
        )
        self._write_user_files(owner.pw_uid, owner.pw_gid)

    def _write_user_files(self, uid: int, gid: int) -> None:
        unknown = sorted(set(self.addresses.values()) - set(self.users))
        if unknown:
            raise ServerStartError(f"addresses map to unknown IMAP users {unknown}")
        passwd = [
            f"{login}:{{PLAIN}}{password}:{uid}:{gid}::{self.home(login)}::"
            for login, password in self.users.items()
        ]
        userdb = [f"{login}::{uid}:{gid}::{self.home(login)}::" for login in self.users]
        userdb += [
            f"{address.lower()}::{uid}:{gid}::{self.home(login)}::"
            for address, login in self.addresses.items()
        ]
        (self.root / "passwd").write_text("\n".join(passwd) + "\n")
        (self.root / "userdb").write_text("\n".join(userdb) + "\n")
        # The auth process reads the file as Dovecot's internal user; keep it from others.
        shutil.chown(self.root / "passwd", group=INTERNAL_GROUP)
        (self.root / "passwd").chmod(0o640)

    # --- mailbox helpers (IMAP as the user, doveadm for what IMAP cannot do) ---

    def connect(self, login: str) -> IMAPClient:
        """Return an IMAPClient logged in as ``login``; the caller logs out."""
        client = IMAPClient(self.host, port=self.imap_port, ssl=False, timeout=10)
        client.login(login, self.users[login.lower()])
        return client

    def append(self, login: str, raw: bytes, folder: str = "INBOX") -> None:
        """Store one raw message in a folder of ``login``, creating the folder if needed."""
        self.append_many(login, [raw], folder)

    def append_many(self, login: str, raws: list[bytes], folder: str = "INBOX") -> None:
        """Store raw messages in order over one connection (a login each costs ~20 ms)."""
        with self.connect(login) as client:
            if not client.folder_exists(folder):
                client.create_folder(folder)
            for raw in raws:
                client.append(folder, raw)

    def fetch_all(self, login: str, folder: str = "INBOX") -> list[bytes]:
        """Return the raw messages of a folder in UID order, without setting \\Seen."""
        with self.connect(login) as client:
            client.select_folder(folder, readonly=True)
            uids = sorted(client.search("ALL"))
            if not uids:
                return []
            fetched = client.fetch(uids, ["BODY.PEEK[]"])
            return [fetched[uid][b"BODY[]"] for uid in uids]

    def count(self, login: str, folder: str = "INBOX") -> int:
        """Return how many messages a folder holds (0 when the folder does not exist)."""
        with self.connect(login) as client:
            try:
                return client.folder_status(folder, ["MESSAGES"])[b"MESSAGES"]
            except IMAPClientError:
                return 0

    def folders(self, login: str) -> list[str]:
        """Return the names of the folders of ``login``, INBOX included, sorted."""
        with self.connect(login) as client:
            return sorted(name for _flags, _delimiter, name in client.list_folders())

    def uidvalidity(self, login: str, folder: str = "INBOX") -> int:
        """Return the UIDVALIDITY a client sees when it selects the folder."""
        with self.connect(login) as client:
            return client.select_folder(folder, readonly=True)[b"UIDVALIDITY"]

    def set_uidvalidity(self, login: str, folder: str, value: int) -> None:
        """Change a folder's UIDVALIDITY (as a server rebuild would); messages stay.

        Uses ``doveadm mailbox update --uid-validity`` against this running instance; the
        UIDs are kept, so clients must notice the change only through UIDVALIDITY. Dovecot
        drops every session that has the folder selected ("IMAP session state is
        inconsistent, please relogin."): the client sees the connection close.
        """
        self.doveadm("mailbox", "update", "-u", login, "--uid-validity", str(value), folder)

    def clear(self, login: str) -> None:
        """Empty a user's mailbox: delete every folder but INBOX and expunge INBOX."""
        with self.connect(login) as client:
            # A parent that exists only through its children (\Noselect) goes with them.
            names = [
                name
                for flags, _delimiter, name in client.list_folders()
                if name.upper() != "INBOX" and not set(flags) & VIRTUAL_FOLDER_FLAGS
            ]
            # Children before parents: Dovecot refuses to delete a folder that has children.
            for name in sorted(names, key=len, reverse=True):
                client.delete_folder(name)
            if client.select_folder("INBOX")[b"EXISTS"]:
                client.set_flags("1:*", [b"\\Deleted"], silent=True)
                client.expunge()

    def clear_all(self) -> None:
        """Empty the mailbox of every user that has ever received or stored mail."""
        for login in self.users:
            if (self.home(login) / "Maildir").exists():
                self.clear(login)

    def remove(self) -> None:
        """Stop the server and delete its folder."""
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
