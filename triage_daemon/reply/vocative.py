"""The sender's first name in the Greek vocative for the greeting, or nothing when unsure.

A reply opens «Γεια σας, Γιώργο,» only when the display name certainly holds a Greek
first name; any doubt (an organisation, Latin script, an e-mail address, two possible
first names, a name not on the list) gives "" and the template writes «Γεια σας,».
The first name is found by the curated lists below, so the order of the display name
does not matter (ΠΣΔ and myschool write SURNAME FIRSTNAME, mail clients the reverse),
and it is written in normal case with its accent whatever the sender typed.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

MALE = "m"
FEMALE = "f"

# Common Greek male first names, official and everyday forms, in the nominative. Their
# vocative comes from the regular rules in `regular_vocative`; a name the rules cannot
# decide must be in VOCATIVE_EXCEPTIONS, or the module refuses to load.
MALE_NAMES = """
Αθανάσιος Θανάσης Θάνος Νάσος Άκης Αλέκος Αλέξανδρος Αλέξης Αλέξιος Αλκιβιάδης
Ανδρέας Αντρέας Ανέστης Αναστάσιος Τάσος Άγγελος Αντώνης Αντώνιος Απόστολος Τόλης
Αργύρης Άρης Αριστείδης Αριστοτέλης Αχιλλέας Βαγγέλης Ευάγγελος Βασίλης Βασίλειος
Γεράσιμος Γεώργιος Γιώργος Γρηγόρης Γρηγόριος Δαμιανός Δανιήλ Δημήτρης Δημήτριος
Μήτσος Διονύσης Διονύσιος Ελευθέριος Λευτέρης Εμμανουήλ Μανώλης Ευθύμιος Ευγένιος
Ευριπίδης Ευστάθιος Στάθης Ζαχαρίας Ηλίας Ηρακλής Θεμιστοκλής Θεόδωρος Θόδωρος
Θοδωρής Θεοφάνης Φάνης Θωμάς Ιάκωβος Ιάσονας Ιωάννης Γιάννης Ιωσήφ Κλεάνθης
Κοσμάς Κυριάκος Κωνσταντίνος Κώστας Ντίνος Λάζαρος Λάκης Λάμπρος Λεωνίδας
Λουκάς Μάκης Μάνθος Μάξιμος Μάρκος Μάριος Ματθαίος Μενέλαος Μηνάς Μιλτιάδης
Μιχάλης Μιχαήλ Μπάμπης Χάρης Χαράλαμπος Νεκτάριος Νικόλαος Νίκος Νικόλας
Οδυσσέας Ορέστης Ορφέας Παναγιώτης Πάνος Παντελής Παύλος Περικλής Πέτρος
Πολυχρόνης Πρόδρομος Προκόπης Ραφαήλ Σάββας Σάκης Σεραφείμ Σοφοκλής Σπύρος
Σταμάτης Σταμάτιος Σταύρος Στέλιος Στέργιος Στέφανος Στυλιανός Σωκράτης Σωτήρης
Σωτήριος Τάκης Τιμόθεος Φίλιππος Φώτης Φώτιος Χαρίλαος Χρήστος Χριστόφορος
Χρύσανθος Χρυσόστομος
"""

# Female first names: their vocative is the nominative (Ελένη, Μαρία, Αργυρώ). Names
# in -ις (Ελπίς, Άρτεμις) are left out on purpose: their vocative is not settled.
FEMALE_NAMES = """
Αγάπη Αγγελική Αθηνά Αικατερίνη Κατερίνα Αλεξάνδρα Αλίκη Αμαλία Αναστασία Τασία
Ανθή Άννα Αντιγόνη Αντωνία Αργυρώ Αρετή Ασπασία Αφροδίτη Βαρβάρα Βασιλική Βάσω
Βούλα Γαρυφαλλιά Γεωργία Γιάννα Γιώτα Δανάη Δάφνη Δέσποινα Δήμητρα Ειρήνη Ελένη
Λένα Ελευθερία Ελισάβετ Έφη Εύα Ευαγγελία Ευανθία Ευγενία Ευδοκία Ευθυμία
Ευρυδίκη Ευσταθία Ευτέρπη Ευτυχία Ευφροσύνη Φρόσω Ζωή Ηλέκτρα Θεανώ Θεοδώρα
Ιουλία Ιφιγένεια Ισμήνη Ιωάννα Καλλιόπη Κική Κλεοπάτρα Κυριακή Κωνσταντία
Κωνσταντίνα Ντίνα Λαμπρινή Λίνα Λουκία Μαγδαληνή Μαίρη Μαργαρίτα Μαρία Μαρίνα
Μάρθα Ματίνα Μελίνα Μυρτώ Νατάσα Νεκταρία Νίκη Νικολέτα Ντόρα Ξανθή Όλγα Ολυμπία
Ουρανία Παναγιώτα Παρασκευή Βιβή Πηνελόπη Πολυξένη Πόπη Ρένα Ροδάνθη Ρούλα
Σμαράγδα Σοφία Σταματία Σταυρούλα Στέλλα Στυλιανή Σωτηρία Τριανταφυλλιά Φανή
Φωτεινή Χαρά Χαρίκλεια Χριστίνα Χρυσάνθη Χρυσούλα
"""

# Where the rules are wrong or silent. Popular names keep -ο although the spelling
# counts three syllables (Στέλιος is said in two); learned ones keep -ε although the
# accent is on the penultimate; the oxytone -ός names take -έ.
VOCATIVE_EXCEPTIONS = {
    "Στέλιος": "Στέλιο",
    "Στέργιος": "Στέργιο",
    "Αλέκος": "Αλέκο",
    "Κυριάκος": "Κυριάκο",
    "Κωνσταντίνος": "Κωνσταντίνε",
    "Ματθαίος": "Ματθαίε",
    "Στυλιανός": "Στυλιανέ",
    "Δαμιανός": "Δαμιανέ",
}

# Words that mark the display name as a school, an office or a role rather than a
# person (compared without accents, in lower case; a word matches if it starts so).
NOT_A_PERSON = tuple(
    """
    γυμνασ λυκει σχολει σχολη δημοτικ νηπιαγωγ επαλ γελ εεεεκ σμεαε σδε πεκε κεσυ
    κεδασυ διευθυν υποδιευθυν προισταμεν γραμματει εκπαιδευτ καθηγητ δασκαλ
    πληροφορικ ομαδα υποστηριξ τμημα εργαστηρι κεντρο υπουργει συλλογ γραφει
    συντονιστ υπευθυν μαθητ γονε
    """.split()
)

# Greek letters, monotonic and polytonic (not the Coptic ones).
GREEK_LETTER = "[\u0386\u0388-\u03ce\u1f00-\u1ffc]"
# A name-like token: Greek letters, maybe hyphenated or with an apostrophe (Ντ'Αλέξη),
# or a single initial with a dot (Μαρία Κ.).
NAME_TOKEN = re.compile(rf"^{GREEK_LETTER}+(?:[-'’]{GREEK_LETTER}+)*$|^{GREEK_LETTER}\.$")
VOWELS = set("αεηιουω")
DIPHTHONGS = {"αι", "ει", "οι", "υι", "ου", "αυ", "ευ", "ηυ"}
ACUTE = "\u0301"
DIAERESIS = "\u0308"
MAX_TOKENS = 4


@dataclass(frozen=True)
class FirstName:
    nominative: str
    vocative: str
    gender: str


def plain(word: str) -> str:
    """``word`` in lower case with accents and diaeresis removed, for comparing names."""
    decomposed = unicodedata.normalize("NFD", word.casefold())
    return "".join(ch for ch in decomposed if ch not in (ACUTE, DIAERESIS))


def has_accent(word: str) -> bool:
    return ACUTE in unicodedata.normalize("NFD", word)


def vowel_groups(word: str) -> list[tuple[str, bool]]:
    """The vowel nuclei of ``word`` as (letters, accented), diphthongs counted once.

    A word-initial γι before a vowel (Γιώργος, Γιάννης) is a consonant and is not
    counted; any other synizesis (Στέλιος, said in two syllables) is not seen and needs
    an exception.
    """
    letters = letter_marks(word)
    if len(letters) > 2 and letters[0][0] == "γ" and letters[1][0] == "ι":
        if letters[2][0] in VOWELS and not letters[1][1]:
            letters = [letters[0], *letters[2:]]
    groups: list[tuple[str, bool]] = []
    previous = ""
    for letter, acute, diaeresis in letters:
        if letter not in VOWELS:
            previous = ""
            continue
        # A diphthong unless the first vowel bears the accent or the second a diaeresis.
        if previous + letter in DIPHTHONGS and not groups[-1][1] and not diaeresis:
            groups[-1] = (groups[-1][0] + letter, acute)
            previous = ""
        else:
            groups.append((letter, acute))
            previous = letter
    return groups


def letter_marks(word: str) -> list[tuple[str, bool, bool]]:
    """Each letter of ``word`` in lower case as (letter, has acute, has diaeresis)."""
    letters: list[list] = []
    for ch in unicodedata.normalize("NFD", word.lower()):
        if ch in (ACUTE, DIAERESIS) and letters:
            letters[-1][1 if ch == ACUTE else 2] = True
        elif ch not in (ACUTE, DIAERESIS):
            letters.append([ch, False, False])
    return [tuple(letter) for letter in letters]


def regular_vocative(nominative: str, gender: str) -> str | None:
    """The vocative the regular rules give, or None where they do not decide.

    Female names do not change. Male: -ης -> -η, -ας -> -α (Κώστα, Ανδρέα), -ος with the
    accent on the antepenultimate -> -ε (Άγγελε, Νικόλαε), two-syllable -ος -> -ο
    (Γιώργο, Πέτρο); -λ, -μ, -φ do not change (Μιχαήλ).
    """
    if gender == FEMALE:
        return nominative
    if nominative.endswith(("ης", "ής", "ας", "άς")):
        return nominative[:-1]
    if nominative.endswith(("ος", "ός")):
        groups = vowel_groups(nominative)
        accented = [i for i, (_letters, acute) in enumerate(groups) if acute]
        if len(accented) != 1:
            return None
        from_end = len(groups) - accented[0]
        if from_end == 3:
            return nominative[:-2] + "ε"
        if from_end == 2 and len(groups) == 2:
            return nominative[:-2] + "ο"
        return None
    # Indeclinable names of Hebrew origin end in -λ, -μ, -φ (Μιχαήλ, Σεραφείμ, Ιωσήφ);
    # -ων and the rest (Σπυρίδων, Πλάτων) have disputed vocatives.
    if nominative.endswith(("λ", "μ", "φ")):
        return nominative
    return None


def build_index() -> dict[str, FirstName]:
    """Every listed first name by its plain form; raises ValueError on a bad list entry."""
    index: dict[str, FirstName] = {}
    for gender, names in ((MALE, MALE_NAMES), (FEMALE, FEMALE_NAMES)):
        for name in names.split():
            if not has_accent(name) and len(vowel_groups(name)) > 1:
                raise ValueError(f"{name}: write the first name with its accent")
            vocative = VOCATIVE_EXCEPTIONS.get(name) or regular_vocative(name, gender)
            if vocative is None:
                raise ValueError(f"{name}: the rules give no vocative; add it to the exceptions")
            known = index.get(plain(name))
            if known and known.nominative != name:
                raise ValueError(f"{name}: clashes with {known.nominative} without accents")
            index[plain(name)] = FirstName(name, vocative, gender)
    return index


FIRST_NAMES = build_index()


def first_name(token: str) -> FirstName | None:
    """The listed first name ``token`` spells (any case; accents checked when present).

    A hyphenated token is a first name when every part is one of the same gender
    (Μαρία-Ελένη, Γιάννης-Αλέξανδρος); its vocative joins the parts' vocatives.
    """
    parts = token.split("-")
    if len(parts) > 1:
        names = [first_name(part) for part in parts]
        if any(name is None for name in names) or len({n.gender for n in names}) != 1:
            return None
        return FirstName(
            "-".join(n.nominative for n in names),
            "-".join(n.vocative for n in names),
            names[0].gender,
        )
    known = FIRST_NAMES.get(plain(token))
    if known is None:
        return None
    # Σόφια is not Σοφία: an accent the sender wrote must be the list's accent.
    if has_accent(token) and unicodedata.normalize("NFC", token.casefold()) != (
        unicodedata.normalize("NFC", known.nominative.casefold())
    ):
        return None
    return known


def name_tokens(display_name: str) -> list[str] | None:
    """The words of a display name that looks like a person's, or None if it does not."""
    text = unicodedata.normalize("NFC", display_name or "")
    if "@" in text or any(ch.isdigit() for ch in text):
        return None
    tokens = [t.strip("\"'«»()[]") for t in re.split(r"[\s,;]+", text)]
    tokens = [t for t in tokens if t]
    if not tokens or len(tokens) > MAX_TOKENS:
        return None
    if not all(NAME_TOKEN.match(t) for t in tokens):
        return None
    if any(plain(t).startswith(NOT_A_PERSON) for t in tokens):
        return None
    return tokens


def greeting_name(display_name: str) -> str:
    """The vocative first name to greet the sender of ``display_name`` with, or "".

    "" whenever it is not certain: no listed first name, more than one, Latin script,
    an organisation or role, digits, an address. Never raises.
    """
    tokens = name_tokens(display_name)
    if tokens is None:
        return ""
    found = [name for name in map(first_name, tokens) if name is not None]
    if len(found) != 1:
        return ""
    return found[0].vocative
