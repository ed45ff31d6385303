"""Helpers for the end-to-end tests: the Attica example config pointed at the real servers."""

from __future__ import annotations

import os
from email import message_from_bytes, policy
from pathlib import Path

from triage_daemon.config import Settings, load_settings

ROOT = Path(__file__).resolve().parents[1]
ATTICA = ROOT / "examples" / "attica" / "config.toml"


def attica_env(servers, db_url: str, data_dir: Path) -> dict[str, str]:
    """The environment that makes the shipped Attica example run against ``servers``."""
    return {
        **os.environ,
        "TRIAGE_IMAP_HOST": servers.imap_host,
        "TRIAGE_IMAP_PORT": str(servers.imap_port),
        "TRIAGE_IMAP_TLS": "none",
        "TRIAGE_SMTP_HOST": servers.smtp_host,
        "TRIAGE_SMTP_PORT": str(servers.smtp_port),
        "TRIAGE_MAIL_PASSWORD": servers.password,
        "TRIAGE_DB_URL": db_url,
        "TRIAGE_DATA_DIR": str(data_dir),
    }


def attica_settings(servers, db_url: str, data_dir: Path, **daemon) -> Settings:
    settings = load_settings(ATTICA, env=attica_env(servers, db_url, data_dir))
    for key, value in daemon.items():
        setattr(settings.daemon, key, value)
    return settings


def parse(raw: bytes):
    return message_from_bytes(raw, policy=policy.default)


def subjects(raws: list[bytes]) -> list[str]:
    return [str(parse(r)["Subject"]) for r in raws]
