"""Typed objects that travel between the stages: the parsed mail and its triage."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


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
