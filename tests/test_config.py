"""Configuration: environment expansion, validation that names file and key, defaults."""

from pathlib import Path

import pytest

from triage_daemon.config import load_settings
from triage_daemon.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
ATTICA = ROOT / "examples" / "attica" / "config.toml"
ENV = {
    "TRIAGE_IMAP_HOST": "127.0.0.1",
    "TRIAGE_IMAP_PORT": "1143",
    "TRIAGE_IMAP_TLS": "none",
    "TRIAGE_SMTP_HOST": "127.0.0.1",
    "TRIAGE_SMTP_PORT": "2525",
    "TRIAGE_MAIL_PASSWORD": "secret",
    "TRIAGE_DATA_DIR": "/tmp/triage-data",
    "TRIAGE_DB_URL": "",
}

MINIMAL = """
[smtp]
host = "127.0.0.1"
port = 25

[[mailbox]]
name = "pekes1"
address = "helpdesk@pekes1.att.example"
imap = { host = "127.0.0.1", port = 143, user = "pekes1", password = "x", tls = "none" }
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_attica_example_expands_every_variable():
    settings = load_settings(ATTICA, env=ENV)
    assert [m.address for m in settings.mailboxes] == [
        f"helpdesk@pekes{n}.att.example" for n in range(1, 7)
    ]
    assert {m.imap.user for m in settings.mailboxes} == {f"pekes{n}" for n in range(1, 7)}
    assert all(m.imap.port == 1143 and m.imap.tls.value == "none" for m in settings.mailboxes)
    assert settings.smtp.port == 2525
    assert settings.mailboxes[2].tag == "ΠΕΚΕΣ3"
    # An empty TRIAGE_DB_URL means: the SQLite file in the data directory.
    assert settings.database == "sqlite:////tmp/triage-data/triage.sqlite3"


def test_database_url_from_environment():
    settings = load_settings(ATTICA, env={**ENV, "TRIAGE_DB_URL": "postgresql://u@db/triage"})
    assert settings.database == "postgresql://u@db/triage"


def test_default_used_when_variable_missing(tmp_path):
    path = write(
        tmp_path,
        MINIMAL.replace(
            'host = "127.0.0.1"\nport = 25', 'host = "${SMTP_HOST:-mail.example}"\nport = 25'
        ),
    )
    assert load_settings(path, env={}).smtp.host == "mail.example"


def test_every_problem_reported_with_file_and_key(tmp_path):
    text = MINIMAL.replace("port = 143", 'port = "abc"').replace('tls = "none"', 'tls = "maybe"')
    text += "\n[daemon]\npoll_secnds = 5\n"
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={})
    problems = caught.value.problems
    assert any("mailbox[0].imap.port" in p and "'abc'" in p for p in problems)
    assert any("mailbox[0].imap.tls" in p for p in problems)
    assert any("daemon.poll_secnds" in p and "unknown key" in p for p in problems)
    assert all(p.startswith(str(path)) for p in problems)


def test_missing_variable_names_key(tmp_path):
    path = write(tmp_path, MINIMAL.replace('password = "x"', 'password = "${NO_SUCH_VAR}"'))
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={})
    assert "mailbox[0].imap.password" in str(caught.value)
    assert "NO_SUCH_VAR" in str(caught.value)


def test_doubled_mailbox_rejected(tmp_path):
    second = MINIMAL.split("port = 25", 1)[1]
    path = write(tmp_path, MINIMAL + second)
    with pytest.raises(ConfigError, match="unique"):
        load_settings(path, env={})


def test_invalid_toml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(write(tmp_path, "[smtp\nhost="), env={})
    with pytest.raises(ConfigError, match="file not found"):
        load_settings(tmp_path / "nope.toml", env={})
    with pytest.raises(ConfigError, match="TRIAGE_CONFIG"):
        load_settings(None, env={})


def test_relative_data_dir_resolved_against_config(tmp_path):
    path = write(tmp_path, MINIMAL + '\n[daemon]\ndata_dir = "state"\n')
    settings = load_settings(path, env={})
    assert settings.daemon.data_dir == (tmp_path / "state").resolve()
    assert (settings.daemon.templates_dir / "layout.html.j2").exists()


def test_a_password_is_never_repeated_in_an_error(tmp_path):
    # A numeric password is not a string: the error must name the key, not the value.
    text = MINIMAL.replace('password = "x"', "password = 73914526")
    text = text.replace("port = 25", 'port = 25\npassword = 84629173\nuser = "relay"')
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={})
    shown = "\n".join(caught.value.problems)
    assert "mailbox[0].imap.password" in shown and "smtp.password" in shown
    assert "73914526" not in shown and "84629173" not in shown


def test_a_bad_database_url_is_named_without_its_password(tmp_path):
    url = "postgresql://triage:Kx8-secret-pw@db.example:notaport/triage"
    path = write(tmp_path, MINIMAL + f'\n[daemon]\ndatabase_url = "{url}"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={})
    (problem,) = caught.value.problems
    assert "daemon.database_url" in problem and "postgresql://user:password@host" in problem
    assert "Kx8-secret-pw" not in problem


def test_a_password_from_the_environment_is_not_shown_when_invalid(tmp_path):
    path = write(tmp_path, MINIMAL.replace("port = 143", 'port = "${IMAP_PORT}"'))
    text = path.read_text(encoding="utf-8").replace('password = "x"', 'password = "${PW}"')
    path.write_text(text + '\n[daemon]\npoll_seconds = "${PW}"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={"IMAP_PORT": "143", "PW": "Zq7-env-secret"})
    shown = "\n".join(caught.value.problems)
    assert "daemon.poll_seconds" in shown and "Zq7-env-secret" not in shown


def test_settings_repr_shows_no_secret(tmp_path):
    text = MINIMAL.replace('password = "x"', 'password = "Mb4-imap-secret"')
    settings = load_settings(write(tmp_path, text), env={})
    assert "Mb4-imap-secret" not in repr(settings) and "Mb4-imap-secret" not in str(settings)
