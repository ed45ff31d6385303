"""`triage-daemon demo`: the real daemon on embedded servers, shown live."""

from __future__ import annotations

from typing import Annotated

import typer

from .common import (
    app,
)


@app.command()
def demo(
    mails: Annotated[int, typer.Option(help="How many sample mails to deliver per round.")] = 0,
) -> None:
    """A first run on embedded parts: in-process IMAP and SMTP servers, sample mail, SQLite."""
    from ..demo.run import run_demo

    run_demo(per_round=mails or None)
