"""One mailbox: its poll (new UIDs -> the pipeline -> each mail to its outcome folder)
and the watcher that polls, waits for new mail and reconnects after a failure.

The mailbox's UIDVALIDITY and the highest UID handled are kept in the database. A
mail is moved only after its outcome was committed; a mail whose move did not
happen (a crash, a dropped connection) is moved on the next poll. When UIDVALIDITY
changes every mail still in INBOX is looked at again, and the pipeline recognises
the ones already handled by their Message-ID.

A batch's sizes are asked first (RFC822.SIZE): a mail over the size limit is
quarantined from its header alone and never downloaded, and the rest is fetched in
chunks of at most ``batch_bytes``, so that memory stays bounded whatever the mail.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from sqlalchemy import update
from sqlmodel import select

from .clock import Clock
from .config import DaemonSettings, MailboxSettings
from .db import Database, DatabaseUnavailable
from .errors import MailboxError
from .fetch import HEADER_BYTES, ConnectionLost, MailboxConnection, batches
from .pipeline import Incoming, Outcome, Pipeline
from .tables import MailboxState, MessageRecord

log = logging.getLogger(__name__)

# The bytes one fetch may bring at most: a few mails with attachments, never a hundred.
BATCH_BYTES = 8 * 1024 * 1024
MAX_MESSAGE_BYTES = DaemonSettings.model_fields["max_message_bytes"].default
# Pauses between attempts, (first, cap) in seconds. A lost connection is tried again
# soon, so that mail is answered within seconds of the server's return; an error that
# will not go away by itself (a refused login, a refused command) is tried less often.
RECONNECT = (1.0, 5.0)
RETRY = (5.0, 300.0)
# While a mailbox keeps failing, it is said again at WARNING at most this often.
REPEAT_WARNING_SECONDS = 300.0


@dataclass
class PollResult:
    """What one poll did: ``handled`` mails, and their outcomes unless not kept."""

    mailbox: str
    outcomes: list[Outcome] = field(default_factory=list)
    stopped: bool = False
    handled: int = 0
    keep_outcomes: bool = True

    def add(self, outcome: Outcome) -> None:
        self.handled += 1
        if self.keep_outcomes:
            self.outcomes.append(outcome)


class MailboxPoller:
    """Polls one mailbox; owns its IMAP connection. Used from a single thread."""

    def __init__(
        self,
        box: MailboxSettings,
        pipeline: Pipeline,
        db: Database,
        clock: Clock,
        batch_size: int = 100,
        on_outcome=None,
        *,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
        batch_bytes: int = BATCH_BYTES,
    ):
        self.box = box
        self.pipeline = pipeline
        self.db = db
        self.clock = clock
        self.batch_size = batch_size
        self.on_outcome = on_outcome
        self.max_message_bytes = max_message_bytes
        self.batch_bytes = batch_bytes
        self.connection = MailboxConnection(box)

    def poll_once(
        self, stop: threading.Event | None = None, *, keep_outcomes: bool = True
    ) -> PollResult:
        """Process every new mail in INBOX, then return. Raises MailboxError on IMAP trouble
        (the connection is then closed, to be opened afresh next time). Without
        ``keep_outcomes`` the result only counts them: a backlog of 20,000 mails would
        otherwise hold 20,000 outcomes until the poll ends."""
        stop = stop or threading.Event()
        result = PollResult(self.box.name, keep_outcomes=keep_outcomes)
        try:
            if self.connection.client is None:
                self.connection.open()
            state = self._state()
            self._retry_moves(state.uidvalidity)
            uids = self.connection.new_uids(state.last_uid)
            self._save(backlog=len(uids))
            for batch in batches(uids, self.batch_size):
                if stop.is_set():
                    result.stopped = True
                    break
                self._process_batch(batch, state.uidvalidity, result)
                state.last_uid = batch[-1]
                self._save(last_uid=batch[-1], backlog=max(0, len(uids) - result.handled))
            now = self.clock.now()
            self._save(
                last_poll=now,
                last_success=now,
                error_count=0,
                last_error=None,
                backlog=0 if not result.stopped else None,
            )
        except MailboxError as exc:
            self.connection.close()
            self._record_error(str(exc))
            raise
        return result

    def _state(self) -> MailboxState:
        """The stored state, reset to UID 0 when the server's UIDVALIDITY changed."""
        uidvalidity = self.connection.uidvalidity
        with self.db.session() as session:
            state = session.get(MailboxState, self.box.name)
            if state is None:
                state = MailboxState(name=self.box.name, uidvalidity=uidvalidity)
            elif state.uidvalidity is None:
                state.uidvalidity = uidvalidity
            elif state.uidvalidity != uidvalidity:
                log.warning(
                    "%s: UIDVALIDITY changed from %s to %s: looking at all of INBOX again",
                    self.box.name,
                    state.uidvalidity,
                    uidvalidity,
                )
                state.uidvalidity, state.last_uid = uidvalidity, 0
            session.add(state)
        return state

    def _process_batch(self, batch: list[int], uidvalidity: int, result: PollResult) -> None:
        sizes = self.connection.sizes(batch)
        for chunk in chunks(batch, sizes, self.batch_bytes, self.max_message_bytes):
            self._process_chunk(chunk, sizes, uidvalidity, result)

    def _process_chunk(
        self, chunk: list[int], sizes: dict[int, int], uidvalidity: int, result: PollResult
    ) -> None:
        oversized = {uid for uid in chunk if sizes[uid] > self.max_message_bytes}
        headers = self.connection.fetch_headers(sorted(oversized))
        raws = self.connection.fetch([uid for uid in chunk if uid not in oversized])
        by_folder: dict[str, list[int]] = defaultdict(list)
        for uid in chunk:
            outcome = self._handle(uid, uidvalidity, raws.pop(uid, None), headers.get(uid), sizes)
            if outcome is None:  # expunged by someone else since the search
                continue
            result.add(outcome)
            by_folder[outcome.folder].append(uid)
            if self.on_outcome:
                self.on_outcome(self.box.name, uid, outcome)
        for folder, uids in by_folder.items():
            self.connection.move(uids, folder)
            self._mark_moved(uidvalidity, uids)

    def _handle(
        self,
        uid: int,
        uidvalidity: int,
        raw: bytes | None,
        header: bytes | None,
        sizes: dict[int, int],
    ) -> Outcome | None:
        """The pipeline's outcome for one mail; an oversized one is quarantined from its
        header (``raw`` is None for it: its body was never fetched)."""
        if header is not None:
            reason = (
                f"message is {sizes[uid]} bytes (RFC822.SIZE), over the limit of "
                f"{self.max_message_bytes}: set aside from its header, not downloaded"
            )
            return self.pipeline.quarantine(
                Incoming(self.box.name, uidvalidity, uid, header), reason
            )
        if raw is None:
            return None
        return self.pipeline.process(Incoming(self.box.name, uidvalidity, uid, raw))

    def _retry_moves(self, uidvalidity: int | None) -> None:
        """Move the mail whose outcome was committed but whose move never happened."""
        with self.db.session() as session:
            rows = session.exec(
                select(MessageRecord.uid, MessageRecord.folder).where(
                    MessageRecord.mailbox == self.box.name,
                    MessageRecord.uidvalidity == uidvalidity,
                    MessageRecord.moved == False,  # noqa: E712 (SQL expression)
                )
            ).all()
        by_folder: dict[str, list[int]] = defaultdict(list)
        for uid, folder in rows:
            by_folder[folder].append(uid)
        for folder, uids in by_folder.items():
            log.info(
                "%s: moving %d already-processed mails to %s", self.box.name, len(uids), folder
            )
            self.connection.move(uids, folder)
            self._mark_moved(uidvalidity, uids)

    def _mark_moved(self, uidvalidity: int | None, uids: list[int]) -> None:
        with self.db.session() as session:
            session.exec(
                update(MessageRecord)
                .where(
                    MessageRecord.mailbox == self.box.name,
                    MessageRecord.uidvalidity == uidvalidity,
                    MessageRecord.uid.in_(uids),
                )
                .values(moved=True)
            )

    def _save(self, **values) -> None:
        values = {k: v for k, v in values.items() if v is not None or k == "last_error"}
        with self.db.session() as session:
            state = session.get(MailboxState, self.box.name) or MailboxState(name=self.box.name)
            for key, value in values.items():
                setattr(state, key, value)
            session.add(state)

    def _record_error(self, message: str) -> None:
        # Said by the caller (the watcher, or run --once's report), once per outage.
        log.debug("%s", message)
        with self.db.session() as session:
            state = session.get(MailboxState, self.box.name) or MailboxState(name=self.box.name)
            state.last_error = message
            state.error_count += 1
            state.last_poll = self.clock.now()
            session.add(state)

    def close(self) -> None:
        self.connection.close()

    # -- the watcher ------------------------------------------------------------------

    def watch(
        self,
        stop: threading.Event,
        idle_seconds: float,
        poll_seconds: float,
        pause: Callable[[float], object] | None = None,
    ) -> None:
        """Until ``stop`` is set: poll, then wait for new mail (IDLE for ``idle_seconds``,
        else ``poll_seconds``). After a failure, ``pause`` (``stop.wait``) and go again:
        1 s doubling to 5 s when the connection was lost or refused, 5 s doubling to
        5 minutes for any other error, so a lost server is found again within seconds of
        its return and a refused login is not hammered."""
        pause = pause or stop.wait
        reconnect, retry = Backoff(*RECONNECT), Backoff(*RETRY)
        outage = Outage(self.box.name)
        while not stop.is_set():
            try:
                self.poll_once(stop, keep_outcomes=False)
                outage.over()
                reconnect.reset()
                retry.reset()
                if not stop.is_set():
                    seconds = idle_seconds if self.connection.can_idle else poll_seconds
                    self.connection.wait(seconds, stop)
            except ConnectionLost as exc:
                self.close()
                pause(outage.failed(str(exc), reconnect.next()))
            except (MailboxError, DatabaseUnavailable) as exc:
                # A database outage is not this mailbox's fault, but it is waited out the
                # same way: nothing was moved, the mail is processed once it is back.
                self.close()
                pause(outage.failed(str(exc), retry.next()))
            except Exception as exc:
                log.exception("%s: unexpected error", self.box.name)
                self.close()
                pause(outage.failed(f"{self.box.name}: unexpected error: {exc!r}", retry.next()))
        self.close()


