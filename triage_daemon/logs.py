"""Logging set-up: one line per record, mail text escaped, secrets redacted, libraries capped.

Log lines carry text that strangers wrote (addresses, subjects, server replies), so
control characters are escaped (a newline would forge a line, an ESC would drive the
terminal of whoever tails the log). Passwords and database URLs must never reach a log:
every record is redacted, whatever logger wrote it. Third-party loggers stay at WARNING
even under --log-level debug: imapclient's debug logger prints whole fetched messages
and sqlalchemy's the bound parameters, i.e. the teachers' mail.
"""

from __future__ import annotations

import logging
import re
import sys
import traceback
from collections.abc import Iterable
from typing import TextIO

from .safe_text import visible

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Loggers of libraries that log message contents or credentials when verbose.
CAPPED = (
    "imapclient",  # "imapclient.imaplib" shows every command and literal
    "aiosmtplib",
    "mail.log",  # aiosmtpd (the demo's SMTP server)
    "mail.debug",
    "pymap",  # the demo's IMAP server
    "sqlalchemy",  # statements with their parameters (raw mail in the outbox)
    "alembic",
    "asyncio",
)
CAPPED_LEVEL = logging.WARNING
REDACTED = "***"
# Secrets shorter than this are not replaced wherever they occur: a password "x" would
# blank every x in the log. They are still removed where a pattern shows them (below).
MIN_SECRET_LENGTH = 4
# user:secret@ in a URL (not the placeholder of a hint, "user:password@"); password=...
# and "password": ... in messages. Every run is bounded: log lines hold mail text, and an
# unbounded scheme tried at each letter of "b+b+b+..." takes quadratic time.
_URL_PASSWORD = re.compile(
    r"(?P<head>\b[a-z][a-z0-9+.\-]{0,31}://[^:/@\s]{0,256}:)(?!password@)[^@\s/]{0,256}"
    r"(?P<tail>@)",
    re.I,
)
_KEY_VALUE = re.compile(
    r"(?P<head>\b(?:password|passwd|pwd|secret|token)\b['\"]?\s{0,8}[=:]\s{0,8}['\"]?)"
    r"[^\s'\",;)]{1,256}",
    re.I,
)

_secrets: set[str] = set()


def add_secrets(values: Iterable[str]) -> None:
    """Redact these values from every log line from now on (passwords, URL passwords)."""
    _secrets.update(str(v) for v in values if v and len(str(v)) >= MIN_SECRET_LENGTH)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` without URL passwords, ``password=...`` values, the registered secrets and
    ``secrets`` (each replaced by ***)."""
    text = _URL_PASSWORD.sub(rf"\g<head>{REDACTED}\g<tail>", text)
    text = _KEY_VALUE.sub(rf"\g<head>{REDACTED}", text)
    known = {str(s) for s in secrets if s and len(str(s)) >= MIN_SECRET_LENGTH} | _secrets
    # Longest first, so that a secret containing another is replaced whole.
    for secret in sorted(known, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


def secrets_of(settings) -> list[str]:
    """Every secret in ``settings``: mailbox and SMTP passwords, the database password."""
    values = [box.imap.password for box in settings.mailboxes] + [settings.smtp.password]
    url_password = _database_password(settings.database)
    return [v for v in [*values, url_password] if v]


def _database_password(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).password or ""
    except Exception:  # an invalid URL: config.py reports it; nothing to learn here
        return ""


class SafeFormatter(logging.Formatter):
    """A Formatter whose lines cannot be forged and show no secret."""

    def format(self, record: logging.LogRecord) -> str:
        # Formatter.format, except that the traceback is never taken from record.exc_text:
        # another handler may have cached its own, unescaped, rendering there.
        record.message = visible(record.getMessage())
        if self.usesTime():
            record.asctime = self.formatTime(record, self.datefmt)
        text = self.formatMessage(record)
        if record.exc_info:
            text += "\n" + safe_traceback(record.exc_info)
        elif record.exc_text:
            text += "\n" + visible(record.exc_text, keep="\n")
        if record.stack_info:
            text += "\n" + visible(self.formatStack(record.stack_info), keep="\n")
        return redact(text)


def safe_traceback(ei) -> str:
    """The traceback of ``ei`` (type, value, traceback): its frames keep their lines, but
    each exception's own text ("ValueError: <message>", where a subject or an address
    may stand) is escaped whole, newlines included, as a message is."""
    exc = traceback.TracebackException(*ei)
    messages = set(_exception_lines(exc))
    parts = []
    for chunk in exc.format():
        if chunk in messages:
            parts.append(visible(chunk.rstrip("\n")) + "\n")
        else:
            parts.append(visible(chunk, keep="\n"))
    return "".join(parts).rstrip("\n")


def _exception_lines(exc: traceback.TracebackException, seen: set[int] | None = None):
    """format_exception_only() of ``exc`` and of every exception chained to it."""
    seen = seen if seen is not None else set()
    if id(exc) in seen:
        return
    seen.add(id(exc))
    yield from exc.format_exception_only()
    for chained in (exc.__cause__, exc.__context__):
        if chained is not None:
            yield from _exception_lines(chained, seen)


def setup(level: str = "info", stream: TextIO | None = None) -> logging.Handler:
    """Log to ``stream`` (stderr) at ``level``, through SafeFormatter; returns the handler.

    Raises ValueError naming the level when it is not one of debug, info, warning, error.
    """
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"log level {level!r} is not one of debug, info, warning, error")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(SafeFormatter(FORMAT))
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "triage_daemon", False)]:
        root.removeHandler(old)
    handler.triage_daemon = True  # type: ignore[attr-defined]  # so a second setup replaces it
    root.addHandler(handler)
    root.setLevel(numeric)
    cap_libraries()
    return handler


def cap_libraries(level: int = CAPPED_LEVEL) -> None:
    """Keep the loggers in CAPPED at ``level`` or quieter, whatever the root level."""
    for name in CAPPED:
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET or logger.level < level:
            logger.setLevel(level)
