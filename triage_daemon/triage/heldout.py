"""The held-out sets (the blind set, the example mails): loading, measuring, and the bar to pass.

They are never trained on and never used to choose a model, a feature or a
threshold: ``triage-daemon train`` only measures the new model and the current
one on them, and refuses the new one when the current one is better on either.
"""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

from ..config import PROJECT_ROOT
from ..errors import ModelError
from .classify import METADATA_FILE, Classifier, TriageModel
from .corpus import Example, load_example_mails, load_requests, through_mail
from .evaluation import FIGURES, HEADINGS, figures_by, request_figures

# Requests never trained or tuned on: `triage-daemon train` only measures on them.
BLIND_SET = PROJECT_ROOT / "data" / "blind" / "blind.jsonl"
EXAMPLE_MAILS = PROJECT_ROOT.parent / "shared" / "examples"


def default_heldout() -> dict[str, list[Example]]:
    """The blind set and the example mails, those of them that are there."""
    return load_heldout(BLIND_SET, EXAMPLE_MAILS)


def load_heldout(blind: Path | None, examples: Path | None) -> dict[str, list[Example]]:
    """The held-out sets that exist: the blind set (read as mail) and the example mails."""
    sets = {}
    if blind is not None and Path(blind).is_file():
        sets["blind set"] = [through_mail(e) for e in load_requests(blind)]
    if examples is not None and (Path(examples) / "labels.csv").is_file():
        sets["example mails"] = load_example_mails(examples)
    return sets


def measure(classifier, requests: list[Example]) -> dict:
    """request_figures of a Classifier's triages of held-out requests, and per language."""
    triages = classifier.classify_many([(e.subject, e.body) for e in requests])
    figures = request_figures(requests, triages)
    figures["by_lang"] = figures_by(requests, triages, key=lambda e: e.lang)
    return figures


def print_heldout(console: Console, name: str, new: dict, old: dict | None) -> None:
    """One held-out set's figures for the new model (and the current one, when there is one)."""
    table = Table(title=f"{name}: {new['requests']} requests never trained or tuned on")
    for column in ("model", *FIGURES, "review", "score"):
        table.add_column(
            HEADINGS.get(column, column), justify="left" if column == "model" else "right"
        )
    for label, figures in (("current", old), ("new", new)):
        if figures:
            table.add_row(
                label, *(f"{figures[column]:.3f}" for column in (*FIGURES, "review", "score"))
            )
    console.print(table)


def previous_score(models_dir: Path) -> float | None:
    """The current model's score from its metadata, or None when there is none (or unreadable)."""
    try:
        score = json.loads((models_dir / METADATA_FILE).read_text(encoding="utf-8"))["cv"]["score"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return float(score) if isinstance(score, int | float) else None


def current_classifier(models_dir: Path):
    """The model in ``models_dir`` to compare with, or None when there is none that loads."""
    try:
        return Classifier.load(models_dir)
    except ModelError:
        return None


def check_better(
    model: TriageModel,
    models_dir: Path,
    heldout: dict[str, list[Example]],
    score: float,
    force: bool,
    console: Console,
) -> dict:
    """The new model's figures on the held-out sets; ModelError when the current one is better.

    With held-out sets the bar is the current model's score on each (mean of the
    issue's figures); without, its CV score.
    """
    current = current_classifier(models_dir) if heldout else None
    new = {name: measure(Classifier(model), requests) for name, requests in heldout.items()}
    old = {name: measure(current, sets) for name, sets in heldout.items()} if current else {}
    for name, figures in new.items():
        print_heldout(console, name, figures, old.get(name))
    worse = [
        f"on the {name} the new model scores {new[name]['score']:.4f}, "
        f"the current one {old[name]['score']:.4f}"
        for name in old
        if new[name]["score"] < old[name]["score"]
    ]
    previous = previous_score(models_dir)
    if not heldout and previous is not None and previous > score:
        worse = [
            f"the new model scores {score:.4f} (mean CV macro-F1), the current one {previous:.4f}"
        ]
    if worse and not force:
        raise ModelError(
            "; ".join(worse) + ": the model was not replaced; use --force to replace it"
        )
    return new
