"""Decode raw header values into text, addresses, dates and message ids.

Headers are decoded here from their raw values, not with policy.default's
header objects: unfolded, stray 8-bit bytes decoded (UTF-8, then the message's
charset, windows-1253, latin-1), RFC 2047 words decoded with the whitespace
between adjacent words dropped (RFC 2047 section 6.2; CPython 3.11's
policy.default keeps it in display names), and a run of words in one charset
decoded together (a character may be split over two words). Nothing here
raises on group syntax or CR/LF in encoded words.
"""

from __future__ import annotations

import binascii
import re
from datetime import UTC, datetime
from email.utils import getaddresses, parsedate_to_datetime

from .charsets import decode_bytes
from .message import ParsedMail

_MAX_ADDRESS_HEADER = 32 * 1024

_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?]*)\?=")
_FOLD = re.compile(r"(?:\r\n|\r|\n)(?=[ \t])")
_BREAK = re.compile(r"[\r\n]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_MSG_ID = re.compile(r"<\s*([^<>\s][^<>]*?)\s*>")
_ADDR_SPEC = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+")
_SIMPLE_ADDRESS = re.compile(
    r"\s*(?:([^<>@,]*?)\s*<([^<>\s@]+@[^<>\s@]+)>|<?([^<>\s@]+@[^<>\s@]+?)>?)\s*"
)


def decode_header_value(value: str, fallback: str | None = None) -> str:
    """A raw header value as one line of text: unfolded, 8-bit and RFC 2047 decoded."""
    text = _unfold(value, fallback)
    if "=?" in text:
        text = _decode_words(text)
    return (text if text.isprintable() else _CONTROL.sub(" ", text)).strip()


def _unfold(value: str, fallback: str | None) -> str:
    """Unfold a raw value and decode any raw 8-bit bytes in it (kept as surrogates)."""
    text = _BREAK.sub(" ", _FOLD.sub("", value)) if "\n" in value or "\r" in value else value
    if not text.isascii():
        data = text.encode("utf-8", "surrogateescape")
        text = decode_bytes(data, None, first_guess=fallback)[0]
    return text


def _decode_words(text: str) -> str:
    out: list[str] = []
    run, run_charset = b"", ""
    pos, after_word = 0, False
    for match in _ENCODED_WORD.finditer(text):
        gap = text[pos : match.start()]
        # RFC 2047 6.2: whitespace between two adjacent encoded-words is not displayed.
        keep_gap = bool(gap) and not (after_word and gap.isspace())
        charset = match.group(1).split("*", 1)[0].lower()
        data = _word_bytes(match.group(2), match.group(3))
        if keep_gap or data is None or charset != run_charset:
            out.append(decode_bytes(run, run_charset)[0] if run else "")
            run = b""
        if keep_gap:
            out.append(gap)
        if data is None:
            out.append(match.group(0))
        else:
            run += data
        run_charset, after_word, pos = charset, data is not None, match.end()
    out.append(decode_bytes(run, run_charset)[0] if run else "")
    out.append(text[pos:])
    return "".join(out)


def _word_bytes(encoding: str, payload: str) -> bytes | None:
    """The bytes of one encoded-word, or None when it is broken (it is then kept as is)."""
    try:
        if encoding in "bB":
            return binascii.a2b_base64(payload + "=" * (-len(payload) % 4))
        return binascii.a2b_qp(payload.encode("utf-8", "surrogateescape"), header=True)
    except (binascii.Error, ValueError):
        return None


def read_envelope(mail: ParsedMail, raw: dict[str, list[str]], fallback: str | None) -> None:
    """Fill the sender, recipients, subject, date and thread ids of ``mail``.

    Takes the raw header values by lower-case name (``mail.headers`` must
    already hold them decoded) and the message's charset for stray 8-bit bytes.
    An unreadable Date is recorded in ``mail.defects``; nothing is raised.
    """
    senders = _addresses(raw.get("from", []), fallback)
    if senders:
        mail.from_name, mail.from_addr = senders[0]
    else:
        found = _ADDR_SPEC.search(mail.header("from"))
        mail.from_addr = found.group(0).lower() if found else ""
    mail.to = [addr for _, addr in _addresses(raw.get("to", []), fallback)]
    mail.cc = [addr for _, addr in _addresses(raw.get("cc", []), fallback)]
    reply_to = _addresses(raw.get("reply-to", []), fallback)
    mail.reply_to = reply_to[0][1] if reply_to else ""
    mail.subject = mail.header("subject")
    mail.date = _date(mail.header("date"), mail.defects)
    in_reply_to = message_ids(mail.header("in-reply-to"))
    mail.in_reply_to = in_reply_to[0] if in_reply_to else ""
    mail.references = message_ids(" ".join(mail.headers.get("references", [])))


def _addresses(values: list[str], fallback: str | None) -> list[tuple[str, str]]:
    """(display name, lower-case address) pairs; names decoded after splitting the list."""
    if not values:
        return []
    text = ", ".join(_unfold(value, fallback) for value in values)
    simple = _simple_addresses(text)
    if simple is not None:
        return simple
    try:
        if len(text) > _MAX_ADDRESS_HEADER:
            raise ValueError("too long for the address parser")
        found = getaddresses([text])
    except (ValueError, RecursionError):
        # email.utils recurses on some huge headers: keep the bare addresses.
        found = [("", addr) for addr in _ADDR_SPEC.findall(text)]
    pairs = []
    for name, addr in found:
        addr = addr.strip().lower()
        if addr and not addr.startswith("@") and not addr.endswith("@") and " " not in addr:
            pairs.append((decode_header_value(name), addr))
    return pairs


def _simple_addresses(text: str) -> list[tuple[str, str]] | None:
    """The common forms "Name <addr>" and "addr", comma-separated, without the slow
    general parser; None when anything else (quotes, groups, comments) is present."""
    if any(c in text for c in '"();:\\'):
        return None
    pairs = []
    for item in text.split(","):
        found = _SIMPLE_ADDRESS.fullmatch(item)
        if not found:
            if item.strip():
                return None
            continue
        name, addr = found.group(1) or "", found.group(2) or found.group(3)
        pairs.append((decode_header_value(name), addr.lower()))
    return pairs


def _date(value: str, defects: list[str]) -> datetime | None:
    if not value:
        return None
    try:
        date = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        defects.append(f"Date header not understood: {value[:80]!r}")
        return None
    # RFC 5322 "-0000" means no known zone: read it as UTC so every date is aware.
    return date if date.tzinfo else date.replace(tzinfo=UTC)


def message_ids(value: str) -> list[str]:
    """Message ids without angle brackets; bare tokens when nobody used brackets."""
    found = _MSG_ID.findall(value)
    if found:
        return found
    return [token for token in (t.strip("<>") for t in value.split()) if token]
