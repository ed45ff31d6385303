"""Text preparation: Greek, Greeklish and English folded to one canonical form."""

from __future__ import annotations

import pytest

from triage_daemon.triage.textprep import canonical, prepare, prepare_words, tool_tokens, word_pairs


@pytest.mark.parametrize(
    "variants",
    [
        ["κωδικός", "κωδικος", "ΚΩΔΙΚΟΣ", "Κωδικός", "kwdikos", "kodikos", "KWDIKOS", "kwdikws"],
        ["καλησπέρα", "ΚΑΛΗΣΠΕΡΑ", "kalhspera", "kalispera", "καλισπέρα"],
        ["μαθητές", "μαθητες", "mathites", "ma8htes", "mathhtes", "MA8HTES"],
        ["θέλω", "thelo", "8elw", "thelw"],
        ["μπορώ", "mporw", "mporo", "boro", "μπορο"],
        ["ευχαριστώ", "euxaristw", "eyxaristo", "euxaristo"],
        ["ξέχασα", "ksexasa", "ΞΕΧΑΣΑ"],
        ["ψάχνω", "psaxnw", "psachno"],
        ["εγγραφή", "eggrafh", "egrafi", "eggrafi"],
        ["αίθουσα", "aithousa", "ai8ousa", "aithoysa"],
        ["μικρόφωνο", "mikrofwno", "mikrofono", "ΜΙΚΡΟΦΩΝΟ"],
    ],
    ids=lambda v: v[0],
)
def test_spellings_of_a_word_share_one_form(variants):
    forms = {canonical(v) for v in variants}
    assert len(forms) == 1, dict(zip(variants, map(canonical, variants), strict=True))


def test_final_sigma_accents_and_capitals_fold():
    assert canonical("ΣΥΝΔΕΣΗΣ") == canonical("σύνδεσης") == canonical("συνδεσησ")
    assert canonical("Ά Έ Ή Ί Ό Ύ Ώ ΐ ΰ") == canonical("α ε η ι ο υ ω ι υ")


def test_different_words_stay_different():
    assert canonical("κωδικός") != canonical("κάμερα")
    assert canonical("μάθημα") != canonical("μαθητής")


@pytest.mark.parametrize(
    "text, token",
    [
        ("Webex", "WEBEX"),
        ("WEBEX!", "WEBEX"),
        ("web ex", "WEBEX"),
        ("γουέμπεξ", "WEBEX"),
        ("webexaki", "WEBEX"),
        ("e-class", "ECLASS"),
        ("eclass", "ECLASS"),
        ("E-Class", "ECLASS"),
        ("e class", "ECLASS"),
        ("η-τάξη", "ECLASS"),
        ("Η-ΤΑΞΗ", "ECLASS"),
        ("e\u2011class", "ECLASS"),
        ("e-me", "EME"),
        ("eme", "EME"),
        ("E-ME", "EME"),
        ("ΠΣΔ", "PSD"),
        ("Π.Σ.Δ.", "PSD"),
        ("π. σ. δ.", "PSD"),
        ("psd", "PSD"),
        ("p.s.d", "PSD"),
        ("Πανελλήνιο Σχολικό Δίκτυο", "PSD"),
        ("myschool", "MYSCHOOL"),
        ("my school", "MYSCHOOL"),
    ],
)
def test_product_names_become_one_token(text, token):
    assert canonical(f"στο {text} σήμερα").split() == ["sto", token, "simera"]


def test_urls_and_addresses_keep_their_host():
    assert canonical("https://eclass.sch.gr/courses/ABC123/") == "URL H_ECLASS_SCH_GR ECLASS SCHGR"
    assert canonical("μπείτε στο webex.sch.gr.").split() == [
        "bite",
        "sto",
        "URL",
        "H_WEBEX_SCH_GR",
        "WEBEX",
        "SCHGR",
    ]
    room = canonical("https://minedu-secondary.webex.com/meet/gpapadopoulos")
    assert room.split() == ["URL", "H_MINEDU_SECONDARY_WEBEX_COM", "WEBEX", "MEETLINK"]
    assert canonical("γράψτε στο gpap@sch.gr") == "grapste sto EMAIL H_SCH_GR SCHGR"
    assert canonical("e-me.edu.gr") == "URL H_E_ME_EDU_GR EME"


def test_numbers_and_punctuation():
    assert canonical("Τηλ. 2101234567, 6971234567!!!") == "til NUM NUM"
    assert canonical("...;;;") == ""


def test_prepare_weighs_the_subject_and_says_which_products_are_named():
    assert (
        prepare("Webex", "δεν μπαίνω", subject_weight=2)
        == "WEBEX WEBEX den beno PRODUCT_ONLY_WEBEX"
    )
    assert prepare("", "δεν μπαίνω", products=False) == "den beno"
    assert prepare("κάμερα", "δεν δουλεύει") == "kamera kamera den dulevi PRODUCT_NONE"
    assert prepare("e-class", "και webex").split()[-1] == "WEBEX"  # two products: no token


def test_without_transliteration_words_keep_their_script():
    assert (
        canonical("Ξέχασα τον κωδικό στο e-class", transliterate=False)
        == "ξεχασα τον κωδικο στο ECLASS"
    )


def test_word_pairs_keep_the_original_words():
    pairs = word_pairs("Ξέχασα τον κωδικό στο e-class!")
    assert pairs[0] == ("ξέχασα", "ksexasa")
    assert ("e-class!", "ECLASS") in pairs


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("Οι μαθητές δεν βλέπουν την κυψέλη μου", ["TOOL_EME"]),
        ("ΚΥΨΕΛΕΣ και τοίχος", ["TOOL_EME", "TOOL_EME"]),
        ("den mporoun na anevasoun sta Eggrafa", ["TOOL_ECLASS"]),
        ("η υποβολή εργασιών έληξε", ["TOOL_ECLASS"]),
        ("KOINH XRHSH OTHONHS", ["TOOL_WEBEX"]),
        ("περιμένουν στην αναμονή", ["TOOL_WEBEX"]),
        ("ξέχασα το συνθηματικό μου", ["TOOL_PSD"]),
        ("ο λογαριασμός sch.gr μου", ["TOOL_PSD"]),
        # Common words say nothing about a platform: one task (εργασία), any app, luck (τυχόν).
        ("μια εργασία στην εφαρμογή, τυχόν απορίες", []),
        ("κοινή γνώμη", []),
    ],
    ids=[
        "eme-hive",
        "capitals-and-plural",
        "greeklish-documents",
        "two-words-inflected",
        "greeklish-capitals-share",
        "lobby",
        "psd-password",
        "phrase-with-host",
        "common-words",
        "first-word-only",
    ],
)
def test_platform_tools_give_tokens_without_the_platform_s_name(text, tokens):
    assert tool_tokens(canonical(text)) == tokens


def test_tool_tokens_are_added_only_when_asked():
    assert prepare("", "η κυψέλη", tools=True).split()[-2:] == ["PRODUCT_NONE", "TOOL_EME"]
    assert "TOOL_EME" not in prepare("", "η κυψέλη")
    doc, pairs = prepare_words("Εργασίες", "ανέβασμα", tools=True)
    assert doc == prepare("Εργασίες", "ανέβασμα", tools=True)
    assert doc.count("TOOL_ECLASS") == 2 and ("εργασίεσ", "ergasies") in pairs  # ς folded
