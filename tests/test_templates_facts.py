"""The answers as a teacher reads them: facts that match the seeds, greeting, shape rules.

Every reply is built the way the daemon builds it (`Replies.build`) and read back from
the MIME message, so what is checked is what a teacher receives.
"""

import re
from datetime import UTC, datetime
from email import message_from_bytes, policy
from pathlib import Path

import pytest

from triage_daemon.catalogue import FAQ_KEYS
from triage_daemon.config import MailboxSettings
from triage_daemon.context import ParsedMail
from triage_daemon.reply.build import ACK, FAQ, NOT_TECHNICAL, Replies, text_blocks

ROOT = Path(__file__).resolve().parents[1]
BOX = MailboxSettings.model_validate(
    {
        "name": "pekes1",
        "address": "helpdesk@pekes1.att.example",
        "tag": "ΠΕΚΕΣ1",
        "display_name": "1ο ΠΕΚΕΣ Αττικής",
        "imap": {"host": "127.0.0.1", "port": 143, "user": "pekes1", "password": "x"},
    }
)
WHEN = datetime(2020, 3, 24, 10, 0, tzinfo=UTC)
KINDS = [(ACK, None), (NOT_TECHNICAL, None), *((FAQ, key) for key in FAQ_KEYS)]
KIND_IDS = [faq or kind for kind, faq in KINDS]
# The only addresses an answer may point to: the ministry's and the ΠΣΔ's own pages.
OFFICIAL_HOSTS = {
    "webex.sch.gr",
    "register.sch.gr",
    "www.sch.gr",
    "eclass.sch.gr",
    "e-me.edu.gr",
    "minedu-primary.webex.com",
    "minedu-secondary.webex.com",
}


@pytest.fixture(scope="module")
def replies():
    r = Replies(ROOT / "templates")
    r.validate()
    return r


def build(replies, kind, faq=None, from_name="Ελένη Ρήγα"):
    mail = ParsedMail(
        message_id="abc@sch.gr", subject="Webex", from_name=from_name, from_addr="t@sch.gr"
    )
    reply = replies.build(kind=kind, faq=faq, mailbox=BOX, ticket_id=42, mail=mail, date=WHEN)
    return message_from_bytes(reply.as_bytes(), policy=policy.default)


def text_of(replies, kind, faq=None, from_name="Ελένη Ρήγα"):
    return build(replies, kind, faq, from_name).get_body(("plain",)).get_content()


def lists_of(text, kind):
    return [block["lines"] for block in text_blocks(text) if block["kind"] == kind]


# --- the greeting -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("from_name", "greeting"),
    [
        ("Γιώργος Δήμου", "Γεια σας, Γιώργο,"),
        ("ΦΛΩΡΟΥ ΕΛΕΝΗ", "Γεια σας, Ελένη,"),
        ("Eleni Konstantinou", "Γεια σας,"),
        ("1ο Γυμνάσιο Αθηνών", "Γεια σας,"),
        ("", "Γεια σας,"),
    ],
)
@pytest.mark.parametrize(("kind", "faq"), [(ACK, None), (FAQ, "webex-lobby")], ids=["ack", "faq"])
def test_greeting_in_the_vocative_or_none(replies, kind, faq, from_name, greeting):
    msg = build(replies, kind, faq, from_name)
    text = msg.get_body(("plain",)).get_content()
    assert text.splitlines()[0] == greeting
    assert greeting in msg.get_body(("html",)).get_content()
    # The address line keeps the name as the sender wrote it.
    assert msg["To"].addresses[0].display_name == from_name


# --- facts checked against the seeds --------------------------------------------------


@pytest.mark.parametrize(("kind", "faq"), KINDS, ids=KIND_IDS)
def test_one_spelling_of_each_address(replies, kind, faq):
    text = text_of(replies, kind, faq)
    # The seeds write both mineduprimary and minedu-primary, e-class.sch.gr and
    # eclass.sch.gr: the answers use one of each.
    assert "mineduprimary" not in text
    assert "e-class.sch.gr" not in text
    hosts = set(re.findall(r"(?:https://)?([a-z0-9.-]+\.(?:gr|com))\b", text))
    hosts -= {"sch.gr", BOX.address.split("@")[1]}
    assert hosts <= OFFICIAL_HOSTS, hosts - OFFICIAL_HOSTS


@pytest.mark.parametrize("faq", ["webex-account", "webex-room-link", "webex-mobile"])
def test_primary_site_spelled_with_hyphen(replies, faq):
    text = text_of(replies, FAQ, faq)
    assert "minedu-primary.webex.com" in text and "minedu-secondary.webex.com" in text


