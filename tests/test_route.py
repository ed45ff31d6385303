"""Tests for desk/route.py: overrides, fewest open tickets, round-robin, availability."""

from __future__ import annotations

import shutil
from datetime import date, datetime
from pathlib import Path

import pytest

from triage_daemon.desk.route import Load, route
from triage_daemon.rules import load_rules

ATTICA_RULES = Path(__file__).resolve().parents[1] / "examples" / "attica" / "rules"
MONDAY = date(2020, 3, 23)
KONSTANTINOU = "m.konstantinou@pekes1.att.example"
DIMAKIS = "a.dimakis@pekes1.att.example"


@pytest.fixture
def rules():
    return load_rules(ATTICA_RULES)


def go(
    rules,
    topic="webex",
    *,
    review=False,
    sender="teacher1@school.example",
    text="",
    today=MONDAY,
    load=None,
    pekes="pekes1",
):
    return route(
        rules,
        pekes=pekes,
        topic=topic,
        review=review,
        sender=sender,
        text=text,
        today=today,
        load=load or {},
    )


def test_fewest_open_tickets_wins(rules):
    chosen = go(rules, load={KONSTANTINOU: Load(open=3), DIMAKIS: Load(open=1)})
    assert (chosen.assignee, chosen.role, chosen.topic) == (DIMAKIS, "specialist", "webex")
    assert "λιγότερα ανοιχτά αιτήματα (1)" in chosen.reason


def test_ties_go_round_robin(rules):
    earlier, later = datetime(2020, 3, 23, 8), datetime(2020, 3, 23, 9)
    load = {KONSTANTINOU: Load(1, later), DIMAKIS: Load(1, earlier)}
    assert go(rules, load=load).assignee == DIMAKIS
    load = {KONSTANTINOU: Load(1, earlier), DIMAKIS: Load(1, later)}
    assert go(rules, load=load).assignee == KONSTANTINOU


def test_an_unavailable_specialist_is_skipped(tmp_path):
    folder = tmp_path / "rules"
    shutil.copytree(ATTICA_RULES, folder)
    path = folder / "specialists.yaml"
    path.write_text(
        path.read_text(encoding="utf-8").replace(
            "topics: [webex, other], pekes: [pekes1] }",
            "topics: [webex, other], pekes: [pekes1], on_leave: true }",
        ),
        encoding="utf-8",
    )
    rules = load_rules(folder)
    chosen = go(rules, load={KONSTANTINOU: Load(open=9)})
    assert chosen.assignee == KONSTANTINOU
    assert "1 μη διαθέσιμος" in chosen.reason


def test_a_specialist_of_another_pekes_serves_and_no_topic_goes_to_the_coordinator(rules):
    # pekes5 has its e-class specialist from pekes4; a ticket with no topic has no specialist.
    chosen = go(rules, "eclass", pekes="pekes5")
    assert chosen.assignee == "a.michailidou@pekes4.att.example"
    assert go(rules, None, pekes="pekes5").role == "coordinator"


def test_an_override_phrase_wins_over_the_model(rules):
    chosen = go(rules, "eclass", text="Δεν μπορώ να μπω στο MySchool με τους κωδικούς")
    assert chosen.topic == "other"
    assert chosen.override == 1
    assert "κανόνας 1 των overrides (phrase: myschool)" in chosen.reason


def test_review_goes_where_the_rules_say(rules, tmp_path):
    assert go(rules, review=True).role == "specialist"
    folder = tmp_path / "rules"
    shutil.copytree(ATTICA_RULES, folder)
    path = folder / "helpdesk.yaml"
    path.write_text(
        path.read_text(encoding="utf-8").replace("review_to: specialist", "review_to: coordinator"),
        encoding="utf-8",
    )
    chosen = go(load_rules(folder), review=True)
    assert (chosen.role, chosen.assignee) == ("coordinator", "syntonistis@pekes1.att.example")
    assert chosen.topic == "webex"  # the best topic is kept: review is a flag


def test_override_to_a_person_and_by_domain(tmp_path):
    folder = tmp_path / "rules"
    shutil.copytree(ATTICA_RULES, folder)
    (folder / "overrides.yaml").write_text(
        "overrides:\n"
        "  - when: { domain: 'school.example' }\n"
        "    person: f.lambraki@pekes1.att.example\n",
        encoding="utf-8",
    )
    chosen = go(load_rules(folder), sender="Teacher3@School.Example")
    assert chosen.assignee == "f.lambraki@pekes1.att.example"
    assert chosen.override == 1
    assert go(load_rules(folder), sender="teacher3@sch.example").override is None
