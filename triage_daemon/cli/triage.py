"""`triage-daemon triage report`: what people corrected and what the model left for review."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from ..safe_text import json_text
from .common import ConfigOption, _database, _fail, _settings, app

triage_app = typer.Typer(no_args_is_help=True, help="How the triage does: corrections, review.")
app.add_typer(triage_app, name="triage")


@triage_app.command("report")
def report(
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
    since: Annotated[
        str | None,
        typer.Option(help="Only corrections and tickets from this ISO date or time (UTC)."),
    ] = None,
) -> None:
    """How often each class was corrected, the most confused pairs, who corrected, and review."""
    from ..triage.report import report_text, triage_report

    start = _since(since)
    db = _database(_settings(config))
    figures = triage_report(db, start)
    typer.echo(json_text(figures.as_dict()) if as_json else report_text(figures))


def _since(text: str | None) -> datetime | None:
    """The ISO date or time as an aware datetime; a time without a zone is UTC."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        _fail("Not a date:", [f"--since {text!r}: write it as 2026-09-01 or 2026-09-01T08:00"])
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
