"""Tests for parse.py: the shared example mails, our own samples, and hostile input."""

from __future__ import annotations

import base64
import json
import quopri
import random
import re
import time
from datetime import UTC, datetime, timedelta
from email.utils import parseaddr
from pathlib import Path

import pytest

from triage_daemon.context import Attachment, ParsedMail
from triage_daemon.errors import ParseError
from triage_daemon.parse import body
from triage_daemon.parse import message as parse
from triage_daemon.parse.message import parse_message

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
EXAMPLES = SHARED / "examples"
DATA = Path(__file__).parent / "data" / "mail"
DERIVED_ID = re.compile(r"[0-9a-f]{32}@triage-daemon\.invalid")


def _load_items() -> list[dict]:
    path = EXAMPLES / "src" / "items.jsonl"
    if not path.is_file():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


ITEMS = _load_items()
needs_examples = pytest.mark.skipif(
    not ITEMS, reason=f"{EXAMPLES} is absent: the shared example mails are not available"
)


def _squash(text: str) -> str:
    return " ".join(text.replace("\xa0", " ").split())


def _example(item: dict) -> ParsedMail:
    return parse_message((EXAMPLES / "mail" / f"{item['id']}.eml").read_bytes())


def _sample(name: str) -> ParsedMail:
    return parse_message((DATA / name).read_bytes())


def _addresses(entries: list[str]) -> list[str]:
    return [parseaddr(entry)[1].lower() for entry in entries]


# ------------------------------------------------------------ shared examples


@needs_examples
def test_examples_all_present():
    files = sorted((EXAMPLES / "mail").glob("*.eml"))
    assert len(files) == len(ITEMS) > 0


@needs_examples
@pytest.mark.parametrize("item", ITEMS or [None], ids=[i["id"] for i in ITEMS] or ["none"])
def test_example_headers_match_source(item):
    mail = _example(item)
    assert mail.subject == item["subject"]
    assert mail.from_addr == item["from_addr"].lower()
    if not item.get("from_raw"):
        # RFC 2047: no space between adjacent encoded-words (CPython keeps one).
        assert mail.from_name == (item.get("from_name") or "")
    assert mail.message_id == item["message_id"].strip("<>")
    assert mail.to == _addresses(item["to"])
    assert mail.cc == _addresses(item.get("cc", []))
    local = datetime.fromisoformat(item["date"])
    assert mail.date is not None and mail.date.replace(tzinfo=None) == local
    assert mail.date.utcoffset() in (timedelta(hours=2), timedelta(hours=3))


@needs_examples
@pytest.mark.parametrize("item", ITEMS or [None], ids=[i["id"] for i in ITEMS] or ["none"])
def test_example_extra_headers_decoded(item):
    mail = _example(item)
    for name, value in item.get("extra_headers", []) + item.get("trace_headers", []):
        values = [_squash(v) for v in mail.headers[name.lower()]]
        assert _squash(value) in values, name
    for name, value in item.get("extra_headers", []):
        if name.lower() == "in-reply-to":
            assert mail.in_reply_to == value.strip().strip("<>")


@needs_examples
@pytest.mark.parametrize("item", ITEMS or [None], ids=[i["id"] for i in ITEMS] or ["none"])
def test_example_body_text_matches_source(item):
    mail = _example(item)
    expected = item["body_text"]
    if item["structure"] == "html":
        assert mail.html_only
        assert _squash(mail.text) == _squash(expected)
        for line in filter(None, (ln.strip() for ln in expected.splitlines())):
            assert _squash(line) in _squash(mail.text)
    else:
        assert not mail.html_only
        assert mail.text == expected.replace("\r\n", "\n").strip("\n")
    assert mail.new_text.strip()
    for line in mail.new_text.splitlines():
        assert line in mail.text


@needs_examples
@pytest.mark.parametrize(
    "item",
    [i for i in ITEMS if i.get("attachment") or i.get("report")] or [None],
    ids=[i["id"] for i in ITEMS if i.get("attachment") or i.get("report")] or ["none"],
)
def test_example_attachments(item):
    mail = _example(item)
    if item.get("attachment"):
        att = item["attachment"]
        size = len(base64.b64decode(att["data_base64"]))
        assert mail.attachments == [Attachment(att["filename"], att["content_type"], size)]
    else:
        # A bounce: the returned original is not the sender's text.
        original = item["report"]["original"]
        assert original["subject"] not in mail.text
        forwarded = [a for a in mail.attachments if a.content_type == "message/rfc822"]
        assert len(forwarded) == (1 if item["report"]["original_type"] == "message/rfc822" else 0)
        if forwarded:
            assert forwarded[0].size > len(original["body_text"].encode("utf-8"))


