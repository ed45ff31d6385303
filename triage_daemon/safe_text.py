"""Mail text made harmless where it goes: one line in a reply, visible escapes on a terminal.

A sender controls every byte of a name or a subject. In our reply a U+2028 (LINE
SEPARATOR) breaks a greeting into lines; on a terminal an ESC byte starts an escape
sequence, and a bidi override (U+202E) shows text in another order than it is read
("Trojan Source", CVE-2021-42574); in a log, a newline forges a line of its own.
"""

from __future__ import annotations

import json
import re

# Characters that end a line for str.splitlines() or for a mail reader, besides \r\n.
_LINE_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
# Explicit bidi embeddings, overrides and isolates (Unicode TR 9): they reorder what follows.
_BIDI_CONTROLS = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
_UNSAFE_LINE = re.compile(rf"[\x00-\x1f\x7f-\x9f{_LINE_BREAKS}{_BIDI_CONTROLS}]+")
_SPACES = re.compile(r"\s{2,}")


def one_line(text: str, limit: int | None = None) -> str:
    """``text`` as one line of plain text: line breaks, control and bidi characters become
    a space, runs of spaces one space; cut to ``limit`` characters (with '…') if given."""
    line = _SPACES.sub(" ", _UNSAFE_LINE.sub(" ", text)).strip()
    if limit is not None and len(line) > limit:
        line = line[: max(limit - 1, 0)].rstrip() + "…"
    return line


# Cc (C0 and C1 controls: ESC, CSI, BEL ...), Zl and Zp (line and paragraph separators)
# and the bidi controls: what a terminal acts on instead of showing.
_UNSAFE_FOR_TERMINAL = re.compile(f"[\x00-\x1f\x7f-\x9f\u2028\u2029{_BIDI_CONTROLS}]")


def _escape(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(text: str, keep: str = "") -> str:
    """``text`` with every control, line-break and bidi character written as an escape
    (``\\x1b``, ``\\u2028``), so it shows as what it is and moves no cursor; the
    characters in ``keep`` (e.g. '\\n' for a traceback) are left as they are."""
    # Every character it escapes is non-printable (bidi controls are category Cf).
    if text.isprintable():
        return text
    return _UNSAFE_FOR_TERMINAL.sub(
        lambda m: m.group(0) if m.group(0) in keep else _escape(m.group(0)), text
    )


# Characters json.dumps(ensure_ascii=False) leaves raw that a terminal acts on: DEL and
# the C1 controls (0x9b is CSI), line separators, bidi controls.
_JSON_UNSAFE = re.compile(rf"[\x7f-\x9f\u2028\u2029{_BIDI_CONTROLS}]")


def json_text(value, **options) -> str:
    """``json.dumps(value, ensure_ascii=False, **options)`` with the characters above
    written as \\uXXXX escapes: the same JSON document, safe to print."""
    text = json.dumps(value, ensure_ascii=False, **options)
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group(0)):04x}", text)