def test_share_names_the_window_and_keeps_recording_off(replies):
    text = text_of(replies, FAQ, "webex-share")
    steps = lists_of(text, "ol")[0]
    choose = [step for step in steps if "επιλέξτε το παράθυρο" in step.lower()]
    assert choose and "όχι ολόκληρη την οθόνη" in choose[0]
    assert not any("ολόκληρη την οθόνη" in s and "όχι" not in s for s in steps)
    assert "ηλεκτρονικό σας ταχυδρομείο" in text and "ειδοποιήσεις" in text
    assert "Η καταγραφή μένει κλειστή" in text
    assert "το Υπουργείο απαγορεύει την\nκαταγραφή" in text and "απενεργοποιήσει" in text
    # The macOS permission is named so, but the answer says it records nothing.
    mac = next(p for p in text.split("\n\n") if "Screen Recording" in p)
    assert "δεν καταγράφει το μάθημα" in mac


def test_mobile_signup_first_and_two_separate_step_lists(replies):
    text = text_of(replies, FAQ, "webex-mobile")
    teacher, students = lists_of(text, "ol")
    assert "εγγραφή" in teacher[0] and "https://webex.sch.gr" in teacher[0]
    assert any("Sign in" in step for step in teacher)
    assert not any("Sign in" in step or "εγγραφή" in step for step in students)
    assert any("Join" in step for step in students)
    assert "Για εσάς, τον/την εκπαιδευτικό:" in text
    assert text.index("Για εσάς") < text.index("Για τους μαθητές")


def test_lobby_says_when_to_sign_in_and_who_waits(replies):
    text = text_of(replies, FAQ, "webex-lobby")
    assert "μόνο μετά ανοίγετε την αίθουσα" in text
    assert "χωρίς να έχετε συνδεθεί" in text and "ως\nεπισκέπτη" in text
    bullets = lists_of(text, "ul")[0]
    assert any(b.startswith("Στην αναμονή περιμένουν οι μαθητές") for b in bullets)
    assert not any("αλλιώς μπορεί να περιμένετε" in b for b in bullets)


def test_psd_account_says_only_what_the_seeds_support(replies):
    text = text_of(replies, FAQ, "psd-account")
    assert "taxis" not in text.lower()
    assert "γονέα" not in text and "κηδεμόνα" not in text
    assert "Για μαθητές, ο λογαριασμός ΠΣΔ και ο κωδικός του δίνονται μέσω του\nσχολείου" in text


def test_ack_promises_no_personal_answer_and_names_the_first_level(replies):
    text = text_of(replies, ACK)
    assert "θα σας απαντήσει" not in text
    assert "όλους μαζί" in text  # grouped answers (the circular's «ομαδοποιημένες»)
    assert "παραπέμπουμε" in text and "Κεντρικής Ομάδας Τηλεκπαίδευσης" in text
    urgent = next(p for p in text.split("\n\n") if "επείγον" in p)
    assert "ώρα του μαθήματος" in urgent
    assert "ομάδα υποστήριξης του σχολείου σας" in urgent and "πρώτο επίπεδο" in urgent


@pytest.mark.parametrize(("kind", "faq"), [(ACK, None), *((FAQ, k) for k in FAQ_KEYS)])
def test_nothing_the_ministry_may_change(replies, kind, faq):
    text = text_of(replies, kind, faq).replace("ΠΕΚΕΣ1 #42", "")
    assert not re.search(r"\d{5,}|\d{3}[ -]\d{3,}", text), "a phone number or code"
    assert not re.search(r"\d+\s*[KMG]B\b", text), "a size limit"


# --- the shape the HTML conversion needs (templates/README.md) ------------------------


@pytest.mark.parametrize(("kind", "faq"), KINDS, ids=KIND_IDS)
def test_shape_rules(replies, kind, faq):
    text = text_of(replies, kind, faq)
    assert "\n\n\n" not in text
    for chunk in text.strip().split("\n\n"):
        lines = chunk.splitlines()
        assert all(len(line) <= 78 for line in lines), chunk
        listed = [bool(re.match(r"\d{1,2}\. |- ", line)) for line in lines]
        # A step or bullet wrapped onto a second line would turn the list into a paragraph.
        assert all(listed) or not any(listed), chunk
        # A paragraph either keeps its breaks (all lines short) or reflows (long lines).
        if not any(listed) and len(lines) > 1:
            short = [len(line) < 50 for line in lines[:-1]]
            assert all(short) or not any(short), chunk
