"""The sent journal's writer: a process of its own that sends each final dot, then writes its line.

Why a process: the daemon asks for a reply's final dot and its journal line in one
message, one system call that the kernel completes or not at all; from then on the two
happen here, and a SIGKILL of the daemon, whatever its threads are doing, cannot fall
between them. This process holds the journal's flock, and ends once the daemon's end
is closed (the daemon exited, or died) and every request already queued is done.

Started by journal.SentJournal (never by hand) as
``python -I -S journal_writer.py PATH REQUESTS ANSWERS``, the last two this process's ends
of two SOCK_SEQPACKET socket pairs: requests come on one, answers go back on the other.
Two, because a socket closed with unread data resets the connection, and its peer can
no longer read what was queued for it: the daemon's request socket never has anything
to read, so when the daemon dies every request it sent is still done here.

Messages (from the daemon), one per packet:
    open ID         with an SMTP connection's socket passed along (SCM_RIGHTS)
    dot ID LINE     send ".\\r\\n" on connection ID, then append LINE and fdatasync
    line SYNC LINE  append LINE, fdatasync if SYNC is 1
    close ID        close this process's copy of the connection's socket
    truncate        empty the journal
    ping            answered "pong" once everything before it is done
Answers: "ready" once, "sent MESSAGE-ID" or "unsent MESSAGE-ID REASON" for each dot,
"err REASON" when a line cannot be written, and "pong".

Standard library only, and no import of triage_daemon: it starts in a few milliseconds.
"""

from __future__ import annotations

import fcntl
import json
import os
import select
import socket
import sys

FINAL_DOT = b".\r\n"
# How long a dot may wait for room in a socket whose peer reads slowly.
SEND_TIMEOUT = 60.0


def main() -> int:
    path = sys.argv[1]
    requests = socket.socket(fileno=int(sys.argv[2]))
    answers = socket.socket(fileno=int(sys.argv[3]))
    try:
        journal = open_locked(path)
    except OSError as exc:
        answers.send(f"err cannot create the sent journal {path}: {exc}".encode())
        return 1
    answers.send(b"ready")
    connections: dict[bytes, int] = {}
    while True:
        message, fds, _flags, _address = socket.recv_fds(requests, 65536, 1)
        if not message:
            return 0
        answer = handle(message, fds, journal, connections)
        if answer:
            try:
                answers.send(answer)
            except OSError:
                pass  # the daemon is gone: the journal is what it leaves behind


def open_locked(path: str) -> int:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC
    fd = os.open(path, flags, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    # The new name must survive a power cut as well as the lines written into it.
    directory = os.open(os.path.dirname(path) or ".", os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return fd


def handle(message: bytes, fds: list[int], journal: int, connections: dict[bytes, int]) -> bytes:
    kind, _, rest = message.partition(b" ")
    if kind == b"open":
        connections[rest] = fds[0]
    elif kind == b"close":
        fd = connections.pop(rest, None)
        if fd is not None:
            os.close(fd)
    elif kind == b"dot":
        connection, _, line = rest.partition(b" ")
        return dot(connections.get(connection), line, journal)
    elif kind == b"line":
        sync, _, line = rest.partition(b" ")
        return append(journal, line, sync == b"1")
    elif kind == b"truncate":
        os.ftruncate(journal, 0)
    elif kind == b"ping":
        return b"pong"
    return b""


def dot(fd: int | None, line: bytes, journal: int) -> bytes:
    message_id = json.loads(line)[1].encode()
    try:
        if fd is None:
            raise OSError("unknown connection")
        send_all(fd, FINAL_DOT)
    except OSError as exc:
        # The dot did not go: no line, and the daemon learns that the relay has no mail.
        return b"unsent " + message_id + b" " + str(exc).encode()
    # Straight after the dot, with nothing in between; a kill of the daemon cannot stop it.
    error = append(journal, line, True)
    return error or b"sent " + message_id


def send_all(fd: int, data: bytes) -> None:
    """send(2) on the daemon's non-blocking socket, waiting for room when it is full."""
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view) :]
        except BlockingIOError:
            if not select.select([], [fd], [], SEND_TIMEOUT)[1]:
                raise OSError("the relay stopped reading") from None


def append(journal: int, line: bytes, sync: bool) -> bytes:
    try:
        # One write() per line with O_APPEND: a crash leaves at most a torn last line.
        os.write(journal, line)
        if sync:
            os.fdatasync(journal)
    except OSError as exc:
        return f"err cannot write the sent journal: {exc}".encode()
    return b""


if __name__ == "__main__":
    sys.exit(main())
