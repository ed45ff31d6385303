"""The labelled training corpus: JSON Lines files of examples, checked against the catalogue.

Each line is one object: subject, body, technical, topic, faq (and lang); see
../data/corpus and the catalogue (catalogue.py) for the labels. Corrections
(reclassified tickets) have the same shape.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from ..catalogue import FAQ_KEYS, FAQ_TOPIC, NO_FAQ, TOPICS
from ..errors import ConfigError

LANGS = ("el", "greeklish", "en", "mixed")


@dataclass
class Example:
    """One labelled request; ``source`` says where it came from (file:line or extra[i])."""

    subject: str
    body: str
    technical: bool
    topic: str | None
    faq: str | None
    source: str


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


def _example(obj: dict, source: str) -> Example:
    technical = obj["technical"]
    return Example(
        obj["subject"],
        obj["body"],
        technical,
        obj.get("topic") if technical else None,
        obj.get("faq") if technical else None,
        source,
    )


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
        try:
            lines = data.decode("utf-8").splitlines()
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            problems.append(f"{path}:{line}: not UTF-8 ({exc.reason} at byte {exc.start})")
            continue
        digest["files"][path.name] = {
            "lines": len(lines),
            "sha256": hashlib.sha256(data).hexdigest(),
        }
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
                examples.append(_example(obj, f"{path.name}:{number}"))
    if problems:
        raise ConfigError(problems)
    digest["sha256"] = whole.hexdigest()
    return examples, digest


def extra_examples(extra: list[dict]) -> list[Example]:
    """Corrections (reclassified tickets) as examples; ConfigError naming each bad one."""
    problems = [
        f"extra[{i}] ({obj.get('id', '?') if isinstance(obj, dict) else '?'}): {p}"
        for i, obj in enumerate(extra)
        if (p := check_example(obj))
    ]
    if problems:
        raise ConfigError(problems)
    return [_example(obj, f"extra[{i}]") for i, obj in enumerate(extra)]
