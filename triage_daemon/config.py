"""The configuration file: one TOML file, environment-expanded, validated at start-up.

Every string value may use ``${VAR}`` or ``${VAR:-default}``; the variables come from
the environment, so passwords and hosts need not be written in the file. Validation
reports every problem at once, each naming the file, the key and what is wrong.
"""

from __future__ import annotations

import os
import re
import tomllib
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import ConfigError
from .logs import redact

ENV_PATTERN = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
CONFIG_ENV = "TRIAGE_CONFIG"
# rules/, templates/ and models/ ship at the top of the project.
PROJECT_ROOT = Path(__file__).resolve().parents[1]


class TLSMode(StrEnum):
    ssl = "ssl"
    starttls = "starttls"
    none = "none"


class Strict(BaseModel):
    # Unknown keys are typos far more often than intent: reject them.
    model_config = ConfigDict(extra="forbid")


class IMAPSettings(Strict):
    host: str
    port: Annotated[int, Field(gt=0, lt=65536)]
    user: str
    # repr=False: a settings object printed in a traceback or a log shows no password.
    password: str = Field(repr=False)
    tls: TLSMode = TLSMode.ssl
    timeout: Annotated[float, Field(gt=0)] = 30.0


class Folders(Strict):
    """IMAP folders, written with '/' as the hierarchy separator whatever the server uses."""

    inbox: str = "INBOX"
    tickets: str = "Triage/Tickets"
    followups: str = "Triage/Tickets"
    not_technical: str = "Triage/NotTechnical"
    ignored: str = "Triage/Ignored"
    quarantine: str = "Triage/Quarantine"


class MailboxSettings(Strict):
    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")]
    address: str
    tag: str = ""
    display_name: str = ""
    imap: IMAPSettings
    folders: Folders = Folders()

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        if "@" not in value or " " in value.strip():
            raise ValueError(f"'{value}' is not an email address")
        return value.strip().lower()

    @model_validator(mode="after")
    def _defaults(self) -> MailboxSettings:
        if not self.tag:
            self.tag = self.name.upper()
        if not self.display_name:
            self.display_name = self.tag
        return self


class SMTPSettings(Strict):
    host: str
    port: Annotated[int, Field(gt=0, lt=65536)]
    tls: TLSMode = TLSMode.none
    user: str = ""
    password: str = Field(default="", repr=False)
    timeout: Annotated[float, Field(gt=0)] = 30.0
    # Parallel connections used to drain the outbox.
    connections: Annotated[int, Field(ge=1, le=16)] = 4
    max_attempts: Annotated[int, Field(ge=1)] = 12
    retry_base_seconds: Annotated[float, Field(gt=0)] = 30.0
    retry_max_seconds: Annotated[float, Field(gt=0)] = 3600.0


class TriageSettings(Strict):
    min_confidence: Annotated[float, Field(ge=0, le=1)] = 0.6
    faq_min_confidence: Annotated[float, Field(ge=0, le=1)] = 0.75


class ReplySettings(Strict):
    # At most this many automatic replies to one sender within the window (loop guard).
    max_per_sender: Annotated[int, Field(ge=1)] = 5
    window_minutes: Annotated[int, Field(ge=1)] = 60


class DaemonSettings(Strict):
    data_dir: Path = Path("var")
    database_url: str = Field(default="", repr=False)
    rules_dir: Path = PROJECT_ROOT / "rules"
    templates_dir: Path = PROJECT_ROOT / "templates"
    models_dir: Path = PROJECT_ROOT / "models"
    poll_seconds: Annotated[float, Field(gt=0)] = 60.0
    # RFC 2177: re-issue IDLE at least every 29 minutes; shorter survives NAT timeouts.
    idle_seconds: Annotated[float, Field(gt=0, le=29 * 60)] = 300.0
    batch_size: Annotated[int, Field(ge=1, le=1000)] = 100
    max_message_bytes: Annotated[int, Field(gt=0)] = 25 * 1024 * 1024

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        if not value:
            return value
        from sqlalchemy.engine import make_url  # only when a URL is configured

        try:
            make_url(value)
        except Exception as exc:  # ArgumentError, or ValueError for a port that is no number
            raise ValueError(
                f"not a database URL ({redact(str(exc), [value])}); write it as "
                "postgresql://user:password@host:port/name or sqlite:///path/file.sqlite3"
            ) from None
        return value


