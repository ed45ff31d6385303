"""Automatic replies: Greek text and HTML from the Jinja2 templates, with threading headers.

Each reply is written once, as a plain-text template; its HTML alternative is the same
text laid out by ``templates/layout.html.j2`` (paragraphs, numbered steps, bullets), so
the coordinator edits one file per answer and the two versions never disagree.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from email.utils import format_datetime
from pathlib import Path

import jinja2

from . import compose
from .catalogue import FAQ_KEYS
from .config import MailboxSettings
from .errors import ConfigError
from .message import ParsedMail
from .vocative import greeting_name

ACK = "ack"
NOT_TECHNICAL = "not_technical"
FAQ = "faq"
KINDS = (ACK, NOT_TECHNICAL, FAQ)

REPLY_PREFIX = re.compile(r"^\s*((re|aw|απ|σχετ|fw|fwd|πρθ)\s*:\s*)+", re.IGNORECASE)
TICKET_TAG = re.compile(r"\[[^\[\]#]{1,40}#\d+\]\s*")
ORDERED = re.compile(r"^\s*\d{1,2}[.)]\s+")
BULLET = re.compile(r"^\s*[-•*]\s+")

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
        self.text_env = jinja2.Environment(autoescape=False, **options)  # noqa: S701 (plain text)
        self.html_env = jinja2.Environment(autoescape=True, **options)

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
    ) -> Reply:
        """The reply to ``mail`` on ticket ``ticket_id``, ready to store in the outbox.

        It carries ``Auto-Submitted: auto-replied`` (RFC 3834), threads under the
        teacher's mail (In-Reply-To, References) and has its own unique Message-ID.
        """
        recipient = mail.reply_to or mail.from_addr
        context = {
            "teacher_name": greeting_name(mail.from_name),
            "ticket_ref": f"{mailbox.tag} #{ticket_id}",
            "helpdesk_name": mailbox.display_name,
            "helpdesk_address": mailbox.address,
            "original_subject": mail.subject,
        }
        text, html = self.render(kind, faq, context)
        domain = mailbox.address.rsplit("@", 1)[1]
        # Short enough that the header is never folded (some parsers keep the fold's space).
        message_id = f"t{ticket_id}.{kind}.{uuid.uuid4().hex[:16]}@{domain}"
        to_name = mail.from_name if recipient == mail.from_addr else ""
        headers = [
            compose.address("From", mailbox.display_name, mailbox.address),
            compose.address("To", to_name, recipient),
            compose.unstructured("Subject", reply_subject(mailbox.tag, ticket_id, mail.subject)),
            f"Date: {format_datetime(date)}",
            f"Message-ID: <{message_id}>",
            f"In-Reply-To: <{mail.message_id}>",
            compose.id_list("References", [*mail.references[-9:], mail.message_id]),
            "Auto-Submitted: auto-replied",
            # Ask Exchange and friends not to answer an automatic answer with theirs.
            "X-Auto-Response-Suppress: All",
            f"X-Triage-Ticket: {ticket_id}",
        ]
        raw = compose.alternative(headers, text, html)
        return Reply(kind=kind, message_id=message_id, recipient=recipient, raw=raw)
