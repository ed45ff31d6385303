"""Commands that run the service and look after it: run, status, replay."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from ..errors import ConfigError, ModelError, TriageError
from ..safe_text import json_text
from .common import (
    ConfigOption,
    _database,
    _fail,
    _logging,
    _one_error,
    _settings,
    app,
    cell,
    err,
    shown,
)


@app.command()
def run(
    config: ConfigOption = None,
    once: Annotated[
        bool, typer.Option("--once", help="One pass over every mailbox and the outbox, then exit.")
    ] = False,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error")] = "info",
) -> None:
    """Run the service (or one pass with --once)."""
    from ..daemon import Daemon

    _logging(log_level)
    settings = _settings(config)
    from ..db import DatabaseUnavailable

    try:
        daemon = Daemon(settings)
    except DatabaseUnavailable as exc:
        _fail("Cannot open the database:", [str(exc)], code=1)
    except (ConfigError, ModelError) as exc:
        _fail("Cannot start:", getattr(exc, "problems", [str(exc)]))
    except TriageError as exc:
        _fail("Cannot start:", [str(exc)])
    except (SQLAlchemyError, OSError) as exc:
        _fail("Cannot open the database:", [_one_error(exc)], code=1)
    try:
        if not once:
            daemon.serve()
            return
        report = daemon.run_once()
    except TriageError as exc:  # the database went away before the mailboxes were polled
        _fail("Stopped:", [str(exc)], code=1)
    handled = sum(len(p.outcomes) for p in report.polls)
    err.print(
        f"{handled} messages handled, {report.sent} replies sent, "
        f"{len(report.errors)} mailboxes with errors",
        highlight=False,
    )
    for name, message in report.errors.items():
        err.print(f"  {shown(name)}: {shown(message)}", markup=False, highlight=False)
    raise typer.Exit(1 if report.errors else 0)


@app.command()
def status(
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Per mailbox: last poll, backlog, errors; the outbox; the quarantine."""
    from ..report import status as read_status

    settings = _settings(config)
    db = _database(settings)
    result = read_status(settings, db)
    if as_json:
        typer.echo(json_text(result.as_dict(), indent=2))
        return
    console = Console()
    table = Table(title="Mailboxes")
    for column in ("mailbox", "last poll", "backlog", "errors", "last error"):
        table.add_column(column)
    for box in result.mailboxes:
        table.add_row(
            cell(box["name"]),
            cell(box["last_poll"] or "never"),
            cell(box["backlog"] or 0),
            cell(box["errors"]),
            cell(box["last_error"]),
        )
    console.print(table)
    outbox = ", ".join(f"{k} {v}" for k, v in sorted(result.outbox.items())) or "empty"
    console.print(f"Outbox: {shown(outbox)}", markup=False, highlight=False)
    counts = ", ".join(f"{k} {v}" for k, v in sorted(result.dispositions.items())) or "none"
    console.print(f"Messages: {shown(counts)}", markup=False, highlight=False)
    for q in result.quarantined:
        console.print(
            f"  quarantined: {shown(q['mailbox'])} UID {q['uid']} {shown(q['sender'])}: "
            f"{shown(q['reason'])}",
            markup=False,
            highlight=False,
        )


@app.command()
def replay(
    config: ConfigOption = None,
    mailbox: Annotated[
        list[str] | None, typer.Option(help="Only this mailbox (repeatable).")
    ] = None,
) -> None:
    """Move quarantined mail back to INBOX, to be processed again."""
    from ..replay import replay as replay_box

    settings = _settings(config)
    db = _database(settings)
    names = mailbox or [m.name for m in settings.mailboxes]
    try:
        for name in names:
            count = replay_box(settings.mailbox(name), db)
            typer.echo(f"{name}: {count} mails back in INBOX")
    except KeyError as exc:
        _fail(
            "Unknown mailbox:",
            [f"{exc.args[0]} (configured: {', '.join(m.name for m in settings.mailboxes)})"],
        )
    except TriageError as exc:
        _fail("Replay stopped:", [str(exc)], code=1)


@app.command()
def check(config: ConfigOption = None) -> None:
    """Check the config, rules, templates and model together, as the daemon does at start."""
    from ..check import startup_check
    from ..errors import ConfigError

    settings = _settings(config)
    try:
        parts = startup_check(settings)
    except ConfigError as exc:
        _fail("Problems found; the daemon would not start:", exc.problems, code=1)
    for warning in parts.warnings:
        err.print(f"  ! {shown(warning)}", markup=False, highlight=False)
    rules = "rules checked" if parts.rules else f"no rules in {settings.daemon.rules_dir}"
    typer.echo(f"All good: config, templates and model checked; {rules}.")
