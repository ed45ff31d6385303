"""Realistic, varied teacher mails for the benchmark, built combinatorially from fragments.

``generate(n)`` returns ``n`` raw RFC 5322 messages to the six helpdesks: Greek or
Greeklish, technical (Webex, e-class, e-me, ΠΣΔ accounts, devices) or not (leave,
timetables, thanks, advertising), as plain text in UTF-8, ISO-8859-7 or windows-1253,
multipart/alternative, HTML only, a few with a small attachment. The same ``n`` and
``seed`` always give the same bytes. Run ``python bench/mails.py --mails 20 --out DIR``
to look at some.
"""

from __future__ import annotations

import argparse
import base64
import html
import quopri
import random
import unicodedata
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.header import Header
from email.utils import format_datetime
from pathlib import Path
from zoneinfo import ZoneInfo

HELPDESKS = tuple(f"pekes{n}" for n in range(1, 7))
TEACHER_DOMAINS = ("sch.example", "school.example")
# The daemon answers one sender at most five times an hour: three mails each at most.
MAILS_PER_TEACHER = 3
ATHENS = ZoneInfo("Europe/Athens")
CRLF = "\r\n"

# --- who writes ---------------------------------------------------------------------------

MEN = ("Γιώργος", "Νίκος", "Δημήτρης", "Κώστας", "Γιάννης", "Παναγιώτης", "Βασίλης", "Σπύρος",
       "Αντώνης", "Θανάσης", "Μιχάλης", "Χρήστος")
WOMEN = ("Μαρία", "Ελένη", "Κατερίνα", "Βασιλική", "Σοφία", "Αγγελική", "Δέσποινα", "Ευαγγελία",
         "Χριστίνα", "Φωτεινή", "Ιωάννα", "Αναστασία", "Παρασκευή", "Θεοδώρα")
# (masculine, feminine) forms of the surname.
SURNAMES = (("Παπαδόπουλος", "Παπαδοπούλου"), ("Γεωργίου", "Γεωργίου"), ("Νικολάου", "Νικολάου"),
            ("Οικονόμου", "Οικονόμου"), ("Καραγιάννης", "Καραγιάννη"), ("Βλάχος", "Βλάχου"),
            ("Αθανασίου", "Αθανασίου"), ("Μακρής", "Μακρή"), ("Σταθόπουλος", "Σταθοπούλου"),
            ("Κωνσταντίνου", "Κωνσταντίνου"), ("Ζαχαρίου", "Ζαχαρίου"),
            ("Πετρόπουλος", "Πετροπούλου"),
            ("Αλεξίου", "Αλεξίου"), ("Δημητρίου", "Δημητρίου"), ("Λαμπράκης", "Λαμπράκη"))
SCHOOLS = ("Δημοτικό Σχολείο", "Νηπιαγωγείο", "Γυμνάσιο", "Γενικό Λύκειο", "ΕΠΑΛ")
PLACES = ("Αθηνών", "Περιστερίου", "Χαλανδρίου", "Αμαρουσίου", "Γλυφάδας", "Πειραιά", "Κηφισιάς",
          "Νίκαιας", "Ηλιούπολης", "Αιγάλεω", "Αχαρνών", "Ζωγράφου", "Καλλιθέας", "Παλλήνης",
          "Μεγάρων", "Ελευσίνας", "Βύρωνα", "Κορυδαλλού")
# (masculine, feminine)
ROLES = (("εκπαιδευτικός ΠΕ70",) * 2, ("νηπιαγωγός ΠΕ60",) * 2, ("φιλόλογος ΠΕ02",) * 2,
         ("μαθηματικός ΠΕ03",) * 2, ("καθηγητής Αγγλικών ΠΕ06", "καθηγήτρια Αγγλικών ΠΕ06"),
         ("εκπαιδευτικός Πληροφορικής ΠΕ86",) * 2, ("φυσικός ΠΕ04",) * 2,
         ("διευθυντής", "διευθύντρια"), ("υποδιευθυντής", "υποδιευθύντρια"))

# --- what they write about ---------------------------------------------------------------

