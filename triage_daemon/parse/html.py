"""Turn an HTML mail body into plain readable text with html2text, in time linear in the HTML.

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

But html2text and the html.parser under it are not linear on hostile markup
(issue 9), so the markup is first flattened by flatten() in one left-to-right
pass, and html2text only ever sees what it handles in linear time:

- list and blockquote nesting is cut at _MAX_DEPTH: html2text indents each
  list item and prefixes each quoted line by the depth, so 16 KB of nested
  <ol><li> became 6 MB of indentation;
- only the tags html2text, configured as here, does something with are kept,
  without their attributes (it reads none that matter here): html2text costs
  5-30 µs a tag, and Outlook's HTML is mostly <span>, <font> and <o:p>; <abbr>
  goes too (html2text appends all text inside it to one string, a copy per
  piece); past _MAX_TAGS kept tags the rest of the markup is not read;
- comments, declarations, processing instructions and <style>/<script> are
  removed (html.parser raises on "<![foo" and is quadratic on some unclosed
  constructs before CPython 3.11.13), and a "<" that starts no tag is escaped;
- character references are decoded here (one html2text call per entity made
  1 MB of "x&nbsp;" cost 98 s), except "&", "<" and ">", which stay escaped.
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
_BLANK_RUNS = re.compile(r"\n{3,}")
# Deeper nesting adds nothing a reader needs; html2text's output grows with depth per line.
_MAX_DEPTH = 12
_NESTING = {"ol": "list", "ul": "list", "blockquote": "quote"}
# Tags dropped with everything up to their end tag (the content is not text to read).
_HIDDEN = frozenset({"style", "script"})
# The tags html2text does something with, with emphasis, links, images and <sup>/<sub>
# ignored as configured below; any other tag is dropped, its text kept.
_KEPT = frozenset(
    "p div br hr h1 h2 h3 h4 h5 h6 blockquote ol ul li dl dt dd pre table tr td th "
    "head body q del strike s kbd code tt".split()
)
# A long thread in HTML has a few thousand; html2text needs 5-30 µs for each.
_MAX_TAGS = 10_000
# A tag: "<" or "</", a name, then anything up to ">" that is not another "<". Stopping
# at "<" keeps every scan within one stretch between two "<", and the possessive
# quantifiers never give back what they took: linear in the markup.
_TAG = re.compile(r"<(/?)([A-Za-z][^\s/<>]*+)[^<>]*+>")
_END_TAG = {name: re.compile(rf"</{name}[\s/>]", re.IGNORECASE) for name in _HIDDEN}
# HTML5 character references (the same shapes as html.unescape reads).
_CHARREF = re.compile(r"&(?:#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)")
# Tags the fallback turns into a line break.
_BREAKING = frozenset({"br", "p", "div", "tr", "li", "blockquote"})
_LAST_CODE_POINT_DIGITS = 8


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


def html_to_text(markup: str, defects: list[str] | None = None) -> str:
    """Return the visible text of ``markup`` with paragraphs kept, as plain text.

    Linear in the length of ``markup`` (see the module docstring); never raises:
    should html2text fail anyway, the tags are stripped instead. A converter is
    made per call because HTML2Text keeps state. When markup past _MAX_TAGS tags
    is left unread, that is said in ``defects``.
    """
    flat, unread = flatten(markup)
    if unread and defects is not None:
        defects.append(f"text/html part: {unread} characters after {_MAX_TAGS} tags not read")
    try:
        text = _unescape(_converter().handle(flat))
    except Exception:  # noqa: BLE001 - any html2text failure: strip the tags instead
        text = html.unescape(_TAG.sub(_tag_break, flat))
    text = text.replace("\xa0", " ")
    # Leading spaces are list indentation and cell separators; not worth keeping.
    # (str.strip per line: the regex "[ \t]+$" rescanned each run once per space.)
    text = "\n".join(line.strip(" \t") for line in text.split("\n"))
    return _BLANK_RUNS.sub("\n\n", text).strip("\n")


def _tag_break(match: re.Match[str]) -> str:
    """For the fallback: a line break for block tags, a space for the others."""
    name = match.group(2).lower()
    return "\n" if name in _BREAKING or name in _PLAIN_BLOCKS else " "


def flatten(markup: str) -> tuple[str, int]:
    """(``markup`` reduced to attribute-free tags, escaped text and bounded nesting,
    the number of characters left unread after _MAX_TAGS tags).

    One pass from left to right: every construct is scanned once, so the time is
    linear in ``markup``. See the module docstring for what is removed and why.
    """
    out: list[str] = []
    depth = _Depth()
    pos, end, tags = 0, len(markup), 0
    while pos < end:
        lt = markup.find("<", pos)
        if lt < 0:
            out.append(_text(markup[pos:]))
            pos = end
            break
        out.append(_text(markup[pos:lt]))
        tag = _TAG.match(markup, lt)
        if tag:
            piece, pos = _tag(markup, tag, depth)
            out.append(piece)
            tags += bool(piece)
            if tags >= _MAX_TAGS:
                break
        else:
            pos = _skip_markup(markup, lt)
            if pos == lt + 1:
                out.append("&lt;")
    return "".join(out), max(0, end - pos)


def _tag(markup: str, tag: re.Match[str], depth: _Depth) -> tuple[str, int]:
    """(what to keep of one tag, where to go on)."""
    closing, name = tag.group(1), tag.group(2).lower()
    if name in _HIDDEN and not closing:
        found = _END_TAG[name].search(markup, tag.end())
        # HTML5: an unclosed <script> or <style> runs to the end of the document.
        return "", (markup.find(">", found.start()) + 1 or len(markup)) if found else len(markup)
    if name not in _KEPT or not depth.keep(name, bool(closing)):
        return "", tag.end()
    return f"<{closing}{name}>", tag.end()


def _skip_markup(markup: str, lt: int) -> int:
    """Where to go on after a "<" that starts no tag: past a comment, declaration or
    processing instruction (dropped), else just past the "<" (escaped by the caller)."""
    if markup.startswith("<!--", lt):
        if markup.startswith(("<!-->", "<!--->"), lt):
            return markup.find(">", lt) + 1
        close = markup.find("-->", lt + 4)
        # HTML5: an unclosed comment runs to the end of the document.
        return close + 3 if close >= 0 else len(markup)
    # "<!x", "<?x" and "</" without a letter are bogus comments up to the next ">" (HTML5).
    if markup.startswith(("<!", "<?", "</"), lt):
        close = markup.find(">", lt + 2)
        return close + 1 if close >= 0 else len(markup)
    return lt + 1


class _Depth:
    """Open list and blockquote tags, as html2text counts them; tags past _MAX_DEPTH are
    dropped with their matching end tags."""

    def __init__(self) -> None:
        self.open = {"list": 0, "quote": 0}
        self.dropped = {"list": 0, "quote": 0}

    def keep(self, name: str, closing: bool) -> bool:
        kind = _NESTING.get(name)
        if kind is None:
            return True
        if closing:
            if self.dropped[kind]:
                self.dropped[kind] -= 1
                return False
            if not self.open[kind]:
                return False  # an end tag with nothing open: html2text would count below 0
            self.open[kind] -= 1
            return True
        if self.open[kind] >= _MAX_DEPTH:
            self.dropped[kind] += 1
            return False
        self.open[kind] += 1
        return True


def _text(text: str) -> str:
    """Text between tags with its character references decoded, "&", "<", ">" escaped."""
    if "&" in text:
        text = _CHARREF.sub(_charref, text)
    if "&" in text or "<" in text or ">" in text:
        text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text


def _charref(match: re.Match[str]) -> str:
    """One character reference decoded by html.unescape, which raises on a decimal one of
    more than 4,300 digits (int's limit): past U+10FFFF any number means U+FFFD (HTML5)."""
    ref = match.group()
    if ref[1] == "#":
        digits = ref[2:].rstrip(";").lstrip("xX").lstrip("0")
        if len(digits) > _LAST_CODE_POINT_DIGITS:
            return "\ufffd"
        ref = "&#" + ("x" if ref[2] in "xX" else "") + (digits or "0") + ";"
    return html.unescape(ref)
