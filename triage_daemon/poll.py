"""One mailbox's poll: new UIDs -> the pipeline -> move each mail to its outcome folder.

The mailbox's UIDVALIDITY and the highest UID handled are kept in the database. A
mail is moved only after its outcome was committed; a mail whose move did not
happen (a crash, a dropped connection) is moved on the next poll. When UIDVALIDITY
changes every mail still in INBOX is looked at again, and the pipeline recognises
the ones already handled by their Message-ID.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import update
from sqlmodel import select

from .clock import Clock
from .config import MailboxSettings
from .db import Database
from .errors import MailboxError
from .fetch import MailboxConnection, batches
from .pipeline import Incoming, Outcome, Pipeline
from .tables import MailboxState, MessageRecord

log = logging.getLogger(__name__)


@dataclass
class PollResult:
    mailbox: str
    outcomes: list[Outcome] = field(default_factory=list)
    stopped: bool = False


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
    ):
        self.box = box
        self.pipeline = pipeline
        self.db = db
        self.clock = clock
        self.batch_size = batch_size
        self.on_outcome = on_outcome
        self.connection = MailboxConnection(box)

    def poll_once(self, stop: threading.Event | None = None) -> PollResult:
        """Process every new mail in INBOX, then return. Raises MailboxError on IMAP trouble
        (the connection is then closed, to be opened afresh next time)."""
        stop = stop or threading.Event()
        result = PollResult(self.box.name)
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
                self._save(last_uid=batch[-1], backlog=max(0, len(uids) - len(result.outcomes)))
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
        fetched = self.connection.fetch(batch)
        by_folder: dict[str, list[int]] = defaultdict(list)
        for uid in batch:
            raw = fetched.get(uid)
            if raw is None:  # expunged by someone else since the search
                continue
            outcome = self.pipeline.process(Incoming(self.box.name, uidvalidity, uid, raw))
            result.outcomes.append(outcome)
            by_folder[outcome.folder].append(uid)
            if self.on_outcome:
                self.on_outcome(self.box.name, uid, outcome)
        for folder, uids in by_folder.items():
            self.connection.move(uids, folder)
            self._mark_moved(uidvalidity, uids)

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
        log.warning("%s", message)
        with self.db.session() as session:
            state = session.get(MailboxState, self.box.name) or MailboxState(name=self.box.name)
            state.last_error = message
            state.error_count += 1
            state.last_poll = self.clock.now()
            session.add(state)

    def close(self) -> None:
        self.connection.close()
