"""The greeting's first name: the right vocative for Greek first names, nothing otherwise."""

import random

import pytest

from triage_daemon.reply import vocative
from triage_daemon.reply.vocative import (
    FEMALE,
    FIRST_NAMES,
    MALE,
    VOCATIVE_EXCEPTIONS,
    build_index,
    greeting_name,
    plain,
    regular_vocative,
)

# Display names as they arrive in the From header, with the greeting name we expect.
# Written by hand, independently of the lists in the module.
DISPLAY_NAMES = [
    # Greek, first name first, the usual mail-client order.
    ("Γιώργος Δήμου", "Γιώργο"),
    ("Ελένη Ρήγα", "Ελένη"),
    ("Νικόλαος Παπαδόπουλος", "Νικόλαε"),
    ("Κωνσταντίνος Γεωργίου", "Κωνσταντίνε"),
    ("Αλέξανδρος Νικολάου", "Αλέξανδρε"),
    ("Στέλιος Μανωλάκης", "Στέλιο"),
    ("Πέτρος Αντωνίου", "Πέτρο"),
    ("Παύλος Σταματόπουλος", "Παύλο"),
    ("Χαράλαμπος Ζαφειρίου", "Χαράλαμπε"),
    ("Ευάγγελος Μπαλτάς", "Ευάγγελε"),
    ("Βαγγέλης Τσιάρας", "Βαγγέλη"),
    ("Δημήτρης Κουκούλης", "Δημήτρη"),
    ("Ιωάννης Οικονόμου", "Ιωάννη"),
    ("Γιάννης Παπαδάκης", "Γιάννη"),
    ("Κώστας Αθανασίου", "Κώστα"),
    ("Ανδρέας Μιχαηλίδης", "Ανδρέα"),
    ("Θωμάς Καραγιάννης", "Θωμά"),
    ("Ηλίας Βλάχος", "Ηλία"),
    ("Μιχαήλ Σταυρόπουλος", "Μιχαήλ"),
    ("Εμμανουήλ Τζανάκης", "Εμμανουήλ"),
    ("Απόστολος Λαμπρόπουλος", "Απόστολε"),
    ("Άγγελος Χατζής", "Άγγελε"),
    ("Κυριάκος Πετρίδης", "Κυριάκο"),
    ("Αλέκος Φωτίου", "Αλέκο"),
    ("Ματθαίος Γιαννακόπουλος", "Ματθαίε"),
    ("Στυλιανός Ξενάκης", "Στυλιανέ"),
    ("Θεόδωρος Μαυρίδης", "Θεόδωρε"),
    ("Θοδωρής Αναγνώστου", "Θοδωρή"),
    ("Περικλής Δημάκης", "Περικλή"),
    ("Παναγιώτης Κωστόπουλος", "Παναγιώτη"),
    ("Σπύρος Ραφαηλίδης", "Σπύρο"),
    ("Λεωνίδας Καλογεράκης", "Λεωνίδα"),
    ("Γεώργιος Κόσυβας", "Γεώργιε"),
    ("Δημήτριος Σαββίδης", "Δημήτριε"),
    ("Αθανάσιος Ρούσσος", "Αθανάσιε"),
    ("Βασίλειος Τσολάκης", "Βασίλειε"),
    ("Μαρία Παπαδοπούλου", "Μαρία"),
    ("Αικατερίνη Σταθοπούλου", "Αικατερίνη"),
    ("Κατερίνα Δημητρίου", "Κατερίνα"),
    ("Σοφία Καραμανλή", "Σοφία"),
    ("Βασιλική Ζερβού", "Βασιλική"),
    ("Ευαγγελία Μπούρα", "Ευαγγελία"),
    ("Αργυρώ Λιάπη", "Αργυρώ"),
    ("Δέσποινα Κυριακίδου", "Δέσποινα"),
    ("Φωτεινή Πανταζή", "Φωτεινή"),
    ("Ειρήνη Μαυροπούλου", "Ειρήνη"),
    ("Ιφιγένεια Χριστοδούλου", "Ιφιγένεια"),
    ("Ελισάβετ Τσακίρη", "Ελισάβετ"),
    # Surname first, as the ΠΣΔ and myschool write it, often in capitals.
    ("ΦΛΩΡΟΥ ΕΛΕΝΗ", "Ελένη"),
    ("ΠΑΠΑΔΟΠΟΥΛΟΣ ΓΙΩΡΓΟΣ", "Γιώργο"),
    ("ΔΗΜΟΥ ΓΕΩΡΓΙΟΣ", "Γεώργιε"),
    ("ΚΑΡΑΓΙΑΝΝΗ ΑΙΚΑΤΕΡΙΝΗ", "Αικατερίνη"),
    ("ΝΙΚΟΛΑΟΥ ΚΩΝΣΤΑΝΤΙΝΟΣ", "Κωνσταντίνε"),
    ("ΣΤΑΘΟΠΟΥΛΟΥ ΜΑΡΙΑ-ΕΛΕΝΗ", "Μαρία-Ελένη"),
    ("ΜΑΝΩΛΑΚΗΣ ΕΜΜΑΝΟΥΗΛ", "Εμμανουήλ"),
    ("ΓΕΩΡΓΙΟΥ ΑΝΑΣΤΑΣΙΑ", "Αναστασία"),
    ("ΒΛΑΧΟΥ ΕΥΦΡΟΣΥΝΗ", "Ευφροσύνη"),
    ("ΧΑΤΖΗΣ ΑΓΓΕΛΟΣ ΤΟΥ ΝΙΚΟΛΑΟΥ", "Άγγελε"),
    ("ΣΤΑΥΡΟΥ ΧΡΗΣΤΟΣ", "Χρήστο"),
    ("ΓΙΏΡΓΟΣ ΔΉΜΟΥ", "Γιώργο"),
    ("Φλώρου Ελένη", "Ελένη"),
    ("Δήμου, Γιώργος", "Γιώργο"),
    ('"Παπαδάκη Ειρήνη"', "Ειρήνη"),
    # Lower case, no accents, one word, an initial, odd spacing.
    ("γιώργος δήμου", "Γιώργο"),
    ("ελενη φλωρου", "Ελένη"),
    ("Νικος Παππας", "Νίκο"),
    ("μαρια", "Μαρία"),
    ("Ελένη", "Ελένη"),
    ("Σταύρος", "Σταύρο"),
    ("Μαρία Κ.", "Μαρία"),
    ("Γιώργος\tΔήμου", "Γιώργο"),
    ("  Ελένη   Ρήγα  ", "Ελένη"),
    # Compound first names.
    ("Αικατερίνη-Παναγιώτα Παπαδοπούλου-Χατζηγεωργίου του Κωνσταντίνου", "Αικατερίνη-Παναγιώτα"),
    ("Γιάννης-Αλέξανδρος Ρήγας", "Γιάννη-Αλέξανδρε"),
    # Nothing certain: «Γεια σας,» alone.
    ("", ""),
    ("   ", ""),
    ("Eleni Konstantinou", ""),
    ("Giorgos Dimou", ""),
    ("KONSTANTINOU ELENI", ""),
    ("Maria Papadopoulou", ""),
    ("Ελένη Konstantinou", ""),
    ("Μαρiα Παπαδοπούλου", ""),  # a Latin i among the Greek letters
    ("1ο Γυμνάσιο Αθηνών", ""),
    ("2ο Δημοτικό Σχολείο Βύρωνα", ""),
    ("Δ.Σ. Καισαριανής", ""),
    ("ΕΠΑΛ Αιγάλεω", ""),
    ("Γραμματεία 3ου ΓΕΛ", ""),
    ("Νηπιαγωγείο Κηφισιάς", ""),
    ("Λύκειο Αγίας Παρασκευής", ""),
    ("Γυμνάσιο Αγίας Βαρβάρας", ""),
    ("Διεύθυνση Π.Ε. Ανατολικής Αττικής", ""),
    ("Ομάδα Υποστήριξης Σχολείου", ""),
    ("ΠΕΚΕΣ Αττικής", ""),
    ("Helpdesk ΠΕΚΕΣ", ""),
    ("Διευθυντής Γιώργος Δήμου", ""),
    ("Καθηγήτρια Πληροφορικής Μαρία", ""),
    ("Μαρία Παπαδοπούλου (ΠΕ86)", ""),
    ("Κ. Παπαδόπουλος - 4ο Γυμνάσιο", ""),
    ("eriga@sch.gr", ""),
    ("mail@1gym-athin.att.sch.gr", ""),
    ("undisclosed-recipients", ""),
    ("=?utf-8?b?zpXOu86tzr3OtyDOoc6uzrPOsQ==?=", ""),
    ("Ξανθίππη Ρήγα", ""),  # not on the list: not certain
    ("Σπυρίδων Ζαχαρίου", ""),  # vocative not settled, left off the list
    ("Άρτεμις Λαζάρου", ""),
    ("Σόφια Ιωάννου", ""),  # the accent says it is not Σοφία
    ("Γιώργος Μανώλης", ""),  # Μανώλης is also a surname: which is the first name?
    ("ΚΩΝΣΤΑΝΤΙΝΟΣ ΜΑΡΙΑ", ""),
    ("Ελένη Ρήγα Μαρία Παπαδοπούλου", ""),
    ("Γιάννης-Μαρία Κ.", ""),
    ("Δήμου", ""),
    ("Γ. Δήμου", ""),
    ("Δρ. Γεώργιος Κόσυβας", ""),
    ("Α Β Γ Δ Ε", ""),
]


