"""Tests for quotes.py: new text versus quoted mail, signatures and disclaimers."""

from __future__ import annotations

import time

import pytest

from triage_daemon.parse.quotes import Split, split_reply

QUESTION = "Δεν μπορώ να μπω στο Webex, τι κάνω;"
OLD = "Παλιά απάντηση του helpdesk για τον κωδικό."


def _text(*lines: str) -> str:
    return "\n".join(lines)


# ------------------------------------------------------------ reply headers


@pytest.mark.parametrize(
    "header",
    [
        "Στις Τρί, 24 Μαρ 2020 στις 10:12 π.μ., ο/η Χ <x@sch.gr> έγραψε:",
        "Στις 24/3/2020 10:12 π.μ., ο/η Helpdesk 3ου ΠΕΚΕΣ έγραψε:",
        "Την Τρίτη, 24 Μαρτίου 2020, 10:12:00 π.μ. EET, ο χρήστης X <x@y.gr> έγραψε:",
        "On Tue, Mar 24, 2020 at 10:12 AM Helpdesk <helpdesk@pekes1.att.example> wrote:",
        "Helpdesk <helpdesk@pekes1.att.example> wrote:",
        "Stis 24/3/2020, o/h Helpdesk egrapse:",
    ],
    ids=["gmail-el", "thunderbird-el", "yahoo-el", "gmail-en", "bare-wrote", "greeklish"],
)
def test_reply_header_starts_the_quote(header):
    split = split_reply(_text(QUESTION, "", header, "> " + OLD, ">"))
    assert split.new_text == QUESTION
    assert split.quoted.startswith(header) and OLD in split.quoted


def test_reply_header_wrapped_over_two_lines():
    text = _text(
        QUESTION,
        "",
        "Στις Τρί, 24 Μαρ 2020 στις 10:12 π.μ., ο/η Helpdesk 1ου ΠΕΚΕΣ Αττικής",
        "<helpdesk@pekes1.att.example> έγραψε:",
        "",
        "> " + OLD,
    )
    split = split_reply(text)
    assert split.new_text == QUESTION
    assert "<helpdesk@pekes1.att.example> έγραψε:" in split.quoted


def test_wrote_line_without_quote_or_opener_is_ordinary_text():
    text = _text("Ο συνάδελφος μου έγραψε:", "«δεν ανοίγει το e-class»", "Τι να του πω;")
    assert split_reply(text) == Split(text, "", "")


def test_question_typed_below_the_reply_header_by_mistake_is_kept():
    text = _text(
        "Στις Τρί, 24 Μαρ 2020 στις 10:12 π.μ., ο/η Χ <x@sch.gr> έγραψε:",
        QUESTION,
        "",
        "> " + OLD,
    )
    split = split_reply(text)
    assert split.new_text == QUESTION
    assert OLD in split.quoted


def test_inline_answers_between_quoted_lines_are_kept():
    text = _text(
        "On Tue, Mar 24, 2020 at 10:12 AM Helpdesk <h@x.example> wrote:",
        "> Ποιο λειτουργικό έχετε;",
        "Windows 10.",
        "> Ποιο πρόγραμμα περιήγησης;",
        "Chrome, και δεν ανοίγει το e-class.",
    )
    split = split_reply(text)
    assert split.new_text == "Windows 10.\nChrome, και δεν ανοίγει το e-class."
    assert "Ποιο λειτουργικό" in split.quoted and "Ποιο πρόγραμμα" in split.quoted


@pytest.mark.parametrize(
    "separator",
    ["-----Original Message-----", "-----Αρχικό μήνυμα-----", "-------- Αρχικό μήνυμα --------"],
)
def test_original_message_separator_quotes_everything_after(separator):
    text = _text(QUESTION, "", separator, "Από: Helpdesk", "Θέμα: Re: webex", "", OLD, "Χωρίς >")
    split = split_reply(text)
    assert split.new_text == QUESTION
    assert split.quoted.startswith(separator) and split.quoted.endswith("Χωρίς >")


