"""`triage-daemon rules check`: the coordinator's rules folder, every problem with its line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..config import CONFIG_ENV
from ..rules import RulesError, load_rules
from ..rules.checks import coverage_warnings
from .common import ConfigOption, _fail, _settings, app, err, shown

rules_app = typer.Typer(no_args_is_help=True, help="The routing rules that the coordinator edits.")
app.add_typer(rules_app, name="rules")


@rules_app.command("check")
def check_rules(
    folder: Annotated[
        Path | None, typer.Argument(help="The rules folder (default: the config's rules_dir).")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Check every rules file; print each problem with its file and line (exit 1 if any)."""
    mailboxes = None
    if folder is None or config is not None or _config_in_env():
        settings = _settings(config)
        folder = folder or settings.daemon.rules_dir
        mailboxes = [box.name for box in settings.mailboxes]
    try:
        rules = load_rules(folder, mailboxes)
    except RulesError as exc:
        _fail("Οι κανόνες έχουν λάθη / the rules have errors:", exc.problems, code=1)
    for _path, message in coverage_warnings(rules):
        err.print(f"  ! {shown(message)}", markup=False, highlight=False)
    people = len(rules.specialists.specialists)
    typer.echo(
        f"{folder}: οι κανόνες είναι σωστοί / the rules are valid "
        f"({len(rules.helpdesk.pekes)} ΠΕΚΕΣ, {people} ειδικοί / specialists)"
    )


def _config_in_env() -> bool:
    import os

    return bool(os.environ.get(CONFIG_ENV))
