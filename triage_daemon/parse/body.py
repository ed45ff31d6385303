"""Read what the sender wrote from a parsed MIME tree: the body text and the attachments.

The parts that make up the sender's text are chosen by the RFC 2046 rules
(_walk), decoded with charsets.py's fallback chain (real Greek mail often
declares no charset or the wrong one), HTML turned into text by html_text.py,
format=flowed undone (RFC 3676). Attachments are kept as metadata only.

What one mail contributes is capped in total, not per part (issue 9: 23 HTML
parts of 1 MB each took 23 s to parse and 54 s to classify): _MAX_TEXT
characters of text and _MAX_HTML characters of HTML, and of a long part only
as many bytes are turned into text as that can need.
"""

from __future__ import annotations

import re
from email.message import Message
from email.utils import collapse_rfc2231_value

from ..context import Attachment, Budget, ParsedMail
from ..errors import ParseError
from .charsets import codec_name, decode_bytes
from .headers import decode_header_value
from .html import html_to_text

_MAX_DEPTH = 40
# Per mail, across all its parts. Nobody's question is longer; the quoted thread
# below it is cut first.
_MAX_TEXT = 128 * 1024
# html2text costs 5-30 µs per tag or text run, so its input is bounded apart.
_MAX_HTML = 256 * 1024
# Decoded bytes kept of one text part per character allowed (UTF-8 needs up to 4).
_BYTES_PER_CHAR = 4
# Text parts that are data, not something a person wrote to us.
_NOT_BODY_TEXT = frozenset(
    {"text/rfc822-headers", "text/calendar", "text/x-vcard", "text/vcard", "text/directory"}
)
_FORWARDED = frozenset({"message/rfc822", "message/global"})
_UNREADABLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffd]")
_META_CHARSET = re.compile(rb"""<meta[^>]+charset=["']?([\w.:-]+)""", re.IGNORECASE)


class _Room:
    """What is left of the mail's text and HTML allowances (_MAX_TEXT, _MAX_HTML)."""

    def __init__(self) -> None:
        self.text = _MAX_TEXT
        self.html = _MAX_HTML


def read_body(mail: ParsedMail, msg: Message, budget: Budget) -> None:
    texts, kinds = [], set()
    room = _Room()
    for part, ctype in _walk(msg, 0, mail.attachments):
        kinds.add("html" if ctype == "text/html" else "plain")
        if room.text <= 0:
            mail.defects.append(f"{ctype} part not read: the mail's {_MAX_TEXT} characters are")
            continue
        text = _part_text(part, ctype, mail.defects, room).strip("\n")
        reason = budget.overrun(f"reading a {ctype} part")
        if reason:
            raise ParseError(reason)
        if text.strip():
            texts.append(text)
            room.text -= len(text) + 2
    mail.text = "\n\n".join(texts)
    mail.html_only = kinds == {"html"}
    _check_readable(mail.text)


def _walk(part: Message, depth: int, attachments: list[Attachment]) -> list[tuple[Message, str]]:
    """The parts that make up what the sender wrote, in order (RFC 2046 rules).

    Attachments met on the way, in any branch, are appended to ``attachments``.
    Forwarded mail (message/rfc822) is one attachment: its text is not the sender's.
    """
    ctype = content_type(part)
    if depth > _MAX_DEPTH:
        return []
    if _is_attachment(part, ctype):
        attachments.append(_attachment(part, ctype))
        return []
    if ctype.startswith("message/"):
        return []
    if not part.is_multipart():
        if ctype == "text/html":
            return [(part, ctype)]
        body_text = ctype.startswith("text/") and ctype not in _NOT_BODY_TEXT
        # A multipart without a usable boundary arrives as one text blob.
        return [(part, "text/plain")] if body_text or ctype.startswith("multipart/") else []
    found = [
        _walk(child, depth + 1, attachments)
        for child in part.get_payload()
        if isinstance(child, Message)
    ]
    subtype = ctype.partition("/")[2]
    if subtype == "alternative":
        return _best_alternative(found)
    if subtype == "encrypted" or not found:
        return []
    if subtype in ("related", "signed", "report"):
        return found[0]
    return [leaf for child in found for leaf in child]


def _best_alternative(choices: list[list[tuple[Message, str]]]) -> list[tuple[Message, str]]:
    """Plain text when an alternative has it (the sender's own words), else the richest."""
    for parts in choices:
        if any(ctype == "text/plain" for _, ctype in parts):
            return parts
    for parts in reversed(choices):
        if parts:
            return parts
    return []


