"""One message's trip: parse -> filters -> seen before? -> follow-up? -> classify -> track -> reply.

Everything a message causes (its record, its ticket and events, its reply in the
outbox) is written in one database transaction, so a crash at any point leaves
either all of it or none of it; the mail is moved on the IMAP server only after
that commit (fetch.py), and a mail processed again is recognised by its mailbox
and UID, or by its Message-ID, and never makes a second ticket or reply.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from . import track
from .clock import Clock
from .config import MailboxSettings, Settings
from .db import Database
from .errors import IgnoreMessage, ParseError, QuarantineMessage
from .filters import build_chain
from .message import ParsedMail, Triage
from .parse import parse_message
from .reply import ACK, FAQ, NOT_TECHNICAL, Replies
from .tables import Disposition, MessageRecord, OutboxMessage, Ticket, TicketStatus

log = logging.getLogger(__name__)

# The order of the automatic-mail filters. Reordering is a one-line change.
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
)


class Classifier:  # the part of classify.Classifier the pipeline uses
    def classify(self, mail: ParsedMail) -> Triage: ...


@dataclass
class Incoming:
    """A message as fetched from a mailbox."""

    mailbox: str
    uidvalidity: int
    uid: int
    raw: bytes


@dataclass
class Outcome:
    """What became of one message; ``folder`` is where fetch.py moves it."""

    disposition: Disposition
    reason: str
    folder: str
    ticket_id: int | None = None
    sender: str = ""
    subject: str = ""
    reply: str | None = None
    repeated: bool = False
    extra: dict = field(default_factory=dict)


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
    ):
        self.settings = settings
        self.db = db
        self.replies = replies
        self.classifier = classifier
        self.clock = clock or Clock()
        self.on_outbox = on_outbox
        self.filters = build_chain(FILTERS)
        self.own_addresses = frozenset(settings.own_addresses)

    def process(self, item: Incoming) -> Outcome:
        """Handle ``item`` exactly once; never raises for a bad message (it is quarantined)."""
        for attempt in range(2):
            try:
                outcome = self._process(item)
                break
            except IntegrityError:
                # Another thread recorded the same mail (a copy sent to two helpdesks) in
                # the same instant: go again, and find its ticket this time.
                if attempt:
                    outcome = self._quarantine_crash(item)
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
            record = track.find_record(session, item.mailbox, item.uidvalidity, item.uid)
            if record is not None:
                return repeated(record)
            try:
                mail = parse_message(item.raw, max_bytes=self.settings.daemon.max_message_bytes)
            except ParseError as exc:
                return self._record(session, item, box, None, Disposition.quarantined, str(exc))
            try:
                return self._route(session, item, box, mail)
            except IgnoreMessage as signal:
                return self._record(
                    session,
                    item,
                    box,
                    mail,
                    Disposition.ignored,
                    f"{signal.stage}: {signal.reason}",
                )
            except QuarantineMessage as signal:
                return self._record(
                    session,
                    item,
                    box,
                    mail,
                    Disposition.quarantined,
                    f"{signal.stage}: {signal.reason}",
                )

    def _route(
        self, session: Session, item: Incoming, box: MailboxSettings, mail: ParsedMail
    ) -> Outcome:
        for rule in self.filters:
            reason = rule.check(mail, self.own_addresses)
            if reason:
                raise IgnoreMessage(reason, stage=rule.name)
        seen = self._seen_before(session, item, box, mail)
        if seen is not None:
            return seen
        thread = track.find_thread(session, mail)
        if thread is not None:
            return self._follow_up(session, item, box, mail, *thread)
        triage = self.classifier.classify(mail) if self.classifier else None
        return self._open(session, item, box, mail, triage)

    def _seen_before(
        self, session: Session, item: Incoming, box: MailboxSettings, mail: ParsedMail
    ) -> Outcome | None:
        earlier = track.find_seen(session, mail.message_id)
        if not earlier:
            return None
        now = self.clock.now()
        first = earlier[0]
        ticket = session.get(Ticket, first.ticket_id) if first.ticket_id else None
        if ticket is not None and all(r.mailbox != item.mailbox for r in earlier):
            track.note_also_to(ticket, [item.mailbox])
            track.add_event(session, ticket, "also-sent-to", now, "duplicate", mailbox=item.mailbox)
            reason = f"same Message-ID as ticket #{ticket.id}: also sent to {item.mailbox}"
        else:
            reason = (
                f"same Message-ID already processed ({Disposition(first.disposition)}, "
                f"{first.mailbox} UID {first.uid})"
            )
        folder = first.folder if first.mailbox == item.mailbox else box.folders.tickets
        return self._record(
            session, item, box, mail, Disposition.duplicate, reason, ticket=ticket, folder=folder
        )

    def _follow_up(
        self,
        session: Session,
        item: Incoming,
        box: MailboxSettings,
        mail: ParsedMail,
        ticket: Ticket,
        how: str,
    ) -> Outcome:
        now = self.clock.now()
        track.add_event(
            session,
            ticket,
            "follow-up",
            now,
            "follow-up",
            how=how,
            message_id=mail.message_id,
            sender=mail.from_addr,
            text=(mail.new_text or mail.text)[:4000],
        )
        ticket.updated = now
        if ticket.status == TicketStatus.closed:
            ticket.status = TicketStatus.open
            track.add_event(session, ticket, "reopened", now, "follow-up")
        session.add(ticket)
        return self._record(
            session,
            item,
            box,
            mail,
            Disposition.followup,
            f"follow-up to ticket #{ticket.id} ({how})",
            ticket=ticket,
        )

    def _open(
        self,
        session: Session,
        item: Incoming,
        box: MailboxSettings,
        mail: ParsedMail,
        triage: Triage | None,
    ) -> Outcome:
        now = self.clock.now()
        ticket = track.open_ticket(session, mailbox=item.mailbox, mail=mail, triage=triage, now=now)
        detail = triage.as_dict() if triage else {"model": "none configured"}
        track.add_event(session, ticket, "opened", now, "classify", **detail)
        technical = triage is None or triage.technical
        disposition = Disposition.ticket if technical else Disposition.not_technical
        reply = self._reply(session, box, mail, ticket, triage)
        reason = f"ticket #{ticket.id}" + (
            f", {triage.topic}/{triage.faq}" if triage and technical else ""
        )
        return self._record(
            session, item, box, mail, disposition, reason, ticket=ticket, reply=reply
        )

    def _reply(
        self,
        session: Session,
        box: MailboxSettings,
        mail: ParsedMail,
        ticket: Ticket,
        triage: Triage | None,
    ) -> str | None:
        now = self.clock.now()
        kind, faq = ACK, None
        if triage is not None and not triage.technical:
            kind = NOT_TECHNICAL
        elif triage is not None and triage.faq and triage.faq != "none":
            kind, faq = FAQ, triage.faq
        limits = self.settings.replies
        recipient = mail.reply_to or mail.from_addr
        since = now - timedelta(minutes=limits.window_minutes)
        if track.replies_since(session, recipient, since) >= limits.max_per_sender:
            track.add_event(
                session,
                ticket,
                "reply-suppressed",
                now,
                "reply",
                reason=f"{limits.max_per_sender} automatic replies to {recipient} "
                f"in {limits.window_minutes} minutes already",
            )
            return None
        try:
            reply = self.replies.build(
                kind=kind, faq=faq, mailbox=box, ticket_id=ticket.id, mail=mail, date=now
            )
            raw = reply.as_bytes()
        except (ValueError, TypeError, UnicodeError) as exc:
            track.add_event(session, ticket, "reply-impossible", now, "reply", reason=str(exc))
            return None
        session.add(
            OutboxMessage(
                ticket_id=ticket.id,
                kind=kind,
                sender=box.address,
                recipient=reply.recipient,
                message_id=reply.message_id,
                raw=raw,
                created=now,
                next_attempt=now,
            )
        )
        template = f"faq/{faq}" if faq else f"reply/{kind}"
        track.add_event(
            session,
            ticket,
            "reply-queued",
            now,
            "reply",
            template=template,
            message_id=reply.message_id,
        )
        return template

    def _record(
        self,
        session: Session,
        item: Incoming,
        box: MailboxSettings,
        mail: ParsedMail | None,
        disposition: Disposition,
        reason: str,
        *,
        ticket: Ticket | None = None,
        folder: str | None = None,
        reply: str | None = None,
    ) -> Outcome:
        folder = folder or folder_for(box, disposition)
        sender = mail.from_addr if mail else ""
        subject = mail.subject if mail else ""
        message_id = (
            mail.message_id if mail else f"unparsed.{item.mailbox}.{item.uidvalidity}.{item.uid}"
        )
        track.record_message(
            session,
            mailbox=item.mailbox,
            uidvalidity=item.uidvalidity,
            uid=item.uid,
            message_id=message_id,
            sender=sender,
            subject=subject,
            disposition=disposition,
            reason=reason,
            folder=folder,
            now=self.clock.now(),
            ticket=ticket,
        )
        return Outcome(
            disposition, reason, folder, ticket.id if ticket else None, sender, subject, reply=reply
        )

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
            record = track.find_record(session, item.mailbox, item.uidvalidity, item.uid)
            if record is not None:
                return repeated(record)
            return self._record(session, item, box, mail, Disposition.quarantined, reason)

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


def repeated(record: MessageRecord) -> Outcome:
    """The outcome already recorded for a mail seen again at the same mailbox and UID."""
    return Outcome(
        Disposition(record.disposition),
        record.reason,
        record.folder,
        record.ticket_id,
        record.sender,
        record.subject,
        repeated=True,
    )


def folder_for(box: MailboxSettings, disposition: Disposition) -> str:
    folders = box.folders
    return {
        Disposition.ticket: folders.tickets,
        Disposition.followup: folders.followups,
        Disposition.duplicate: folders.tickets,
        Disposition.not_technical: folders.not_technical,
        Disposition.ignored: folders.ignored,
        Disposition.quarantined: folders.quarantine,
    }[disposition]
