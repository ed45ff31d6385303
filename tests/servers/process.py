"""Helpers shared by the private test servers: free ports, waiting, log tails, system users."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

from .reaper import descendants

LOOPBACK = "127.0.0.1"
REAPER = Path(__file__).with_name("reaper.py")

# Unix socket paths are limited to 108 bytes (sun_path); both servers put sockets a few levels
# below their folder, so keep the folder well under that.
MAX_SOCKET_DIR = 70


class ServerStartError(RuntimeError):
    """A private test server did not start; the message holds the reason and the log tail."""


def free_port() -> int:
    """Return a TCP port on the loopback that was free a moment ago (the kernel chose it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def greeted(port: int, token: str, host: str = LOOPBACK) -> bool:
    """Return True when the server on host:port greets with a banner that contains token.

    Answering alone is not enough: another process may hold the port we chose.
    """
    try:
        with socket.create_connection((host, port), timeout=1) as sock:
            sock.settimeout(2)
            return token.encode() in sock.recv(1024)
    except OSError:
        return False


def wait_until(predicate, timeout: float, interval: float = 0.02) -> bool:
    """Call predicate() until it returns true or timeout seconds pass; return its last result."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def log_tail(*paths: Path, lines: int = 30) -> str:
    """Return the last lines of each existing log file, labelled, for error messages."""
    parts = []
    for path in paths:
        if path.exists():
            text = path.read_text(errors="replace").splitlines()[-lines:]
            parts.append(f"--- {path} (last {len(text)} lines) ---\n" + "\n".join(text))
    return "\n".join(parts) or "(no log written)"


def binary(name: str) -> str:
    """Return the path of a server program; /usr/sbin counts even when it is not on PATH."""
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
    if path is None:
        raise ServerStartError(
            f"program {name!r} not found: run scripts/install-system-deps.sh as root"
        )
    return path


def run(args: list[str], what: str, timeout: float = 30) -> str:
    """Run a server command line; return its stdout or raise ServerStartError with its output."""
    args = [binary(args[0]), *args[1:]]
    done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise ServerStartError(
            f"{what} failed (exit {done.returncode}): {' '.join(args)}\n{done.stdout}{done.stderr}"
        )
    return done.stdout


def spawn(command: list[str], log_path: Path) -> subprocess.Popen:
    """Start a foreground server under reaper.py, in a session of its own, logging to a file.

    Waiting for the returned process waits for the server and every worker it started. The
    new session keeps Ctrl-C in pytest from killing the server before the fixture's teardown.
    """
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            [sys.executable, str(REAPER), binary(command[0]), *command[1:]],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )


def stop_server(proc: subprocess.Popen, pid: int | None, *, group: bool, timeout=10) -> None:
    """SIGTERM the server ``pid`` (its whole process group if ``group``) and wait for proc.

    ``proc`` is the reaper from spawn(). Without a live server pid, or when the reaper has
    not exited after ``timeout`` seconds, the reaper and all its descendants get SIGKILL.
    """
    if proc.poll() is not None:
        return
    try:
        # A pid file left by a killed server could name an unrelated process by now.
        if pid is None or pid not in descendants(proc.pid):
            raise ProcessLookupError
        if group:
            os.killpg(os.getpgid(pid), signal.SIGTERM)
        else:
            os.kill(pid, signal.SIGTERM)
        proc.wait(timeout=timeout)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        for victim in [proc.pid, *descendants(proc.pid)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(victim, signal.SIGKILL)
        proc.wait(timeout=timeout)


def read_pid(path: Path) -> int | None:
    """Return the PID written in a pid file, or None when it is missing or not a number."""
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def system_user(name: str) -> pwd.struct_passwd:
    """Return the passwd entry of a system user, or raise ServerStartError naming the fix."""
    try:
        return pwd.getpwnam(name)
    except KeyError:
        raise ServerStartError(
            f"system user {name!r} is missing: run scripts/install-system-deps.sh as root"
        ) from None


def check_folder(path: Path) -> None:
    """Raise ServerStartError when unprivileged server processes could not reach path.

    The servers drop root for their workers (Dovecot's mail user, "dovenull", "postfix"),
    so every parent folder must be searchable by others, and sockets need a short path.
    """
    path = path.resolve()
    if len(str(path)) > MAX_SOCKET_DIR:
        raise ServerStartError(
            f"folder {path} is too long for Unix sockets: use a folder of at most "
            f"{MAX_SOCKET_DIR} characters, e.g. tempfile.mkdtemp(dir='/tmp')"
        )
    for parent in [path, *path.parents]:
        if not parent.stat().st_mode & stat.S_IXOTH:
            raise ServerStartError(
                f"folder {parent} is not searchable by other users (mode "
                f"{stat.filemode(parent.stat().st_mode)}): server workers could not reach "
                f"{path}; use a folder like tempfile.mkdtemp(dir='/tmp') and chmod it 0o755"
            )
