"""The sent journal: an fsynced, append-only file of the replies that may have reached the relay.

Why a file and not the database: the old "sent" mark was a database commit after the
relay's 250, and on SQLite it waited behind the mailbox workers, each holding the one
writer lock for a whole mail's transaction; a SIGKILL in that wait sent the reply again
after the restart (issue 9: 17 doubles in one campaign). Measured under load
(bench/bench_send.py, 600 mails, load average 4-9 on two cores), that commit came
p50 1.0-1.4 ms, p99 80-300 ms after the 250.

Why the line goes with the final dot, not after the relay's 250: measured against
Postfix here, the relay spends 43-55 % of each transaction between our final dot and
its 250 (its queue file written and fsynced; dot -> 250 p50 2.1-2.6 ms, p99 45 ms); a
process killed in that time has handed the mail over without hearing so, and with
four connections nearly every kill during sending lands there. So the line "dot" is
written straight after the dot has left, and "250" when the answer is read. At
recovery a reply whose dot went out counts as sent, answered or not.

Why a process of its own (journal_writer.py) sends the dot and writes the line: in the
daemon, between the dot's send() and the line's write(), this thread may wait for the
GIL behind a mailbox thread, or for the CPU on a loaded machine; measured under load,
dot -> line took p50 0.6 ms, p99 32 ms (p50 43 us, p99 6.7 ms even with both calls
keeping the GIL, through ctypes.PyDLL), so a kill while sending at 150 replies/s
doubled one about once in a hundred. The daemon now asks for both in one message, a
single system call that the kernel completes or not at all, and the writer, which a
kill of the daemon does not touch, does the two: the daemon-kill window is gone. The
hand-over costs each mail p50 0.19 ms (p99 5-8 ms) before its dot leaves.

What remains: a power cut before the line's fdatasync returns (dot -> synced p50
0.8-1.0 ms, p99 13 ms), or a SIGKILL of the writer itself (a whole process group
killed) between its send() and write() (p50 0.03-0.05 ms, p99 0.6-1.4 ms), sends that
reply again; a relay that would have refused the mail at the dot, answering while the
daemon dies, makes the reply count as sent. Over TLS the dot must go through the
daemon's own TLS transport, and the daemon's window comes back.

Each daemon's journal is its own file, named by its pid and start time, and locked
(flock) by its writer, which lives until the daemon is gone and every message it sent
is done. At start-up (journal_recovery.py) every journal whose daemon is gone is
read, once its writer has finished, applied to the outbox by Message-ID (idempotent
per row) and deleted. Several daemons may share one folder, and several instances one
database, each instance with its own folder.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .errors import TriageError

log = logging.getLogger(__name__)

SUFFIX = ".journal"
WRITER = Path(__file__).with_name("journal_writer.py")
# The states a journal line records for one reply; the last line for a Message-ID wins.
DOT = "dot"  # the final dot has left: the relay may have the mail from now on
ACCEPTED = "250"  # the relay accepted it
REFUSED = "refused"  # the relay answered the dot with an error: it does not have the mail
STATES = (DOT, ACCEPTED, REFUSED)
# Truncate the file once everything in it is in the database and it has grown this much:
# truncating after every drain would cost a metadata write each time for nothing.
COMPACT_BYTES = 256 * 1024
# The writer answers within milliseconds; these bound a writer that has stopped.
WRITER_TIMEOUT = 10.0


class JournalError(TriageError):
    """The journal cannot be created, or a line cannot be written to it."""


@dataclass
class Outcomes:
    """What a journal says about the replies it names, by Message-ID."""

    accepted: list[str] = field(default_factory=list)  # the relay said 250
    assumed: list[str] = field(default_factory=list)  # the dot went out, no answer was read

    def __bool__(self) -> bool:
        return bool(self.accepted or self.assumed)

    @classmethod
    def from_states(cls, states: dict[str, str]) -> Outcomes:
        outcomes = cls()
        for message_id, state in states.items():
            if state == ACCEPTED:
                outcomes.accepted.append(message_id)
            elif state == DOT:
                outcomes.assumed.append(message_id)
        return outcomes


class SentJournal:
    """This daemon's journal, written by its writer process. One event loop uses it."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.path = directory / f"{os.getpid()}-{time.time_ns()}{SUFFIX}"
        try:
            directory.mkdir(parents=True, exist_ok=True)
            self._requests, self._answers, self._writer = _start_writer(self.path)
        except OSError as exc:
            raise JournalError(
                f"cannot create the sent journal in {directory}: {exc} "
                "(the daemon's data_dir must be a writable local folder)"
            ) from exc
        self._ids = itertools.count(1)
        self.size = 0
        # Replies the journal knows about whose outcome the database does not have yet.
        self.unsettled: dict[str, str] = {}
        # The last failure to write (disk full, writer gone), until a write succeeds: the
        # sender stops after the mail in hand, whose outcome goes to the database only.
        self.failing: JournalError | None = None
        # The writer's word on each dot: True sent, or why not.
        self._dots: dict[str, bool | str] = {}
        # What to do if a dot turns out not to have gone (the writer's "unsent", or the
        # writer gone): the relay will never answer it, so stop waiting for it.
        self._on_lost: dict[str, Callable[[], object]] = {}
        self._pong = False

    @property
    def stopped(self) -> bool:
        """The writer has exited (it never should while the daemon runs)."""
        return self._writer.poll() is not None

    # -- connections and dots ---------------------------------------------------------

    def open_connection(self, sock: socket.socket) -> str:
        """Hand the writer a copy of an SMTP connection's socket; returns its id."""
        connection = str(next(self._ids))
        self._send(f"open {connection}".encode(), [sock.fileno()])
        return connection

    def close_connection(self, connection: str) -> None:
        """The writer closes its copy: until then the connection stays open."""
        self._send(f"close {connection}".encode())

    def send_dot(self, connection: str, message_id: str) -> bool:
        """Have the writer send the final dot on ``connection``, then write its line.

        One message to the writer: once it is handed over (even if the daemon dies in
        the same instant), both happen, or neither if the connection is gone. False if
        the writer could not be asked: then the dot does not go.
        """
        self.unsettled[message_id] = DOT
        if self._send(f"dot {connection} ".encode() + entry(DOT, message_id)):
            return True
        self.unsettled.pop(message_id, None)
        return False

    def dot_written(self, message_id: str) -> None:
        """The daemon sent the dot itself (TLS): record it."""
        if self._line(DOT, message_id, sync=True):
            self.unsettled[message_id] = DOT

    def on_lost_dot(self, message_id: str, callback: Callable[[], object] | None) -> None:
        """Call ``callback`` if the dot of ``message_id`` does not go (None: forget it)."""
        if callback is None:
            self._on_lost.pop(message_id, None)
        else:
            self._on_lost[message_id] = callback

    def dot_went(self, message_id: str) -> bool:
        """Whether the writer sent the dot (asked when no answer came from the relay).

        Without the writer's word (it is gone), the file says: its line follows the dot.
        """
        deadline = time.monotonic() + WRITER_TIMEOUT
        while message_id not in self._dots and time.monotonic() < deadline:
            if not self._receive(timeout=deadline - time.monotonic()):
                break
        word = self._dots.pop(message_id, None)
        if word is None:
            word = read_states(self.path).get(message_id) in (DOT, ACCEPTED) or (
                "the journal writer is gone and its journal has no line for it"
            )
        if word is not True:
            self.unsettled.pop(message_id, None)
            log.warning("final dot of %s not sent: %s", message_id, word)
        return word is True

    def watch(self, loop) -> None:
        """Hear the writer as it speaks, from ``loop``, until ``unwatch``."""
        loop.add_reader(self._answers.fileno(), self.check)

    def unwatch(self, loop) -> None:
        if self._answers.fileno() >= 0:
            loop.remove_reader(self._answers.fileno())

    def accepted(self, message_id: str) -> None:
        # Not synced: if this line is lost, the "dot" line before it gives the same verdict.
        if self._line(ACCEPTED, message_id, sync=False):
            self.unsettled[message_id] = ACCEPTED
        self._dots.pop(message_id, None)

    def refused(self, message_id: str) -> None:
        # Synced: without it the "dot" line would make a refused mail count as sent.
        self._line(REFUSED, message_id, sync=True)
        self.unsettled.pop(message_id, None)
        self._dots.pop(message_id, None)

    # -- the database's side ----------------------------------------------------------

    def outcomes(self) -> Outcomes:
        """The replies not yet settled in the database."""
        return Outcomes.from_states(self.unsettled)

    def settled(self, message_ids: Iterable[str]) -> None:
        """The database now records these as sent."""
        for message_id in message_ids:
            self.unsettled.pop(message_id, None)
            self._dots.pop(message_id, None)

    def check(self) -> None:
        """Take in what the writer has said so far (failures, dots), without waiting."""
        while self._receive(timeout=0):
            pass

    def sync(self) -> None:
        """Wait until the writer has done everything asked so far."""
        self._pong = False
        if not self._send(b"ping"):
            return
        deadline = time.monotonic() + WRITER_TIMEOUT
        while not self._pong and time.monotonic() < deadline:
            if not self._receive(timeout=deadline - time.monotonic()):
                break

    def compact(self) -> None:
        """Empty the file when the database holds everything it says and it has grown."""
        if self.unsettled or self.size < COMPACT_BYTES:
            return
        if self._send(b"truncate"):
            self.size = 0

    def close(self) -> None:
        """Stop the writer once it has done everything; the file is deleted when the
        database holds everything in it."""
        if self._requests.fileno() < 0:
            return
        if not self.unsettled:
            self.path.unlink(missing_ok=True)
        self._requests.close()
        self._answers.close()
        try:
            self._writer.wait(timeout=WRITER_TIMEOUT)
        except subprocess.TimeoutExpired:
            log.error("the journal writer %s did not stop; killed", self._writer.pid)
            self._writer.kill()
            self._writer.wait()

    # -- talking to the writer --------------------------------------------------------

    def _line(self, state: str, message_id: str, *, sync: bool) -> bool:
        return self._send(b"line " + (b"1 " if sync else b"0 ") + entry(state, message_id))

    def _send(self, message: bytes, fds: list[int] | None = None) -> bool:
        try:
            if fds:
                socket.send_fds(self._requests, [message], fds)
            else:
                self._requests.send(message)
        except OSError as exc:
            self._fail(f"the journal writer is gone ({exc})")
            return False
        self.size += len(message)
        self.check()
        return True

    def _receive(self, timeout: float) -> bool:
        try:
            self._answers.settimeout(timeout if timeout > 0 else 0.0)
            answer = self._answers.recv(4096)
        except (BlockingIOError, TimeoutError):
            return False
        except OSError as exc:
            self._fail(f"the journal writer is gone ({exc})")
            return False
        if not answer:
            self._fail("the journal writer has stopped")
            return False
        self._take(answer)
        return True

    def _take(self, answer: bytes) -> None:
        kind, _, rest = answer.partition(b" ")
        if kind == b"sent":
            message_id = rest.decode()
            # Kept only while the relay's answer is awaited: dot_went may ask.
            if self.unsettled.get(message_id) == DOT:
                self._dots[message_id] = True
            self.failing = None
        elif kind == b"unsent":
            message_id, _, reason = (part.decode(errors="replace") for part in rest.partition(b" "))
            self._dots[message_id] = reason
            lost = self._on_lost.pop(message_id, None)
            if lost is not None:
                lost()
        elif kind == b"err":
            # A line the writer could not write (disk full): it still sends dots.
            self._fail(rest.decode(errors="replace"), writer_gone=False)
        elif kind == b"pong":
            self._pong = True

    def _fail(self, reason: str, *, writer_gone: bool = True) -> None:
        self.failing = JournalError(f"{self.path}: {reason}")
        log.error("%s", self.failing)
        if writer_gone:
            # The writer is gone: no dot asked of it will go, and no answer will come.
            lost, self._on_lost = list(self._on_lost.values()), {}
            for callback in lost:
                callback()


