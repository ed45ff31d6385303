"""Turn an HTML mail body into plain readable text with html2text.

html2text is configured for text a person or a classifier reads, not for
Markdown: no emphasis marks, links and images reduced to their visible text,
no "#" heading marks, no table pipes, no line wrapping. Blockquotes keep their
"> " prefix on purpose: quotes.py uses it to find quoted earlier mail.
html2text still escapes a few Markdown characters ("1\\.", "\\-", "\\+" at the
start of each text chunk, and a backslash before a Markdown character), which
would hide separators such as "-----Original Message-----"; _unescape() undoes
exactly those escapes. Table cells are separated by a space (html2text's
ignore_tables mode would glue "a" and "b" into "ab").

html2text was kept (over lxml's text_content or a hand-written HTMLParser)
because it already knows block versus inline tags, <br>, lists, <pre>,
entities and hidden <style>/<script>/<head> content.
"""

from __future__ import annotations

import html
import re

import html2text

# Tags whose Markdown rendering we do not want: headings become plain
# paragraphs and a horizontal rule becomes a paragraph break.
_PLAIN_BLOCKS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6", "hr"})

# Scanned left to right: a doubled backslash before a Markdown character was
# one backslash in the HTML; a lone backslash before "-", "+" or "." was added.
_ESCAPES = re.compile(
    r"\\(\\)(?=[" + re.escape(html2text.config.RE_SLASH_CHARS) + r"])|\\(?=[-+.])"
)
_EDGE_SPACE = re.compile(r"^[ \t]+|[ \t]+$", re.MULTILINE)
_BLANK_RUNS = re.compile(r"\n{3,}")
_TAG = re.compile(r"<[^>]*>")
_BREAK_TAG = re.compile(r"<(?:br|p|div|tr|li|h[1-6]|blockquote)\b[^>]*>", re.IGNORECASE)
_HIDDEN = re.compile(r"<(style|script|head)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)


def _plain_block(converter: html2text.HTML2Text, tag: str, attrs: dict, start: bool) -> bool:
    """html2text tag callback: plain paragraphs for headings and <hr>, spaces between cells."""
    if tag in ("td", "th") and start:
        converter.o(" ")
        return False
    if tag not in _PLAIN_BLOCKS:
        return False
    converter.p()
    return True


def _converter() -> html2text.HTML2Text:
    converter = html2text.HTML2Text()
    converter.body_width = 0
    converter.unicode_snob = True
    converter.ignore_emphasis = True
    converter.ignore_links = True
    converter.ignore_images = True
    converter.ignore_tables = True
    converter.single_line_break = False
    converter.ul_item_mark = "-"
    converter.tag_callback = _plain_block
    return converter


def _unescape(text: str) -> str:
    return _ESCAPES.sub(lambda match: match.group(1) or "", text)


def html_to_text(markup: str) -> str:
    """Return the visible text of ``html`` with paragraphs kept, as plain text.

    Never raises: html.parser (under html2text) raises AssertionError on some
    broken markup such as "<![foo"; such HTML falls back to stripping tags.
    A converter is made per call because HTML2Text keeps state.
    """
    try:
        text = _unescape(_converter().handle(markup))
    except Exception:
        text = _BREAK_TAG.sub("\n", _HIDDEN.sub(" ", markup))
        text = html.unescape(_TAG.sub(" ", text))
    text = text.replace("\xa0", " ")
    # Leading spaces are list indentation and cell separators; not worth keeping.
    text = _EDGE_SPACE.sub("", text)
    return _BLANK_RUNS.sub("\n\n", text).strip("\n")
