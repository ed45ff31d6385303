"""Parse the raw bytes of one RFC 5322 message into a ParsedMail.

How, and why not simply policy.default's header objects and get_content():

- The MIME tree comes from the stdlib BytesParser with policy compat32. Both
  policies run the same feed parser and give the same tree, but policy.default
  builds a header object for every Content-Type lookup during the parse: on
  the example mails it needs about 1.6 ms per message against 0.2 ms. If the
  compat32 pass raises anyway, the message is parsed again with
  policy.default; if that raises too, ParseError.
- Headers are decoded from their raw values in headers.py (unfolding, stray
  8-bit bytes, RFC 2047 words, addresses, dates, message ids).
- Bodies are decoded here, with charsets.py's fallback chain, because real
  Greek mail often declares no charset or the wrong one.

Every failure becomes ParseError with an English reason: the pipeline logs it
and puts the message in quarantine.
"""

from __future__ import annotations

import hashlib
import re
from email import policy
from email.message import Message
from email.parser import BytesParser
from email.utils import collapse_rfc2231_value

from .charsets import codec_name, decode_bytes
from .errors import ParseError
from .headers import decode_header_value, message_ids, read_envelope
from .html_text import html_to_text
from .message import Attachment, ParsedMail
from .quotes import split_reply

# decode_header_value lives in headers.py; it is re-exported here for callers
# that import it from parse.
__all__ = ["DERIVED_ID_DOMAIN", "MAX_BYTES", "decode_header_value", "parse_message"]

MAX_BYTES = 25 * 1024 * 1024
DERIVED_ID_DOMAIN = "triage-daemon.invalid"
# A message with none of these headers is not a mail (a body fragment, an HTML
# page ...). A MIME entity with only Content-Type is accepted: missing From and
# Date are defects for later stages to judge, not a reason to lose the text.
_MAIL_HEADERS = frozenset(
    "from sender reply-to to cc message-id date subject "
    "received return-path delivered-to mime-version content-type".split()
)
_MAX_DEPTH = 40
_MAX_ID_LENGTH = 255
# Nobody's question is longer; html2text needs about 1 s per MB, so bound it.
_MAX_TEXT_PART = 1024 * 1024
# Text parts that are data, not something a person wrote to us.
_NOT_BODY_TEXT = frozenset(
    {"text/rfc822-headers", "text/calendar", "text/x-vcard", "text/vcard", "text/directory"}
)
_FORWARDED = frozenset({"message/rfc822", "message/global"})
# Must stay as it is: derived Message-IDs of mail already stored depend on it.
_BREAK = re.compile(r"[\r\n]+")
_UNREADABLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffd]")
_META_CHARSET = re.compile(rb"""<meta[^>]+charset=["']?([\w.:-]+)""", re.IGNORECASE)
_BODY_START = re.compile(rb"\r?\n\r?\n|\r\r")
_FIELD_NAME = re.compile(rb"([\x21-\x39\x3b-\x7e]+)([ \t]*):")


def parse_message(raw: bytes, *, max_bytes: int = MAX_BYTES) -> ParsedMail:
    """Parse one message.

    Takes the raw bytes as fetched (any line ends) and returns a ParsedMail
    whose ``message_id`` is never empty. Raises ParseError, with the reason,
    when the bytes are over ``max_bytes``, are not a mail, or have no readable
    body; never any other exception.
    """
    if not isinstance(raw, (bytes, bytearray, memoryview)):
        raise ParseError(f"message is a {type(raw).__name__}, not bytes")
    raw = bytes(raw)
    if len(raw) > max_bytes:
        raise ParseError(f"message is {len(raw)} bytes, over the limit of {max_bytes}")
    try:
        return _parse(raw, policy.compat32)
    except ParseError:
        raise
    except Exception as first:
        mail = _parse_again(raw, first)
        mail.defects.append(f"compat32 parse failed ({type(first).__name__}); used policy.default")
        return mail


def _parse_again(raw: bytes, first: Exception) -> ParsedMail:
    try:
        return _parse(raw, policy.default)
    except ParseError:
        raise
    except Exception as exc:
        raise ParseError(
            f"the email parser failed: {type(first).__name__}: {first}; "
            f"with policy.default: {type(exc).__name__}: {exc}"
        ) from exc


def _parse(raw: bytes, mail_policy: policy.Policy) -> ParsedMail:
    data, dropped = _repair_header_block(_strip_leading_junk(raw))
    msg = BytesParser(policy=mail_policy).parsebytes(data)
    fallback = _params(msg).get("charset")
    raw_headers: dict[str, list[str]] = {}
    for name, value in msg.raw_items():
        raw_headers.setdefault(name.strip().lower(), []).append(str(value))
    if _MAIL_HEADERS.isdisjoint(raw_headers):
        raise ParseError(
            "no mail header found (no From, To, Date, Subject, Message-ID, Received "
            "or Content-Type): not an RFC 5322 message"
        )
    mail = ParsedMail(message_id="", raw_size=len(raw), content_type=_content_type(msg))
    mail.headers = {
        name: [decode_header_value(value, fallback) for value in values]
        for name, values in raw_headers.items()
    }
    read_envelope(mail, raw_headers, fallback)
    _read_body(mail, msg)
    mail.message_id = _message_id(mail, raw_headers, data)
    mail.defects[:0] = _parser_defects(msg)
    if dropped:
        mail.defects.append(f"skipped {dropped} malformed line(s) among the headers")
    split = split_reply(mail.text)
    mail.new_text, mail.quoted, mail.signature = split.new_text, split.quoted, split.signature
    return mail


