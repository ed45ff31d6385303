"""Tests for rules/: the coordinator's YAML files, validated with file and line."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest

from triage_daemon.rules import RulesError, load_rules
from triage_daemon.rules.checks import coverage_warnings

ATTICA_RULES = Path(__file__).resolve().parents[1] / "examples" / "attica" / "rules"
MAILBOXES = [f"pekes{n}" for n in range(1, 7)]


@pytest.fixture
def rules_dir(tmp_path) -> Path:
    folder = tmp_path / "rules"
    shutil.copytree(ATTICA_RULES, folder)
    return folder


def edit(folder: Path, name: str, old: str, new: str) -> None:
    path = folder / name
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {name}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def problems(folder: Path, mailboxes=MAILBOXES) -> list[str]:
    with pytest.raises(RulesError) as caught:
        load_rules(folder, mailboxes)
    return [p.removeprefix(f"{folder}/") for p in caught.value.problems]


def line_of(folder: Path, name: str, text: str) -> int:
    lines = (folder / name).read_text(encoding="utf-8").splitlines()
    return next(i for i, line in enumerate(lines, 1) if text in line)


def test_the_attica_rules_load():
    rules = load_rules(ATTICA_RULES, MAILBOXES)
    assert set(rules.helpdesk.pekes) == set(MAILBOXES)
    assert rules.coordinator("pekes3").address == "syntonistis@pekes3.att.example"
    assert rules.escalation.ladder("webex").ministry_after == 6
    assert rules.escalation.ladder("eme").ministry_after == 8
    assert list(coverage_warnings(rules)) == []


def test_questions_routing_asks():
    rules = load_rules(ATTICA_RULES)
    webex = [s.address for s in rules.specialists_for("pekes1", "webex")]
    assert webex == ["m.konstantinou@pekes1.att.example", "a.dimakis@pekes1.att.example"]
    # One specialist may serve several PEKES.
    assert rules.pekes_of("F.Lambraki@pekes1.att.example") == ["pekes1", "pekes2"]
    assert rules.staff("syntonistis@pekes2.att.example").name == "Δημήτρης Καλογεράκης"
    assert rules.staff("teacher1@school.example") is None


def test_availability(rules_dir):
    edit(
        rules_dir,
        "specialists.yaml",
        "topics: [webex], pekes: [pekes1] }",
        "topics: [webex], pekes: [pekes1], away: [{ from: 2020-04-06, until: 2020-04-10 }] }",
    )
    person = load_rules(rules_dir).specialists_for("pekes1", "webex")[0]
    assert person.available(date(2020, 4, 3))
    assert not person.available(date(2020, 4, 6))
    assert person.available(date(2020, 4, 11))


def test_an_unknown_topic_names_its_file_and_line(rules_dir):
    edit(
        rules_dir,
        "specialists.yaml",
        "topics: [webex], pekes: [pekes1]",
        "topics: [webx], pekes: [pekes1]",
    )
    line = line_of(rules_dir, "specialists.yaml", "webx")
    assert problems(rules_dir) == [
        f"specialists.yaml:{line}: specialists[1].topics[1]: άγνωστο θέμα «webx»· "
        "επιτρέπονται: webex, eclass, eme, other / unknown topic"
    ]


def test_every_problem_is_reported_at_once(rules_dir):
    edit(rules_dir, "helpdesk.yaml", 'address: "syntonistis@pekes3.att.example"', 'adress: "x"')
    edit(rules_dir, "escalation.yaml", "remind_after: 2", "remind_after: 5")
    edit(rules_dir, "calendar.yaml", "from: 2020-11-17", "from: 2020-11-31")
    edit(rules_dir, "digest.yaml", '"grafeio-pde@att.example"', '"grafeio pde"')
    found = problems(rules_dir)
    assert len(found) == 5, found
    text = "\n".join(found)
    assert f"helpdesk.yaml:{line_of(rules_dir, 'helpdesk.yaml', 'adress')}: " in text
    assert "pekes.pekes3.coordinator.adress: άγνωστο πεδίο" in text
    assert "pekes.pekes3.coordinator.address: λείπει υποχρεωτικό πεδίο" in text
    assert "escalation.yaml:" in text and "οι χρόνοι πρέπει να αυξάνουν" in text
    assert f"calendar.yaml:{line_of(rules_dir, 'calendar.yaml', '2020-11-31')}: " in text
    assert "δεν είναι ημερομηνία" in text and "'2020-11-31'" in text
    assert "digest.yaml:" in text and "δεν είναι έγκυρη διεύθυνση email" in text


def test_names_that_must_exist(rules_dir):
    edit(
        rules_dir,
        "specialists.yaml",
        "topics: [webex], pekes: [pekes1]",
        "topics: [webex], pekes: [pekes9]",
    )
    edit(rules_dir, "overrides.yaml", "topic: other", "person: nobody@x.example")
    text = "\n".join(problems(rules_dir))
    assert "άγνωστο ΠΕΚΕΣ «pekes9»" in text
    assert "το nobody@x.example δεν είναι ειδικός ή συντονιστής" in text


def test_overlapping_overrides_are_refused(rules_dir):
    with (rules_dir / "overrides.yaml").open("a", encoding="utf-8") as out:
        out.write('  - when: { phrase: "MySchool κωδικός" }\n    topic: eclass\n')
    found = problems(rules_dir)
    assert len(found) == 1
    assert "επικαλύπτεται με τον κανόνα 1 (phrase: myschool)" in found[0]
    assert found[0].startswith(
        f"overrides.yaml:{line_of(rules_dir, 'overrides.yaml', 'MySchool')}:"
    )


def test_an_override_looks_at_exactly_one_thing(rules_dir):
    edit(
        rules_dir,
        "overrides.yaml",
        '{ phrase: "myschool" }',
        '{ phrase: "myschool", domain: "a.gr" }',
    )
    assert "γράψτε ακριβώς ένα από sender, domain, phrase" in problems(rules_dir)[0]


def test_every_mailbox_needs_its_pekes_but_not_the_other_way(rules_dir):
    from triage_daemon.rules.checks import mailbox_warnings

    found = problems(rules_dir, mailboxes=[*MAILBOXES[:5], "pekes7"])
    assert len(found) == 1
    assert "το γραμματοκιβώτιο «pekes7» του config δεν έχει ΠΕΚΕΣ εδώ" in found[0]
    # An instance serving some of the region's mailboxes: the others are only a warning.
    rules = load_rules(rules_dir, MAILBOXES[:2])
    warned = [message for _path, message in mailbox_warnings(rules, MAILBOXES[:2])]
    assert len(warned) == 4 and "το ΠΕΚΕΣ «pekes6» δεν είναι γραμματοκιβώτιο" in warned[-1]


def test_yaml_syntax_errors_and_unknown_files(rules_dir):
    (rules_dir / "calendar.yaml").write_text("hours: { from: 08:00\n", encoding="utf-8")
    (rules_dir / "people.yaml").write_text("x: 1\n", encoding="utf-8")
    text = "\n".join(problems(rules_dir))
    assert "people.yaml: άγνωστο αρχείο" in text
    assert "calendar.yaml:" in text and "λάθος σύνταξη YAML" in text


def test_a_missing_helpdesk_file_and_a_missing_folder(tmp_path):
    (tmp_path / "specialists.yaml").write_text("specialists: []\n", encoding="utf-8")
    assert problems(tmp_path) == ["helpdesk.yaml: λείπει το αρχείο / the file is missing"]
    assert "ο φάκελος δεν υπάρχει" in problems(tmp_path / "nowhere")[0]


def test_coverage_warnings_name_the_pekes_and_topics(rules_dir):
    edit(
        rules_dir,
        "specialists.yaml",
        "topics: [eme, other], pekes: [pekes6]",
        "topics: [other], pekes: [pekes6]",
    )
    warnings = [message for _path, message in coverage_warnings(load_rules(rules_dir))]
    assert warnings == [
        "στο ΠΕΚΕΣ «pekes6» κανείς δεν καλύπτει: eme (πηγαίνουν στον συντονιστή) / "
        "no specialist for these topics in pekes6"
    ]


def test_the_working_calendar_comes_from_the_rules(rules_dir):
    calendar = load_rules(rules_dir).calendar.working_calendar()
    assert calendar.closed_reason(date(2020, 11, 17)) == "Επέτειος Πολυτεχνείου"
    assert calendar.closed_reason(date(2020, 4, 20)) == "αργία: Δευτέρα του Πάσχα"