# ------------------------------------------------------------ our samples


def test_windows_1253_body_and_q_headers():
    mail = _sample("greek_windows1253.eml")
    assert mail.subject == "Δεν ανοίγει το Webex"
    assert (mail.from_name, mail.from_addr) == ("Δημήτρης Παπαδάκης", "d.papadakis@sch.gr")
    assert mail.cc == ["mail@2gym-athin.att.sch.gr"]
    assert mail.headers["cc"] == ["Γραμματεία <mail@2gym-athin.att.sch.gr>"]
    # 0xA2 is "Ά" in windows-1253 but "’" in ISO-8859-7.
    assert "«Άγνωστο σφάλμα 0x80070005»" in mail.text
    assert mail.new_text.endswith("Τι να κάνω;")
    assert mail.signature.startswith("Με εκτίμηση,\nΔημήτρης Παπαδάκης")
    assert not mail.defects
    assert len(mail.headers["received"]) == 1 and "\n" not in mail.headers["received"][0]


def test_iso_8859_7_split_name_q_subject_and_flowed_body():
    mail = _sample("greek_iso8859_7_flowed.eml")
    assert mail.subject == "Κωδικός για το e-class"
    assert mail.from_name == "Σοφία Ντάλλα"
    assert mail.to == ["helpdesk@pekes3.att.example"]
    assert "η σελίδα ανάκτησης μου λέει ότι ο λογαριασμός δεν υπάρχει." in mail.text
    assert mail.date == datetime(2020, 3, 25, 16, 2, 44, tzinfo=UTC)


def test_html_only_becomes_plain_text_and_outlook_quote_is_removed():
    mail = _sample("html_only.eml")
    assert mail.html_only and mail.content_type == "text/html"
    assert "Δεν μπορώ να ανεβάσω εργασία στο e-class: μετά το «Υποβολή»" in mail.text
    assert "οδηγίες εδώ & τίποτα" in mail.text
    for noise in ("<p", "<b>", "<br", "MsoNormal", "{", "**", "](", "&nbsp;", "&amp;"):
        assert noise not in mail.text
    assert "Παλιά απάντηση" in mail.quoted and "Παλιά απάντηση" not in mail.new_text
    assert mail.quoted.startswith("Από: Helpdesk 4ου ΠΕΚΕΣ")
    assert mail.in_reply_to == "helpdesk-4-1585558920@pekes4.att.example"


def test_attachments_with_rfc2231_and_rfc2047_greek_names():
    mail = _sample("mixed_greek_attachments.eml")
    assert mail.attachments == [
        Attachment("αίτηση εγγραφής.pdf", "application/pdf", 51),
        Attachment("Στιγμιότυπο.png", "image/png", 69),
        Attachment(
            "Πρόγραμμα.docx",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            105,
        ),
    ]
    assert mail.text == (
        "Καλημέρα,\nσας στέλνω την αίτηση και ένα στιγμιότυπο του σφάλματος από το e-me."
    )
    assert mail.to == ["helpdesk@pekes1.att.example", "help2@pekes1.att.example"]
    assert "PDF" not in mail.text and "iVBOR" not in mail.text


def test_missing_message_id_is_derived_and_stable():
    raw = (DATA / "no_message_id.eml").read_bytes()
    first, second = parse_message(raw), parse_message(raw)
    assert DERIVED_ID.fullmatch(first.message_id)
    assert first.message_id == second.message_id
    assert any("Message-ID" in d for d in first.defects)
    # Trace headers added on the way do not change it; the body does.
    relayed = (
        b"Received: from relay.example by mx.example; Fri, 3 Apr 2020 21:14:00 +0300\r\n" + raw
    )
    assert parse_message(relayed).message_id == first.message_id
    other = raw.replace(b"Ti na kanw?", b"Ti na kanw??")
    assert parse_message(other).message_id != first.message_id
    resubjected = raw.replace(b"Subject: webex hxos", b"Subject: webex ixos")
    assert parse_message(resubjected).message_id != first.message_id


