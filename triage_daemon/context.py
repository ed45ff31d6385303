"""Typed objects that travel between the steps: the fetched mail, the parsed mail, its
triage, the per-mail context the steps fill in, and the outcome."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from .tables import Disposition

if TYPE_CHECKING:
    from sqlmodel import Session

    from .config import MailboxSettings
    from .tables import Ticket

# What one mail may cost to read (parse, then classify), in CPU seconds of its thread.
# A mail of the 25 MB size limit takes about 1 s to parse; a small one a few ms.
READ_BUDGET_SECONDS = 3.0


@dataclass
class Budget:
    """The time one mail may spend in the text steps (parse, classify): a backstop.

    Python cannot interrupt a thread inside one regular expression or one
    html2text call, so the budget is checked between steps; what keeps every
    mail fast is that each step is linear and its input capped (parse.py). A
    mail over the budget is quarantined with the reason from ``overrun``.

    Time is the CPU time of the reading thread (time.thread_time), not wall
    time: the daemon reads several mailboxes in threads that share the GIL, and
    a mail must not be quarantined because another mailbox's mail held it.
    """

    seconds: float = READ_BUDGET_SECONDS
    spent: float = 0.0
    _since: float | None = field(default=None, repr=False)

    def start(self) -> None:
        self._since = time.thread_time()

    def stop(self) -> None:
        if self._since is not None:
            self.spent += time.thread_time() - self._since
            self._since = None

    def used(self) -> float:
        """CPU seconds spent so far, the running step included."""
        running = time.thread_time() - self._since if self._since is not None else 0.0
        return self.spent + running

    def overrun(self, step: str) -> str | None:
        """None while within the budget; else why the mail is set aside, naming ``step``."""
        used = self.used()
        if used <= self.seconds:
            return None
        return (
            f"too complex/slow to read: {used:.2f} s of CPU time by the end of {step}, "
            f"over the budget of {self.seconds:g} s a mail"
        )


@dataclass(frozen=True)
class Attachment:
    """An attachment kept as metadata only (the bytes stay on the IMAP server)."""

    filename: str
    content_type: str
    size: int


@dataclass
class ParsedMail:
    """One incoming message, decoded: headers as text, bodies as Unicode.

    ``message_id`` is always set and has no angle brackets: a message without a
    Message-ID gets a stable one derived from its content (see parse.py).
    ``headers`` maps lower-cased header names to every value they had, decoded.
    ``text`` is the whole readable body (HTML converted to text); ``new_text`` is
    what the sender wrote this time, without quoted earlier mail, signature or
    disclaimer; ``quoted`` and ``signature`` hold what was removed.
    """

    message_id: str
    subject: str = ""
    from_name: str = ""
    from_addr: str = ""
    to: list[str] = field(default_factory=list)
    cc: list[str] = field(default_factory=list)
    reply_to: str = ""
    date: datetime | None = None
    in_reply_to: str = ""
    references: list[str] = field(default_factory=list)
    headers: dict[str, list[str]] = field(default_factory=dict)
    content_type: str = "text/plain"
    text: str = ""
    new_text: str = ""
    quoted: str = ""
    signature: str = ""
    html_only: bool = False
    attachments: list[Attachment] = field(default_factory=list)
    raw_size: int = 0
    defects: list[str] = field(default_factory=list)
    # What reading this mail has cost so far; classify.py goes on counting.
    budget: Budget = field(default_factory=Budget, repr=False, compare=False)

    def header(self, name: str) -> str:
        """The first value of header ``name`` (any case), or ''."""
        values = self.headers.get(name.lower())
        return values[0] if values else ""


@dataclass
class Triage:
    """What the model decided about one request, with its confidence and reasons.

    ``topic`` and ``faq`` are None for non-technical mail; ``faq`` is 'none' for a
    technical request that matches no FAQ entry. ``confidence`` has the keys
    'technical', 'topic' and 'faq'. ``explain`` lists the features that weighed most.
    ``review`` is True when confidence was too low and a person should look.
    """

    technical: bool
    topic: str | None
    faq: str | None
    confidence: dict[str, float] = field(default_factory=dict)
    explain: list[str] = field(default_factory=list)
    review: bool = False

    def as_dict(self) -> dict:
        return {
            "technical": self.technical,
            "topic": self.topic,
            "faq": self.faq,
            "confidence": self.confidence,
            "explain": self.explain,
            "review": self.review,
        }


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


@dataclass
class MailContext:
    """One mail's trip through the steps, in its database transaction: what each step
    found and decided. A step reads what earlier steps filled in and adds its own part;
    the reasons end up on the ticket's events and on the message's record."""

    item: Incoming
    box: MailboxSettings
    session: Session
    now: datetime
    mail: ParsedMail
    # The ticket the mail names (tag or threading), and how it was found.
    named: tuple[Ticket, str] | None = None
    triage: Triage | None = None
    ticket: Ticket | None = None
    # What will be recorded when the steps are done.
    disposition: Disposition = Disposition.ticket
    reason: str = ""
    # The template of the automatic reply queued, if any.
    reply: str | None = None