@pytest.mark.parametrize(("display_name", "expected"), DISPLAY_NAMES, ids=lambda v: v or "empty")
def test_greeting_name(display_name, expected):
    assert greeting_name(display_name) == expected


def test_the_list_is_long_enough():
    assert len(DISPLAY_NAMES) >= 80
    assert sum(1 for _name, expected in DISPLAY_NAMES if expected == "") >= 30


@pytest.mark.parametrize(
    ("nominative", "gender", "expected"),
    [
        ("Γιώργος", MALE, "Γιώργο"),
        ("Πέτρος", MALE, "Πέτρο"),
        ("Παύλος", MALE, "Παύλο"),
        ("Αλέξανδρος", MALE, "Αλέξανδρε"),
        ("Νικόλαος", MALE, "Νικόλαε"),
        ("Γεώργιος", MALE, "Γεώργιε"),
        ("Βασίλειος", MALE, "Βασίλειε"),
        ("Τιμόθεος", MALE, "Τιμόθεε"),
        ("Γιάννης", MALE, "Γιάννη"),
        ("Ηρακλής", MALE, "Ηρακλή"),
        ("Κώστας", MALE, "Κώστα"),
        ("Λουκάς", MALE, "Λουκά"),
        ("Αχιλλέας", MALE, "Αχιλλέα"),
        ("Σεραφείμ", MALE, "Σεραφείμ"),
        ("Ελένη", FEMALE, "Ελένη"),
        ("Αργυρώ", FEMALE, "Αργυρώ"),
        # Where the rules do not decide, they say so instead of guessing.
        ("Κωνσταντίνος", MALE, None),
        ("Κυριάκος", MALE, None),
        ("Στυλιανός", MALE, None),
        ("Σπυρίδων", MALE, None),
        ("Ματθαίος", MALE, None),
    ],
)
def test_regular_rules(nominative, gender, expected):
    assert regular_vocative(nominative, gender) == expected