@pytest.mark.parametrize(
    "block",
    [
        [
            "Από: Helpdesk <h@x.example>",
            "Στάλθηκε: Τρίτη, 24 Μαρτίου 2020 10:12 πμ",
            "Προς: Γιώργος <g@sch.gr>",
            "Κοιν.: Διεύθυνση <d@sch.gr>",
            "Θέμα: RE: Webex",
        ],
        [
            "From: Helpdesk <h@x.example>",
            "Sent: Tuesday, March 24, 2020 10:12 AM",
            "To: George <g@sch.gr>",
            "Subject: RE: Webex",
        ],
        [
            "Από: Helpdesk <h@x.example>",
            "Ημερομηνία: 24/3/2020 10:12 π.μ.",
            "Προς: g@sch.gr",
            "Θέμα: Webex",
        ],
    ],
    ids=["outlook-el", "outlook-en", "mobile-el"],
)
def test_outlook_header_block_quotes_everything_after(block):
    text = _text(QUESTION, "", "________________________________", *block, "", OLD)
    split = split_reply(text)
    assert split.new_text == QUESTION
    assert split.quoted.startswith("____") and split.quoted.endswith(OLD)


def test_a_from_line_alone_is_not_a_header_block():
    text = _text("Από: το σχολείο μας λείπουν τρεις μαθητές.", "Θέμα: πώς τους βάζω στο e-class;")
    assert split_reply(text).new_text == text


# ------------------------------------------------------------ forwards and all-quote mail


FORWARDED = [
    "From: Γονέας <parent@example.com>",
    "Date: Tue, 24 Mar 2020 at 10:12",
    "Subject: Κωδικός",
    "To: <teacher@sch.gr>",
    "",
    "",
    "Ο γιος μου δεν έχει κωδικό για το e-class. Πώς τον παίρνει;",
]


@pytest.mark.parametrize(
    "marker",
    [
        "---------- Forwarded message ---------",
        "---------- Προωθημένο μήνυμα ---------",
        "-------- Forwarded Message --------",
        "Begin forwarded message:",
    ],
)
def test_forward_without_a_note_makes_the_forwarded_text_the_request(marker):
    split = split_reply(_text(marker, *FORWARDED))
    assert split.new_text == "Ο γιος μου δεν έχει κωδικό για το e-class. Πώς τον παίρνει;"


def test_forward_with_a_short_note_keeps_both():
    split = split_reply(
        _text("Δείτε παρακάτω.", "", "---------- Forwarded message ---------", *FORWARDED)
    )
    assert split.new_text.startswith("Δείτε παρακάτω.")
    assert split.new_text.endswith("Πώς τον παίρνει;")


def test_forward_with_a_real_note_keeps_only_the_note():
    note = (
        "Καλημέρα σας, σας προωθώ το μήνυμα ενός γονέα. Εγώ έχω ήδη δοκιμάσει να αλλάξω τον "
        "κωδικό από τη σελίδα του ΠΣΔ αλλά δεν μου το επιτρέπει. Μπορείτε να βοηθήσετε;"
    )
    split = split_reply(_text(note, "", "---------- Forwarded message ---------", *FORWARDED))
    assert split.new_text == note
    assert "Ο γιος μου" in split.quoted


def test_mail_that_is_all_quote_keeps_the_quoted_text_as_new():
    split = split_reply(_text("> " + QUESTION, ">", "> Ευχαριστώ"))
    assert QUESTION in split.new_text and ">" not in split.new_text


def test_reply_with_nothing_written_uses_the_quoted_mail():
    text = _text(
        "", "Στις Τρί, 24 Μαρ 2020 στις 10:12 π.μ., ο/η Χ <x@sch.gr> έγραψε:", "> " + QUESTION
    )
    assert split_reply(text).new_text == QUESTION


# ------------------------------------------------------------ signatures


@pytest.mark.parametrize(
    "footer",
    [
        "Στάλθηκε από το iPhone μου",
        "Στάλθηκε από το κινητό μου",
        "Sent from my Samsung Galaxy",
        "Αποστολή από το Ταχυδρομείο για Windows 10",
        "Get Outlook for Android",
    ],
)
def test_mobile_footer_is_a_signature(footer):
    split = split_reply(_text(QUESTION, "", footer))
    assert split == Split(QUESTION, "", footer)


def test_dash_dash_space_starts_a_signature():
    split = split_reply(_text(QUESTION, "-- ", "Μαρία Κ.", "ΠΕ70"))
    assert split.new_text == QUESTION and split.signature == "-- \nΜαρία Κ.\nΠΕ70"


