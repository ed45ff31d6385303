"""The order of a mail's steps, per kind of mail, and the loop that runs them.

Everything a message causes (its record, its ticket and events, its reply in the
outbox) is written in one database transaction, so a crash at any point leaves
either all of it or none of it; the mail is moved on the IMAP server only after
that commit (poll.py), and a mail processed again is recognised by its mailbox
and UID, or by its Message-ID, and never makes a second ticket or reply.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable

from sqlalchemy.exc import IntegrityError

from . import track
from .clock import Clock
from .config import Settings
from .context import Incoming, MailContext, Outcome, ParsedMail
from .db import Database, DatabaseUnavailable
from .errors import IgnoreMessage, ParseError, QuarantineMessage
from .parse.addresses import normalise
from .parse.message import parse_message
from .reply.build import Replies
from .rules import Rules
from .steps import Classifier, Deps, build_steps
from .steps.record import record, record_item, repeated
from .tables import Disposition

__all__ = ["FILTERS", "STEPS", "Incoming", "Outcome", "Pipeline"]

log = logging.getLogger(__name__)

# The order of the automatic-mail filters (the "automatic-mail" step). Reordering is a
# one-line change.
FILTERS: tuple[str, ...] = (
    # Headers whose meaning a standard fixes (RFC 3834, RFC 2369/2919): surest, first.
    "auto-submitted",
    "autoreply-headers",
    "precedence",
    "mailing-list",
    # Delivery reports, mail systems and our own addresses: answering them loops.
    "bounce",
    "own-address",
    "no-reply-sender",
    # Wording alone, last: only when no header has spoken.
    "out-of-office",
    "acknowledgement",
)

# The steps of each kind of incoming mail, in order. A step returns the outcome when the
# mail's trip ends there; after the last step the context's decision is recorded.
STEPS: dict[str, tuple[str, ...]] = {
    "request": (
        # Automatic mail is never answered, whatever it says: first.
        "automatic-mail",
        # The same mail again (another helpdesk, a re-delivery) makes no second ticket.
        "seen-before",
        # A follow-up joins its ticket; naming a ticket from a stranger opens a new one.
        "follow-up",
        "classify",
        "open-ticket",
        # After the ticket exists (its id is in the reason), before the reply (an
        # override may change the topic, and so whether an FAQ answer fits).
        "route",
        "acknowledge",
    ),
}


class Pipeline:
    """Processes one message at a time; safe to call from several threads at once."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        replies: Replies,
        classifier: Classifier | None = None,
        clock: Clock | None = None,
        on_outbox: Callable[[], None] | None = None,
        rules: Rules | None = None,
    ):
        self.settings = settings
        self.db = db
        self.clock = clock or Clock()
        self.on_outbox = on_outbox
        self.deps = Deps(
            settings=settings,
            replies=replies,
            classifier=classifier,
            clock=self.clock,
            own_addresses=frozenset(normalise(a) for a in settings.own_addresses),
            tags={box.name: box.tag for box in settings.mailboxes},
            rules=rules,
        )
        self.steps = {kind: build_steps(names, self.deps) for kind, names in STEPS.items()}

    @property
    def classifier(self) -> Classifier | None:
        return self.deps.classifier

    @classifier.setter
    def classifier(self, classifier: Classifier | None) -> None:
        self.deps.classifier = classifier

    def process(self, item: Incoming) -> Outcome:
        """Handle ``item`` exactly once; never raises for a bad message (it is quarantined).

        Raises DatabaseUnavailable when the database went away: that is not the mail's
        fault, so it is not quarantined; it stays in INBOX and is processed on a later poll.
        """
        for attempt in range(2):
            try:
                outcome = self._process(item)
                break
            except IntegrityError:
                # Another thread recorded the same mail (a copy sent to two helpdesks) in
                # the same instant: go again, and find its ticket this time.
                if attempt:
                    outcome = self._quarantine_crash(item)
            except DatabaseUnavailable:
                raise
            except Exception:
                outcome = self._quarantine_crash(item)
                break
        self._log(item, outcome)
        if outcome.reply and self.on_outbox:
            self.on_outbox()
        return outcome

    def _process(self, item: Incoming) -> Outcome:
        box = self.settings.mailbox(item.mailbox)
        with self.db.session() as session:
            found = track.find_record(session, item.mailbox, item.uidvalidity, item.uid)
            if found is not None:
                return repeated(found)
            now = self.clock.now()
            try:
                mail = parse_message(item.raw, max_bytes=self.settings.daemon.max_message_bytes)
            except ParseError as exc:
                return record_item(
                    session, item, box, None, Disposition.quarantined, str(exc), now=now
                )
            ctx = MailContext(item=item, box=box, session=session, now=now, mail=mail)
            try:
                return self._run(ctx, self.steps[self.kind_of(ctx)])
            except IgnoreMessage as signal:
                return record(ctx, Disposition.ignored, f"{signal.stage}: {signal.reason}")
            except QuarantineMessage as signal:
                return record(ctx, Disposition.quarantined, f"{signal.stage}: {signal.reason}")

    def kind_of(self, ctx: MailContext) -> str:
        """Which kind of mail this is, so which steps it takes (see STEPS)."""
        return "request"

    @staticmethod
    def _run(ctx: MailContext, steps) -> Outcome:
        for step in steps:
            outcome = step.run(ctx)
            if outcome is not None:
                return outcome
        return record(ctx, ctx.disposition, ctx.reason, ticket=ctx.ticket, reply=ctx.reply)

    def quarantine(self, item: Incoming, reason: str) -> Outcome:
        """Set ``item`` aside unprocessed with ``reason``, exactly once, as a mail too big
        to download: ``item.raw`` may be its header alone, which names the sender, the
        subject and the Message-ID in the record."""
        try:
            mail = parse_message(item.raw, max_bytes=self.settings.daemon.max_message_bytes)
        except ParseError:
            mail = None
        try:
            outcome = self._set_aside(item, mail, reason)
        except IntegrityError:
            # Recorded by another daemon on the same database in the same instant: the
            # second look finds its record.
            outcome = self._set_aside(item, mail, reason)
        self._log(item, outcome)
        return outcome

    def _quarantine_crash(self, item: Incoming) -> Outcome:
        """An unexpected error: log the traceback, set the mail aside with the reason."""
        log.exception("%s UID %s: unexpected error; quarantined", item.mailbox, item.uid)
        reason = "internal error: " + traceback.format_exc(limit=3).strip().splitlines()[-1]
        return self._set_aside(item, None, reason)

    def _set_aside(self, item: Incoming, mail: ParsedMail | None, reason: str) -> Outcome:
        box = self.settings.mailbox(item.mailbox)
        with self.db.session() as session:
            found = track.find_record(session, item.mailbox, item.uidvalidity, item.uid)
            if found is not None:
                return repeated(found)
            return record_item(
                session, item, box, mail, Disposition.quarantined, reason, now=self.clock.now()
            )

    def _log(self, item: Incoming, outcome: Outcome) -> None:
        log.info(
            "%s UID %s from %s: %s (%s)%s",
            item.mailbox,
            item.uid,
            outcome.sender or "?",
            outcome.disposition.value,
            outcome.reason,
            f", reply {outcome.reply}" if outcome.reply else "",
        )
