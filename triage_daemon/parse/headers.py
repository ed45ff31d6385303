"""Decode raw header values into text, addresses, dates and message ids.

Headers are decoded here from their raw values, not with policy.default's
header objects: unfolded, stray 8-bit bytes decoded (UTF-8, then the message's
charset, windows-1253, latin-1), RFC 2047 words decoded with the whitespace
between adjacent words dropped (RFC 2047 section 6.2; CPython 3.11's
policy.default keeps it in display names), and a run of words in one charset
decoded together (a character may be split over two words). Nothing here
raises on group syntax or CR/LF in encoded words.

Every step is linear in the header's length (issue 9: a From of '"' and 300 KB
of "a", or a Message-ID with 60,000 spaces, took seconds to minutes): the
regular expressions below never rescan what another attempt already scanned
(possessive quantifiers, no lazy group followed by an overlapping one), and
the stdlib's address parser, slow on hostile input, only sees short headers.
Decoded text keeps no line or paragraph separator or control character
(U+2028 in a name split the greeting of a reply), and an address with a
control character is never used (aiosmtplib refuses it when sending).
"""

from __future__ import annotations

import binascii
import re
from datetime import UTC, datetime
from email.utils import getaddresses, parsedate_to_datetime

from ..context import ParsedMail
from ..errors import ParseError
from .charsets import decode_bytes

# email.utils.getaddresses costs some 25 µs a character on hostile headers ("@@@...",
# "<<<..."); a longer list is read for its bare addresses (the names of To and Cc are
# not used, and no real From is that long).
_MAX_ADDRESS_HEADER = 2 * 1024

_ENCODED_WORD = re.compile(r"=\?([^?\s]++)\?([bBqQ])\?([^?]*+)\?=")
_FOLD = re.compile(r"(?:\r\n|\r|\n)(?=[ \t])")
_BREAK = re.compile(r"[\r\n]+")
# C0 and C1 controls, and the line and paragraph separators U+2028 and U+2029.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
# Each "<" scans to the next "<" or ">" only: linear (the id is stripped afterwards).
_MSG_ID = re.compile(r"<([^<>]*+)>")
_LOCAL_CHARS = r"\w.!#$%&'*+/=?^`{|}~-"
# Starts only where a run of local-part characters starts, and takes the run whole:
# every character is scanned once (from every start of the run, it was quadratic).
_ADDR_SPEC = re.compile(rf"(?<![{_LOCAL_CHARS}])[{_LOCAL_CHARS}]++@[\w-]++(?:\.[\w-]++)+")
_BARE_ADDRESS = re.compile(r"[^<>\s@]+@[^<>\s@]+")


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
    # The bytes of a run of words in one charset, joined once (bytes += copied each time).
    run: list[bytes] = []
    run_charset = ""
    pos, after_word = 0, False
    for match in _ENCODED_WORD.finditer(text):
        gap = text[pos : match.start()]
        # RFC 2047 6.2: whitespace between two adjacent encoded-words is not displayed.
        keep_gap = bool(gap) and not (after_word and gap.isspace())
        charset = match.group(1).split("*", 1)[0].lower()
        data = _word_bytes(match.group(2), match.group(3))
        if keep_gap or data is None or charset != run_charset:
            out.append(_decode_run(run, run_charset))
            run = []
        if keep_gap:
            out.append(gap)
        if data is None:
            out.append(match.group(0))
        else:
            run.append(data)
        run_charset, after_word, pos = charset, data is not None, match.end()
    out.append(_decode_run(run, run_charset))
    out.append(text[pos:])
    return "".join(out)


def _decode_run(run: list[bytes], charset: str) -> str:
    return decode_bytes(b"".join(run), charset)[0] if run else ""


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
    An unreadable Date, and To, Cc or Reply-To addresses refused for control
    characters, are recorded in ``mail.defects``. Raises ParseError when the
    From address has a control character: no reply could ever be sent to it.
    """
    senders = _addresses(raw.get("from", []), fallback)
    refused = _refused(senders)
    if refused:
        raise ParseError(
            f"the From address {refused[0]!r} has control characters: refused "
            "(a reply could not be sent to it)"
        )
    if senders:
        mail.from_name, mail.from_addr = senders[0]
    else:
        found = _ADDR_SPEC.search(mail.header("from"))
        mail.from_addr = found.group(0).lower() if found else ""
    mail.to = _usable(mail, "To", _addresses(raw.get("to", []), fallback))
    mail.cc = _usable(mail, "Cc", _addresses(raw.get("cc", []), fallback))
    reply_to = _usable(mail, "Reply-To", _addresses(raw.get("reply-to", []), fallback))
    mail.reply_to = reply_to[0] if reply_to else ""
    mail.subject = mail.header("subject")
    mail.date = _date(mail.header("date"), mail.defects)
    in_reply_to = message_ids(mail.header("in-reply-to"))
    mail.in_reply_to = in_reply_to[0] if in_reply_to else ""
    mail.references = message_ids(" ".join(mail.headers.get("references", [])))


def _refused(pairs: list[tuple[str, str]]) -> list[str]:
    """The addresses of ``pairs`` that hold a control character (or U+2028/U+2029)."""
    return [addr for _, addr in pairs if _CONTROL.search(addr)]


def _usable(mail: ParsedMail, header: str, pairs: list[tuple[str, str]]) -> list[str]:
    """The addresses of ``pairs`` without control characters; the others become defects."""
    refused = _refused(pairs)
    if refused:
        mail.defects.append(
            f"{header}: refused {len(refused)} address(es) with control characters, "
            f"such as {refused[0]!r}"
        )
    return [addr for _, addr in pairs if addr not in refused]


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
    """The common forms "Name <addr>", "<addr>" and "addr", comma-separated, without the
    slow general parser; None when anything else (quotes, groups, comments) is present."""
    if any(c in text for c in '"();:\\'):
        return None
    pairs = []
    for item in text.split(","):
        if not item.strip():
            continue
        found = _simple_address(item.strip())
        if found is None:
            return None
        pairs.append((decode_header_value(found[0]), found[1].lower()))
    return pairs


def _simple_address(item: str) -> tuple[str, str] | None:
    """(name, address) of "Name <addr>", "<addr>", "addr" (a stray bracket allowed at
    either end of a bare address), or None. String methods: linear, no backtracking."""
    name, bracket, rest = item.partition("<")
    if bracket and name and rest.endswith(">") and not any(c in name for c in "<>@"):
        name, addr = name.rstrip(), rest[:-1]
    elif not name:
        name, addr = "", rest.removesuffix(">")
    else:
        name, addr = "", item.removesuffix(">")
    return (name, addr) if _BARE_ADDRESS.fullmatch(addr) else None


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
    found = [inner.strip() for inner in _MSG_ID.findall(value)]
    found = [inner for inner in found if inner]
    if found:
        return found
    return [token for token in (t.strip("<>") for t in value.split()) if token]
