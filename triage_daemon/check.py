"""The start-up check: config, rules, templates and model validated together.

The daemon refuses to start, and `triage-daemon check` exits non-zero, on any problem;
every problem is reported at once, each naming its file (and line or key) and what
would fix it, so one edit round fixes them all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .config import Settings
from .errors import ConfigError, ModelError
from .reply.build import Replies
from .rules import Rules, RulesError, load_rules
from .rules.checks import coverage_warnings, mailbox_warnings


@dataclass
class Parts:
    """What the daemon runs with, once everything validated."""

    replies: Replies
    classifier: object
    rules: Rules | None
    warnings: list[str] = field(default_factory=list)


def has_rules(folder: Path) -> bool:
    """A rules folder with no YAML file means routing is not configured (yet)."""
    return folder.is_dir() and any(folder.glob("*.y*ml"))


def startup_check(settings: Settings, classifier=None) -> Parts:
    """Load templates, model and rules; raise ConfigError listing every problem."""
    problems: list[str] = []
    replies = Replies(settings.daemon.templates_dir)
    try:
        replies.validate()
    except ConfigError as exc:
        problems += exc.problems
    if classifier is None:
        try:
            classifier = load_classifier(settings)
        except ModelError as exc:
            problems.append(f"{settings.daemon.models_dir}: {exc}")
    rules, warnings = None, []
    folder = settings.daemon.rules_dir
    if has_rules(folder):
        try:
            names = [box.name for box in settings.mailboxes]
            rules = load_rules(folder, names)
            found = [*coverage_warnings(rules), *mailbox_warnings(rules, names)]
            warnings = [f"{folder}: {message}" for _path, message in found]
        except RulesError as exc:
            problems += exc.problems
    if problems:
        raise ConfigError(problems)
    return Parts(replies, classifier, rules, warnings)


def load_classifier(settings: Settings):
    """The trained model from the models folder, with the configured thresholds."""
    from .triage.classify import Classifier  # scikit-learn is heavy: only when needed

    return Classifier.load(
        settings.daemon.models_dir,
        min_confidence=settings.triage.min_confidence,
        faq_min_confidence=settings.triage.faq_min_confidence,
    )