@dataclass
class Backoff:
    """Pauses between attempts, doubling from ``first`` to ``cap``; each is drawn between
    three quarters of it and all of it, so that six mailboxes do not retry in step."""

    first: float
    cap: float
    failures: int = 0

    def next(self) -> float:
        # The exponent stops growing long before the cap would: 2 ** 1100 is no float.
        delay = min(self.first * 2 ** min(self.failures, 30), self.cap)
        self.failures += 1
        return delay * random.uniform(0.75, 1.0)

    def reset(self) -> None:
        self.failures = 0


@dataclass
class Outage:
    """A mailbox's run of failures, said at WARNING when it starts and every few minutes
    while it lasts (not on every attempt), and at INFO when it ends."""

    mailbox: str
    failures: int = 0
    since: float = 0.0
    warned: float = 0.0

    def failed(self, error: str, delay: float) -> float:
        """Note a failure, log it if due; returns ``delay`` for the caller's pause."""
        now = time.monotonic()
        if not self.failures:
            self.since = now
        self.failures += 1
        if self.failures == 1 or now - self.warned >= REPEAT_WARNING_SECONDS:
            self.warned = now
            log.warning(
                "%s (failure %d in %.0f s); retrying in %.1f s",
                error,
                self.failures,
                now - self.since,
                delay,
            )
        else:
            log.debug("%s; retrying in %.1f s", error, delay)
        return delay

    def over(self) -> None:
        if self.failures:
            log.info(
                "%s: working again after %d failed attempts in %.0f s",
                self.mailbox,
                self.failures,
                time.monotonic() - self.since,
            )
        self.failures = 0


def chunks(uids: list[int], sizes: dict[int, int], budget: int, limit: int) -> Iterator[list[int]]:
    """The UIDs of ``uids`` still present (those ``sizes`` knows), in order, cut where the
    bytes to fetch would pass ``budget``. A mail over ``limit`` costs only its header; one
    bigger than ``budget`` goes alone."""
    chunk: list[int] = []
    total = 0
    for uid in uids:
        if uid not in sizes:
            continue
        cost = min(sizes[uid], HEADER_BYTES) if sizes[uid] > limit else sizes[uid]
        if chunk and total + cost > budget:
            yield chunk
            chunk, total = [], 0
        chunk.append(uid)
        total += cost
    if chunk:
        yield chunk
