"""The `triage-daemon` command: run, status, tickets, classify, train, demo."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from .config import PROJECT_ROOT, Settings, load_settings
from .errors import ConfigError, ModelError, TriageError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Email-driven technical helpdesk for the PEKES of Attica.",
)
err = Console(stderr=True)

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="The TOML configuration file (default: $TRIAGE_CONFIG)."),
]


def _settings(config: Path | None) -> Settings:
    try:
        return load_settings(config)
    except ConfigError as exc:
        _fail("The configuration is not valid; nothing was started:", exc.problems)


def _database(settings: Settings):
    """The configured database, its schema brought up to date."""
    from .db import Database

    db = Database(settings.database)
    db.migrate()
    return db


def _fail(headline: str, problems: list[str], code: int = 2):
    err.print(f"[bold red]{headline}[/]")
    for problem in problems:
        err.print(f"  - {problem}", markup=False, highlight=False)
    raise typer.Exit(code)


def _logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
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
    from .daemon import Daemon

    _logging(log_level)
    settings = _settings(config)
    try:
        daemon = Daemon(settings)
    except (ConfigError, ModelError) as exc:
        _fail("Cannot start:", getattr(exc, "problems", [str(exc)]))
    except TriageError as exc:
        _fail("Cannot start:", [str(exc)])
    if not once:
        daemon.serve()
        return
    report = daemon.run_once()
    handled = sum(len(p.outcomes) for p in report.polls)
    err.print(
        f"{handled} messages handled, {report.sent} replies sent, "
        f"{len(report.errors)} mailboxes with errors",
        highlight=False,
    )
    for name, message in report.errors.items():
        err.print(f"  {name}: {message}", markup=False, highlight=False)
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
        typer.echo(json.dumps(result.as_dict(), ensure_ascii=False, indent=2))
        return
    console = Console()
    table = Table(title="Mailboxes")
    for column in ("mailbox", "last poll", "backlog", "errors", "last error"):
        table.add_column(column)
    for box in result.mailboxes:
        table.add_row(
            box["name"],
            box["last_poll"] or "never",
            str(box["backlog"] or 0),
            str(box["errors"]),
            box["last_error"] or "",
        )
    console.print(table)
    console.print(
        "Outbox: " + (", ".join(f"{k} {v}" for k, v in sorted(result.outbox.items())) or "empty")
    )
    console.print(
        "Messages: "
        + (", ".join(f"{k} {v}" for k, v in sorted(result.dispositions.items())) or "none")
    )
    for q in result.quarantined:
        console.print(
            f"  quarantined: {q['mailbox']} UID {q['uid']} {q['sender']}: {q['reason']}",
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
            typer.echo(json.dumps(row, ensure_ascii=False))
        return
    table = Table(title="Tickets")
    for column in ("#", "mailbox", "created", "sender", "subject", "status", "topic", "faq"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            str(row["id"]),
            row["mailbox"],
            row["created"][:16],
            row["sender"],
            row["subject"][:50],
            row["status"],
            row["topic"] or "",
            row["faq"] or "",
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
    from .classify import Classifier, classify_paths

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
        typer.echo(json.dumps(row, ensure_ascii=False))
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
        typer.Option(
            "--force",
            help="Replace the current model even if the new one is worse on the blind set "
            "or the example mails.",
        ),
    ] = False,
) -> None:
    """Train the triage model from the corpus (and the coordinator's corrections)."""
    from .heldout import default_heldout
    from .train import train as run_training

    extra: list[dict] = []
    if config is not None:
        settings = _settings(config)
        models = models or settings.daemon.models_dir
        extra = _corrections(settings)
    try:
        run_training(
            corpus,
            models or PROJECT_ROOT / "models",
            extra=extra,
            force=force,
            console=Console(),
            heldout=default_heldout(),
        )
    except ModelError as exc:
        _fail("The model was not replaced:", [str(exc)], code=1)
    except TriageError as exc:
        _fail("Training failed:", [str(exc)])


def _corrections(settings: Settings) -> list[dict]:
    """Tickets a person reclassified, as extra training examples."""
    from .corrections import corrections

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
    from .corrections import reclassify as set_labels

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
    from .demo import run_demo

    run_demo(per_round=mails or None)


def main() -> None:  # pragma: no cover - console script entry
    app()
