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

No mail may stall the daemon (issue 9): every step here is linear in its input,
and what a mail contributes is capped in total, not per part: _MAX_TEXT
characters of body text, _MAX_HTML characters of HTML given to html2text,
_MAX_HEADER_FIELDS header fields, _MAX_PARTS MIME parts (the body's own caps
are in body.py). The MIME parser is
fed in slices with the mail's Budget checked between them, and again between
the later steps; a mail over it is quarantined as "too complex/slow to read".
"""

from __future__ import annotations

import hashlib
import re
from email import errors as errors_module
from email import policy
from email.feedparser import FeedParser
from email.message import Message
from itertools import islice

from ..context import READ_BUDGET_SECONDS, Budget, ParsedMail
from ..errors import ParseError
from .body import content_type, params, parser_defects, read_body
from .headers import decode_header_value, message_ids, read_envelope
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
_MAX_ID_LENGTH = 255
# Real mail has a few dozen header fields and parts; Message.get() walks all fields.
_MAX_HEADER_FIELDS = 2000
_MAX_HEADER_VALUE = 16 * 1024
_MAX_PARTS = 1000
# The MIME parser is pure Python (other threads run meanwhile) but costs up to
# 1 µs a line: the budget is checked after each slice.
_FEED_SLICE = 64 * 1024
# More than body.py reads of one text part in any transfer encoding (6 bytes a
# character at worst, quoted-printable Greek).
_MAX_SINGLE_BODY = 4 * 1024 * 1024
# Must stay as it is: derived Message-IDs of mail already stored depend on it.
_BREAK = re.compile(r"[\r\n]+")
_FIELD_NAME = re.compile(rb"([\x21-\x39\x3b-\x7e]+)([ \t]*):")
_FIELD_LINE = re.compile(rb"^[\x21-\x39\x3b-\x7e]++[ \t]*+:", re.MULTILINE)
# Only so much of the header block is repaired (junk lines between fields dropped).
_MAX_REPAIR = 256 * 1024


def parse_message(
    raw: bytes, *, max_bytes: int = MAX_BYTES, budget_seconds: float = READ_BUDGET_SECONDS
) -> ParsedMail:
    """Parse one message.

    Takes the raw bytes as fetched (any line ends) and returns a ParsedMail
    whose ``message_id`` is never empty, and whose ``budget`` holds the CPU time
    spent (classify.py goes on counting). Raises ParseError, with the reason,
    when the bytes are over ``max_bytes``, are not a mail, have no readable
    body or an unusable sender, or take more than ``budget_seconds`` to read
    ("too complex/slow to read"); never any other exception.
    """
    if not isinstance(raw, (bytes, bytearray, memoryview)):
        raise ParseError(f"message is a {type(raw).__name__}, not bytes")
    raw = bytes(raw)
    if len(raw) > max_bytes:
        raise ParseError(f"message is {len(raw)} bytes, over the limit of {max_bytes}")
    budget = Budget(budget_seconds)
    budget.start()
    try:
        mail = _parse_twice(raw, budget)
    finally:
        budget.stop()
    mail.budget = budget
    return mail


def _parse_twice(raw: bytes, budget: Budget) -> ParsedMail:
    try:
        return _parse(raw, policy.compat32, budget)
    except ParseError:
        raise
    except Exception as first:
        mail = _parse_again(raw, first, budget)
        mail.defects.append(f"compat32 parse failed ({type(first).__name__}); used policy.default")
        return mail


def _parse_again(raw: bytes, first: Exception, budget: Budget) -> ParsedMail:
    try:
        return _parse(raw, policy.default, budget)
    except ParseError:
        raise
    except Exception as exc:
        raise ParseError(
            f"the email parser failed: {type(first).__name__}: {first}; "
            f"with policy.default: {type(exc).__name__}: {exc}"
        ) from exc


def _parse(raw: bytes, mail_policy: policy.Policy, budget: Budget) -> ParsedMail:
    data, dropped = _repair_header_block(_strip_leading_junk(raw))
    msg = _mime_tree(data, mail_policy, budget)
    fallback = params(msg).get("charset")
    raw_headers = _raw_headers(msg)
    mail = ParsedMail(message_id="", raw_size=len(raw), content_type=content_type(msg))
    mail.headers = _decoded_headers(mail, raw_headers, fallback)
    read_envelope(mail, raw_headers, fallback)
    _check(budget, "the headers")
    read_body(mail, msg, budget)
    mail.message_id = _message_id(mail, raw_headers, data)
    mail.defects[:0] = parser_defects(msg)
    if dropped:
        mail.defects.append(f"skipped {dropped} malformed line(s) among the headers")
    split = split_reply(mail.text)
    mail.new_text, mail.quoted, mail.signature = split.new_text, split.quoted, split.signature
    _check(budget, "the quote and signature split")
    return mail


def _decoded_headers(
    mail: ParsedMail, raw_headers: dict[str, list[str]], fallback: str | None
) -> dict[str, list[str]]:
    """Decoded header values, each cut to _MAX_HEADER_VALUE characters (the raw values
    stay whole: derived Message-IDs depend on them)."""
    decoded = {}
    for name, values in raw_headers.items():
        decoded[name] = [decode_header_value(v[:_MAX_HEADER_VALUE], fallback) for v in values]
        longest = max(len(v) for v in values)
        if longest > _MAX_HEADER_VALUE:
            mail.defects.append(
                f"{name} header is {longest} characters: only the first {_MAX_HEADER_VALUE} read"
            )
    return decoded


def _check(budget: Budget, step: str) -> None:
    reason = budget.overrun(step)
    if reason:
        raise ParseError(reason)


def _mime_tree(data: bytes, mail_policy: policy.Policy, budget: Budget) -> Message:
    """The stdlib's MIME tree of ``data``, fed in slices with the budget checked between.

    As BytesParser.parsebytes, which feeds a FeedParser 8 KB at a time; raises
    ParseError when the header block or the number of parts is past its limit.
    """
    _check_header_fields(data)
    msg = _single_text_part(data, mail_policy) or _feed(data, mail_policy, budget)
    if len(msg) > _MAX_HEADER_FIELDS:
        _too_many_fields(str(len(msg)))
    parts = sum(1 for _ in islice(msg.walk(), _MAX_PARTS + 1))
    if parts > _MAX_PARTS:
        raise ParseError(f"too complex/slow to read: more than {_MAX_PARTS} MIME parts, the limit")
    return msg


def _feed(data: bytes, mail_policy: policy.Policy, budget: Budget) -> Message:
    text = data.decode("ascii", errors="surrogateescape")
    parser = FeedParser(policy=mail_policy)
    for start in range(0, len(text), _FEED_SLICE):
        parser.feed(text[start : start + _FEED_SLICE])
        _check(budget, f"MIME parsing ({start + _FEED_SLICE} of {len(text)} bytes)")
    return parser.close()


def _single_text_part(data: bytes, mail_policy: policy.Policy) -> Message | None:
    """The tree of a one-part text mail whose body is over _MAX_SINGLE_BODY, or None.

    The feed parser splits a body into lines only to join them again as the payload
    (up to 1 µs a line: 25 MB of short lines is some 15 s). So the header block alone
    is parsed and the payload set to the start of the body: the same tree, without
    the bytes body.py would never read.
    """
    end, body = _body_start(data)
    if len(data) - body <= _MAX_SINGLE_BODY:
        return None
    parser = FeedParser(policy=mail_policy)
    parser.feed(data[:body].decode("ascii", errors="surrogateescape"))
    msg = parser.close()
    # A payload already means lines the parser took for body before the blank line.
    if msg.is_multipart() or msg.get_payload() or content_type(msg).partition("/")[0] != "text":
        return None
    # At a line end: a cut inside a base64 line would make the whole payload undecodable.
    cut = data.rfind(b"\n", body, body + _MAX_SINGLE_BODY) + 1 or body + _MAX_SINGLE_BODY
    msg.set_payload(data[body:cut].decode("ascii", "surrogateescape"))
    msg.defects.append(BodyReadInPart(f"{len(data) - body} bytes, {_MAX_SINGLE_BODY} read"))
    return msg


class BodyReadInPart(errors_module.MessageDefect):
    """The body of a one-part text mail was read only in part (see _single_text_part)."""


def _check_header_fields(data: bytes) -> None:
    """ParseError when the header block has more than _MAX_HEADER_FIELDS fields.

    Counting newlines and colons is cheap (C speed); fields are only matched when
    both are many, and then within the first _MAX_REPAIR bytes (the parsed tree's
    field count is checked too, in _mime_tree).
    """
    end = _body_start(data)[0]
    if min(data.count(b"\n", 0, end), data.count(b":", 0, end)) <= _MAX_HEADER_FIELDS:
        return
    fields = _FIELD_LINE.finditer(data, 0, min(end, _MAX_REPAIR))
    if next(islice(fields, _MAX_HEADER_FIELDS, None), None) is not None:
        _too_many_fields(f"more than {_MAX_HEADER_FIELDS}")


def _too_many_fields(count: str) -> None:
    raise ParseError(
        f"too complex/slow to read: {count} header fields, over the limit of {_MAX_HEADER_FIELDS}"
    )


def _raw_headers(msg: Message) -> dict[str, list[str]]:
    """Raw header values by lower-case name; ParseError when none is a mail header."""
    raw_headers: dict[str, list[str]] = {}
    for name, value in msg.raw_items():
        raw_headers.setdefault(name.strip().lower(), []).append(str(value))
    if _MAIL_HEADERS.isdisjoint(raw_headers):
        raise ParseError(
            "no mail header found (no From, To, Date, Subject, Message-ID, Received "
            "or Content-Type): not an RFC 5322 message"
        )
    return raw_headers


def _body_start(data: bytes) -> tuple[int, int]:
    """(where the blank line after the header block starts, where the body starts), or
    (len, len) when there is none: the first of "\r?\n\r?\n" and "\r\r".

    With bytes.find, not that regular expression: it cost 150 ns a byte (0.3 s for a
    2 MB header block, all of it holding the GIL), find a hundredth of that.
    """
    found = [(len(data), len(data))]
    for pair in (b"\n\n", b"\n\r\n", b"\r\r"):
        at = data.find(pair)
        if at >= 0:
            start = at - 1 if pair[0] == 10 and at and data[at - 1] == 13 else at
            found.append((start, at + len(pair)))
    return min(found)


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
    end = _body_start(data)[0]
    if end > _MAX_REPAIR:
        # Only the start is repaired: past it, a header block this long is junk or body.
        end = data.rfind(b"\n", 0, _MAX_REPAIR) + 1 or _MAX_REPAIR
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
    end, body = _body_start(data)
    digest.update(data[body:] if end < len(data) else data)
    return f"{digest.hexdigest()[:32]}@{DERIVED_ID_DOMAIN}"
