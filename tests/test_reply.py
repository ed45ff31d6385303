"""Replies: every template renders, subjects keep one tag, headers follow RFC 3834."""

import shutil
from datetime import UTC, datetime
from email import message_from_bytes, policy
from pathlib import Path

import pytest

from triage_daemon.catalogue import FAQ_KEYS
from triage_daemon.config import MailboxSettings
from triage_daemon.context import ParsedMail
from triage_daemon.errors import ConfigError
from triage_daemon.parse.message import decode_header_value
from triage_daemon.reply import compose
from triage_daemon.reply.build import ACK, FAQ, NOT_TECHNICAL, Replies, reply_subject, text_blocks

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
MAIL = ParsedMail(
    message_id="abc@sch.gr",
    subject="Πρόβλημα με webex",
    from_name="Ελένη Ρήγα",
    from_addr="eriga@sch.gr",
    references=["older@sch.gr"],
)
WHEN = datetime(2020, 3, 24, 10, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def replies():
    r = Replies(ROOT / "templates")
    r.validate()
    return r


def build(replies, kind, faq=None):
    reply = replies.build(kind=kind, faq=faq, mailbox=BOX, ticket_id=42, mail=MAIL, date=WHEN)
    return reply, message_from_bytes(reply.as_bytes(), policy=policy.default)


@pytest.mark.parametrize("faq", FAQ_KEYS)
def test_every_faq_answer_builds(replies, faq):
    _reply, msg = build(replies, FAQ, faq)
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    assert "ΠΕΚΕΣ1 #42" in text
    assert "Γεια σας, Ελένη," in text
    assert "<html" in html.lower() and "ΠΕΚΕΣ1 #42" in html
    assert "{{" not in text and "{%" not in text


def test_ack_headers(replies):
    reply, msg = build(replies, ACK)
    assert msg["Subject"] == "[ΠΕΚΕΣ1 #42] Re: Πρόβλημα με webex"
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["In-Reply-To"] == "<abc@sch.gr>"
    assert msg["References"] == "<older@sch.gr> <abc@sch.gr>"
    assert msg["Message-ID"] == f"<{reply.message_id}>"
    assert reply.message_id.endswith("@pekes1.att.example")
    assert msg["To"].addresses[0].addr_spec == "eriga@sch.gr"
    assert msg["From"].addresses[0].addr_spec == "helpdesk@pekes1.att.example"


def test_not_technical_differs_from_ack(replies):
    _r, ack = build(replies, ACK)
    _r, redirect = build(replies, NOT_TECHNICAL)
    assert ack.get_body(("plain",)).get_content() != redirect.get_body(("plain",)).get_content()


def test_message_ids_unique(replies):
    assert build(replies, ACK)[0].message_id != build(replies, ACK)[0].message_id


def test_html_escapes_teacher_text(replies):
    evil = ParsedMail(
        message_id="x@y",
        subject="<script>alert(1)</script>",
        from_name="<b>x</b>",
        from_addr="x@sch.gr",
    )
    reply = replies.build(kind=ACK, faq=None, mailbox=BOX, ticket_id=1, mail=evil, date=WHEN)
    html = (
        message_from_bytes(reply.as_bytes(), policy=policy.default)
        .get_body(("html",))
        .get_content()
    )
    assert "<script>" not in html and "<b>x</b>" not in html


@pytest.mark.parametrize(
    ("original", "expected"),
    [
        ("Webex", "[ΠΕΚΕΣ1 #7] Re: Webex"),
        ("Re: Webex", "[ΠΕΚΕΣ1 #7] Re: Webex"),
        ("ΑΠ: RE: [ΠΕΚΕΣ1 #7] Re: Webex", "[ΠΕΚΕΣ1 #7] Re: Webex"),
        ("", "[ΠΕΚΕΣ1 #7]"),
    ],
)
def test_reply_subject(original, expected):
    assert reply_subject("ΠΕΚΕΣ1", 7, original) == expected


def test_text_blocks():
    blocks = text_blocks("Καλησπέρα,\nσας γράφω.\n\n1. Ένα\n2. Δύο\n\n- α\n- β\n")
    assert [b["kind"] for b in blocks] == ["p", "ol", "ul"]
    assert blocks[1]["lines"] == ["Ένα", "Δύο"]


def test_missing_template_reported(tmp_path):
    (tmp_path / "reply").mkdir()
    (tmp_path / "reply" / "ack.txt.j2").write_text("{{ no_such_variable }}", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        Replies(tmp_path).validate()
    problems = "\n".join(caught.value.problems)
    assert "no_such_variable" in problems
    assert "not_technical.txt.j2: missing" in problems
    assert "faq/webex-lobby.txt.j2: missing" in problems


def test_long_greek_headers_fold_and_decode(replies):
    long_mail = ParsedMail(
        message_id="m" * 40 + "@sch.gr",
        subject="Πρόβλημα " * 20,
        from_name="Αικατερίνη-Παναγιώτα Παπαδοπούλου-Χατζηγεωργίου του Κωνσταντίνου",
        from_addr="k.papadopoulou@sch.gr",
        references=[f"{'r' * 50}{n}@sch.gr" for n in range(12)],
    )
    reply = replies.build(kind=ACK, faq=None, mailbox=BOX, ticket_id=9, mail=long_mail, date=WHEN)
    raw = reply.as_bytes()
    assert max(len(line) for line in raw.split(b"\r\n")) <= 78
    assert b"\n" not in raw.replace(b"\r\n", b"")
    msg = message_from_bytes(raw, policy=policy.default)
    # CPython keeps the space between adjacent encoded-words in display names (RFC 2047
    # says to drop it): read the raw header with our own decoder.
    raw_to = raw.split(b"\r\nTo: ", 1)[1].split(b"\r\nSubject:", 1)[0].decode()
    assert decode_header_value(raw_to) == f"{long_mail.from_name} <{long_mail.from_addr}>"
    assert str(msg["Subject"]) == "[ΠΕΚΕΣ1 #9] Re: " + long_mail.subject.strip()
    refs = msg["References"].split()
    assert len(refs) == 10 and refs[-1] == f"<{long_mail.message_id}>"
    assert not msg.defects


@pytest.mark.parametrize(
    "payload",
    [
        "{{ cycler.__init__.__globals__.os.popen('touch MARKER').read() }}",
        "{{ lipsum.__globals__['os'].popen('touch MARKER').read() }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ self.__init__.__globals__ }}",
        "{{ joiner.__init__.__globals__.__builtins__['open']('MARKER', 'w') }}",
    ],
    ids=["cycler-globals", "lipsum-globals", "mro-subclasses", "self-globals", "builtins-open"],
)
def test_a_template_cannot_run_code(tmp_path, monkeypatch, payload):
    templates = tmp_path / "templates"
    shutil.copytree(ROOT / "templates", templates)
    (templates / "reply" / "ack.txt.j2").write_text(f"Γεια σας.\n{payload}\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as caught:
        Replies(templates).validate()
    assert not (tmp_path / "MARKER").exists()
    (problem,) = caught.value.problems
    assert "ack.txt.j2" in problem and "unsafe" in problem


def test_line_separators_in_a_name_do_not_break_the_greeting(replies):
    mail = ParsedMail(
        message_id="n@sch.gr",
        subject="Webex\u2029Δεύτερη γραμμή",
        from_name="Ελένη\u2028Ρήγα\x85\u202e",
        from_addr="eriga@sch.gr",
    )
    reply = replies.build(kind=ACK, faq=None, mailbox=BOX, ticket_id=3, mail=mail, date=WHEN)
    msg = message_from_bytes(reply.as_bytes(), policy=policy.default)
    text = msg.get_body(("plain",)).get_content()
    assert text.splitlines()[0] == "Γεια σας, Ελένη,"
    assert "\u2028" not in text and "\u2029" not in text and "\u202e" not in text
    html = msg.get_body(("html",)).get_content()
    assert "Γεια σας, Ελένη," in html and "\u2028" not in html
    assert str(msg["Subject"]) == "[ΠΕΚΕΣ1 #3] Re: Webex Δεύτερη γραμμή"


def test_reply_to_a_quoted_spelling_goes_to_the_plain_address(replies):
    mail = ParsedMail(message_id="q@sch.gr", from_name="Ελένη", from_addr='"ERiga"@SCH.GR')
    reply = replies.build(kind=ACK, faq=None, mailbox=BOX, ticket_id=4, mail=mail, date=WHEN)
    assert reply.recipient == "eriga@sch.gr"
    msg = message_from_bytes(reply.as_bytes(), policy=policy.default)
    assert msg["To"].addresses[0].addr_spec == "eriga@sch.gr"
    assert msg["To"].addresses[0].display_name == "Ελένη"


def test_no_reply_to_an_unusable_address(replies):
    mail = ParsedMail(message_id="u@sch.gr", from_addr="eve\x1b[2J@sch.gr")
    with pytest.raises(ValueError, match="no usable address"):
        replies.build(kind=ACK, faq=None, mailbox=BOX, ticket_id=5, mail=mail, date=WHEN)


def test_a_line_break_never_reaches_a_header():
    with pytest.raises(ValueError, match="line break"):
        compose.unstructured("Subject", "x\r\nBcc: victim@example.com")
    with pytest.raises(ValueError, match="line break"):
        compose.address("To", "Eve\nBcc: a@b", "eve@sch.gr")
    with pytest.raises(ValueError, match="line break"):
        compose.id_list("In-Reply-To", ["a@b>\r\nBcc: <c@d"])