# Technical requests, one entry per FAQ key of the catalogue (plus "none"): subjects, problems.
TECHNICAL = {
    "webex-account": (
        ("Ενεργοποίηση λογαριασμού Webex", "Δεν μπορώ να μπω στο webex",
         "Λογαριασμός webex.sch.gr"),
        ("Προσπαθώ να ενεργοποιήσω τον λογαριασμό μου στο Webex από το webex.sch.gr αλλά μετά τους "
         "κωδικούς του ΠΣΔ δεν μου έρχεται κανένα email ενεργοποίησης.",
         "Έκανα εγγραφή στην πλατφόρμα τηλεκπαίδευσης με τους κωδικούς του sch.gr, "
         "όμως όταν πάω να "
         "συνδεθώ στο Webex μου λέει ότι ο λογαριασμός δεν υπάρχει.",
         "Μου ζητάει κωδικό για το Webex και δεν ξέρω ποιον να βάλω, του ΠΣΔ ή άλλον;")),
    "webex-room-link": (
        ("Σύνδεσμος προσωπικής αίθουσας", "Πώς στέλνω το link στους μαθητές;", "Link webex"),
        ("Δεν βρίσκω τον σύνδεσμο της προσωπικής μου αίθουσας για να τον στείλω στους γονείς.",
         "Πού θα βρω το link του μαθήματος στο Webex ώστε να το ανεβάσω στην η-τάξη;",
         "Έστειλα στους μαθητές τον σύνδεσμο αλλά τους βγάζει ότι η σύσκεψη δεν υπάρχει.")),
    "webex-lobby": (
        ("Μαθητές στο λόμπι", "Οι μαθητές δεν μπαίνουν στην αίθουσα", "Κλειδωμένη αίθουσα webex"),
        ("Οι μαθητές μου μένουν στο λόμπι και δεν μπορώ να τους βάλω στην τάξη.",
         "Η αίθουσα μου είναι κλειδωμένη και κάθε φορά πρέπει να δέχομαι έναν έναν τους μαθητές.",
         "Κάποια παιδιά περιμένουν στον χώρο αναμονής και δεν τα βλέπω στη λίστα συμμετεχόντων.")),
    "webex-audio-video": (
        ("Δεν ακούγομαι στο Webex", "Πρόβλημα με κάμερα", "Ήχος στο webex"),
        ("Στο μάθημα οι μαθητές δεν με ακούνε, ενώ το μικρόφωνο του laptop δουλεύει κανονικά.",
         "Η κάμερα δεν ανοίγει στο Webex, βγάζει μαύρη οθόνη.",
         "Έχουμε πολύ αντίλαλο όταν μιλάνε οι μαθητές, πώς κάνω σίγαση σε όλους;")),
    "webex-share": (
        ("Κοινή χρήση οθόνης", "Δεν μπορώ να δείξω παρουσίαση", "Λευκός πίνακας webex"),
        ("Όταν κάνω κοινή χρήση της οθόνης οι μαθητές βλέπουν μαύρη οθόνη.",
         "Θέλω να δείξω μια παρουσίαση PowerPoint στους μαθητές αλλά δεν βρίσκω πώς.",
         "Πώς ανοίγω τον λευκό πίνακα στο Webex για να γράφουμε ασκήσεις;")),
    "webex-mobile": (
        ("Webex από κινητό", "Σύνδεση από tablet", "Εφαρμογή webex στο κινητό"),
        ("Οι μαθητές συνδέονται από κινητό και τους ζητάει να κατεβάσουν εφαρμογή, ποια είναι;",
         "Από το tablet δεν μπορώ να μπω στην αίθουσα μου, κολλάει στη σύνδεση.",
         "Κατέβασα την εφαρμογή Webex στο κινητό αλλά δεν μπορώ να ξεκινήσω μάθημα.")),
    "webex-phone": (
        ("Σύνδεση με σταθερό τηλέφωνο", "Μαθητής χωρίς internet", "Τηλεφωνική σύνδεση webex"),
        ("Ένας μαθητής μου δεν έχει internet, μπορεί να συνδεθεί στο μάθημα από σταθερό τηλέφωνο;",
         "Ποιο τηλέφωνο πρέπει να καλέσουν οι μαθητές για να μπουν στο Webex χωρίς υπολογιστή;")),
    "eclass-login": (
        ("Δεν μπορώ να μπω στην e-class", "Κωδικός eclass", "Σύνδεση στην η-τάξη"),
        ("Δεν μπορώ να συνδεθώ στο eclass.sch.gr, μου βγάζει λάθος όνομα χρήστη ή συνθηματικό.",
         "Ξέχασα τον κωδικό μου για την η-τάξη, είναι ο ίδιος με του ΠΣΔ;",
         "Πατάω σύνδεση με λογαριασμό ΠΣΔ στην e-class και μου βγάζει σελίδα σφάλματος.")),
    "eclass-course": (
        ("Δημιουργία μαθήματος e-class", "Εγγραφή μαθητών στην η-τάξη", "Μάθημα eclass"),
        ("Δημιούργησα μάθημα στην e-class αλλά οι μαθητές δεν μπορούν να το βρουν.",
         "Πώς γράφω τους μαθητές μου στο μάθημα της η-τάξης; Να το κάνω ανοιχτό ή κλειστό;",
         "Θέλω να φτιάξω ένα μάθημα για το τμήμα Β2 και δεν βλέπω την επιλογή δημιουργίας.")),
    "eclass-assignment": (
        ("Εργασίες στην e-class", "Οι μαθητές δεν ανεβάζουν εργασία", "Μέγεθος αρχείου eclass"),
        ("Οι μαθητές δεν μπορούν να ανεβάσουν την εργασία τους, τους λέει ότι το αρχείο "
         "είναι μεγάλο.",
         "Πώς δημιουργώ εργασία με προθεσμία στην e-class;",
         "Έβαλα εργασία στην η-τάξη αλλά δεν εμφανίζεται στους μαθητές.")),
    "eme-login": (
        ("Σύνδεση στο e-me", "Δεν μπορώ να μπω στο e-me", "Κωδικοί e-me"),
        ("Δεν μπορώ να συνδεθώ στο e-me με τον λογαριασμό του ΠΣΔ, γυρνάει πάλι στην "
         "αρχική σελίδα.",
         "Οι μαθητές μου δεν μπορούν να μπουν στο e-me.edu.gr, τι κωδικούς χρειάζονται;")),
    "eme-hive": (
        ("Κυψέλη στο e-me", "Πώς φτιάχνω κυψέλη;", "Τοίχος κυψέλης e-me"),
        ("Έφτιαξα κυψέλη για την τάξη μου στο e-me αλλά δεν ξέρω πώς να προσκαλέσω τους μαθητές.",
         "Οι μαθητές δεν βλέπουν τις αναρτήσεις μου στον τοίχο της κυψέλης.")),
    "psd-account": (
        ("Κωδικός ΠΣΔ", "Ξέχασα τον κωδικό μου στο sch.gr", "Λογαριασμός μαθητή στο ΠΣΔ"),
        ("Ξέχασα τον κωδικό μου στο Πανελλήνιο Σχολικό Δίκτυο και δεν μπορώ να τον αλλάξω.",
         "Πώς φτιάχνουν λογαριασμό ΠΣΔ οι μαθητές μου; Οι γονείς δεν έχουν τον κωδικό εγγραφής.",
         "Ο λογαριασμός μου στο sch.gr κλειδώθηκε μετά από λάθος κωδικούς.")),
    "none": (
        ("Πρόβλημα με τον υπολογιστή", "Δεν λειτουργεί το internet στο σχολείο", "myschool"),
        ("Ο υπολογιστής του σχολείου δεν συνδέεται στο δίκτυο από χθες.",
         "Δεν μπορώ να μπω στο myschool για να περάσω τις απουσίες.",
         "Ο εκτυπωτής του γραφείου δεν τυπώνει από τον νέο φορητό.")),
}
DETAILS = (
    "Έχω δοκιμάσει και από Chrome και από Firefox, το ίδιο γίνεται.",
    "Το ίδιο πρόβλημα έχουν και δύο συνάδελφοι στο σχολείο.",
    "Επισυνάπτω φωτογραφία από την οθόνη με το μήνυμα λάθους.",
    "Χρησιμοποιώ φορητό υπολογιστή με Windows 10.",
    "Έκανα επανεκκίνηση στον υπολογιστή αλλά δεν άλλαξε κάτι.",
    "Μου βγάζει το μήνυμα «Παρουσιάστηκε σφάλμα, δοκιμάστε ξανά».",
    "Συνδέομαι από το σπίτι με ADSL.",
)
URGENT = ("Το μάθημα ξεκινά αύριο στις 9:00.", "Είναι επείγον γιατί οι μαθητές περιμένουν.",
          "Έχουμε σύλλογο διδασκόντων την Πέμπτη και πρέπει να δουλεύει μέχρι τότε.")
