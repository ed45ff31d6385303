"""Filters that recognise automatic mail, one case each, and the cases they must let through."""

from datetime import UTC, datetime
from pathlib import Path

import pytest
from mailfactory import request
from test_pipeline import make_settings

from triage_daemon.context import ParsedMail
from triage_daemon.filters import REGISTRY, build_chain
from triage_daemon.filters.acknowledgement import opening_sentences
from triage_daemon.parse.message import parse_message
from triage_daemon.pipeline import FILTERS
from triage_daemon.reply.build import ACK, Replies

ROOT = Path(__file__).resolve().parents[1]
WHEN = datetime(2020, 3, 24, 10, 0, tzinfo=UTC)

OWN = frozenset({"helpdesk@pekes1.att.example"})


def mail(**fields) -> ParsedMail:
    headers = fields.pop("headers", {})
    base = {
        "message_id": "m1@example",
        "from_addr": "teacher@sch.gr",
        "subject": "Webex",
        "text": "Δεν μπορώ να μπω στο webex.",
    }
    base.update(fields)
    return ParsedMail(headers={k.lower(): v for k, v in headers.items()}, **base)


def first_hit(m: ParsedMail) -> str | None:
    for rule in build_chain(FILTERS):
        if rule.check(m, OWN):
            return rule.name
    return None


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"headers": {"Auto-Submitted": ["auto-replied"]}}, "auto-submitted"),
        ({"headers": {"Auto-Submitted": ["auto-generated; owner=x"]}}, "auto-submitted"),
        ({"headers": {"X-Autoreply": ["yes"]}}, "autoreply-headers"),
        ({"headers": {"Precedence": ["bulk"]}}, "precedence"),
        ({"headers": {"Precedence": ["junk"]}}, "precedence"),
        ({"headers": {"List-Id": ["<teachers.lists.example>"]}}, "mailing-list"),
        ({"headers": {"List-Unsubscribe": ["<mailto:x@example>"]}}, "mailing-list"),
        ({"content_type": "multipart/report"}, "bounce"),
        ({"headers": {"Return-Path": ["<>"]}}, "bounce"),
        ({"from_addr": "MAILER-DAEMON@mail.sch.gr"}, "bounce"),
        ({"from_addr": "helpdesk@pekes1.att.example"}, "own-address"),
        ({"from_addr": "no-reply@eclass.sch.gr"}, "no-reply-sender"),
        ({"from_addr": "noreply+abc@example.com"}, "no-reply-sender"),
        ({"from_addr": ""}, "no-reply-sender"),
        ({"subject": "Αυτόματη απάντηση: Πρόβλημα webex"}, "out-of-office"),
        ({"subject": "Automatic reply: eclass"}, "out-of-office"),
        (
            {"subject": "Re: [ΠΕΚΕΣ1 #4] webex", "text": "Θα βρίσκομαι εκτός γραφείου έως 3/4."},
            "out-of-office",
        ),
        (
            {"subject": "RE: webex", "text": "Tha eimai ektos grafeiou mexri tin Deytera."},
            "out-of-office",
        ),
    ],
    ids=lambda v: str(v)[:40],
)
def test_automatic_mail_is_recognised(fields, expected):
    assert first_hit(mail(**fields)) == expected


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"headers": {"Auto-Submitted": ["no"]}},
        {"headers": {"Precedence": ["normal"]}},
        # A person asking about their own leave writes a new mail: it gets the redirect.
        {"subject": "Άδεια", "text": "Θα απουσιάζω από 1/4, τι πρέπει να κάνω;"},
        {"subject": "Απουσίες μαθητών στο webex", "text": "Πώς περνάω τις απουσίες;"},
        {"from_addr": "reply.teacher@sch.gr"},
    ],
    ids=lambda v: str(v)[:40],
)
def test_real_requests_pass(fields):
    assert first_hit(mail(**fields)) is None


def test_chain_names_resolve_once():
    assert set(FILTERS) <= set(REGISTRY)
    with pytest.raises(ValueError, match="doubled"):
        build_chain(("bounce", "bounce"))
    with pytest.raises(ValueError, match="unknown"):
        build_chain(("no-such-filter",))


