"""The `triage-daemon` command: run, status, tickets, classify, train, demo.

What mail put in the database (addresses, subjects, reasons) reaches the terminal only
as rich ``Text`` with control characters escaped: a subject "[/x]" is not markup, an
ESC byte drives no terminal. Error messages never show a password.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text
from sqlalchemy.exc import SQLAlchemyError

from . import logs
from .config import PROJECT_ROOT, Settings, load_settings
from .errors import ConfigError, ModelError, TriageError
from .safe_text import json_text, visible

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
    from .db import Database

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
        err.print(f"  - {shown(problem)}", markup=False, highlight=False)
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


@app.command()
def run(
    config: ConfigOption = None,
    once: Annotated[
        bool, typer.Option("--once", help="One pass over every mailbox and the outbox, then exit.")
    ] = False,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error")] = "info",
) -> None:
    """Run the service (or one pass with --once)."""
    from .daemon import Daemon

    _logging(log_level)
    settings = _settings(config)
    from .db import DatabaseUnavailable

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
    from .report import status as read_status

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
def tickets(
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    status_filter: Annotated[
        str | None, typer.Option("--status", help="Only tickets with this status.")
    ] = None,
) -> None:
    """List the tickets."""
    from .report import ticket_rows

    settings = _settings(config)
    db = _database(settings)
    rows = ticket_rows(db, status_filter)
    if as_json:
        for row in rows:
            typer.echo(json_text(row))
        return
    table = Table(title="Tickets")
    for column in ("#", "mailbox", "created", "sender", "subject", "status", "topic", "faq"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            cell(row["id"]),
            cell(row["mailbox"]),
            cell(row["created"], 16),
            cell(row["sender"]),
            cell(row["subject"], 50),
            cell(row["status"]),
            cell(row["topic"]),
            cell(row["faq"]),
        )
    Console().print(table)


@app.command()
def classify(
    files: Annotated[
        list[str], typer.Argument(help="Message files (.eml), or - for one on stdin.")
    ],
    config: ConfigOption = None,
    models: Annotated[
        Path | None,
        typer.Option(help="The models folder (default: the config's, or the shipped one)."),
    ] = None,
) -> None:
    """Classify mail files: one JSON object per line; touches no mailbox or database."""
    from .triage.classify import Classifier, classify_paths

    kwargs = {}
    if config is not None or models is None:
        settings = _settings(config) if config is not None else None
        if settings is not None:
            models = models or settings.daemon.models_dir
            kwargs = {
                "min_confidence": settings.triage.min_confidence,
                "faq_min_confidence": settings.triage.faq_min_confidence,
            }
    try:
        classifier = Classifier.load(models or PROJECT_ROOT / "models", **kwargs)
    except ModelError as exc:
        _fail("Cannot load the model:", [str(exc)])
    failed = False
    for row in classify_paths(files, classifier, sys.stdin.buffer):
        failed |= "error" in row
        typer.echo(json_text(row))
    raise typer.Exit(1 if failed else 0)


@app.command()
def train(
    config: ConfigOption = None,
    corpus: Annotated[
        Path, typer.Option(help="Folder of *.jsonl training examples.")
    ] = PROJECT_ROOT / "data" / "corpus",
    models: Annotated[
        Path | None,
        typer.Option(help="Where to write the model (default: the config's, or the shipped one)."),
    ] = None,
    force: Annotated[
        bool,
        typer.Option("--force", help="Replace the current model even if the new one scores worse."),
    ] = False,
) -> None:
    """Train the triage model from the corpus (and the coordinator's corrections)."""
    from .triage.train import train as run_training

    extra: list[dict] = []
    if config is not None:
        settings = _settings(config)
        models = models or settings.daemon.models_dir
        extra = _corrections(settings)
    try:
        run_training(
            corpus, models or PROJECT_ROOT / "models", extra=extra, force=force, console=Console()
        )
    except ModelError as exc:
        _fail("The model was not replaced:", [str(exc)], code=1)
    except TriageError as exc:
        _fail("Training failed:", [str(exc)])


def _corrections(settings: Settings) -> list[dict]:
    """Tickets a person reclassified, as extra training examples."""
    from .triage.corrections import corrections

    db = _database(settings)
    return corrections(db)


@app.command()
def reclassify(
    ticket: Annotated[int, typer.Argument(help="The ticket number.")],
    technical: Annotated[
        bool, typer.Option("--technical/--not-technical", help="Is it a technical request?")
    ],
    topic: Annotated[str | None, typer.Option(help="webex, eclass, eme or other")] = None,
    faq: Annotated[str | None, typer.Option(help="An FAQ key of the catalogue, or none")] = None,
    config: ConfigOption = None,
) -> None:
    """Correct a ticket's triage by hand (it counts as a correction when the model is retrained)."""
    from .triage.corrections import reclassify as set_labels

    settings = _settings(config)
    db = _database(settings)
    try:
        result = set_labels(db, ticket, technical=technical, topic=topic, faq=faq)
    except TriageError as exc:
        _fail("Not changed:", [str(exc)])
    typer.echo(
        f"ticket #{result.id}: technical={result.technical} topic={result.topic} "
        f"faq={result.faq} status={getattr(result.status, 'value', result.status)}"
    )


@app.command()
def replay(
    config: ConfigOption = None,
    mailbox: Annotated[
        list[str] | None, typer.Option(help="Only this mailbox (repeatable).")
    ] = None,
) -> None:
    """Move quarantined mail back to INBOX, to be processed again."""
    from .replay import replay as replay_box

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
def demo(
    mails: Annotated[int, typer.Option(help="How many sample mails to deliver per round.")] = 0,
) -> None:
    """A first run on embedded parts: in-process IMAP and SMTP servers, sample mail, SQLite."""
    from .demo.run import run_demo

    run_demo(per_round=mails or None)


def main() -> None:  # pragma: no cover - console script entry
    app()