# Mail the helpdesk must politely send elsewhere: subjects, bodies.
NOT_TECHNICAL = (
    (("Αίτηση άδειας", "Ερώτηση για άδεια"),
     ("Θα ήθελα να ρωτήσω ποια δικαιολογητικά χρειάζονται για άδεια ανατροφής τέκνου.",)),
    (("Ωρολόγιο πρόγραμμα", "Ώρες τηλεκπαίδευσης"),
     ("Πόσες ώρες την εβδομάδα πρέπει να κάνουμε σύγχρονη τηλεκπαίδευση στο Γυμνάσιο;",
      "Ποιο είναι το πρόγραμμα των μαθημάτων για το Νηπιαγωγείο την επόμενη εβδομάδα;")),
    (("Μισθοδοσία", "Καθυστέρηση πληρωμής"),
     ("Δεν έχω πληρωθεί ακόμα για τον Απρίλιο, σε ποιον πρέπει να απευθυνθώ;",)),
    (("Απόσπαση", "Μετάθεση 2020"),
     ("Πότε βγαίνουν τα αποτελέσματα των αποσπάσεων για τη νέα σχολική χρονιά;",)),
    (("Ευχαριστώ!", "Ευχαριστήριο"),
     ("Ήθελα να σας ευχαριστήσω για τη βοήθεια της προηγούμενης εβδομάδας, όλα λειτουργούν.",)),
    (("Βαθμολογία τριμήνου", "Αξιολόγηση μαθητών"),
     ("Πώς θα βαθμολογηθούν οι μαθητές για το διάστημα της τηλεκπαίδευσης;",)),
    (("Σεμινάριο επιμόρφωσης", "Επιμόρφωση εκπαιδευτικών"),
     ("Υπάρχει κάποιο σεμινάριο για εκπαιδευτικούς για τη διδασκαλία από απόσταση;",)),
    (("Προσφορά φορητών υπολογιστών", "Ειδική τιμή για σχολεία"),
     ("Η εταιρεία μας προσφέρει φορητούς υπολογιστές σε ειδική τιμή για σχολικές μονάδες.",)),
)
GREETINGS = ("Καλημέρα σας,", "Καλησπέρα σας,", "Γεια σας,", "Αγαπητοί συνάδελφοι,",
             "Καλημέρα,", "Προς το ΠΕΚΕΣ,")
