"""poll.py's watcher: how soon it tries again after each kind of failure, and what it logs.

The pauses are recorded instead of slept (``watch`` takes the pause function), so these
tests take no time; the failures are real: a port nobody listens on, a wrong password
on the real Dovecot.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable

import pytest

from triage_daemon.clock import Clock
from triage_daemon.config import IMAPSettings, MailboxSettings
from triage_daemon.errors import MailboxError
from triage_daemon.fetch import ConnectionLost
from triage_daemon.poll import RECONNECT, RETRY, Backoff, MailboxPoller, Outage
from triage_daemon.tables import MailboxState


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def poller_for(database, port: int, password: str = "secret") -> MailboxPoller:
    box = MailboxSettings(
        name="pekes1",
        address="helpdesk@pekes1.att.example",
        imap=IMAPSettings(
            host="127.0.0.1", port=port, user="pekes1", password=password, tls="none", timeout=5
        ),
    )
    return MailboxPoller(box, pipeline=None, db=database, clock=Clock())


def record_pauses(count: int) -> tuple[list[float], threading.Event, Callable]:
    """A pause function that records each pause and sets ``stop`` after ``count``."""
    pauses: list[float] = []
    stop = threading.Event()

    def pause(seconds: float) -> None:
        pauses.append(seconds)
        if len(pauses) >= count:
            stop.set()

    return pauses, stop, pause


def within(pause: float, nominal: float) -> bool:
    return 0.75 * nominal - 1e-9 <= pause <= nominal + 1e-9


def test_backoff_doubles_to_its_cap_with_jitter_and_resets():
    backoff = Backoff(1.0, 5.0)
    delays = [backoff.next() for _ in range(6)]
    assert all(within(d, n) for d, n in zip(delays, [1, 2, 4, 5, 5, 5], strict=True)), delays
    backoff.reset()
    assert within(backoff.next(), 1)


def test_backoff_survives_a_very_long_outage():
    backoff = Backoff(5.0, 300.0, failures=5000)
    assert within(backoff.next(), 300)


def test_unreachable_server_is_retried_within_seconds(database):
    poller = poller_for(database, closed_port())
    pauses, stop, pause = record_pauses(8)
    poller.watch(stop, idle_seconds=60, poll_seconds=60, pause=pause)
    first, cap = RECONNECT
    nominal = [min(first * 2**n, cap) for n in range(8)]
    assert all(within(p, n) for p, n in zip(pauses, nominal, strict=True)), pauses
    # Never longer than the cap: a server that comes back is found within seconds.
    assert max(pauses) <= cap
    with database.session() as session:
        state = session.get(MailboxState, "pekes1")
    assert state.error_count == 8 and "cannot open" in state.last_error


@pytest.mark.e2e
def test_refused_login_is_retried_less_and_less_often(fresh_mail_servers, database):
    poller = poller_for(database, fresh_mail_servers.imap_port, password="wrong password")
    pauses, stop, pause = record_pauses(5)
    poller.watch(stop, idle_seconds=60, poll_seconds=60, pause=pause)
    first, cap = RETRY
    nominal = [min(first * 2**n, cap) for n in range(5)]
    assert all(within(p, n) for p, n in zip(pauses, nominal, strict=True)), pauses


def test_an_outage_is_logged_once_then_its_end(caplog):
    caplog.set_level(logging.DEBUG, logger="triage_daemon.poll")
    outage = Outage("pekes1")
    for _ in range(5):
        outage.failed("pekes1: cannot open pekes1@127.0.0.1:1: ConnectionRefusedError", 1.0)
    outage.over()
    levels = [r.levelname for r in caplog.records]
    assert levels == ["WARNING", "DEBUG", "DEBUG", "DEBUG", "DEBUG", "INFO"]
    assert "after 5 failed attempts" in caplog.records[-1].getMessage()
    caplog.clear()
    outage.over()  # nothing failed since: nothing to say
    assert caplog.records == []


def test_a_long_outage_is_said_again_every_few_minutes(caplog, monkeypatch):
    caplog.set_level(logging.DEBUG, logger="triage_daemon.poll")
    now = [1000.0]
    monkeypatch.setattr("triage_daemon.poll.time.monotonic", lambda: now[0])
    outage = Outage("pekes1")
    for _ in range(130):  # 130 failures, 5 s apart: 650 s
        outage.failed("pekes1: down", 5.0)
        now[0] += 5
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 3  # at 0 s, 300 s and 600 s


def test_an_unexpected_error_is_logged_and_retried_like_a_refusal(database, caplog):
    poller = poller_for(database, closed_port())
    calls = []

    def broken_poll(stop=None, keep_outcomes=True):
        calls.append(1)
        raise RuntimeError("a bug in a stage")

    poller.poll_once = broken_poll
    pauses, stop, pause = record_pauses(2)
    poller.watch(stop, idle_seconds=60, poll_seconds=60, pause=pause)
    assert len(calls) == 2
    assert within(pauses[0], RETRY[0]) and within(pauses[1], 2 * RETRY[0])
    assert "a bug in a stage" in caplog.text


def test_a_lost_connection_after_success_starts_the_backoff_afresh(database):
    poller = poller_for(database, closed_port())
    script = iter([ConnectionLost("lost"), ConnectionLost("lost"), None, ConnectionLost("lost")])

    def scripted_poll(stop=None, keep_outcomes=True):
        step = next(script)
        if step is not None:
            raise step

    poller.poll_once = scripted_poll

    # After the success the watcher waits for mail: make that wait fail as a lost
    # connection would, so the next pause shows whether the backoff was reset.
    def failing_wait(seconds, stop):
        raise MailboxError("pekes1: IDLE failed: NO")

    poller.connection.wait = failing_wait
    pauses, stop, pause = record_pauses(4)
    poller.watch(stop, idle_seconds=60, poll_seconds=60, pause=pause)
    assert within(pauses[0], 1) and within(pauses[1], 2)
    # The success reset both backoffs: the MailboxError from wait starts RETRY at 5 s,
    # and the next lost connection RECONNECT at 1 s.
    assert within(pauses[2], RETRY[0]) and within(pauses[3], 1)
