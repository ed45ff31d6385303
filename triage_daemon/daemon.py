"""The service: every mailbox watched at once, the outbox drained, a clean stop on SIGTERM.

Mailboxes are synchronous IMAP sessions, each in its own thread; the outbox is
sent from the event loop with aiosmtplib. One failing mailbox is retried with
backoff (poll.py's watcher) and never holds the others up.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from .check import startup_check
from .clock import Clock
from .config import Settings
from .db import Database, DatabaseUnavailable
from .errors import MailboxError
from .journal import SentJournal
from .outbox import Outbox
from .pipeline import Outcome, Pipeline
from .poll import MailboxPoller, PollResult
from .send import Sender

log = logging.getLogger(__name__)

OUTBOX_TICK = 5.0


@dataclass
class OnceReport:
    polls: list[PollResult]
    errors: dict[str, str]
    sent: int


class Daemon:
    """Builds the parts from the settings; ``run_once`` for a single pass, ``serve`` for ever."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock | None = None,
        classifier=None,
        on_outcome: Callable[[str, int, Outcome], None] | None = None,
    ):
        self.settings = settings
        self.clock = clock or Clock()
        self.db = Database(settings.database)
        self.db.migrate()
        # Templates, model and rules together: every problem reported at once.
        parts = startup_check(settings, classifier)
        self.replies, self.classifier, self.rules = parts.replies, parts.classifier, parts.rules
        for warning in parts.warnings:
            log.warning("%s", warning)
        self.outbox = Outbox(self.db, settings.smtp, self.clock)
        self.sender = Sender(self.outbox, settings.smtp, SentJournal(settings.journal_dir))
        self._outbox_wake: Callable[[], None] | None = None
        self.pipeline = Pipeline(
            settings,
            self.db,
            self.replies,
            self.classifier,
            self.clock,
            on_outbox=self._wake_outbox,
            rules=self.rules,
        )
        self.pollers = [
            MailboxPoller(
                box,
                self.pipeline,
                self.db,
                self.clock,
                settings.daemon.batch_size,
                on_outcome,
                max_message_bytes=settings.daemon.max_message_bytes,
            )
            for box in settings.mailboxes
        ]
        self.stop_event = threading.Event()

    def _wake_outbox(self) -> None:
        if self._outbox_wake is not None:
            self._outbox_wake()

    # -- one pass -------------------------------------------------------------

    def run_once(self) -> OnceReport:
        """Poll every mailbox once (concurrently) while sending replies; then drain the outbox."""
        return asyncio.run(self._run_once())

    async def _run_once(self) -> OnceReport:
        # Before anything is sent: what a killed run handed to the relay is marked sent.
        await asyncio.to_thread(self.sender.recover)
        loop = asyncio.get_running_loop()
        done = asyncio.Event()
        wake = asyncio.Event()
        self._outbox_wake = lambda: loop.call_soon_threadsafe(wake.set)
        sending = asyncio.create_task(self._send_until(done, wake))
        errors: dict[str, str] = {}
        with ThreadPoolExecutor(
            max_workers=len(self.pollers), thread_name_prefix="mailbox"
        ) as pool:
            futures = [
                loop.run_in_executor(pool, self._poll_safely, p, errors) for p in self.pollers
            ]
            polls = [r for r in await asyncio.gather(*futures) if r is not None]
        done.set()
        wake.set()
        sent = await sending
        self._outbox_wake = None
        for poller in self.pollers:
            poller.close()
        return OnceReport(polls, errors, sent)

    def _poll_safely(self, poller: MailboxPoller, errors: dict[str, str]) -> PollResult | None:
        try:
            return poller.poll_once(self.stop_event)
        except (MailboxError, DatabaseUnavailable) as exc:
            errors[poller.box.name] = str(exc)
            return None

    async def _send_until(self, done: asyncio.Event, wake: asyncio.Event) -> int:
        sent = 0
        while True:
            finished = done.is_set()
            # Cleared before draining: a wake-up that comes during the drain is kept.
            wake.clear()
            sent += await self.sender.drain()
            if finished:
                return sent
            try:
                await asyncio.wait_for(wake.wait(), timeout=0.5)
            except TimeoutError:
                pass

    # -- the service ----------------------------------------------------------

    def serve(self) -> None:
        """Run until SIGTERM or SIGINT; the message in hand is finished before stopping."""
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(sig, self.stop)
            except (NotImplementedError, RuntimeError):  # not the main thread
                pass
        # Before anything is sent: what a killed run handed to the relay is marked sent.
        await asyncio.to_thread(self.sender.recover)
        wake = asyncio.Event()
        self._outbox_wake = lambda: loop.call_soon_threadsafe(wake.set)
        stopping = asyncio.Event()
        sender = asyncio.create_task(self._send_forever(stopping, wake))
        # The watchers never return until stopped: they get threads of their own, or they
        # would fill the default pool that asyncio.to_thread (the outbox) needs.
        with ThreadPoolExecutor(
            max_workers=len(self.pollers), thread_name_prefix="mailbox"
        ) as pool:
            await asyncio.gather(
                *(loop.run_in_executor(pool, self._watch, p) for p in self.pollers)
            )
        stopping.set()
        wake.set()
        await sender
        self.sender.close()
        log.info("stopped cleanly")

    def stop(self) -> None:
        """Ask the service to stop (thread-safe, signal-safe)."""
        log.info("stop requested: finishing the message in hand")
        self.stop_event.set()

    def _watch(self, poller: MailboxPoller) -> None:
        """One mailbox for ever: poll, IDLE (or sleep) until mail comes; back off on errors."""
        daemon = self.settings.daemon
        poller.watch(self.stop_event, daemon.idle_seconds, daemon.poll_seconds)

    async def _send_forever(self, stopping: asyncio.Event, wake: asyncio.Event) -> None:
        while not stopping.is_set():
            wake.clear()  # before draining, so a wake-up during the drain is kept
            try:
                await self.sender.drain()
            except Exception:
                log.exception("outbox: unexpected error")
            try:
                await asyncio.wait_for(wake.wait(), timeout=OUTBOX_TICK)
            except TimeoutError:
                pass