@pytest.mark.parametrize("name", sorted(VOCATIVE_EXCEPTIONS))
def test_every_exception_is_needed(name):
    assert regular_vocative(name, MALE) != VOCATIVE_EXCEPTIONS[name]


def test_every_listed_name_found_in_capitals_and_surname_first():
    for entry in FIRST_NAMES.values():
        shouted = plain(entry.nominative).upper()
        assert greeting_name(f"ΠΑΠΑΔΟΠΟΥΛΟΥ {shouted}") == entry.vocative, entry
        assert greeting_name(f"{entry.nominative} Ρήγα") == entry.vocative, entry


def test_lists_hold_common_names_of_both_genders():
    genders = [entry.gender for entry in FIRST_NAMES.values()]
    assert genders.count(MALE) >= 100 and genders.count(FEMALE) >= 100


@pytest.mark.parametrize(
    ("male", "female", "problem"),
    [
        ("Σπυρίδων", "", "Σπυρίδων: the rules give no vocative"),
        ("Νικος", "", "Νικος: write the first name with its accent"),
        ("", "Σοφία Σόφια", "Σόφια: clashes with Σοφία"),
    ],
)
def test_bad_list_entry_stops_loading(monkeypatch, male, female, problem):
    monkeypatch.setattr(vocative, "MALE_NAMES", male)
    monkeypatch.setattr(vocative, "FEMALE_NAMES", female)
    with pytest.raises(ValueError, match=problem):
        build_index()


def test_never_raises_and_answers_only_listed_vocatives():
    vocatives = {entry.vocative for entry in FIRST_NAMES.values()}
    pieces = [*(e.nominative for e in FIRST_NAMES.values()), "Δήμου", "ΡΗΓΑ", "του"]
    pieces += ["1ο", "Γυμνάσιο", "Eleni", "@", ".", "-", ",", "(", "«", "\u0301", "\x00", "ς"]
    chance = random.Random(20200323)
    for _ in range(3000):
        words = chance.choices(pieces, k=chance.randint(0, 6))
        name = chance.choice([" ", "", "-"]).join(words)
        result = greeting_name(name)
        assert result == "" or all(part in vocatives for part in result.split("-")), name
