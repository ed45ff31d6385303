"""Automatic replies: Greek text and HTML from the Jinja2 templates, with threading headers.

Each reply is written once, as a plain-text template; its HTML alternative is the same
text laid out by ``templates/layout.html.j2`` (paragraphs, numbered steps, bullets), so
the coordinator edits one file per answer and the two versions never disagree.

The templates are rendered in Jinja2's sandbox: whoever edits ``templates/`` writes
text, not code (``{{ cycler.__init__.__globals__.os }}`` is refused at start-up). What
the sender wrote (name, subject) enters a reply only as one line of plain text.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from email.utils import format_datetime
from pathlib import Path

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from ..catalogue import FAQ_KEYS
from ..config import MailboxSettings
from ..context import ParsedMail
from ..errors import ConfigError
from ..parse.addresses import normalise
from ..safe_text import one_line
from . import compose
from .vocative import greeting_name as vocative

ACK = "ack"
NOT_TECHNICAL = "not_technical"
FAQ = "faq"
KINDS = (ACK, NOT_TECHNICAL, FAQ)

REPLY_PREFIX = re.compile(r"^\s*((re|aw|απ|σχετ|fw|fwd|πρθ)\s*:\s*)+", re.IGNORECASE)
TICKET_TAG = re.compile(r"\[[^\[\]#]{1,40}#\d+\]\s*")
ORDERED = re.compile(r"^\s*\d{1,2}[.)]\s+")
BULLET = re.compile(r"^\s*[-•*]\s+")
# What a sender wrote is quoted back at most this long (a name, a subject).
MAX_NAME = 100
MAX_SUBJECT = 200

SAMPLE_CONTEXT = {
    "teacher_name": "Μαρία Παπαδοπούλου",
    "ticket_ref": "ΠΕΚΕΣ1 #1",
    "helpdesk_name": "1ο ΠΕΚΕΣ Αττικής",
    "helpdesk_address": "helpdesk@pekes1.att.example",
    "original_subject": "Πρόβλημα με το Webex",
}


@dataclass(frozen=True)
class Reply:
    kind: str
    message_id: str
    recipient: str
    raw: bytes

    def as_bytes(self) -> bytes:
        return self.raw


def template_name(kind: str, faq: str | None = None) -> str:
    if kind == FAQ:
        return f"faq/{faq}.txt.j2"
    return f"reply/{kind}.txt.j2"


def text_blocks(text: str) -> list[dict]:
    """Split plain text into HTML blocks: paragraphs, numbered steps and bullet lists."""
    blocks: list[dict] = []
    for chunk in re.split(r"\n\s*\n", text.strip()):
        lines = [line.rstrip() for line in chunk.splitlines() if line.strip()]
        if not lines:
            continue
        if all(ORDERED.match(line) for line in lines):
            blocks.append({"kind": "ol", "lines": [ORDERED.sub("", line) for line in lines]})
        elif all(BULLET.match(line) for line in lines):
            blocks.append({"kind": "ul", "lines": [BULLET.sub("", line) for line in lines]})
        else:
            blocks.append({"kind": "p", "lines": lines})
    return blocks


def reply_subject(tag: str, ticket_id: int, original: str) -> str:
    """'[ΠΕΚΕΣ1 #12] Re: <original>' without piling up Re: prefixes or ticket tags."""
    bare = TICKET_TAG.sub("", REPLY_PREFIX.sub("", original)).strip()
    bare = REPLY_PREFIX.sub("", bare).strip()
    return f"[{tag} #{ticket_id}] Re: {bare}" if bare else f"[{tag} #{ticket_id}]"


class Replies:
    """Renders and builds the automatic replies; validates every template at start-up."""

    def __init__(self, templates_dir: Path):
        self.templates_dir = Path(templates_dir)
        loader = jinja2.FileSystemLoader(str(self.templates_dir))
        options = dict(
            loader=loader,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )
        # Plain text is not HTML: escaping it would show "&amp;" to the teacher.
        self.text_env = ImmutableSandboxedEnvironment(autoescape=False, **options)  # noqa: S701
        self.html_env = ImmutableSandboxedEnvironment(autoescape=True, **options)

    def validate(self) -> None:
        """Render every template with sample values; raise ConfigError listing each problem."""
        problems = []
        names = [template_name(ACK), template_name(NOT_TECHNICAL)]
        names += [template_name(FAQ, key) for key in FAQ_KEYS]
        for name in names:
            try:
                text = self.text_env.get_template(name).render(SAMPLE_CONTEXT)
                if not text.strip():
                    problems.append(f"{self.templates_dir / name}: renders to empty text")
            except jinja2.TemplateNotFound:
                problems.append(f"{self.templates_dir / name}: missing (every reply needs one)")
            except jinja2.TemplateError as exc:
                line = getattr(exc, "lineno", None)
                where = f"{self.templates_dir / name}" + (f", line {line}" if line else "")
                problems.append(f"{where}: {exc}")
        try:
            self._html("Δοκιμή", "Κείμενο δοκιμής.", SAMPLE_CONTEXT)
        except jinja2.TemplateError as exc:
            problems.append(f"{self.templates_dir / 'layout.html.j2'}: {exc}")
        if problems:
            raise ConfigError(problems)

    def render(self, kind: str, faq: str | None, context: dict) -> tuple[str, str]:
        """The reply's plain text and HTML for ``kind`` (and ``faq`` key)."""
        text = self.text_env.get_template(template_name(kind, faq)).render(context)
        return text, self._html(context.get("original_subject", ""), text, context)

    def _html(self, title: str, text: str, context: dict) -> str:
        layout = self.html_env.get_template("layout.html.j2")
        return layout.render(
            title=title,
            blocks=text_blocks(text),
            helpdesk_name=context["helpdesk_name"],
            ticket_ref=context["ticket_ref"],
        )

    def build(
        self,
        *,
        kind: str,
        faq: str | None,
        mailbox: MailboxSettings,
        ticket_id: int,
        mail: ParsedMail,
        date,
        recipient: str | None = None,
    ) -> Reply:
        """The reply to ``mail`` on ticket ``ticket_id``, ready to store in the outbox.

        It goes to ``recipient`` (default: the normalised Reply-To, or From), carries
        ``Auto-Submitted: auto-replied`` (RFC 3834), threads under the teacher's mail
        (In-Reply-To, References) and has its own unique Message-ID. Raises ValueError
        when there is no usable address to send it to, jinja2.TemplateError when a
        template fails.
        """
        recipient = recipient or reply_recipient(mail)
        if not recipient:
            raise ValueError(f"no usable address to reply to ({mail.reply_to or mail.from_addr!r})")
        name = display_name(mail, recipient)
        subject = one_line(mail.subject, MAX_SUBJECT)
        context = {
            # The vocative of a first name when it is certain, else nothing ("Γεια σας,").
            "teacher_name": vocative(name),
            "ticket_ref": f"{mailbox.tag} #{ticket_id}",
            "helpdesk_name": mailbox.display_name,
            "helpdesk_address": mailbox.address,
            "original_subject": subject,
        }
        text, html = self.render(kind, faq, context)
        domain = mailbox.address.rsplit("@", 1)[1]
        # Short enough that the header is never folded (some parsers keep the fold's space).
        message_id = f"t{ticket_id}.{kind}.{uuid.uuid4().hex[:16]}@{domain}"
        headers = [
            compose.address("From", mailbox.display_name, mailbox.address),
            compose.address("To", name, recipient),
            compose.unstructured("Subject", reply_subject(mailbox.tag, ticket_id, subject)),
            f"Date: {format_datetime(date)}",
            f"Message-ID: <{message_id}>",
            compose.id_list("In-Reply-To", [mail.message_id]),
            compose.id_list("References", [*mail.references[-9:], mail.message_id]),
            "Auto-Submitted: auto-replied",
            # Ask Exchange and friends not to answer an automatic answer with theirs.
            "X-Auto-Response-Suppress: All",
            f"X-Triage-Ticket: {ticket_id}",
        ]
        raw = compose.alternative(headers, text, html)
        return Reply(kind=kind, message_id=message_id, recipient=recipient, raw=raw)


def reply_recipient(mail: ParsedMail) -> str:
    """Where the reply to ``mail`` goes: its Reply-To, else its From, normalised; '' when
    the address there is not usable (the Reply-To is then not replaced by From: the
    sender asked for replies elsewhere, and we do not guess where)."""
    return normalise(mail.reply_to or mail.from_addr)


def display_name(mail: ParsedMail, recipient: str) -> str:
    """The sender's name, as one short line, when the reply goes back to the sender; ''
    when a Reply-To sends it to someone else, who should not read a stranger's words
    under our name (a reflection channel)."""
    if normalise(mail.from_addr) != recipient:
        return ""
    return one_line(mail.from_name, MAX_NAME)
