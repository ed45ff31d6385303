"""Filters that recognise automatic mail, one case each, and the cases they must let through."""

import pytest

from triage_daemon.filters import REGISTRY, build_chain
from triage_daemon.message import ParsedMail
from triage_daemon.pipeline import FILTERS

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