def test_gmail_reply_with_greek_attribution():
    mail = _sample("reply_gmail_greek.eml")
    assert mail.subject == "Re: Η αίθουσα"
    assert mail.new_text.endswith("Πώς την ξεκλειδώνω;")
    assert mail.quoted.startswith("Στις Τρί, 24 Μαρ 2020 στις 10:12 π.μ., ο/η Χ <x@sch.gr> έγραψε:")
    assert "«Έναρξη σύσκεψης»" in mail.quoted and "Έναρξη" not in mail.new_text
    assert mail.signature.startswith("-- \nΧρύσα Λαμπράκη")
    assert mail.in_reply_to == "helpdesk-2-20200324@pekes1.att.example"
    assert mail.references == [
        "helpdesk-1-20200323@pekes1.att.example",
        "CAJ8x9vN+2Wq@mail.gmail.com",
        "helpdesk-2-20200324@pekes1.att.example",
    ]


def test_outlook_reply_with_greek_header_block_and_disclaimer():
    mail = _sample("reply_outlook_greek.eml")
    assert mail.subject == "ΑΠ: RE: Webex"
    assert mail.reply_to == "g.nikolaou@sch.gr"
    assert mail.to == ["helpdesk@pekes2.att.example"]
    assert "οι γονείς μπορούν να μπαίνουν χωρίς λογαριασμό;" in mail.new_text
    assert "φυλλομετρητή" in mail.quoted and "φυλλομετρητή" not in mail.new_text
    assert mail.quoted.startswith("____")
    assert "εμπιστευτικά" in mail.signature and "εμπιστευτικά" not in mail.new_text
    assert mail.date == datetime(2020, 3, 24, 12, 1, 33, tzinfo=UTC)


def test_forwarded_message_rfc822_is_an_attachment_not_text():
    mail = _sample("forward_rfc822.eml")
    assert mail.text == "Σας προωθώ το μήνυμα ενός γονέα: τι απαντάμε σε τέτοιες περιπτώσεις;"
    assert [a.content_type for a in mail.attachments] == ["message/rfc822"]
    assert mail.attachments[0].size > 200
    assert "Ο γιος μου" not in mail.text


def test_wrong_declared_charset_falls_back_and_is_recorded():
    mail = _sample("mislabelled_utf8.eml")
    assert mail.text == "Πώς φτιάχνω κυψέλη στο e-me;"
    assert any("iso-8859-7" in d and "utf-8" in d for d in mail.defects)


def test_undeclared_8bit_body_raw_utf8_subject_and_bad_date():
    mail = _sample("undeclared_8bit.eml")
    assert mail.subject == "Ερώτηση για το Webex"
    assert mail.text == "Άδειο το μήνυμα; Όχι, απλώς δεν έχει charset."
    assert mail.date is None
    assert any("Date" in d for d in mail.defects)


# ------------------------------------------------------------ rules and limits


def _mail(headers: str, body: bytes = b"Hello\r\n") -> bytes:
    return headers.replace("\n", "\r\n").encode("utf-8") + b"\r\n" + body


def test_oversized_message_is_refused_with_sizes():
    with pytest.raises(ParseError, match=r"^message is 200 bytes, over the limit of 100$"):
        parse_message(b"x" * 200, max_bytes=100)


@pytest.mark.parametrize(
    "raw",
    [b"", b"\r\n\r\n", b"just some words\nwith no header at all\n", b"\x00\xff\xfe" * 50],
    ids=["empty", "blank", "prose", "binary"],
)
def test_not_a_mail_is_a_parse_error(raw):
    with pytest.raises(ParseError, match="not an RFC 5322 message"):
        parse_message(raw)


def test_non_bytes_input_is_a_parse_error():
    with pytest.raises(ParseError, match="not bytes"):
        parse_message("From: a@b.c\n\nhi")  # type: ignore[arg-type]


def test_binary_noise_body_is_a_parse_error():
    raw = _mail(
        "From: a@b.example\nSubject: x\nContent-Type: text/plain\n", bytes(range(1, 9)) * 40
    )
    with pytest.raises(ParseError, match="not readable text"):
        parse_message(raw)