def parsed(subject: str, body: str) -> ParsedMail:
    """The mail as the pipeline sees it: parsed, with quoted text split off."""
    return parse_message(request(subject=subject, body=body, sender="someone@sch.example"))


# Auto-responders that send no automatic-mail header, as they were seen (Greek school
# secretariats, ticket systems, Exchange rules, German and French universities).
HEADERLESS_AUTORESPONDERS = {
    "greek-received": (
        "Re: Πρόβλημα με webex",
        "Αγαπητέ/ή αποστολέα,\n\nΤο μήνυμά σας παραλήφθηκε και θα απαντηθεί το "
        "συντομότερο δυνατό.\n\nΓραμματεία 5ου Γυμνασίου Αθηνών",
    ),
    "greek-received-alone": ("Λήψη μηνύματος", "Το μήνυμά σας παραλήφθηκε.\n\nΓραμματεία"),
    "greek-we-received": (
        "Παραλαβή αιτήματος",
        "Καλησπέρα σας,\nΛάβαμε το αίτημά σας και το καταχωρίσαμε με αριθμό 1234/2020.",
    ),
    "greek-automated": (
        "Re: [ΠΕΚΕΣ1 #3] Webex",
        "Αυτό είναι ένα αυτοματοποιημένο μήνυμα. Παρακαλούμε μην απαντήσετε σε αυτό το μήνυμα.",
    ),
    "english-automated": (
        "Re: Webex",
        "Thank you for your email.\n\nThis is an automated message to confirm that we have "
        "received your request. We will get back to you as soon as possible.\n\nIT Services",
    ),
    "english-received": (
        "We received your request",
        "Hello,\n\nWe have received your message and a member of our team will reply within "
        "2 working days.\nPlease do not reply to this email.",
    ),
    "german": (
        "Ihre Anfrage",
        "Sehr geehrte Damen und Herren,\n\nvielen Dank für Ihre Nachricht. Dies ist eine "
        "automatische Antwort. Wir melden uns so schnell wie möglich.",
    ),
    "french": (
        "Votre message",
        "Bonjour,\n\nNous avons bien reçu votre message. Nous vous répondrons dans les plus "
        "brefs délais.\n\nCeci est un message automatique, merci de ne pas répondre.",
    ),
    "german-subject": ("Automatische Antwort: Webex", "Ich bin bis 3.4. nicht im Büro."),
    "french-subject": ("Réponse automatique : Webex", "Je suis absent jusqu'au 3 avril."),
    "exchange-subject": ("Out of Office AutoReply: eclass", "Back on Monday."),
}