@pytest.mark.parametrize(
    "closing", ["Με εκτίμηση,", "Με εκτιμηση", "ΕΥΧΑΡΙΣΤΩ ΠΟΛΥ!", "Eyxaristw polu", "Best regards,"]
)
def test_sign_off_with_name_school_phone_block_is_a_signature(closing):
    block = ["Δημήτρης Παπαδάκης", "2ο Γυμνάσιο Αθηνών", "Τηλ. 210 1234567"]
    split = split_reply(_text(QUESTION, "", closing, *block))
    assert split.new_text == QUESTION
    assert split.signature == _text(closing, *block)


def test_sign_off_followed_by_a_question_is_not_a_signature():
    text = _text("Δοκίμασα όσα είπατε.", "Ευχαριστώ", "Πώς αλλάζω όμως τον κωδικό στο e-me;")
    assert split_reply(text).new_text == text


def test_sign_off_followed_by_a_sentence_is_not_a_signature():
    text = _text(
        "Δοκίμασα όσα είπατε.",
        "Ευχαριστώ",
        "Επίσης οι μαθητές μου δεν βλέπουν καθόλου τις εργασίες στο μάθημα μου",
    )
    assert split_reply(text).new_text == text


def test_thank_you_mail_that_is_only_a_sign_off_is_kept():
    assert split_reply("Ευχαριστώ πολύ!\nΕλένη").new_text == "Ευχαριστώ πολύ!\nΕλένη"


def test_signature_rules_never_empty_the_text():
    text = _text("-- ", "Μαρία")
    assert split_reply(text).new_text == text


# ------------------------------------------------------------ disclaimers


@pytest.mark.parametrize(
    "disclaimer",
    [
        "Το παρόν μήνυμα και τυχόν συνημμένα αρχεία του είναι εμπιστευτικά και προορίζονται "
        "αποκλειστικά για τον παραλήπτη. Αν το λάβατε κατά λάθος, διαγράψτε το.",
        "This e-mail and any attachments are confidential and intended solely for the addressee. "
        "If you have received it in error, please notify the sender.",
        "Σκεφτείτε το περιβάλλον πριν εκτυπώσετε αυτό το μήνυμα.",
    ],
    ids=["greek-legal", "english-legal", "environment"],
)
def test_disclaimer_paragraph_is_removed(disclaimer):
    split = split_reply(_text(QUESTION, "", "Μαρία", "", disclaimer))
    assert split.new_text == _text(QUESTION, "", "Μαρία")
    assert split.signature == disclaimer


def test_question_about_confidentiality_is_not_a_disclaimer():
    text = _text(
        "Καλημέρα,",
        "",
        "Στο Webex εμφανίζεται ότι το μήνυμα είναι εμπιστευτικό και δεν μπορώ να το προωθήσω "
        "στους γονείς των μαθητών μου. Πώς αλλάζει αυτή η ρύθμιση στην αίθουσά μου?",
    )
    assert split_reply(text).new_text == text


# ------------------------------------------------------------ edges


def test_empty_and_blank_text():
    assert split_reply("") == Split("", "", "")
    assert split_reply("\n\n  \n") == Split("", "", "")


def test_long_text_is_split_in_linear_time():
    lines = [f"Γραμμή {n}: Ευχαριστώ" if n % 7 else "Ευχαριστώ" for n in range(20000)]
    text = _text(*lines, "", "Στις Τρί, 24 Μαρ 2020 στις 10:12 π.μ., ο/η Χ <x@sch.gr> έγραψε:")
    start = time.perf_counter()
    split = split_reply(text + "\n> παλιό")
    assert time.perf_counter() - start < 1.0
    assert split.new_text.startswith("Ευχαριστώ\nΓραμμή 1")
    assert split.quoted.endswith("> παλιό")


def test_many_dash_lines_and_blank_runs_stay_linear():
    # Issue 9: every "--" line copied the rest of the body (1 MB took over 200 s).
    text = "Ερώτηση για το Webex;\n" + "--\n" * 100_000 + "  \n" * 100_000
    # CPU time of this thread, measured 0.8 s here: the bound catches a quadratic step
    # (minutes), not a loaded machine.
    start = time.thread_time()
    split = split_reply(text)
    assert time.thread_time() - start < 3.0
    assert split.new_text.startswith("Ερώτηση για το Webex;")


def test_dash_signature_is_still_found_after_many_lines():
    lines = [f"Γραμμή {n}" for n in range(5_000)]
    split = split_reply(_text(*lines, "-- ", "Μαρία", "2ο Γυμνάσιο"))
    assert split.signature == "-- \nΜαρία\n2ο Γυμνάσιο"
    assert split.new_text.endswith("Γραμμή 4999")
