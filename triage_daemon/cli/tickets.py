"""Commands about tickets: list them, and correct the model's labels on one."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ..errors import TriageError
from ..safe_text import json_text
from .common import (
    ConfigOption,
    _database,
    _fail,
    _settings,
    app,
    cell,
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
    from ..report import ticket_rows

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
def reclassify(
    ticket: Annotated[int, typer.Argument(help="The ticket number.")],
    technical: Annotated[
        bool, typer.Option("--technical/--not-technical", help="Is it a technical request?")
    ],
    topic: Annotated[str | None, typer.Option(help="webex, eclass, eme or other")] = None,
    faq: Annotated[str | None, typer.Option(help="An FAQ key of the catalogue, or none")] = None,
    config: ConfigOption = None,
    by: Annotated[
        str, typer.Option("--by", help="Who made the correction: an address, or coordinator.")
    ] = "coordinator",
) -> None:
    """Correct a ticket's triage by hand (it counts as a correction when the model is retrained)."""
    from ..triage.corrections import reclassify as set_labels

    settings = _settings(config)
    db = _database(settings)
    try:
        result = set_labels(db, ticket, technical=technical, topic=topic, faq=faq, by=by)
    except TriageError as exc:
        _fail("Not changed:", [str(exc)])
    typer.echo(
        f"ticket #{result.id}: technical={result.technical} topic={result.topic} "
        f"faq={result.faq} status={getattr(result.status, 'value', result.status)}"
    )