def _part_text(part: Message, ctype: str, defects: list[str], room: _Room) -> str:
    """The text of one body part, within what is left of the mail's allowances."""
    html = ctype == "text/html"
    if html and room.html <= 0:
        defects.append(f"{ctype} part not read: the mail's {_MAX_HTML} characters of HTML are")
        return ""
    limit = room.html if html else room.text
    data = _decoded_head(part, limit)
    if not isinstance(data, bytes):
        return ""
    part_params = params(part)
    charset = part_params.get("charset")
    if not charset and html:
        found = _META_CHARSET.search(data[:4096])
        charset = found.group(1).decode("ascii") if found else None
    text, used = decode_bytes(data, charset)
    if charset and used != codec_name(charset):
        defects.append(f"{ctype} part: charset {charset!r} did not fit, decoded as {used}")
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "").lstrip("\ufeff")
    if len(text) > limit:
        defects.append(f"{ctype} part is {len(text)} characters: only the first {limit} read")
        text = text[:limit]
    if html:
        room.html -= len(text)
        text = html_to_text(text, defects)
    elif part_params.get("format", "").lower() == "flowed":
        text = _unflow(text, part_params.get("delsp", "").lower() == "yes")
    return text[: room.text]


def _decoded_head(part: Message, limit: int) -> bytes | None:
    """The start of the decoded payload of ``part``: enough bytes for ``limit`` characters.

    The whole payload is decoded (C speed for base64, quoted-printable and 8bit; a
    cut of the encoded form would need the private undecoded payload: get_payload()
    without decode=True hands 8-bit text back already decoded).
    """
    data = part.get_payload(decode=True)
    return data[: _BYTES_PER_CHAR * limit] if isinstance(data, bytes) else None


def _unflow(text: str, delsp: bool) -> str:
    """Undo format=flowed (RFC 3676): join soft-broken lines, keep the quote depth."""
    # A paragraph is a list of pieces joined once: "para + body" per line was quadratic.
    out: list[str] = []
    para: list[str] | None = None
    para_depth = 0
    for line in text.split("\n"):
        depth = len(line) - len(line.lstrip(">"))
        body = line[depth:]
        # RFC 3676 4.4: a leading space was added by space-stuffing.
        body = body[1:] if body.startswith(" ") else body
        soft = body.endswith(" ") and body != "-- "
        if soft and delsp:
            body = body[:-1]
        if para is not None and depth != para_depth:
            out.append(_with_quote(para, para_depth))
            para = None
        if para is None:
            para, para_depth = [], depth
        para.append(body)
        if not soft:
            out.append(_with_quote(para, para_depth))
            para = None
    if para is not None:
        out.append(_with_quote(para, para_depth))
    return "\n".join(out)


def _with_quote(pieces: list[str], depth: int) -> str:
    text = "".join(pieces)
    return f"{'>' * depth} {text}".rstrip(" ") if depth else text


def _check_readable(text: str) -> None:
    """Raise ParseError when the chosen body is binary noise rather than text."""
    if len(text) < 64:
        return
    bad = len(_UNREADABLE.findall(text))
    if bad * 5 > len(text):
        raise ParseError(
            f"body is not readable text: {bad} of {len(text)} characters are control "
            "characters or undecodable bytes"
        )


# ---------------------------------------------------------------- parts


def _is_attachment(part: Message, ctype: str) -> bool:
    """Forwarded mail, and any part sent as an attachment or with a file name."""
    if ctype in _FORWARDED:
        return True
    if part.is_multipart():
        return False
    return part.get_content_disposition() == "attachment" or bool(_filename(part))


def _attachment(part: Message, ctype: str) -> Attachment:
    return Attachment(filename=_filename(part), content_type=ctype, size=_size(part, ctype))


def _filename(part: Message) -> str:
    """The RFC 2231 / RFC 2047 decoded file name of a part, or ''."""
    try:
        name = part.get_filename()
    except Exception:  # a malformed parameter list: treat as no name
        return ""
    return decode_header_value(name) if name else ""


def _size(part: Message, ctype: str) -> int:
    """Decoded size in bytes; base64 is measured without decoding it."""
    payload = part.get_payload()
    if ctype in _FORWARDED:
        try:
            return sum(len(inner.as_bytes()) for inner in payload if isinstance(inner, Message))
        except Exception:  # the generator cannot re-serialise some broken messages
            return 0
    if not isinstance(payload, str):
        return 0
    if str(part.get("content-transfer-encoding", "")).strip().lower() == "base64":
        stripped = "".join(payload.split())
        return max(0, len(stripped) * 3 // 4 - (len(stripped) - len(stripped.rstrip("="))))
    data = part.get_payload(decode=True)
    return len(data) if isinstance(data, bytes) else 0


def content_type(part: Message) -> str:
    try:
        return part.get_content_type()
    except Exception:  # an unparseable Content-Type: RFC 2045 5.2 default
        return "text/plain"


def params(part: Message) -> dict[str, str]:
    """Content-Type parameters, lower-case names, RFC 2231 values collapsed."""
    try:
        pairs = part.get_params() or []
    except Exception:  # a parameter list the stdlib cannot split: use none
        return {}
    params = {}
    for name, value in pairs[1:]:
        if isinstance(value, tuple):
            value = collapse_rfc2231_value(value)
        params.setdefault(name.strip().lower(), str(value))
    return params


def parser_defects(msg: Message) -> list[str]:
    found = []
    for part in msg.walk():
        for defect in part.defects:
            text = f"{type(defect).__name__} in {content_type(part)}"
            if text not in found:
                found.append(text)
    return found
