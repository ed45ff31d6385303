"""Automatic acknowledgements without an automatic-mail header, known by their opening words.

Ticket systems and mail rules answer with "This is an automated message" or "Το μήνυμά
σας παραλήφθηκε" and often no Auto-Submitted header; answering them starts a loop of
acknowledgements. Only what the sender wrote this time (``new_text``, without quoted
mail: a teacher's reply quotes our own acknowledgement) is read, and only its opening
sentences, before any greeting that follows them (a quoted mail starts with its own).

A teacher's question may say "αυτόματο μήνυμα" too ("δεν μου έρχεται το αυτόματο μήνυμα
του e-class"), so the wording must be the mail describing itself, at the start of a
sentence, not quoted, in no question and with no "but": a phrase saying what the mail
is (an automatic message) is enough; one saying it was received counts as much only as
the mail's first sentence; a supporting phrase ("do not reply", "we will answer soon")
counts half; a mail is an acknowledgement at two halves.
"""

from __future__ import annotations

import re

from ..context import ParsedMail
from .out_of_office import fold

MAX_TEXT = 2000
OPENING_SENTENCES = 4
THRESHOLD = 2

# A greeting line: a word that opens one (some only as a prefix: "Αγαπητή", "Αξιότιμε"),
# then at most a name or two, with no sentence ending.
GREETING = re.compile(
    fold(
        r"^(?:(?:αγαπητ|αξιότιμ|sehr geehrte|estimad)\w*|"
        r"(?:γεια σας|γεια σου|καλησπέρα|καλημέρα|χαίρετε|κύριε|κυρία|"
        r"dear|hello|hi|good (morning|afternoon|evening)|greetings|"
        r"hallo|guten tag|bonjour|madame|monsieur|buongiorno|gentile|hola))\b"
    )
    + r"[^.!?;]{0,60}$"
)
# What the mail says it is. Greek needs the demonstrative ("this message"): "Το μήνυμα
# στάλθηκε αυτόματα στους μαθητές" is a teacher describing e-class.
SELF = re.compile(
    fold(
        r"(this (is|was) an? (automated|automatic|auto-?generated|automatically generated|"
        r"computer[- ]generated) (message|reply|response|notification|acknowledge?ment|"
        r"e-?mail|notice)|this is an auto-?(reply|response)|"
        r"this (e-?mail|message|reply|response|notification) (is|was|has been) "
        r"(automatically generated|generated automatically|sent automatically|"
        r"automatically sent|automated)|"
        r"(αυτό|το παρόν|αυτό το μήνυμα|το μήνυμα αυτό|το παρόν μήνυμα) (είναι|αποτελεί) "
        r"(ένα |μια )?(αυτόματο|αυτοματοποιημένο|αυτόματη|αυτοματοποιημένη) "
        r"(μήνυμα|απάντηση|ειδοποίηση|ενημέρωση)|"
        r"αυτή (είναι|αποτελεί) (μια )?(αυτόματη|αυτοματοποιημένη) (απάντηση|ειδοποίηση)|"
        r"(αυτό το μήνυμα|το μήνυμα αυτό|το παρόν μήνυμα|το παρόν) (έχει )?"
        r"(σταλεί|στάλθηκε|εστάλη|αποστάλθηκε|αποστέλλεται|δημιουργήθηκε|παράχθηκε) αυτόματα|"
        r"dies ist eine (automatische|automatisch (generierte|erstellte|erzeugte)) "
        r"(antwort|nachricht|benachrichtigung|e-?mail)|"
        r"diese (nachricht|e-?mail) wurde automatisch (erstellt|generiert|versendet|verschickt)|"
        r"ceci est (un message|une réponse|un e-?mail|un courriel) "
        r"(automatique|généré automatiquement)|"
        r"ce (message|courriel) (a été|est) (généré|envoyé) automatiquement|"
        r"questo è un messaggio (automatico|generato automaticamente)|"
        r"questa è una risposta automatica|"
        r"este es un (mensaje|correo) (automático|generado automáticamente)|"
        r"esta es una respuesta automática)"
    )
)
# The mail saying that ours was received.
RECEIPT = re.compile(
    fold(
        r"((we have|we've|we) (successfully )?received your (message|e-?mail|request|enquiry|"
        r"inquiry)|your (message|e-?mail|request|enquiry|inquiry) (has been|was|is) "
        r"(successfully )?(received|recorded|registered|logged)|"
        r"(λάβαμε|παραλάβαμε|έχουμε λάβει|έχουμε παραλάβει) (το|την) "
        r"(μήνυμά|αίτημά|email|e-mail|ερώτημά|επιστολή|αίτησή) σας|"
        r"(το|η) (μήνυμά|αίτημά|email|e-mail|ερώτημά|επιστολή|αίτησή) σας (έχει )?"
        r"(παραλήφθηκε|παρελήφθη|ελήφθη|λήφθηκε|ληφθεί|παραληφθεί|καταχωρίστηκε|καταχωρήθηκε)|"
        r"(wir haben )?ihre (nachricht|e-?mail|anfrage) (ist|wurde|haben wir) [^.]{0,30}"
        r"(erhalten|eingegangen|empfangen)|"
        r"(nous avons (bien )?reçu|nous accusons (bonne )?réception de) votre "
        r"(message|courriel|e-?mail|demande)|"
        r"votre (message|courriel|demande) a (bien )?été (reçu|enregistré)|"
        r"abbiamo ricevuto il suo messaggio|il suo messaggio è stato ricevuto|"
        r"hemos recibido su (mensaje|correo)|su (mensaje|correo) (ha sido|fue) recibido)"
    )
)
SUPPORT = re.compile(
    fold(
        r"((please )?do not reply to this (message|e-?mail|address)|"
        r"replies to this (address|message) are not (monitored|read)|"
        r"(we|our team|someone|a member of our team) will (get back to you|reply|respond|"
        r"answer|contact you)[^.]{0,40}(as soon as possible|shortly|soon|within)|"
        r"thank you for your (message|e-?mail|enquiry|inquiry)|"
        r"(παρακαλούμε |παρακαλώ )?(να )?μην απαντ(ήσετε|άτε) (σε αυτό|στο παρόν|σε αυτή)|"
        r"θα (σας )?(απαντήσουμε|απαντηθεί|εξεταστεί|εξυπηρετήσουμε|επικοινωνήσουμε)"
        r"[^.]{0,40}(το συντομότερο|σύντομα|το ταχύτερο|άμεσα|εντός)|"
        r"ευχαριστούμε (πολύ )?(για το μήνυμά σας|για την επικοινωνία|που επικοινωνήσατε)|"
        r"bitte antworten sie nicht auf diese|vielen dank für ihre (nachricht|e-?mail|anfrage)|"
        r"merci de ne pas répondre à ce|merci pour votre (message|courriel)|"
        r"nous vous répondrons (dans les plus brefs délais|rapidement|dès que possible))"
    )
)
CONTRAST = re.compile(fold(r"\b(αλλά|αλλα|όμως|ωστόσο|but|however|aber|mais|ma|pero)\b"))
QUOTES = "«\"“‘'„"
_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+")
_GREEK = re.compile(r"[α-ω]")


