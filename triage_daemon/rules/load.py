"""Reading a rules folder: YAML with line numbers, the shapes, and the checks across files.

The coordinator is not a programmer: every problem is reported at once, each with its
file and line and a plain explanation in Greek and in English, and nothing half-valid is
ever used (the caller keeps the last good rules).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.constructor import RoundTripConstructor
from ruamel.yaml.error import MarkedYAMLError

from ..errors import ConfigError
from .checks import cross_check
from .shapes import Rules

# File -> the part of the rules it holds. helpdesk.yaml is required; the others have
# defaults that suit a PEKES helpdesk.
RULES_FILES: dict[str, str] = {
    "helpdesk.yaml": "helpdesk",
    "specialists.yaml": "specialists",
    "overrides.yaml": "overrides",
    "escalation.yaml": "escalation",
    "calendar.yaml": "calendar",
    "digest.yaml": "digest",
    "groups.yaml": "groups",
}
FILE_OF = {part: name for name, part in RULES_FILES.items()}

# Pydantic's error types, said for a coordinator (Greek / English).
PLAIN = {
    "missing": "λείπει υποχρεωτικό πεδίο / a required key is missing",
    "extra_forbidden": "άγνωστο πεδίο: ελέγξτε την ορθογραφία / unknown key: check its spelling",
    "date_from_datetime_parsing": "δεν είναι ημερομηνία: γράψτε ΕΕΕΕ-ΜΜ-ΗΗ / not a date: "
    "write YYYY-MM-DD",
    "date_parsing": "δεν είναι ημερομηνία: γράψτε ΕΕΕΕ-ΜΜ-ΗΗ / not a date: write YYYY-MM-DD",
    "date_type": "δεν είναι ημερομηνία: γράψτε ΕΕΕΕ-ΜΜ-ΗΗ / not a date: write YYYY-MM-DD",
    "time_parsing": 'δεν είναι ώρα: γράψτε ΩΩ:ΛΛ σε εισαγωγικά / not a time: write "HH:MM"',
    "time_type": 'δεν είναι ώρα: γράψτε ΩΩ:ΛΛ σε εισαγωγικά / not a time: write "HH:MM"',
    "string_type": "πρέπει να είναι κείμενο / must be text",
    "list_type": "πρέπει να είναι λίστα (γραμμές με «- ») / must be a list",
    "dict_type": "πρέπει να είναι ενότητα με πεδία / must be a section of keys",
    "model_type": "πρέπει να είναι ενότητα με πεδία / must be a section of keys",
    "bool_parsing": "γράψτε true ή false / write true or false",
    "float_parsing": "πρέπει να είναι αριθμός / must be a number",
    "int_parsing": "πρέπει να είναι ακέραιος αριθμός / must be a whole number",
    "literal_error": "μη αποδεκτή τιμή / value not allowed",
    "too_short": "δεν μπορεί να είναι κενό / cannot be empty",
}


class _Constructor(RoundTripConstructor):
    """Dates stay text for pydantic: ruamel would raise on 2020-11-31 with no line."""


_Constructor.add_constructor("tag:yaml.org,2002:timestamp", RoundTripConstructor.construct_yaml_str)


@dataclass(frozen=True)
class Problem:
    file: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.message}"


class RulesError(ConfigError):
    """The rules folder is invalid; ``problems`` are the lines to show the coordinator."""


def load_rules(folder: Path | str, mailboxes: list[str] | None = None) -> Rules:
    """Read and validate every rules file in ``folder``.

    ``mailboxes``, when given, are the config's mailbox names: every PEKES must name one
    and every mailbox must have its PEKES. Raises RulesError listing every problem.
    """
    folder = Path(folder)
    problems: list[Problem] = []
    documents = _read_folder(folder, problems)
    rules = None
    if not problems:
        try:
            rules = Rules.model_validate(documents)
        except ValidationError as exc:
            problems += [_located(error, documents) for error in exc.errors()]
    if rules is not None:
        problems += [
            Problem(FILE_OF[path[0]], _line(documents, path), message)
            for path, message in cross_check(rules, mailboxes)
        ]
    if problems:
        raise RulesError([f"{folder}/{p}" for p in problems])
    return rules


def _read_folder(folder: Path, problems: list[Problem]) -> dict[str, Any]:
    if not folder.is_dir():
        problems.append(Problem(str(folder), None, "ο φάκελος δεν υπάρχει / no such folder"))
        return {}
    documents: dict[str, Any] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix not in (".yaml", ".yml"):
            continue
        if path.name not in RULES_FILES:
            known = ", ".join(RULES_FILES)
            problems.append(
                Problem(path.name, None, f"άγνωστο αρχείο· τα αρχεία είναι: {known} / unknown file")
            )
            continue
        document = _read_yaml(path, problems)
        if document is not None:
            documents[RULES_FILES[path.name]] = document
    if "helpdesk" not in documents and not problems:
        problems.append(Problem("helpdesk.yaml", None, "λείπει το αρχείο / the file is missing"))
    return documents


def _read_yaml(path: Path, problems: list[Problem]) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(Problem(path.name, None, f"δεν διαβάζεται / cannot be read: {exc}"))
        return None
    try:
        yaml = YAML(typ="rt")
        yaml.Constructor = _Constructor
        document = yaml.load(text)
    except MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        problems.append(
            Problem(path.name, line, f"λάθος σύνταξη YAML / YAML syntax error: {exc.problem}")
        )
        return None
    # An empty file is a file with nothing to say, not an error.
    return CommentedMap() if document is None else document


def _located(error: dict[str, Any], documents: dict[str, Any]) -> Problem:
    loc = error["loc"]
    file = FILE_OF.get(str(loc[0]), "helpdesk.yaml") if loc else "helpdesk.yaml"
    message = PLAIN.get(error["type"], error["msg"].removeprefix("Value error, "))
    key = "".join(f"[{p + 1}]" if isinstance(p, int) else f".{p}" for p in loc[1:]).lstrip(".")
    if key:
        message = f"{key}: {message}"
    shown = error.get("input")
    if (
        error["type"] in PLAIN
        and isinstance(shown, str | int | float)
        and error["type"]
        not in (
            "missing",
            "extra_forbidden",
        )
    ):
        message += f" (γράφει / found {shown!r})"
    return Problem(file, _line(documents, loc), message)


def _line(documents: dict[str, Any], loc: tuple[Any, ...]) -> int | None:
    """The 1-based line of the deepest part of ``loc`` present in the YAML document."""
    if not loc or loc[0] not in documents:
        return None
    node, line = documents[loc[0]], None
    for part in loc[1:]:
        if isinstance(node, CommentedMap) and part in node:
            line = node.lc.key(part)[0] + 1
            node = node[part]
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and part < len(node):
            line = node.lc.item(part)[0] + 1
            node = node[part]
        else:
            break
    return line
