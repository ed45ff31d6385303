"""Out-of-office replies that carry no automatic-mail header: known by their wording.

Some mail programs (and people who set up "rules") send vacation notices with no
Auto-Submitted or X-Autoreply header, often with a human-looking "Re:" subject.
Answering them would start a loop, so their usual wording (Greek, English and the
languages of common mail programs) is recognised at the start of the subject, where
mail programs write it, or in the first lines of a short body of a mail whose subject
is a reply's (a person asking about their own leave writes a new mail, and
must get the polite redirect, not silence).
"""

import re
import unicodedata

from ..context import ParsedMail


def _fold_table() -> dict[int, str | None]:
    """Accented Latin and Greek letters to their base letter, combining marks to nothing,
    final sigma to sigma: one str.translate() instead of a loop over characters."""
    table: dict[int, str | None] = dict.fromkeys(range(0x300, 0x370))
    for code in (*range(0xC0, 0x250), *range(0x370, 0x400), *range(0x1F00, 0x2000)):
        base = "".join(
            c for c in unicodedata.normalize("NFD", chr(code)) if not unicodedata.combining(c)
        )
        if base != chr(code):
            table[code] = base
    table[ord("ς")] = "σ"
    return table


_FOLD = _fold_table()


def fold(text: str) -> str:
    """Lower-case and drop accents, so the patterns need one spelling each."""
    lowered = text.lower()
    return lowered if lowered.isascii() else lowered.translate(_FOLD)


# Mail programs put their notice's name first: "Automatic reply: <subject>" (Outlook),
# "Αυτόματη απάντηση: ...", "Out of Office AutoReply: ...", "Abwesenheitsnotiz: ...".
# Only there, after any reply prefixes, is it a notice: "Πώς βάζω αυτόματη απάντηση στο
# webmail" is a teacher's question.
SUBJECT = re.compile(
    r"^\s*(?:(?:re|aw|απ|σχετ|fw|fwd)\s*:\s*)*[\[(]?"
    + fold(
        r"(αυτόματη απάντηση|αυτόματη ειδοποίηση|εκτός γραφείου|"
        r"απουσία από το γραφείο|"
        r"automatic reply|automated reply|auto[- ]?reply|auto[- ]?response|autoreply|"
        r"out of (the )?office( auto[- ]?reply)?|vacation reply|away from (the )?office|"
        r"abwesenheitsnotiz|automatische antwort|réponse automatique|absence du bureau|"
        r"risposta automatica|fuori sede|respuesta automática|fuera de la oficina|"
        r"resposta automática|automatisch antwoord|afwezig|autosvar|automaattinen vastaus)"
    )
    + r"[\])]?(?=\s*(?:[:\-–—(\[]|$))"
)
REPLY_SUBJECT = re.compile(r"^\s*(re|aw|απ|σχετ|fw|fwd)\s*:", re.IGNORECASE)
BODY = re.compile(
    fold(
        r"(θα (είμαι|βρίσκομαι) εκτός|(είμαι|βρίσκομαι) εκτός (γραφείου|υπηρεσίας|σχολείου)|"
        r"θα απουσιάζω|απουσιάζω (από|έως|μέχρι)|σε άδεια (έως|μέχρι|από)|"
        r"με περιορισμένη πρόσβαση (στο|στην|σε)|"
        r"this is an automatic reply|i am (currently )?out of (the )?office|"
        r"i will be out of (the )?office|i am away|with limited access to (my )?e-?mail|"
        r"tha (eimai|vriskomai|brisko?mai) ektos|tha apousiazw|tha apousiazo|ektos grafeiou)"
    )
)
BODY_LINES = 6
SHORT_BODY = 800


class OutOfOffice:
    name = "out-of-office"
    description = "vacation / out-of-office wording in the subject or the opening lines"

    def check(self, mail: ParsedMail, own_addresses: frozenset[str]) -> str | None:
        subject = fold(mail.subject)
        found = SUBJECT.match(subject)
        if found:
            return f"out-of-office subject ({found.group(1)!r})"
        body = mail.new_text or mail.text
        if len(body) <= SHORT_BODY and REPLY_SUBJECT.match(mail.subject):
            opening = fold("\n".join(body.strip().splitlines()[:BODY_LINES]))
            found = BODY.search(opening)
            if found:
                return f"out-of-office wording ({found.group(0)!r})"
        return None