CLOSINGS = ("Ευχαριστώ πολύ,", "Με εκτίμηση,", "Ευχαριστώ εκ των προτέρων,", "Φιλικά,",
            "Ευχαριστώ για τον χρόνο σας,")
MAILERS = ("Microsoft Outlook 16.0", "Mozilla Thunderbird 68.7.0", "Roundcube Webmail/1.4.3",
           "iPhone Mail (17E262)", None, None)

# --- Greeklish ----------------------------------------------------------------------------

DIGRAPHS = {"ου": "ou", "αι": "ai", "ει": "ei", "οι": "oi", "αυ": "av", "ευ": "ev", "μπ": "mp",
            "ντ": "nt", "γκ": "gk", "γγ": "gg"}
LETTERS = dict(zip("αβγδεζηθικλμνξοπρσςτυφχψω",
                   ["a", "v", "g", "d", "e", "z", "i", "th", "i", "k", "l", "m", "n", "ks", "o",
                    "p", "r", "s", "s", "t", "y", "f", "x", "ps", "o"], strict=True))
# A second style that many write in: 8 for θ, w for ω, h for η, x for ξ.
NUMERIC_STYLE = {"θ": "8", "ω": "w", "η": "h", "ξ": "x"}


def strip_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFD", text)
    kept = "".join(c for c in decomposed if not unicodedata.combining(c))
    return unicodedata.normalize("NFC", kept)


