"""The command line: invalid configuration refused with the key named; status and tickets."""

import json
from pathlib import Path

from typer.testing import CliRunner

from triage_daemon.cli import app

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]


def config(tmp_path: Path, db_url: str, extra: str = "") -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f"""
[daemon]
database_url = "{db_url}"
data_dir = "{tmp_path / 'data'}"
{extra}

[smtp]
host = "127.0.0.1"
port = 25

[[mailbox]]
name = "pekes1"
address = "helpdesk@pekes1.att.example"
imap = {{ host = "127.0.0.1", port = 1, user = "pekes1", password = "x", tls = "none" }}
""",
        encoding="utf-8",
    )
    return path


def test_invalid_config_refused_naming_the_key(tmp_path, db_url):
    path = config(tmp_path, db_url, extra="batch_size = 0")
    result = runner.invoke(app, ["run", "--once", "--config", str(path)])
    assert result.exit_code == 2
    assert "daemon.batch_size" in result.output
    assert "nothing was started" in result.output


def test_status_and_tickets_on_a_new_database(tmp_path, db_url):
    path = config(tmp_path, db_url)
    status = runner.invoke(app, ["status", "--json", "--config", str(path)])
    assert status.exit_code == 0, status.output
    document = json.loads(status.output)
    assert [m["name"] for m in document["mailboxes"]] == ["pekes1"]
    assert document["outbox"] == {} and document["quarantined"] == []
    tickets = runner.invoke(app, ["tickets", "--json", "--config", str(path)])
    assert tickets.exit_code == 0 and tickets.output == ""


def test_run_once_reports_an_unreachable_mailbox(tmp_path, db_url):
    path = config(tmp_path, db_url)
    result = runner.invoke(app, ["run", "--once", "--config", str(path)])
    assert result.exit_code == 1
    assert "pekes1" in result.output and "cannot open" in result.output


def test_classify_a_file(tmp_path):
    mail = tmp_path / "m.eml"
    mail.write_bytes(
        "From: t@sch.gr\nSubject: Webex lobby\nMessage-ID: <a@b>\n\n"
        "Οι μαθητές μένουν στην αίθουσα αναμονής του webex και δεν μπαίνουν.\n".encode()
    )
    result = runner.invoke(app, ["classify", str(mail)])
    assert result.exit_code == 0, result.output
    row = json.loads(result.output)
    assert row["path"] == str(mail) and row["technical"] is True and row["topic"] == "webex"