def test_group_syntax_crlf_in_encoded_name_and_bom_do_not_break_parsing():
    raw = b"\xef\xbb\xbf\r\n" + _mail(
        "From: =?utf-8?Q?Evil=0D=0ABcc:_x?= <evil@example.com>\n"
        "To: undisclosed-recipients:;\n"
        "Cc: Team: One <one@example.com>, two@example.com;\n"
        "Subject: =?utf-8?B?zprOsc67zrfOvM6tz4HOsQ==?=\n"
        "Date: Tue, 24 Mar 2020 10:00:00 -0000\n"
        "Message-ID:   <  spaced@example.com >  \n"
    )
    mail = parse_message(raw)
    assert mail.from_addr == "evil@example.com" and "\n" not in mail.from_name
    assert mail.to == []
    assert mail.cc == ["one@example.com", "two@example.com"]
    assert mail.subject == "Καλημέρα"
    assert mail.message_id == "spaced@example.com"
    # "-0000" (zone unknown) is read as UTC so every date is timezone-aware.
    assert mail.date == datetime(2020, 3, 24, 10, 0, tzinfo=UTC)


def test_adjacent_encoded_words_join_without_space_but_text_keeps_its_spaces():
    raw = _mail(
        "From: =?utf-8?B?zqPOv8+Gzq/OsSDOnc+Ezqw=?= =?utf-8?B?zrvOu86x?= <s@example.com>\n"
        "Subject: Re: =?iso-8859-7?Q?=C1=F0=FC?= webex =?utf-8?Q?=CE=BA=CE?=\n"
        " =?utf-8?Q?=B1=CE=B9?=\n"
    )
    mail = parse_message(raw)
    assert mail.from_name == "Σοφία Ντάλλα"
    # The last two words split one UTF-8 character between them.
    assert mail.subject == "Re: Από webex και"


def test_unknown_charset_and_transfer_encoding_are_defects_not_errors():
    raw = _mail(
        "From: a@b.example\nSubject: x\n"
        "Content-Type: text/plain; charset=x-unknown\nContent-Transfer-Encoding: base9000\n",
        "Γεια σας\r\n".encode(),
    )
    mail = parse_message(raw)
    assert mail.text == "Γεια σας"
    assert any("x-unknown" in d for d in mail.defects)


def test_alternative_prefers_plain_text():
    raw = _mail(
        'From: a@b.example\nSubject: x\nContent-Type: multipart/alternative; boundary="b"\n',
        b"--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nplain words\r\n"
        b"--b\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>html words</p>\r\n--b--\r\n",
    )
    mail = parse_message(raw)
    assert mail.text == "plain words" and not mail.html_only
    assert mail.attachments == []


def test_inline_image_counts_only_with_a_filename():
    part = "Content-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n{}\r\niVBORw0K\r\n"
    body = (
        "--b\r\nContent-Type: text/plain\r\n\r\nsee the pictures\r\n"
        "--b\r\n"
        + part.format("Content-ID: <a@b>\r\n")
        + "--b\r\n"
        + part.format('Content-Disposition: inline; filename="shot.png"\r\n')
        + "--b--\r\n"
    ).encode()
    mail = parse_message(
        _mail('From: a@b.example\nContent-Type: multipart/related; boundary="b"\n', body)
    )
    assert mail.attachments == [Attachment("shot.png", "image/png", 6)]


def test_flowed_delsp_and_quote_depth():
    body = b"one two \r\nthree\r\n>> quoted \r\n>> more\r\n-- \r\nsig\r\n"
    raw = _mail("From: a@b.example\nContent-Type: text/plain; format=flowed; delsp=yes\n", body)
    assert parse_message(raw).text == "one twothree\n>> quotedmore\n-- \nsig"


def test_huge_html_part_is_cut_to_keep_parse_time_bounded():
    html = b"<p>" + b"word " * 600_000 + b"</p>"
    raw = _mail("From: a@b.example\nContent-Type: text/html; charset=utf-8\n", html)
    start = time.perf_counter()
    mail = parse_message(raw)
    assert time.perf_counter() - start < 5
    assert mail.text.startswith("word word") and len(mail.text) <= body._MAX_HTML
    assert any(f"only the first {body._MAX_HTML} read" in d for d in mail.defects)


