"""`triage-daemon rules check` and `rules explain`: the coordinator's rules, checked and tried."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.exc import SQLAlchemyError

from ..config import CONFIG_ENV
from ..rules import RulesError, load_rules
from ..rules.checks import coverage_warnings, mailbox_warnings
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
    found = [
        *coverage_warnings(rules),
        *mailbox_warnings(rules, mailboxes or list(rules.helpdesk.pekes)),
    ]
    for _path, message in found:
        err.print(f"  ! {shown(message)}", markup=False, highlight=False)
    people = len(rules.specialists.specialists)
    typer.echo(
        f"{folder}: οι κανόνες είναι σωστοί / the rules are valid "
        f"({len(rules.helpdesk.pekes)} ΠΕΚΕΣ, {people} ειδικοί / specialists)"
    )


def _config_in_env() -> bool:
    import os

    return bool(os.environ.get(CONFIG_ENV))


@rules_app.command("explain")
def explain(
    mail_file: Annotated[Path, typer.Argument(help="A mail as a .eml file.")],
    config: ConfigOption = None,
    mailbox: Annotated[
        str | None,
        typer.Option(help="The mailbox it arrived in (default: from its To/Cc addresses)."),
    ] = None,
) -> None:
    """Which PEKES, topic, FAQ and specialist this mail would get, and what decided each."""
    from ..check import load_classifier
    from ..desk.route import route
    from ..errors import ParseError
    from ..parse import parse_message

    settings = _settings(config)
    try:
        rules = load_rules(settings.daemon.rules_dir, [box.name for box in settings.mailboxes])
        mail = parse_message(mail_file.read_bytes())
    except RulesError as exc:
        _fail("Οι κανόνες έχουν λάθη / the rules have errors:", exc.problems, code=1)
    except (OSError, ParseError) as exc:
        _fail("Cannot read the mail:", [str(exc)])
    box = _mailbox_of(settings, mail, mailbox)
    triage = load_classifier(settings).classify(mail)
    lines = [f"ΠΕΚΕΣ / PEKES: {box.name} ({box.display_name}) — {_why_box(mailbox)}"]
    if not triage.technical:
        lines.append(f"μη τεχνικό / not technical ({triage.confidence.get('technical')})")
        _print(lines)
        return
    decision = route(
        rules,
        pekes=box.name,
        topic=triage.topic,
        review=triage.review,
        sender=mail.from_addr,
        text=f"{mail.subject}\n{mail.new_text or mail.text}",
        today=datetime.now(UTC).date(),
        load=_load(settings, rules, box.name),
    )
    lines += [
        f"θέμα / topic: {decision.topic} (μοντέλο / model: {triage.topic}, "
        f"{triage.confidence.get('topic')}){' — για έλεγχο / review' if triage.review else ''}",
        f"FAQ: {triage.faq} ({triage.confidence.get('faq')})",
        f"λέξεις / words: {', '.join(triage.explain) or '-'}",
        f"ανάθεση / assignee: {decision.assignee_name} <{decision.assignee}> ({decision.role})",
        f"γιατί / why: {decision.reason}",
    ]
    _print(lines)


def _mailbox_of(settings, mail, name: str | None):
    if name:
        try:
            return settings.mailbox(name)
        except KeyError:
            _fail("Unknown mailbox:", [f"{name}: not in the config"])
    to = {a.lower() for a in [*mail.to, *mail.cc]}
    for box in settings.mailboxes:
        if box.address in to:
            return box
    _fail("Which mailbox?", ["no To/Cc address is a helpdesk's: give --mailbox NAME"])


def _why_box(name: str | None) -> str:
    return "από το --mailbox" if name else "από τη διεύθυνση To/Cc / from its To/Cc address"


def _load(settings, rules, pekes: str) -> dict:
    """The live load of the PEKES's specialists, when the database answers; else none."""
    from ..db import Database
    from ..errors import TriageError
    from ..track import assignment_load

    people = [s.address for s in rules.specialists.specialists if pekes in s.pekes]
    db = Database(settings.database)
    try:
        with db.session() as session:
            return assignment_load(session, people)
    except (TriageError, SQLAlchemyError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        err.print(f"  ! the tickets cannot be read ({shown(first)}): assuming none are open")
        return {}
    finally:
        db.dispose()


def _print(lines: list[str]) -> None:
    for line in lines:
        typer.echo(shown(line))