def greeklish(text: str, numeric: bool = False) -> str:
    """Greek text as Latin letters, the way people typed it without a Greek keyboard."""
    letters = {**LETTERS, **NUMERIC_STYLE} if numeric else LETTERS
    out, source, i = [], strip_accents(text), 0
    while i < len(source):
        pair = source[i:i + 2].lower()
        latin = DIGRAPHS.get(pair) if not numeric or pair != "ου" else "ou"
        step = 2 if latin else 1
        latin = latin or letters.get(source[i].lower(), source[i])
        out.append(latin.capitalize() if source[i].isupper() else latin)
        i += step
    return "".join(out).replace("«", '"').replace("»", '"')


# --- one mail -----------------------------------------------------------------------------


@dataclass(frozen=True)
class BenchMail:
    """One generated mail: the helpdesk (IMAP login) it goes to, its sender, its bytes."""

    mailbox: str
    sender: str
    raw: bytes
    kind: str


@dataclass
class Letter:
    """What the teacher wrote, before it is encoded into a MIME structure."""

    subject: str
    paragraphs: list[str]
    name: str
    signature: list[str]


def teacher_count(n: int) -> int:
    return max(1, -(-n // MAILS_PER_TEACHER))


def teacher_address(index: int) -> tuple[str, str]:
    """The IMAP login and mail address of teacher number ``index`` (1-based)."""
    login = f"teacher{index}"
    return login, f"{login}@{TEACHER_DOMAINS[index % 2]}"


def compose(rng: random.Random, technical: bool) -> tuple[Letter, str]:
    """A teacher's letter in Greek, and the catalogue key it is about (or 'not-technical')."""
    if technical:
        key = rng.choice(list(TECHNICAL))
        subjects, problems = TECHNICAL[key]
        body = [rng.choice(problems), *rng.sample(DETAILS, rng.randint(0, 2))]
        if rng.random() < 0.35:
            body.append(rng.choice(URGENT))
    else:
        key = "not-technical"
        subjects, problems = rng.choice(NOT_TECHNICAL)
        body = [rng.choice(problems)]
    woman = rng.random() < 0.65
    first = rng.choice(WOMEN if woman else MEN)
    last = rng.choice(SURNAMES)[1 if woman else 0]
    school = f"{rng.randint(1, 25)}ο {rng.choice(SCHOOLS)} {rng.choice(PLACES)}"
    intro = f"Είμαι {rng.choice(ROLES)[1 if woman else 0]} στο {school}."
    paragraphs = [rng.choice(GREETINGS), *([intro] if rng.random() < 0.7 else []),
                  " ".join(body), rng.choice(CLOSINGS)]
    signature = [f"{first} {last}", school]
    if rng.random() < 0.4:
        signature.append(f"τηλ. 69{rng.randint(10000000, 99999999)}")
    subject = rng.choice(subjects)
    if rng.random() < 0.1:
        subject = "ΣΧΕΤ: " + subject if rng.random() < 0.5 else subject.upper()
    return Letter(subject, paragraphs, f"{first} {last}", signature), key


def style_of(rng: random.Random) -> tuple[str, Callable[[str], str]]:
    """How the teacher types: proper Greek, Greek without accents, or Greeklish."""
    roll = rng.random()
    if roll < 0.2:
        numeric = rng.random() < 0.4
        return "greeklish", lambda text: greeklish(text, numeric)
    if roll < 0.3:
        return "no-accents", strip_accents
    return "greek", str


def plain_text(letter: Letter, rng: random.Random, when: datetime) -> str:
    text = "\n\n".join(letter.paragraphs) + "\n" + "\n".join(letter.signature) + "\n"
    if rng.random() < 0.1:
        earlier = format_datetime(when - timedelta(days=rng.randint(1, 9)))
        quoted = "\n".join(f"> {p}" for p in rng.choice(list(TECHNICAL.values()))[1][:2])
        text += f"\nΣτις {earlier}, ο/η {letter.name} έγραψε:\n{quoted}\n"
    if rng.random() < 0.08:
        text += "\nΣτάλθηκε από το κινητό μου\n"
    return text


def html_text(text: str, rng: random.Random, charset: str) -> str:
    """The same text as Outlook, Gmail or Thunderbird would write it in HTML."""
    paragraphs = [html.escape(p).replace("\n", "<br>") for p in text.strip().split("\n\n")]
    style = rng.randrange(3)
    if style == 0:
        body = "".join(f'<p class="MsoNormal"><span style="font-size:11.0pt">{p}</span></p>'
                       '<p class="MsoNormal">&nbsp;</p>' for p in paragraphs)
        body = f'<div class="WordSection1">{body}</div>'
    elif style == 1:
        body = '<div dir="ltr">' + "<br><br>".join(f"<div>{p}</div>" for p in paragraphs) + "</div>"
    else:
        body = "".join(f"<p>{p}</p>" for p in paragraphs)
    return (f'<html><head><meta http-equiv="Content-Type" content="text/html; charset={charset}">'
            f"<style>p {{margin:0}}</style></head><body>{body}</body></html>")


# --- MIME ---------------------------------------------------------------------------------


def text_part(text: str, subtype: str, charset: str, encoding: str) -> str:
    """A text/* MIME part (headers and body) as a str of ASCII, or of 8-bit-safe chars."""
    data = text.replace("\n", CRLF).encode(charset)
    if encoding == "base64":
        body = base64.encodebytes(data).decode("ascii").replace("\n", CRLF)
    elif encoding == "quoted-printable":
        body = quopri.encodestring(data).decode("ascii").replace("\n", CRLF)
    else:
        # 8bit: the bytes as they are, carried through latin-1 until the final encode.
        body = data.decode("latin-1")
    return (f'Content-Type: text/{subtype}; charset="{charset}"{CRLF}'
            f"Content-Transfer-Encoding: {encoding}{CRLF}{CRLF}{body}")


def attachment_part(rng: random.Random) -> str:
    name, ctype, magic = rng.choice((
        ("screenshot.png", "image/png", b"\x89PNG\r\n\x1a\n"),
        ("σφάλμα.jpg", "image/jpeg", b"\xff\xd8\xff\xe0\x00\x10JFIF"),
        ("odigies.pdf", "application/pdf", b"%PDF-1.5\n"),
    ))
    data = magic + rng.randbytes(rng.randint(2_000, 30_000))
    if name.isascii():
        disposition = f'attachment; filename="{name}"'
    else:
        quoted = "".join(f"%{b:02X}" for b in name.encode("utf-8"))
        disposition = f"attachment; filename*=utf-8''{quoted}"
    body = base64.encodebytes(data).decode("ascii").replace("\n", CRLF)
    return (f"Content-Type: {ctype}{CRLF}Content-Transfer-Encoding: base64{CRLF}"
            f"Content-Disposition: {disposition}{CRLF}{CRLF}{body}")


def multipart(subtype: str, parts: list[str], boundary: str) -> str:
    inner = "".join(f"--{boundary}{CRLF}{part}{CRLF}" for part in parts)
    return (f'Content-Type: multipart/{subtype}; boundary="{boundary}"{CRLF}{CRLF}'
            f"This is a multi-part message in MIME format.{CRLF}{CRLF}{inner}--{boundary}--{CRLF}")


def encode_header(text: str, charset: str) -> str:
    return text if text.isascii() else Header(text, charset).encode()


def build(index: int, seed: int, rng: random.Random, teachers: int) -> BenchMail:
    """Mail number ``index``: its letter, style, charset, structure and headers."""
    technical = rng.random() < 0.8
    letter, key = compose(rng, technical)
    style, typed = style_of(rng)
    charset = "us-ascii" if style == "greeklish" and rng.random() < 0.5 else rng.choices(
        ("utf-8", "iso-8859-7", "windows-1253"), (0.6, 0.2, 0.2))[0]
    encodings = ("quoted-printable", "base64", "8bit")
    encoding = "7bit" if charset == "us-ascii" else rng.choice(encodings)
    when = datetime(2020, 3, 16, 8, tzinfo=ATHENS) + timedelta(
        days=rng.randint(0, 90), hours=rng.randint(0, 12), minutes=rng.randint(0, 59))
    text = typed(plain_text(letter, rng, when))
    letter = Letter(typed(letter.subject), [], typed(letter.name), [])
    boundary = f"----=_Part_{seed}_{index}_{rng.getrandbits(32):08x}"
    shape = rng.choices(("plain", "alternative", "html"), (0.7, 0.22, 0.08))[0]
    if shape == "plain":
        body = text_part(text, "plain", charset, encoding)
    elif shape == "html":
        body = text_part(html_text(text, rng, charset), "html", charset, encoding)
    else:
        parts = [text_part(text, "plain", charset, encoding),
                 text_part(html_text(text, rng, charset), "html", charset, encoding)]
        body = multipart("alternative", parts, boundary + "_alt")
    attached = rng.random() < 0.06
    if attached:
        body = multipart("mixed", [body, attachment_part(rng)], boundary)
    mailbox = HELPDESKS[index % len(HELPDESKS)]
    _login, address = teacher_address(index % teachers + 1)
    headers = mail_headers(index, seed, rng, letter, charset, when, mailbox, address)
    raw = (headers + body).encode("latin-1")
    kind = f"{key}/{style}/{shape}/{charset}" + ("/attachment" if attached else "")
    return BenchMail(mailbox, address, raw, kind)


def mail_headers(index: int, seed: int, rng: random.Random, letter: Letter, charset: str,
                 when: datetime, mailbox: str, address: str) -> str:
    header_charset = "utf-8" if charset == "us-ascii" else charset
    domain = address.split("@", 1)[1]
    lines = [
        f"Received: from [10.{index % 250}.{rng.randint(0, 250)}.{rng.randint(1, 250)}] "
        f"by mail.{domain} with ESMTPSA; {format_datetime(when)}",
        f"Message-ID: <{seed:x}.{index:06d}.{rng.getrandbits(40):010x}@mail.{domain}>",
        f"Date: {format_datetime(when)}",
        f"From: {encode_header(letter.name, header_charset)} <{address}>",
        f"To: helpdesk@{mailbox}.att.example",
        f"Subject: {encode_header(letter.subject, header_charset)}",
        "MIME-Version: 1.0",
    ]
    mailer = rng.choice(MAILERS)
    if mailer:
        lines.append(f"X-Mailer: {mailer}")
    return CRLF.join(lines) + CRLF


def generate(n: int, seed: int = 2020) -> list[BenchMail]:
    """``n`` mails, spread evenly over the six helpdesks and over ``teacher_count(n)``
    teachers (at most MAILS_PER_TEACHER each); the same arguments give the same bytes."""
    rng = random.Random(seed)
    return [build(index, seed, rng, teacher_count(n)) for index in range(n)]


def teacher_logins(n: int) -> list[str]:
    """The IMAP logins of every teacher ``generate(n)`` may use as a sender."""
    return [teacher_address(i)[0] for i in range(1, teacher_count(n) + 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mails", type=int, default=20)
    parser.add_argument("--seed", type=int, default=2020)
    parser.add_argument("--out", type=Path, help="write each mail as NNNNNN.eml here")
    args = parser.parse_args()
    mails = generate(args.mails, args.seed)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        for index, mail in enumerate(mails):
            (args.out / f"{index:06d}.eml").write_bytes(mail.raw)
    parts = Counter(p for mail in mails for p in mail.kind.split("/")[1:])
    topics = Counter(mail.kind.split("/")[0] for mail in mails)
    size = sum(len(m.raw) for m in mails)
    print(f"{len(mails)} mails, {size / 1024:.0f} KiB, mean {size / max(1, len(mails)):.0f} B")
    print("topics:", dict(topics.most_common()))
    print("forms:", dict(parts.most_common()))


if __name__ == "__main__":
    main()