def test_long_message_id_is_hashed():
    raw = _mail(f"From: a@b.example\nMessage-ID: <{'x' * 400}@example.com>\n")
    assert DERIVED_ID.fullmatch(parse_message(raw).message_id)


def test_all_headers_are_kept_lower_case_in_order():
    raw = _mail(
        "Received: one\nReceived: two\n\tfolded\nX-Mailer: Thing\nFrom: a@b.example\n"
        "Subject: =?utf-8?Q?caf=C3=A9?=\n"
    )
    mail = parse_message(raw)
    assert mail.headers["received"] == ["one", "two\tfolded".replace("\t", " ")]
    assert mail.header("X-MAILER") == "Thing"
    assert mail.headers["subject"] == ["café"]
    assert mail.raw_size == len(raw)


def test_junk_line_inside_the_header_block_is_skipped():
    raw = _mail("Received: by x\nthis line is junk\nFrom: a@b.example\nSubject : obsolete form\n")
    mail = parse_message(raw)
    assert mail.from_addr == "a@b.example" and mail.subject == "obsolete form"
    assert mail.text == "Hello"
    assert any("malformed line" in d for d in mail.defects)


def test_policy_default_is_the_fallback_when_compat32_fails(monkeypatch):
    real = parse._parse

    def compat32_breaks(raw, mail_policy, budget):
        if mail_policy is parse.policy.compat32:
            raise RuntimeError("boom")
        return real(raw, mail_policy, budget)

    monkeypatch.setattr(parse, "_parse", compat32_breaks)
    mail = parse_message(_mail("From: a@b.example\nSubject: ok\n"))
    assert mail.subject == "ok" and any("policy.default" in d for d in mail.defects)

    def always_breaks(raw, mail_policy, budget):
        raise RuntimeError("boom")

    monkeypatch.setattr(parse, "_parse", always_breaks)
    with pytest.raises(ParseError, match="RuntimeError: boom"):
        parse_message(_mail("From: a@b.example\n"))


