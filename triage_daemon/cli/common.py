"""What every command shares: the app, the settings and database, errors, safe text.

What mail put in the database (addresses, subjects, reasons) reaches the terminal only
as rich ``Text`` with control characters escaped: a subject "[/x]" is not markup, an
ESC byte drives no terminal. Error messages never show a password.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text
from sqlalchemy.exc import SQLAlchemyError

from .. import logs
from ..config import Settings, load_settings
from ..errors import ConfigError, TriageError
from ..safe_text import visible

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Email-driven technical helpdesk for the PEKES of Attica.",
    # A traceback's local variables include the settings and the database URL.
    pretty_exceptions_show_locals=False,
)
err = Console(stderr=True)

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="The TOML configuration file (default: $TRIAGE_CONFIG)."),
]


def _settings(config: Path | None) -> Settings:
    try:
        settings = load_settings(config)
    except ConfigError as exc:
        _fail("The configuration is not valid; nothing was started:", exc.problems)
    logs.add_secrets(logs.secrets_of(settings))
    return settings


def _database(settings: Settings):
    """The configured database, its schema brought up to date."""
    from ..db import Database

    try:
        db = Database(settings.database)
        db.migrate()
    except ConfigError as exc:
        _fail("The database is not configured right:", exc.problems)
    except TriageError as exc:  # the database is unavailable (db.DatabaseUnavailable)
        _fail("Cannot open the database:", [str(exc)], code=1)
    except (SQLAlchemyError, OSError) as exc:
        _fail("Cannot open the database:", [_one_error(exc)], code=1)
    return db


def _one_error(exc: BaseException) -> str:
    """An exception as one line: its type and the first line of its message."""
    lines = str(exc).strip().splitlines() or [""]
    return f"{type(exc).__name__}: {lines[0]}"


def _fail(headline: str, problems: list[str], code: int = 2):
    err.print(f"[bold red]{headline}[/]")
    for problem in problems:
        # soft_wrap: a long "file:line: message" stays one line, whole when copied.
        err.print(f"  - {shown(problem)}", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def shown(text: object) -> str:
    """Text from mail, a server or an exception, fit for the terminal: secrets redacted,
    control characters escaped."""
    return visible(logs.redact(str(text)))


def cell(text: object, limit: int | None = None) -> Text:
    """A table cell that rich prints as it is (no markup), control characters escaped."""
    value = "" if text is None else str(text)
    return Text(shown(value[:limit] if limit else value))


def _logging(level: str) -> None:
    try:
        logs.setup(level)
    except ValueError as exc:
        _fail("Cannot start:", [str(exc)])
