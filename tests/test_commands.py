"""Tests for desk/commands.py: commands on their own lines, Greek aliases, errors."""

from __future__ import annotations

import pytest

from triage_daemon.desk.commands import COMMANDS, Command, help_text, parse_reply


def test_answer_and_commands_are_split():
    reply = parse_reply("Καλησπέρα σας,\nδοκιμάστε από Chrome.\n\n#close\n#note έγινε από τηλέφωνο")
    assert reply.commands == [Command("close"), Command("note", "έγινε από τηλέφωνο")]
    assert reply.answer == "Καλησπέρα σας,\nδοκιμάστε από Chrome."
    assert not reply.errors and not reply.only_commands


@pytest.mark.parametrize(
    ("line", "command"),
    [
        ("#κλείσιμο", Command("close")),
        ("#ΚΛΕΙΣΙΜΟ", Command("close")),
        ("#κλεισιμο", Command("close")),  # without the accent
        ("  #θέμα eclass  ", Command("topic", "eclass")),
        ("#έτοιμη webex-lobby", Command("faq", "webex-lobby")),
        ("#μη-τεχνικό", Command("not-technical")),
        ("#Υπουργείο", Command("escalate")),
        (
            "#ανάθεση f.lambraki@pekes1.att.example",
            Command("assign", "f.lambraki@pekes1.att.example"),
        ),
    ],
    ids=str,
)
def test_greek_aliases(line, command):
    reply = parse_reply(line)
    assert reply.commands == [command] and reply.only_commands and not reply.errors


@pytest.mark.parametrize(
    ("line", "error"),
    [
        ("#kleisimo", "άγνωστη εντολή «#kleisimo»"),
        ("#topic webx", "άγνωστο θέμα «webx»"),
        ("#faq", "χρειάζεται συνέχεια στη γραμμή (π.χ. #faq webex-lobby)"),
        ("#faq nothing", "άγνωστη έτοιμη απάντηση «nothing»"),
        ("#close τώρα", "δεν παίρνει συνέχεια στη γραμμή"),
        ("#assign Φωτεινή", "«Φωτεινή» δεν είναι διεύθυνση email"),
    ],
    ids=str,
)
def test_a_bad_command_is_an_error_with_its_line(line, error):
    reply = parse_reply("Κείμενο προς τον εκπαιδευτικό\n" + line)
    assert reply.commands == []
    assert len(reply.errors) == 1 and reply.errors[0].startswith("γραμμή 2: ")
    assert error in reply.errors[0]


def test_hashes_inside_text_are_text():
    text = "Το μάθημα #3 ξεκινά στις 9.\nΔείτε τη ρύθμιση # στο μενού.\n#1 βήμα: σύνδεση"
    reply = parse_reply(text)
    assert reply.commands == [] and reply.errors == [] and reply.answer == text


def test_help_lists_every_command_and_alias():
    text = help_text()
    for spec in COMMANDS:
        assert f"#{spec.name}" in text
        for alias in spec.aliases:
            assert f"#{alias}" in text
    assert "webex-lobby" in text