def _start_writer(path: Path) -> tuple[socket.socket, socket.socket, subprocess.Popen]:
    """The writer, and our ends of its two channels: requests (we only ever write to it,
    see journal_writer.py) and answers."""
    requests, their_requests = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    answers, their_answers = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    fds = [their_requests.fileno(), their_answers.fileno()]
    with their_requests, their_answers:
        writer = subprocess.Popen(
            [sys.executable, "-I", "-S", str(WRITER), str(path), *map(str, fds)],
            pass_fds=fds,
            stdin=subprocess.DEVNULL,
        )
    requests.settimeout(WRITER_TIMEOUT)
    answers.settimeout(WRITER_TIMEOUT)
    try:
        first = answers.recv(4096)
    except OSError:
        first = b""
    if first != b"ready":
        requests.close()
        answers.close()
        writer.kill()
        writer.wait()
        raise OSError(first.decode(errors="replace").removeprefix("err ") or "writer failed")
    return requests, answers, writer


def entry(state: str, message_id: str) -> bytes:
    return (json.dumps([state, message_id], ensure_ascii=False) + "\n").encode()


def read_states(path: Path) -> dict[str, str]:
    """The last state of each Message-ID in a journal file; damaged lines are skipped."""
    states: dict[str, str] = {}
    try:
        lines = path.read_bytes().split(b"\n")
    except FileNotFoundError:
        return states
    # What follows the last newline is empty, or a line torn by a power cut before its
    # fdatasync returned (a killed process's write() is never torn): skipped.
    lines.pop()
    for number, line in enumerate(lines, 1):
        parsed = _parse(line)
        if parsed is None:
            log.warning("%s line %d is not a journal entry; skipped: %r", path, number, line)
            continue
        states[parsed[1]] = parsed[0]
    return states


def _parse(line: bytes) -> tuple[str, str] | None:
    try:
        parsed = json.loads(line)
    except (UnicodeDecodeError, ValueError):
        return None
    if (
        isinstance(parsed, list)
        and len(parsed) == 2
        and parsed[0] in STATES
        and isinstance(parsed[1], str)
    ):
        return parsed[0], parsed[1]
    return None


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` of this host still runs (a journal's or a claim's owner)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True
