"""fetch.py on a real Dovecot: IDLE ends at once when the connection dies, sizes come first.

The faults are made by FaultProxy, a TCP proxy between the client and the real Dovecot
that can close the connection, reset it, speak a line for the server, or freeze (pass
nothing either way while keeping both sockets open: a half-open connection as the
client sees it).
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from collections.abc import Iterator

import pytest
from conftest import MailServers
from imapclient import IMAPClient
from imapclient.exceptions import LoginError
from mailfactory import request

from triage_daemon.config import IMAPSettings, MailboxSettings
from triage_daemon.errors import MailboxError
from triage_daemon.fetch import ConnectionLost, MailboxConnection, connection_failed

pytestmark = [pytest.mark.e2e, pytest.mark.chaos]

USER = "pekes1"


class FaultProxy:
    """A loopback TCP proxy to ``target_port`` whose connections can be made to fail."""

    def __init__(self, target_port: int):
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.frozen = threading.Event()
        self.clients: list[socket.socket] = []
        self.upstreams: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _address = self.listener.accept()
            except OSError:  # the listener was closed
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            self.clients.append(client)
            self.upstreams.append(upstream)
            threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                # Frozen: hold what came, forward nothing, keep both sockets open.
                while self.frozen.is_set():
                    time.sleep(0.05)
                target.sendall(data)

    def say(self, line: bytes) -> None:
        """Send ``line`` to every client as if the server had sent it."""
        for client in self.clients:
            with contextlib.suppress(OSError):  # closed already
                client.sendall(line)

    def close_clients(self, reset: bool = False) -> None:
        """Close the client side: a FIN, or with ``reset`` an RST (SO_LINGER 0)."""
        for client in self.clients:
            with contextlib.suppress(OSError):  # closed already
                if reset:
                    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                # Wakes the pump blocked in recv(): the socket is released, and the FIN
                # or RST sent, only once no thread uses it.
                client.shutdown(socket.SHUT_RD if reset else socket.SHUT_RDWR)
                client.close()

    def close(self) -> None:
        self.frozen.clear()
        self.listener.close()
        for sock in self.clients + self.upstreams:
            with contextlib.suppress(OSError):
                sock.close()


@pytest.fixture
def servers(fresh_mail_servers: MailServers) -> MailServers:
    # INBOX must exist as a Maildir before the first SELECT: log in once.
    fresh_mail_servers.dovecot.count(USER)
    return fresh_mail_servers


@pytest.fixture
def proxy(servers: MailServers) -> Iterator[FaultProxy]:
    proxy = FaultProxy(servers.imap_port)
    yield proxy
    proxy.close()


def mailbox(port: int, password: str, timeout: float = 5.0) -> MailboxSettings:
    return MailboxSettings(
        name=USER,
        address=f"helpdesk@{USER}.att.example",
        imap=IMAPSettings(
            host="127.0.0.1", port=port, user=USER, password=password, tls="none", timeout=timeout
        ),
    )


@pytest.fixture
def connect(servers: MailServers):
    opened: list[MailboxConnection] = []

    def connect(port: int | None = None, timeout: float = 5.0) -> MailboxConnection:
        connection = MailboxConnection(
            mailbox(port or servers.imap_port, servers.password, timeout)
        )
        connection.open()
        opened.append(connection)
        return connection

    yield connect
    for connection in opened:
        connection.close()


def timed_wait(
    connection: MailboxConnection, seconds: float
) -> tuple[BaseException | bool, float, float]:
    """Run ``connection.wait``; return its result or exception, wall and CPU seconds."""
    start, cpu = time.monotonic(), time.process_time()
    try:
        outcome: BaseException | bool = connection.wait(seconds, threading.Event())
    except MailboxError as exc:
        outcome = exc
    return outcome, time.monotonic() - start, time.process_time() - cpu


def later(seconds: float, action) -> None:
    timer = threading.Timer(seconds, action)
    timer.daemon = True
    timer.start()


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param(lambda p: p.close_clients(), id="closed"),
        pytest.param(lambda p: p.close_clients(reset=True), id="reset"),
        pytest.param(lambda p: p.say(b"* BYE Server shutting down.\r\n"), id="bye"),
    ],
)
def test_idle_ends_at_once_when_the_connection_dies(proxy, connect, fault):
    connection = connect(proxy.port)
    later(0.5, lambda: fault(proxy))
    outcome, wall, cpu = timed_wait(connection, 30)
    assert isinstance(outcome, ConnectionLost), outcome
    # The fault came after 0.5 s; the IDLE period was 30 s.
    assert wall < 3, f"noticed after {wall:.1f} s"
    # No busy loop on the dead socket (the bug used a full core until the deadline).
    assert cpu < 0.5, f"{cpu:.2f} s of CPU"
    assert connection.broken


def test_bye_is_reported_with_the_servers_words(proxy, connect):
    connection = connect(proxy.port)
    later(0.3, lambda: proxy.say(b"* BYE [UNAVAILABLE] going down for maintenance\r\n"))
    outcome, _wall, _cpu = timed_wait(connection, 30)
    assert isinstance(outcome, ConnectionLost)
    assert "going down for maintenance" in str(outcome)


def test_half_open_connection_is_caught_when_idle_is_renewed(proxy, connect):
    # Read timeout 1 s, IDLE renewed after 2 s: the frozen connection cannot answer DONE.
    connection = connect(proxy.port, timeout=1.0)
    later(0.3, proxy.frozen.set)
    outcome, wall, cpu = timed_wait(connection, 2)
    assert isinstance(outcome, ConnectionLost), outcome
    assert 1.5 < wall < 6, f"noticed after {wall:.1f} s"
    assert cpu < 0.5
    start = time.monotonic()
    connection.close()
    # Closing a broken connection does not wait for an answer to LOGOUT.
    assert time.monotonic() - start < 0.5


def test_new_mail_during_idle_ends_the_wait(servers, connect):
    connection = connect()
    later(0.5, lambda: servers.dovecot.append(USER, request()))
    outcome, wall, _cpu = timed_wait(connection, 30)
    assert outcome is True
    assert wall < 5
    assert len(connection.new_uids(0)) == 1


def test_stop_ends_idle_and_the_session_goes_on(servers, connect):
    connection = connect()
    stop = threading.Event()
    later(0.5, stop.set)
    start = time.monotonic()
    assert connection.wait(30, stop) is False
    assert time.monotonic() - start < 3
    servers.dovecot.append(USER, request())
    assert len(connection.new_uids(0)) == 1


def test_quiet_idle_renews_and_the_session_goes_on(servers, connect):
    connection = connect()
    outcome, wall, cpu = timed_wait(connection, 1.5)
    assert outcome is False
    assert 1.4 < wall < 4
    assert cpu < 0.3
    assert connection.new_uids(0) == []


def test_unreachable_server_is_a_lost_connection(servers):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens here once closed
    connection = MailboxConnection(mailbox(port, servers.password))
    with pytest.raises(ConnectionLost, match="cannot open"):
        connection.open()


def test_wrong_password_is_not_a_lost_connection(servers):
    connection = MailboxConnection(mailbox(servers.imap_port, "wrong password"))
    with pytest.raises(MailboxError) as raised:
        connection.open()
    assert not isinstance(raised.value, ConnectionLost)
    assert "AUTHENTICATIONFAILED" in str(raised.value)


def test_login_cut_short_by_a_dropped_connection_is_a_lost_connection(proxy):
    client = IMAPClient("127.0.0.1", port=proxy.port, ssl=False, timeout=5)
    proxy.close_clients()
    time.sleep(0.2)
    # imapclient turns an end of file during LOGIN into LoginError; a reset stays OSError.
    with pytest.raises((LoginError, OSError)) as raised:
        client.login(USER, "whatever")
    assert connection_failed(raised.value)
    assert connection_failed(LoginError("NO [UNAVAILABLE] Temporary authentication failure"))
    assert not connection_failed(LoginError("NO [AUTHENTICATIONFAILED] Authentication failed."))


def test_sizes_and_headers_without_the_body(servers, connect):
    big = request(body="Λίγα λόγια.\n" + "x" * 200_000 + "\n", subject="Μεγάλο")
    servers.dovecot.append_many(USER, [request(), big])
    connection = connect()
    first, second = connection.new_uids(0)
    sizes = connection.sizes([first, second, second + 100])
    assert set(sizes) == {first, second}
    assert sizes[second] > 200_000 > sizes[first]
    headers = connection.fetch_headers([second], limit=4096)
    header = headers[second]
    assert b"Subject:" in header and b"x" * 100 not in header
    assert len(header) <= 4096
    # Nothing was marked read by looking.
    with servers.dovecot.connect(USER) as client:
        client.select_folder("INBOX", readonly=True)
        assert all(b"\\Seen" not in f for f in client.get_flags([first, second]).values())


def test_moves_and_polls_leave_no_unread_responses_behind(servers, connect):
    servers.dovecot.append_many(USER, [request(subject=f"Αρ. {n}") for n in range(30)])
    connection = connect()
    uids = connection.new_uids(0)
    for start in range(0, 30, 10):
        connection.move(uids[start : start + 10], "Triage/Tickets")
        connection.new_uids(uids[-1])
    # imaplib keeps every untagged response nobody reads: 30 EXPUNGEs here, one per mail
    # moved for the life of the connection, had they not been dropped.
    pending = connection.client._imap.untagged_responses
    assert not {"EXPUNGE", "FETCH", "RECENT", "COPYUID"} & set(pending)
    assert servers.dovecot.count(USER, "Triage/Tickets") == 30