def _mutations(raw: bytes, rng: random.Random) -> list[bytes]:
    cuts = [raw[: rng.randrange(len(raw))] for _ in range(8)]
    flips = []
    for _ in range(8):
        data = bytearray(raw)
        for _ in range(rng.randrange(1, 20)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        flips.append(bytes(data))
    return cuts + flips


@pytest.mark.parametrize("name", sorted(p.name for p in DATA.glob("*.eml")))
def test_damaged_samples_never_raise_anything_but_parse_error(name):
    rng = random.Random(name)
    for raw in _mutations((DATA / name).read_bytes(), rng):
        try:
            mail = parse_message(raw)
        except ParseError:
            continue
        assert mail.message_id and "<" not in mail.message_id


# ------------------------------------------------------------ issue 9: names, addresses, HTML


def test_from_address_with_control_characters_is_refused():
    raw = _mail('From: "a\tb\x0bc"@school.example\nSubject: x\n')
    with pytest.raises(ParseError, match=r"From address .* has control characters: refused"):
        parse_message(raw)


def test_other_addresses_with_control_characters_are_dropped_as_defects():
    raw = _mail(
        'From: a@school.example\nReply-To: "r\x01"@school.example\n'
        'Cc: "c\x7f"@school.example, ok@school.example\n'
    )
    mail = parse_message(raw)
    assert (mail.from_addr, mail.reply_to, mail.cc) == (
        "a@school.example",
        "",
        ["ok@school.example"],
    )
    assert sum("control characters" in d for d in mail.defects) == 2


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\x85", "\x0b"])
def test_display_names_keep_no_line_separator_or_control_character(separator):
    raw = _mail(f"From: Μαρία{separator}Παπαδοπούλου <m@school.example>\nSubject: a{separator}b\n")
    mail = parse_message(raw)
    assert mail.from_name == "Μαρία Παπαδοπούλου"
    assert mail.subject == "a b"
    assert len(mail.from_name.splitlines()) == 1


def test_encoded_display_name_with_line_separator_is_one_line():
    # U+2028 as an RFC 2047 word: decoding must not bring it back.
    raw = _mail("From: =?utf-8?B?zpzOsc+Bzq/OseKAqM6gzrHPgA==?= <m@school.example>\n")
    assert parse_message(raw).from_name == "Μαρία Παπ"


def test_html_nesting_is_cut_but_the_text_is_kept():
    html = "<ol><li>" * 100 + "βαθιά" + "</li></ol>" * 100 + "<blockquote>" * 50 + "μέσα"
    raw = _mail("From: a@b.example\nContent-Type: text/html; charset=utf-8\n", html.encode())
    text = parse_message(raw).text
    assert text.splitlines()[-1] == "> " * 12 + "μέσα"
    # Items past the 12th level join the 12th list: indentation of 12 levels at most.
    assert "89. βαθιά" in text and len(text) < 5_000


def test_html_comments_styles_and_bogus_markup_are_not_text():
    html = (
        "<!-- hidden --><style>p {color: red}</style><p>Καλημέρα &amp; <b>καλή</b> "
        "&lt;εβδομάδα&gt; a < b</p><script>alert(1)</script></ 2><?php x ?><p>τέλος"
    )
    raw = _mail("From: a@b.example\nContent-Type: text/html; charset=utf-8\n", html.encode())
    assert parse_message(raw).text == "Καλημέρα & καλή <εβδομάδα> a < b\n\nτέλος"


def test_html_past_the_tag_limit_is_a_defect():
    html = "<p>λέξη</p>" * 11_000
    raw = _mail("From: a@b.example\nContent-Type: text/html; charset=utf-8\n", html.encode())
    mail = parse_message(raw)
    assert mail.text.startswith("λέξη\n\nλέξη") and mail.text.count("λέξη") == 5_000
    assert any("after 10000 tags not read" in d for d in mail.defects)


def test_text_is_capped_per_mail_across_parts():
    part = "--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + "γράμμα " * 10_000 + "\r\n"
    raw = _mail(
        'From: a@b.example\nContent-Type: multipart/mixed; boundary="b"\n',
        (part * 4 + "--b--\r\n").encode(),
    )
    mail = parse_message(raw)
    assert body._MAX_TEXT - 100 < len(mail.text) <= body._MAX_TEXT
    assert mail.text.startswith("γράμμα γράμμα")
    assert any("not read" in d or "only the first" in d for d in mail.defects)


def test_too_many_mime_parts_are_quarantined():
    part = "--b\r\nContent-Type: text/plain\r\n\r\nx\r\n"
    raw = _mail(
        'From: a@b.example\nContent-Type: multipart/mixed; boundary="b"\n',
        (part * 1_100 + "--b--\r\n").encode(),
    )
    with pytest.raises(ParseError, match="too complex/slow to read: more than 1000 MIME parts"):
        parse_message(raw)


def test_derived_message_id_is_unchanged_by_the_header_cap():
    subject = "λέξη " * 5_000
    raw = _mail(f"From: a@b.example\nSubject: {subject}\n")
    mail = parse_message(raw)
    assert len(mail.subject) <= parse._MAX_HEADER_VALUE
    # The id is derived from the whole raw Subject, as it was before the cap.
    again = parse_message(raw.replace("λέξη ".encode() * 4_999, "λέξη ".encode() * 4_998, 1))
    assert again.subject == mail.subject and again.message_id != mail.message_id


@pytest.mark.parametrize("encoding", ["8bit", "base64", "quoted-printable"])
def test_long_single_part_body_is_read_from_its_start_only(encoding):
    text = "Γραμμή για το Webex\r\n" * 300_000
    if encoding == "base64":
        data = base64.encodebytes(text.encode())
    elif encoding == "quoted-printable":
        data = quopri.encodestring(text.encode())
    else:
        data = text.encode()
    raw = _mail(
        "From: a@b.example\nMessage-ID: <long@b.example>\n"
        f"Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: {encoding}\n",
        data,
    )
    assert len(raw) > parse._MAX_SINGLE_BODY
    mail = parse_message(raw)
    assert mail.text.startswith("Γραμμή για το Webex\nΓραμμή για το Webex\n")
    assert body._MAX_TEXT - 30 < len(mail.text) <= body._MAX_TEXT
    assert "BodyReadInPart in text/plain" in mail.defects
    assert mail.message_id == "long@b.example"