def _strip_leading_junk(raw: bytes) -> bytes:
    """Drop a UTF-8 byte order mark and blank lines or spaces before the first header."""
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    return raw.lstrip(b" \t\r\n")


def _repair_header_block(data: bytes) -> tuple[bytes, int]:
    """(bytes the feed parser can read, number of junk lines dropped from the header block).

    The stdlib parser ends the header block at the first line that is not a
    field and reads the fields after it as body. Here the obsolete "Name :"
    form (RFC 5322 4.5) becomes "Name:", and junk lines between two fields are
    dropped. Text after the last field is left alone: it is a body that lacks
    its blank separator line.
    """
    start = _BODY_START.search(data)
    end = start.start() if start else len(data)
    lines = data[:end].splitlines(keepends=True)
    repaired = [_header_line(line, n == 0) for n, line in enumerate(lines)]
    if repaired == lines or not repaired or repaired[0] is None:
        return data, 0
    last = max(n for n, line in enumerate(repaired) if line is not None)
    head = [line for line in repaired[: last + 1] if line is not None]
    dropped = last + 1 - len(head)
    return b"".join(head + lines[last + 1 :]) + data[end:], dropped


def _header_line(line: bytes, first: bool) -> bytes | None:
    """A header-block line as the feed parser wants it, or None if it is not a header line."""
    if line[:1] in (b" ", b"\t") or (first and line.startswith(b"From ")):
        return line
    field = _FIELD_NAME.match(line)
    if not field:
        return None
    return line if not field.group(2) else field.group(1) + line[field.end() - 1 :]


# ---------------------------------------------------------------- message id


def _message_id(mail: ParsedMail, raw: dict[str, list[str]], data: bytes) -> str:
    ids = message_ids(mail.header("message-id"))
    if not ids:
        mail.defects.append("no Message-ID: derived one from From, Date, Subject and body")
        return _derived_id(raw, data)
    if len(ids[0]) > _MAX_ID_LENGTH:
        mail.defects.append(f"Message-ID is {len(ids[0])} characters long: hashed")
        return f"{hashlib.sha256(ids[0].encode()).hexdigest()[:32]}@{DERIVED_ID_DOMAIN}"
    return ids[0]


def _derived_id(raw: dict[str, list[str]], data: bytes) -> str:
    """A stable id: the same From, Date, Subject and body bytes always give the same id."""
    digest = hashlib.sha256()
    for name in ("from", "date", "subject"):
        value = " ".join(_BREAK.sub(" ", v).strip() for v in raw.get(name, []))
        digest.update(value.encode("utf-8", "surrogateescape") + b"\0")
    start = _BODY_START.search(data)
    digest.update(data[start.end() :] if start else data)
    return f"{digest.hexdigest()[:32]}@{DERIVED_ID_DOMAIN}"


# ---------------------------------------------------------------- body


def _read_body(mail: ParsedMail, msg: Message) -> None:
    texts, kinds = [], set()
    for part, ctype in _walk(msg, 0, mail.attachments):
        text = _part_text(part, ctype, mail.defects)
        kinds.add("html" if ctype == "text/html" else "plain")
        if text.strip():
            texts.append(text.strip("\n"))
    mail.text = "\n\n".join(texts)
    mail.html_only = kinds == {"html"}
    _check_readable(mail.text)


def _walk(part: Message, depth: int, attachments: list[Attachment]) -> list[tuple[Message, str]]:
    """The parts that make up what the sender wrote, in order (RFC 2046 rules).

    Attachments met on the way, in any branch, are appended to ``attachments``.
    Forwarded mail (message/rfc822) is one attachment: its text is not the sender's.
    """
    ctype = _content_type(part)
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


def _part_text(part: Message, ctype: str, defects: list[str]) -> str:
    data = part.get_payload(decode=True)
    if not isinstance(data, bytes):
        return ""
    if len(data) > _MAX_TEXT_PART:
        defects.append(f"{ctype} part is {len(data)} bytes: only the first {_MAX_TEXT_PART} read")
        data = data[:_MAX_TEXT_PART]
    params = _params(part)
    charset = params.get("charset")
    if not charset and ctype == "text/html":
        found = _META_CHARSET.search(data[:4096])
        charset = found.group(1).decode("ascii") if found else None
    text, used = decode_bytes(data, charset)
    if charset and used != codec_name(charset):
        defects.append(f"{ctype} part: charset {charset!r} did not fit, decoded as {used}")
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "").lstrip("\ufeff")
    if ctype == "text/html":
        return html_to_text(text)
    if params.get("format", "").lower() == "flowed":
        return _unflow(text, params.get("delsp", "").lower() == "yes")
    return text


def _unflow(text: str, delsp: bool) -> str:
    """Undo format=flowed (RFC 3676): join soft-broken lines, keep the quote depth."""
    out, para, para_depth = [], None, 0
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
        para, para_depth = (body if para is None else para + body), depth
        if not soft:
            out.append(_with_quote(para, para_depth))
            para = None
    if para is not None:
        out.append(_with_quote(para, para_depth))
    return "\n".join(out)


def _with_quote(text: str, depth: int) -> str:
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


def _content_type(part: Message) -> str:
    try:
        return part.get_content_type()
    except Exception:  # an unparseable Content-Type: RFC 2045 5.2 default
        return "text/plain"


def _params(part: Message) -> dict[str, str]:
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


def _parser_defects(msg: Message) -> list[str]:
    found = []
    for part in msg.walk():
        for defect in part.defects:
            text = f"{type(defect).__name__} in {_content_type(part)}"
            if text not in found:
                found.append(text)
    return found
