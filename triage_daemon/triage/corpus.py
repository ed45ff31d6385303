"""The labelled mail: the training corpus, corrections and the held-out sets, checked and loaded.

Each corpus line is one object: subject, body, technical, topic, faq (and lang,
writer); see ../data/corpus and the catalogue (catalogue.py) for the labels.
Corrections (reclassified tickets) and the blind set (../data/blind) have the
same shape; the example mails (../shared/examples) are message files named in a
labels.csv. Every example belongs to a group (its writer) so that
cross-validation can keep a writer's mails in one fold.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from pathlib import Path

from ..catalogue import FAQ_KEYS, FAQ_TOPIC, NO_FAQ, TOPICS
from ..errors import ConfigError

LANGS = ("el", "greeklish", "en", "mixed")

# The old corpus has no writer field (one author wrote it all, sorted by label):
# its groups are blocks of this many consecutive lines of one file, so that
# near-identical neighbours (the same FAQ in the same words) share a fold.
BLOCK = 10


@dataclass
class Example:
    """One labelled request; ``source`` says where it came from (file:line or extra[i])."""

    subject: str
    body: str
    technical: bool
    topic: str | None
    faq: str | None
    source: str
    lang: str = "el"
    # Who wrote it, for grouped cross-validation: the writer, or a block of lines (see BLOCK).
    group: str = ""
    # The writer when the example names one: the examples whose writer is unseen in
    # training give the honest out-of-fold figures (the old corpus's one author does not).
    writer: str = ""
    # How much the example counts in training (corrections count more).
    weight: float = 1.0


def check_example(obj: object) -> str | None:
    """The problem with one corpus object, or None if it is a valid example."""
    if not isinstance(obj, dict):
        return "not a JSON object"
    for key, kind in (("subject", str), ("body", str), ("technical", bool)):
        if not isinstance(obj.get(key), kind):
            return f"{key!r} must be a {kind.__name__}, not {obj.get(key)!r}"
    if not obj["body"].strip() and not obj["subject"].strip():
        return "subject and body are both empty"
    if obj.get("lang", "el") not in LANGS:
        return f"lang {obj.get('lang')!r} is not one of {', '.join(LANGS)}"
    return _check_labels(obj["technical"], obj.get("topic"), obj.get("faq"))


def _check_labels(technical: bool, topic: object, faq: object) -> str | None:
    if not technical:
        if topic is None and faq is None:
            return None
        return f"a non-technical example must have topic and faq null, not {topic!r}, {faq!r}"
    if topic not in TOPICS:
        return f"topic {topic!r} is not one of {', '.join(TOPICS)}"
    if faq != NO_FAQ and faq not in FAQ_KEYS:
        return f"faq {faq!r} is not a catalogue key or 'none'"
    if faq != NO_FAQ and FAQ_TOPIC[faq] != topic:
        return f"faq {faq!r} belongs to topic {FAQ_TOPIC[faq]!r}, not {topic!r}"
    return None


def _example(obj: dict, source: str, group: str, weight: float = 1.0) -> Example:
    technical = obj["technical"]
    writer = obj.get("writer") if isinstance(obj.get("writer"), str) else ""
    return Example(
        obj["subject"],
        obj["body"],
        technical,
        obj.get("topic") if technical else None,
        obj.get("faq") if technical else None,
        source,
        obj.get("lang", "el"),
        group,
        writer.strip(),
        weight,
    )


def _group(obj: dict, path: Path, number: int) -> str:
    """The writer of a corpus line, or its file and block of lines when it names none."""
    writer = obj.get("writer")
    if isinstance(writer, str) and writer.strip():
        return writer
    return f"{path.stem}#{(number - 1) // BLOCK}"


def load_corpus(corpus_dir: Path) -> tuple[list[Example], dict]:
    """Every example of ``corpus_dir/*.jsonl`` and a digest of the files.

    Raises ConfigError listing every bad line as ``file:line: problem``.
    """
    files = sorted(Path(corpus_dir).glob("*.jsonl"))
    if not files:
        raise ConfigError(
            [f"{corpus_dir}: no *.jsonl training files; write the corpus there first"]
        )
    examples, problems, digest = [], [], {"files": {}}
    whole = hashlib.sha256()
    for path in files:
        data = path.read_bytes()
        whole.update(path.name.encode() + b"\0" + data)
        found, bad = _read_jsonl(path, data)
        examples += found
        problems += bad
        digest["files"][path.name] = {
            "lines": len(data.splitlines()),
            "sha256": hashlib.sha256(data).hexdigest(),
        }
    if problems:
        raise ConfigError(problems)
    digest["sha256"] = whole.hexdigest()
    return examples, digest


def load_requests(path: Path) -> list[Example]:
    """The examples of one JSON Lines file (the blind set); ConfigError naming each bad line."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read it ({exc.strerror or exc})"]) from None
    examples, problems = _read_jsonl(path, data)
    if problems:
        raise ConfigError(problems)
    return examples


def _read_jsonl(path: Path, data: bytes) -> tuple[list[Example], list[str]]:
    """The valid examples of one file's bytes, and a ``file:line: problem`` for each bad line."""
    try:
        # Split on line feeds only: str.splitlines() would also cut a line at a U+2028
        # that json.dumps(ensure_ascii=False) leaves inside a string.
        lines = data.decode("utf-8").split("\n")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        return [], [f"{path}:{line}: not UTF-8 ({exc.reason} at byte {exc.start})"]
    examples, problems = [], []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError as exc:
            problems.append(f"{path}:{number}: not valid JSON ({exc})")
            continue
        problem = check_example(obj)
        if problem:
            problems.append(f"{path}:{number}: {problem}")
        else:
            examples.append(_example(obj, f"{path.name}:{number}", _group(obj, path, number)))
    return examples, problems


# A correction is a real mail of the helpdesk, labelled by a person who read it:
# it counts as this many corpus examples.
CORRECTION_WEIGHT = 3.0


def extra_examples(extra: list[dict], weight: float = CORRECTION_WEIGHT) -> list[Example]:
    """Corrections (reclassified tickets) as examples; ConfigError naming each bad one.

    Each correction is its own group and counts ``weight`` times; of corrections
    with the same text only the last one is kept (a ticket answered as a group,
    reclassified twice, must not count twice).
    """
    problems = [
        f"extra[{i}] ({obj.get('id', '?') if isinstance(obj, dict) else '?'}): {p}"
        for i, obj in enumerate(extra)
        if (p := check_example(obj))
    ]
    if problems:
        raise ConfigError(problems)
    latest = {text_key(obj["subject"], obj["body"]): i for i, obj in enumerate(extra)}
    chosen = [(i, f"correction:{extra[i].get('id', i)}") for i in sorted(latest.values())]
    # A real teacher wrote each one: it stands for an unseen writer in cross-validation.
    return [
        replace(_example(extra[i], f"extra[{i}]", group, weight), writer=group)
        for i, group in chosen
    ]


def text_key(subject: str, body: str) -> str:
    """What makes two mails the same text: their words, case and spacing aside."""
    return " ".join(f"{subject}\n{body}".casefold().split())


def with_corrections(examples: list[Example], corrections: list[Example]) -> list[Example]:
    """The corpus with the corrections added; a corpus example of the same text gives way."""
    corrected = {text_key(e.subject, e.body) for e in corrections}
    return [e for e in examples if text_key(e.subject, e.body) not in corrected] + corrections


def load_example_mails(folder: Path) -> list[Example]:
    """The requests among the example mails (``folder/labels.csv``), as the daemon reads them.

    Each message file goes through parse.parse_message; the example's body is what
    Classifier.classify reads (the new text, else the whole text). Auto-replies and
    bounces are the filters' business and are left out. ConfigError when the
    labels or a file cannot be read.
    """
    import csv

    folder = Path(folder)
    try:
        with (folder / "labels.csv").open(encoding="utf-8", newline="") as file:
            rows = [row for row in csv.DictReader(file) if row["kind"] == "request"]
        return [_labelled_mail((folder / row["file"]).read_bytes(), row) for row in rows]
    except (OSError, KeyError) as exc:
        raise ConfigError([f"{folder}: cannot read the example mails ({exc})"]) from None


def _labelled_mail(raw: bytes, row: dict) -> Example:
    from ..parse import parse_message

    mail = parse_message(raw)
    technical = row["technical"] == "true"
    return Example(
        mail.subject,
        mail.new_text.strip() or mail.text,
        technical,
        row["topic"] if technical else None,
        row["faq"] if technical else None,
        row.get("file", "?"),
        row.get("lang") or "el",
        row.get("file", "?"),
    )


def as_message(example: Example) -> bytes:
    """The example as a message file (RFC 5322, UTF-8), as a teacher's mail client would send it."""
    from email.header import Header
    from email.mime.text import MIMEText

    message = MIMEText(example.body, "plain", "utf-8")
    message["From"] = "teacher@sch.gr"
    message["To"] = "helpdesk@sch.gr"
    # Header() rather than EmailMessage: CPython's folder drops the space between two
    # encoded words it splits a long Greek subject into ("πίνακα από" -> "πίνακααπό").
    message["Subject"] = Header(example.subject, "utf-8")
    return message.as_bytes()


def through_mail(example: Example) -> Example:
    """The example as the daemon would read it: written as a message, then parsed back.

    What `triage-daemon classify` does to a message file (quotes and signatures
    set apart, the subject decoded) is then done to the held-out requests too.
    """
    from ..parse import parse_message

    mail = parse_message(as_message(example))
    return replace(example, subject=mail.subject, body=mail.new_text.strip() or mail.text)