class Settings(Strict):
    daemon: DaemonSettings = DaemonSettings()
    smtp: SMTPSettings
    triage: TriageSettings = TriageSettings()
    replies: ReplySettings = ReplySettings()
    mailboxes: Annotated[list[MailboxSettings], Field(min_length=1, alias="mailbox")]
    source: Path | None = Field(default=None, exclude=True)

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @model_validator(mode="after")
    def _unique(self) -> Settings:
        for attr in ("name", "address", "tag"):
            seen = [getattr(m, attr) for m in self.mailboxes]
            doubled = sorted({v for v in seen if seen.count(v) > 1})
            if doubled:
                raise ValueError(f"mailbox {attr} must be unique; doubled: {', '.join(doubled)}")
        return self

    @property
    def database(self) -> str:
        """The database URL: the configured one, or a SQLite file in the data directory."""
        if self.daemon.database_url:
            return self.daemon.database_url
        return f"sqlite:///{(self.daemon.data_dir / 'triage.sqlite3').resolve()}"

    @property
    def journal_dir(self) -> Path:
        """Where the sent journals live (journal.py): in the data directory, whatever the
        database; each instance sharing a PostgreSQL keeps its own, on a local disk."""
        return (self.daemon.data_dir / "outbox-journal").resolve()

    def mailbox(self, name: str) -> MailboxSettings:
        for box in self.mailboxes:
            if box.name == name:
                return box
        raise KeyError(name)

    @property
    def own_addresses(self) -> set[str]:
        return {m.address for m in self.mailboxes}


def expand_env(value: Any, where: str, env: dict[str, str], problems: list[str]) -> Any:
    """Expand ``${VAR}`` / ``${VAR:-default}`` in every string inside ``value``."""
    if isinstance(value, dict):
        return {
            k: expand_env(v, f"{where}.{k}" if where else k, env, problems)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [expand_env(v, f"{where}[{i}]", env, problems) for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in env and (env[name] != "" or default is None):
            return env[name]
        if default is not None:
            return default
        problems.append(
            f"{where}: environment variable {name} is not set "
            f"(set it, or write ${{{name}:-default}} to give a default)"
        )
        return ""

    return ENV_PATTERN.sub(substitute, value)


def _location(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


# Keys whose values are never repeated in an error message, whatever their type.
SECRET_KEYS = frozenset({"password", "database_url"})


def _describe(error: dict[str, Any]) -> str:
    message = error["msg"]
    if error["type"] == "extra_forbidden":
        message = "unknown key (check its spelling against the example config)"
    elif error["type"] == "missing":
        message = "required key is missing"
    shown = error.get("input")
    secret = bool(SECRET_KEYS.intersection(str(part) for part in error["loc"]))
    if secret:
        message += " (the value is not shown: it holds a secret)"
    elif error["type"] not in ("missing", "extra_forbidden") and not isinstance(shown, dict | list):
        message += f" (got {shown!r})"
    return message


def _secrets(value: Any, key: str = "") -> list[str]:
    """Every value in the raw configuration held under a secret key, as text (a password
    inside any other URL-like value is removed by redact()'s pattern)."""
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in _secrets(v, str(k))]
    if isinstance(value, list):
        return [s for v in value for s in _secrets(v, key)]
    if key in SECRET_KEYS and value not in (None, ""):
        return [str(value)]
    return []


def load_settings(path: Path | str | None = None, env: dict[str, str] | None = None) -> Settings:
    """Read, expand and validate the configuration file.

    ``path`` defaults to $TRIAGE_CONFIG. Raises ConfigError listing every problem.
    Relative directories are resolved against the config file's folder.
    """
    env = dict(os.environ if env is None else env)
    if path is None:
        path = env.get(CONFIG_ENV)
        if not path:
            raise ConfigError([f"no configuration file: pass --config FILE or set {CONFIG_ENV}"])
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError([f"{path}: file not found"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{path}: cannot be read: {exc}"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: not valid TOML: {exc}"]) from None
    problems: list[str] = []
    data = expand_env(data, "", env, problems)
    settings = None
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        problems += [f"{_location(e['loc'])}: {_describe(e)}" for e in exc.errors()]
    if problems or settings is None:
        secrets = _secrets(data)
        raise ConfigError([f"{path}: {redact(p, secrets)}" for p in problems])
    return _resolve_paths(settings, path)


def _resolve_paths(settings: Settings, path: Path) -> Settings:
    base = path.resolve().parent
    d = settings.daemon
    for attr in ("data_dir", "rules_dir", "templates_dir", "models_dir"):
        value = getattr(d, attr)
        if not value.is_absolute():
            setattr(d, attr, (base / value).resolve())
    settings.source = path
    return settings