# A teacher's real mail that uses the same words.
TEACHERS_QUESTIONS = {
    "automatic-confirmation": (
        "Δεν έρχεται το αυτόματο μήνυμα",
        "Καλησπέρα σας,\nδεν μου έρχεται το αυτόματο μήνυμα επιβεβαίωσης από το e-class όταν "
        "εγγράφω μαθητές. Τι να κάνω;\nΕυχαριστώ,\nΜαρία",
    ),
    "sends-automatically": (
        "Ειδοποιήσεις e-class",
        "Το e-class στέλνει αυτόματα ειδοποιήσεις στους μαθητές αλλά δεν τις λαμβάνουν.",
    ),
    "message-sent-automatically": (
        "Το μήνυμα στάλθηκε",
        "Το μήνυμα στάλθηκε αυτόματα από το e-class στους μαθητές μου, δεν το έλαβε κανείς.",
    ),
    "how-to-set-autoreply": (
        "Πώς βάζω αυτόματη απάντηση στο webmail;",
        "Θέλω να ρυθμίσω αυτόματη απάντηση στο webmail του ΠΣΔ όσο θα λείπω.",
    ),
    "autoreply-in-subject": ("Αυτόματη απάντηση στο webmail", "Πώς τη ρυθμίζω;"),
    "out-of-office-in-subject": (
        "Out of office στο Outlook",
        "Δεν μπορώ να βάλω out of office μήνυμα στο Outlook με τον λογαριασμό του ΠΣΔ.",
    ),
    "we-received-but": (
        "Webex",
        "Λάβαμε το μήνυμά σας για την επιμόρφωση αλλά ο σύνδεσμος του webex δεν ανοίγει.",
    ),
    "thanks-received": (
        "Re: [ΠΕΚΕΣ1 #3] Webex",
        "Ευχαριστώ, το μήνυμά σας ελήφθη. Θα δοκιμάσω ξανά αύριο το πρωί.",
    ),
    "received-question": (
        "Re: [ΠΕΚΕΣ1 #3] Webex",
        "Το μήνυμά μου ελήφθη; Δεν έχω πάρει καμία απάντηση ακόμα.",
    ),
    "quotes-an-error": (
        "Eclass error",
        'Hello,\nwhen I log in to e-class I get "This is an automated message: your account '
        'is locked". How do I unlock it?',
    ),
    "thanks-still-broken": (
        "Re: Webex",
        "Thank you for your email. I tried again and it still does not work.",
    ),
    "reply-quoting-our-ack": (
        "Re: [ΠΕΚΕΣ1 #3] Re: Webex",
        "Ευχαριστώ πολύ, λύθηκε!\n\nΣτις 24/3/2020 10:00, ο/η 1ο ΠΕΚΕΣ έγραψε:\n"
        "> Γεια σας, Μαρία,\n>\n> Λάβαμε το αίτημά σας για τεχνική υποστήριξη και το "
        "καταχωρίσαμε με\n> αριθμό ΠΕΚΕΣ1 #3.\n>\n> Ένας ειδικός θα σας απαντήσει το "
        "συντομότερο δυνατό.\n",
    ),
    "thanks-then-unmarked-quote": (
        "Re: [ΠΕΚΕΣ1 #3] Re: Webex",
        "Ευχαριστώ, θα το δοκιμάσω.\n\nΓεια σας, Μαρία,\n\nΛάβαμε το αίτημά σας για τεχνική "
        "υποστήριξη. Ένας ειδικός θα σας απαντήσει το συντομότερο δυνατό.",
    ),
}


@pytest.mark.parametrize(
    ("subject", "body"), HEADERLESS_AUTORESPONDERS.values(), ids=HEADERLESS_AUTORESPONDERS
)
def test_headerless_autoresponder_is_recognised(subject, body):
    assert first_hit(parsed(subject, body)) in ("acknowledgement", "out-of-office")


@pytest.mark.parametrize(("subject", "body"), TEACHERS_QUESTIONS.values(), ids=TEACHERS_QUESTIONS)
def test_teachers_words_are_not_taken_for_an_autoresponder(subject, body):
    assert first_hit(parsed(subject, body)) is None


def test_our_own_acknowledgement_is_recognised_even_without_its_headers():
    replies = Replies(ROOT / "templates")
    box = make_settings().mailboxes[1]  # another helpdesk: not one of OWN
    teacher = ParsedMail(message_id="t@sch.gr", subject="Webex", from_addr="t@sch.gr")
    raw = replies.build(kind=ACK, faq=None, mailbox=box, ticket_id=3, mail=teacher, date=WHEN)
    stripped = b"\r\n".join(
        line
        for line in raw.as_bytes().split(b"\r\n")
        if not line.startswith((b"Auto-Submitted:", b"X-Auto-Response", b"X-Triage"))
    )
    assert first_hit(parse_message(stripped)) == "acknowledgement"


def test_another_triage_daemons_reply_is_ignored_by_its_header():
    assert first_hit(mail(headers={"X-Triage-Ticket": ["12"]})) == "autoreply-headers"


def test_opening_sentences_stop_where_a_quoted_mail_begins():
    text = "Ευχαριστώ πολύ!\n\nΓεια σας, Μαρία,\n\nΛάβαμε το αίτημά σας."
    assert opening_sentences(text) == ["ευχαριστω πολυ!"]
    wrapped = "Dear Sir,\nThank you for your email. This is\nan automated message.\n\nA. B. C."
    assert opening_sentences(wrapped) == [
        "thank you for your email.",
        "this is an automated message.",
        "a.",
        "b.",
    ]
