"""Separate what the sender wrote now from quoted earlier mail, signatures and disclaimers.

Why our own rules and not talon or mail-parser-reply: both were tried on Greek
replies (Gmail "Στις ... έγραψε:", Outlook "Από: / Στάλθηκε: / Προς: / Θέμα:",
"-----Αρχικό μήνυμα-----", "Με εκτίμηση," blocks, "Στάλθηκε από το iPhone
μου") and returned every one of them unchanged: their patterns are English
and Western-European only (mail-parser-reply has no Greek table; talon's
signature classifier is trained on English mail), and importing talon takes
about 2 s. The rules below are line-based, linear in the text, and
conservative: when unsure, text stays in ``new_text``.

- A reply header ("Στις ... έγραψε:", "On ... wrote:", possibly wrapped over
  three lines) starts a quote; after it only ">" lines are quoted, so a
  question typed below the header by mistake stays new text.
- A block header ("-----Original Message-----", "-----Αρχικό μήνυμα-----",
  forward markers, an Outlook "Από:/From:" line followed by "Στάλθηκε:/Sent:",
  "Προς:/To:", "Θέμα:/Subject:" lines) quotes everything after it.
- If the sender wrote nothing else, the quoted or forwarded text is what they
  send us, so it becomes ``new_text`` (a forward with only a short note keeps
  both).
- Signatures: "-- ", mobile footers ("Στάλθηκε από το iPhone μου", "Sent from
  my ...", "Αποστολή από ..."), and a sign-off line ("Με εκτίμηση,",
  "Ευχαριστώ,", "Regards,") followed by a short name/school/phone block.
  Legal and environmental disclaimers are removed into ``signature`` too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import islice

_QUOTE_MARK = re.compile(r"^[ \t]*>")
_WROTE_START = re.compile(r"^\s*(στις|την|τη|on|le|am|il|el|ο/η|η/ο|stis|tin)\b", re.IGNORECASE)
_WROTE_END = re.compile(
    r"(έγραψε|εγραψε|έγραψαν|egrapse|egrapsan|wrote|a écrit|schrieb|ha scritto|escribió)\s*:\s*$",
    re.IGNORECASE,
)
_SEPARATOR = re.compile(
    r"^\s*-{2,}\s*(original message|αρχικό μήνυμα|αρχικο μηνυμα|message d'origine"
    r"|ursprüngliche nachricht)\s*-{2,}\s*$",
    re.IGNORECASE,
)
_FORWARD = re.compile(
    r"^\s*(-{2,}\s*(forwarded message|προωθημένο μήνυμα|προωθημενο μηνυμα)\s*-{2,}"
    r"|begin forwarded message:|αρχή προωθημένου μηνύματος:)\s*$",
    re.IGNORECASE,
)
_FROM_FIELD = re.compile(r"^\s*\*?(from|από|αποστολέας)\s*:\*?\s*\S", re.IGNORECASE)
_OTHER_FIELD = re.compile(
    r"^\s*\*?(sent|date|to|cc|subject|στάλθηκε|ημερομηνία|προς|κοιν\.?|θέμα)\s*:",
    re.IGNORECASE,
)
_HEADER_FIELD = re.compile(r"^\s*\*?[\w .-]{1,20}:\*?(\s|$)")
_RULE = re.compile(r"^\s*([_\-=*]\s*){8,}$")
_MOBILE = re.compile(
    r"^\s*(στάλθηκε από|εστάλη από|απεστάλη από|αποστολή από|στάλθηκε με|λήψη του outlook"
    r"|sent from|sent via|sent with|get outlook for)\b.{0,70}$",
    re.IGNORECASE,
)
_QUESTION = re.compile(r"[?;\u037e]")
# Sign-offs, compared without accents, case or trailing punctuation.
_CLOSINGS = frozenset(
    (
        "με εκτιμηση|με τιμη|με φιλικους χαιρετισμους|φιλικους χαιρετισμους|χαιρετισμους"
        "|χαιρετω|φιλικα|ευχαριστω|ευχαριστω πολυ|σας ευχαριστω|σας ευχαριστω πολυ"
        "|ευχαριστω εκ των προτερων|ευχαριστιες|με εκτιμηση και ευχαριστιες|καλη συνεχεια"
        "|με σεβασμο|me ektimisi|me ektimhsh|filika|xairetismous|efharisto"
        "|eyxaristw|euxaristw|efxaristw|eyxaristo|euxaristo|efxaristo|eyxaristw poly"
        "|eyxaristw polu|euxaristw poly|euxaristw polu|efxaristw poli|efxaristo poli"
        "|regards|best regards|kind regards|best|thanks|thank you|many thanks|cheers"
        "|sincerely|yours sincerely|best wishes"
    ).split("|")
)
_LONGEST_CLOSING = 40
# Legal footers (long) and "think before you print" footers (short anywhere).
_DISCLAIMER = re.compile(
    r"εμπιστευτικ|confidential|το παρ[οό]ν (?:ηλεκτρονικ[οό] )?μ[ηή]νυμα|this e-?mail and any"
    r"|intended (?:recipient|solely)|disclaimer|αποπο[ιί]ηση ευθ[υύ]νης"
    r"|προορ[ιί]ζεται (?:μ[οό]νο|αποκλειστικ[αά])|δεν ε[ιί]στε ο (?:νόμιμος )?παραλ[ηή]πτης",
    re.IGNORECASE,
)
_ENVIRONMENT = re.compile(r"σκεφτε[ιί]τε το περιβ[αά]λλον|consider the environment", re.IGNORECASE)
_NO_ACCENTS = str.maketrans("άέήίόύώϊϋΐΰ", "αεηιουωιυιυ")
_LETTER = re.compile(r"[^\W\d_]")
_SIGNOFF_BLOCK_LINES = 6
_DASH_SIGNATURE_LINES = 15
_FORWARD_NOTE_LETTERS = 100


@dataclass(frozen=True)
class Split:
    """A body split in three: new text, quoted earlier mail, signature and disclaimers."""

    new_text: str
    quoted: str
    signature: str


def split_reply(text: str) -> Split:
    """Split a plain-text body (newlines already ``\\n``) into its three parts."""
    return _split(text.split("\n"), depth=0)


def _split(lines: list[str], depth: int) -> Split:
    start, end, kind = _find_header(lines)
    new, quoted = _partition(lines, start, end, kind)
    body, signature = _strip_signature(new)
    if depth < 2 and quoted and not _has_letters(body, _enough_letters(kind)):
        inner = _split(_unquote(quoted, kind), depth + 1)
        note = _join(body)
        new_text = f"{note}\n\n{inner.new_text}".strip() if note else inner.new_text
        if new_text:
            sig = "\n\n".join(s for s in (_join(signature), inner.signature) if s)
            return Split(new_text, inner.quoted, sig)
    if not _join(body):
        body, signature = new, []
    return Split(_join(body), _join(quoted), _join(signature))


def _enough_letters(kind: str) -> int:
    """A forward with a short covering note still needs the forwarded text."""
    return _FORWARD_NOTE_LETTERS if kind == "forward" else 1


def _find_header(lines: list[str]) -> tuple[int, int, str]:
    """(first line, line after the header, kind) of the first reply header, or (n, n, '')."""
    for i, line in enumerate(lines):
        if not line or _QUOTE_MARK.match(line):
            continue
        if _FORWARD.match(line):
            return i, i + 1, "forward"
        if _SEPARATOR.match(line):
            return i, i + 1, "block"
        if _FROM_FIELD.match(line) and _is_field_block(lines, i):
            return _rule_above(lines, i), i + 1, "block"
        end = _wrote_header_end(lines, i)
        if end:
            return i, end, "wrote"
    return len(lines), len(lines), ""


def _is_field_block(lines: list[str], i: int) -> bool:
    """True when at least two more header fields follow a From line (Outlook style)."""
    following = [line for line in lines[i + 1 : i + 7] if line.strip()]
    return sum(1 for line in following if _OTHER_FIELD.match(line)) >= 2


def _rule_above(lines: list[str], i: int) -> int:
    """Outlook puts a line of underscores above its header block; include it."""
    j = i - 1
    while j >= 0 and not lines[j].strip():
        j -= 1
    return j if j >= 0 and _RULE.match(lines[j]) else i


def _wrote_header_end(lines: list[str], i: int) -> int:
    """The index after a "... wrote:" header starting at line i (wrapped up to 3 lines), or 0."""
    opener = bool(_WROTE_START.match(lines[i]))
    for j in range(i, min(i + (3 if opener else 1), len(lines))):
        line = lines[j].rstrip()
        if not line:
            return 0
        # Cheap test first: every such header ends with a colon.
        if line.endswith(":"):
            joined = " ".join(part.strip() for part in lines[i : j + 1])
            if len(joined) > 400 or not _WROTE_END.search(joined):
                return 0
            return j + 1 if opener or _quote_follows(lines, j + 1) else 0
    return 0


def _quote_follows(lines: list[str], i: int) -> bool:
    for line in lines[i : i + 3]:
        if line.strip():
            return bool(_QUOTE_MARK.match(line))
    return False


def _partition(lines: list[str], start: int, end: int, kind: str) -> tuple[list[str], list[str]]:
    """Lines the sender wrote and quoted lines, given the header found."""
    new, quoted = [], []
    for line in lines[:start]:
        (quoted if _QUOTE_MARK.match(line) else new).append(line)
    if kind in ("block", "forward"):
        quoted.extend(lines[start:])
        return new, quoted
    quoted.extend(lines[start:end])
    for line in lines[end:]:
        # After "... wrote:" only ">" lines are quoted; other lines are an
        # inline answer or a question typed below the header by mistake.
        (quoted if _QUOTE_MARK.match(line) else new).append(line)
    return new, quoted


def _unquote(quoted: list[str], kind: str) -> list[str]:
    """The quoted text as its author wrote it: no ">" marks, no reply or forward header."""
    lines = [re.sub(r"^([ \t]*>)+ ?", "", line) for line in quoted]
    start, end, found = _find_header(lines)
    if found and not _join(lines[:start]):
        lines = lines[end:]
    first = 0
    while first < len(lines) and (not lines[first].strip() or _HEADER_FIELD.match(lines[first])):
        first += 1
    return lines[first:]


def _strip_signature(lines: list[str]) -> tuple[list[str], list[str]]:
    """(body lines, signature and disclaimer lines) of what the sender wrote."""
    lines, disclaimers = _strip_disclaimers(lines)
    cut = _signature_start(lines)
    body, signature = lines[:cut], lines[cut:]
    if disclaimers:
        signature = signature + [""] + disclaimers
    return body, signature


def _signature_start(lines: list[str]) -> int:
    """Index of the first line of the signature, or len(lines) when there is none."""
    filled = [i for i, line in enumerate(lines) if line.strip()]
    # No signature has more than _DASH_SIGNATURE_LINES lines after its first, so only the
    # last lines can start one: trying every line read the rest of the body for each "--".
    for i in filled[1:][-(_DASH_SIGNATURE_LINES + 1) :]:
        if _is_signature_start(lines, i, lines[i].strip()):
            return i
    return len(lines)


def _is_signature_start(lines: list[str], i: int, stripped: str) -> bool:
    if stripped == "--":
        limit = _DASH_SIGNATURE_LINES
    elif _MOBILE.match(stripped):
        limit = 3
    elif len(stripped) <= _LONGEST_CLOSING and _plain(stripped).rstrip(" ,.!") in _CLOSINGS:
        rest = _lines_after(lines, i, _SIGNOFF_BLOCK_LINES)
        return rest is not None and bool(rest) and all(map(_is_signature_line, rest))
    else:
        return False
    return _lines_after(lines, i, limit) is not None


def _lines_after(lines: list[str], i: int, limit: int) -> list[str] | None:
    """The non-blank lines after line i, or None when there are more than ``limit``."""
    rest = []
    # By index: a copy of the rest (lines[i + 1 :]) per "--" line was quadratic (issue 9),
    # and islice would walk the first i lines each time.
    for j in range(i + 1, len(lines)):
        line = lines[j]
        if line.strip():
            rest.append(line.strip())
            if len(rest) > limit:
                return None
    return rest


def _is_signature_line(line: str) -> bool:
    """A name, school, role or phone line: short, no question, not a sentence."""
    return len(line) <= 70 and not _QUESTION.search(line) and len(line.split()) < 8


def _strip_disclaimers(lines: list[str]) -> tuple[list[str], list[str]]:
    """Move legal or environmental footer paragraphs (never the first one) out of the text."""
    kept, removed, paragraph = [], [], []
    first = True
    for line in lines + [""]:
        if line.strip():
            paragraph.append(line)
            continue
        if paragraph and not first and _is_disclaimer(" ".join(paragraph)):
            removed.extend(paragraph + [""])
        else:
            kept.extend(paragraph + [line])
        first = first and not paragraph
        paragraph = []
    return kept[:-1] if kept and not kept[-1] else kept, removed[:-1]


def _is_disclaimer(paragraph: str) -> bool:
    if len(paragraph) < 30 or "?" in paragraph or "\u037e" in paragraph:
        return False
    if len(paragraph) >= 100 and _DISCLAIMER.search(paragraph):
        return True
    return bool(_ENVIRONMENT.search(paragraph))


def _plain(text: str) -> str:
    """Lower case without Greek accents, for words typed with or without τόνοι."""
    return text.lower().translate(_NO_ACCENTS)


def _has_letters(lines: list[str], minimum: int) -> bool:
    count = 0
    for _ in _LETTER.finditer("\n".join(lines)):
        count += 1
        if count >= minimum:
            return True
    return False


def _join(lines: list[str]) -> str:
    """Join lines, dropping trailing rule lines and runs of blank lines."""
    # One slice at the end: dropping one line at a time copied the list each time.
    end = len(lines)
    while end and (not lines[end - 1].strip() or _RULE.match(lines[end - 1])):
        end -= 1
    text = "\n".join(islice(lines, end))
    return re.sub(r"\n[ \t]*\n(?:[ \t]*\n)+", "\n\n", text).strip("\n")
