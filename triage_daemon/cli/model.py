"""Commands about the triage model: classify mail with it, train it."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from ..config import PROJECT_ROOT, Settings
from ..errors import ModelError, TriageError
from ..safe_text import json_text
from .common import (
    ConfigOption,
    _database,
    _fail,
    _settings,
    app,
)


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
    from ..triage.classify import Classifier, classify_paths

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
        typer.Option(
            "--force",
            help="Replace the current model even if the new one is worse on the blind set "
            "or the example mails.",
        ),
    ] = False,
) -> None:
    """Train the triage model from the corpus (and the coordinator's corrections)."""
    from ..triage.heldout import default_heldout
    from ..triage.train import train as run_training

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
    from ..triage.corrections import corrections

    db = _database(settings)
    return corrections(db)
