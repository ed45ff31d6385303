"""Tests for check.py and the `check` / `rules check` commands: every problem at once."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from triage_daemon.check import startup_check
from triage_daemon.cli import app
from triage_daemon.config import load_settings
from triage_daemon.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
ATTICA = ROOT / "examples" / "attica"
runner = CliRunner()
ENV = {
    "TRIAGE_SMTP_HOST": "127.0.0.1",
    "TRIAGE_IMAP_HOST": "127.0.0.1",
    "TRIAGE_MAIL_PASSWORD": "x",
}


@pytest.fixture
def attica(tmp_path) -> Path:
    """A copy of the Attica example with its own rules, templates and model folders."""
    folder = tmp_path / "attica"
    shutil.copytree(ATTICA, folder)
    shutil.copytree(ROOT / "templates", folder / "templates")
    shutil.copytree(ROOT / "models", folder / "models")
    path = folder / "config.toml"
    text = path.read_text(encoding="utf-8").replace(
        'rules_dir = "rules"',
        f'rules_dir = "rules"\ntemplates_dir = "templates"\nmodels_dir = "models"\n'
        f'data_dir = "{tmp_path / "data"}"',
    )
    path.write_text(text.replace('data_dir = "${TRIAGE_DATA_DIR:-/var/lib/triage-daemon}"\n', ""))
    return folder


def settings(folder: Path):
    return load_settings(folder / "config.toml", env=ENV)


def test_the_attica_example_passes(attica):
    parts = startup_check(settings(attica))
    assert parts.rules is not None and parts.warnings == []
    result = runner.invoke(app, ["check", "--config", str(attica / "config.toml")], env=ENV)
    assert result.exit_code == 0, result.output
    assert "All good" in result.output and "rules checked" in result.output


def test_templates_model_and_rules_are_reported_together(attica):
    (attica / "templates" / "reply" / "ack.txt.j2").write_text("{{ nope(", encoding="utf-8")
    meta = attica / "models" / "triage.json"
    data = json.loads(meta.read_text(encoding="utf-8"))
    data["model_sha256"] = "0" * 64
    meta.write_text(json.dumps(data), encoding="utf-8")
    rules = attica / "rules" / "escalation.yaml"
    rules.write_text(
        rules.read_text(encoding="utf-8").replace("remind_after: 2", "remind_after: 9")
    )
    with pytest.raises(ConfigError) as caught:
        startup_check(settings(attica))
    text = "\n".join(caught.value.problems)
    assert "ack.txt.j2" in text
    assert "does not match triage.json" in text
    assert "escalation.yaml:" in text and "οι χρόνοι πρέπει να αυξάνουν" in text
    result = runner.invoke(app, ["check", "--config", str(attica / "config.toml")], env=ENV)
    assert result.exit_code == 1
    assert "the daemon would not start" in result.output


def test_a_rules_folder_without_yaml_means_no_routing(attica):
    shutil.rmtree(attica / "rules")
    (attica / "rules").mkdir()
    assert startup_check(settings(attica)).rules is None


def test_rules_check_command(attica, tmp_path):
    ok = runner.invoke(app, ["rules", "check", str(attica / "rules")])
    assert ok.exit_code == 0, ok.output
    assert "οι κανόνες είναι σωστοί / the rules are valid (6 ΠΕΚΕΣ, 12 ειδικοί" in ok.output
    specialists = attica / "rules" / "specialists.yaml"
    specialists.write_text(
        specialists.read_text(encoding="utf-8").replace("topics: [eme, other]", "topics: [emee]")
    )
    bad = runner.invoke(app, ["rules", "check", str(attica / "rules")])
    assert bad.exit_code == 1
    assert "Οι κανόνες έχουν λάθη / the rules have errors:" in bad.output
    assert "specialists.yaml:" in bad.output and "άγνωστο θέμα «emee»" in bad.output


def test_rules_check_against_the_config_mailboxes(attica):
    helpdesk = attica / "rules" / "helpdesk.yaml"
    helpdesk.write_text(helpdesk.read_text(encoding="utf-8").replace("  pekes6:\n", "  pekes7:\n"))
    result = runner.invoke(
        app, ["rules", "check", "--config", str(attica / "config.toml")], env=ENV
    )
    assert result.exit_code == 1
    assert "το γραμματοκιβώτιο «pekes6» του config δεν έχει ΠΕΚΕΣ εδώ" in result.output


def test_rules_explain_names_the_specialist_and_why(attica, tmp_path):
    from mailfactory import request

    mail = tmp_path / "webex.eml"
    mail.write_bytes(
        request(
            subject="Οι μαθητές μένουν στην αναμονή",
            body="Καλημέρα, οι μαθητές μου μένουν στο lobby του Webex και δεν μπαίνουν.",
        )
    )
    args = ["rules", "explain", "--config", str(attica / "config.toml"), str(mail)]
    result = runner.invoke(app, args, env=ENV)
    assert result.exit_code == 0, result.output
    assert "ΠΕΚΕΣ / PEKES: pekes1 (1ο ΠΕΚΕΣ Αττικής)" in result.output
    assert "θέμα / topic: webex" in result.output
    assert "ανάθεση / assignee: Μαρία Κωνσταντίνου <m.konstantinou@pekes1.att.example>" in (
        result.output
    )
    assert "γιατί / why: το θέμα από το μοντέλο" in result.output
    other = runner.invoke(app, [*args[:-1], "--mailbox", "pekes6", str(mail)], env=ENV)
    assert "e.spyropoulou@pekes6.att.example" in other.output
