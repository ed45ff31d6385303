"""Outgoing mail as bytes: headers encoded (RFC 2047) and folded, text and HTML alternatives.

Written against the standard library's encoders rather than ``EmailMessage``: the
latter's header folding of Greek display names cost about 6 ms a reply, more than
parsing and classifying the mail together, while these few lines cost a tenth.
"""

from __future__ import annotations

import base64
import uuid
from email.header import Header
from email.utils import formataddr

CRLF = "\r\n"
MAX_LINE = 78


def _one_line(header: str, *values: str) -> None:
    """Raise ValueError when a value would end the header line: a CR or LF there starts
    a header (or the body) of the sender's choosing."""
    for value in values:
        if "\r" in value or "\n" in value or "\x00" in value:
            raise ValueError(f"{header}: value contains a line break or NUL: {value[:80]!r}")


def address(header: str, name: str, addr: str) -> str:
    """The header line ``Header: Name <addr>``: the name RFC 2047-encoded when it is not
    plain ASCII, and folded so that no line passes 78 characters. Raises ValueError when
    the name or address holds a line break."""
    _one_line(header, name, addr)
    line = f"{header}: {formataddr((name, addr), charset='utf-8') if name else addr}"
    if len(line) <= MAX_LINE or not name:
        return line
    encoded = Header(name, "utf-8", maxlinelen=MAX_LINE, header_name=header).encode(linesep=CRLF)
    last = encoded.rsplit(CRLF, 1)[-1]
    glue = " " if len(last) + len(addr) + 3 <= MAX_LINE else f"{CRLF} "
    return f"{header}: {encoded}{glue}<{addr}>"


def unstructured(name: str, value: str) -> str:
    """A header line for free text (Subject): encoded and folded only when needed.
    Raises ValueError when the value holds a line break."""
    _one_line(name, value)
    line = f"{name}: {value}"
    if value.isascii() and len(line) <= MAX_LINE:
        return line
    encoded = Header(value, "utf-8", maxlinelen=MAX_LINE, header_name=name).encode(linesep=CRLF)
    return f"{name}: {encoded}"


def id_list(name: str, ids: list[str]) -> str:
    """A header of message ids (References), folded between ids."""
    _one_line(name, *ids)
    line, lines = f"{name}:", []
    for ref in ids:
        token = f"<{ref}>"
        if len(line) + 1 + len(token) > MAX_LINE and line != f"{name}:":
            lines.append(line)
            line = ""
        line += f" {token}"
    lines.append(line)
    return CRLF.join(lines)


def _base64_part(subtype: str, text: str) -> str:
    body = base64.encodebytes(text.encode("utf-8")).decode("ascii").replace("\n", CRLF)
    return (
        f'Content-Type: text/{subtype}; charset="utf-8"{CRLF}'
        f"Content-Transfer-Encoding: base64{CRLF}{CRLF}{body}"
    )


def alternative(headers: list[str], text: str, html: str) -> bytes:
    """The whole message: ``headers`` (complete lines) and a multipart/alternative body."""
    boundary = f"=_{uuid.uuid4().hex}"
    parts = [
        *headers,
        "MIME-Version: 1.0",
        f'Content-Type: multipart/alternative;{CRLF} boundary="{boundary}"',
        "",
        f"--{boundary}",
        _base64_part("plain", text),
        f"--{boundary}",
        _base64_part("html", html),
        f"--{boundary}--",
        "",
    ]
    return CRLF.join(parts).encode("ascii")