class Acknowledgement:
    name = "acknowledgement"
    description = "an automatic acknowledgement, by the wording of its opening sentences"

    def check(self, mail: ParsedMail, own_addresses: frozenset[str]) -> str | None:
        text = mail.new_text
        if not text or len(text) > MAX_TEXT:
            return None
        sentences = opening_sentences(text)
        if any(is_question(s) for s in sentences):
            return None
        score, found = 0, []
        for index, sentence in enumerate(sentences):
            points, phrase = weigh(sentence, first=index == 0)
            if points:
                score += points
                found.append(phrase)
        if score >= THRESHOLD:
            return f"automatic acknowledgement wording ({'; '.join(found)!r})"
        return None


def opening_sentences(text: str) -> list[str]:
    """The first sentences of ``text``, folded, leading greeting lines left out, up to the
    first greeting that comes after them (where a quoted mail begins). Only the lines
    needed are folded: the rest of a long body costs nothing."""
    paragraphs: list[list[str]] = [[]]
    ends = 0  # sentences ended so far: by their mark, or by the end of their paragraph
    for raw in text.splitlines():
        line = fold(raw.strip())
        if not line:
            if paragraphs[-1]:
                ends += not paragraphs[-1][-1].endswith((".", "!", "?", ";"))
                paragraphs.append([])
        elif GREETING.match(line):
            if ends or paragraphs[-1]:
                break
        else:
            paragraphs[-1].append(line)
            ends += len(_SENTENCE_END.findall(line + " "))
            # Folding is the cost here: no line more than the sentences read needs.
            if ends >= OPENING_SENTENCES:
                break
    sentences = []
    for lines in paragraphs:
        if lines:
            sentences += [s for s in _SENTENCE_END.split(" ".join(lines)) if s]
    return sentences[:OPENING_SENTENCES]


def is_question(sentence: str) -> bool:
    """A question mark ends it; in Greek text ';' is the question mark (U+037E folds to it)."""
    end = sentence.rstrip()
    return end.endswith("?") or (end.endswith(";") and bool(_GREEK.search(end)))


def weigh(sentence: str, first: bool) -> tuple[int, str]:
    """Points the sentence gives (SELF 2, RECEIPT 2 as the first sentence else 1, SUPPORT 1)
    and the phrase that gave them."""
    if CONTRAST.search(sentence):
        return 0, ""
    for pattern, points in ((SELF, 2), (RECEIPT, 2 if first else 1)):
        found = pattern.match(sentence)
        if found:
            return points, found.group(0)
    found = SUPPORT.search(sentence)
    if found and not any(q in sentence[: found.start()] for q in QUOTES):
        return 1, found.group(0)
    return 0, ""
