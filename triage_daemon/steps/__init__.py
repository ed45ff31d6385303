"""The steps of a mail's trip, one module each, looked up by name.

Each step has a ``name`` and one method, ``run(ctx)``, which reads and fills in the
mail's context (context.MailContext) and returns None to go on, or an Outcome when the
mail's trip ends there. "Ignore this mail" and "set it aside" are the signals of
errors.py, caught in one place (pipeline.py). The order of the steps, per kind of mail,
is data in pipeline.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from ..clock import Clock
from ..config import Settings
from ..context import MailContext, Outcome, ParsedMail, Triage
from ..errors import ConfigError
from ..reply.build import Replies
from ..rules import Rules


class Classifier(Protocol):  # the part of triage.classify.Classifier the steps use
    def classify(self, mail: ParsedMail) -> Triage: ...


@dataclass
class Deps:
    """What the steps need besides the mail: set up once per pipeline (steps keep a
    reference, so a model swapped in here is the one the next mail sees)."""

    settings: Settings
    replies: Replies
    classifier: Classifier | None
    clock: Clock
    own_addresses: frozenset[str]
    # mailbox name -> the tag its tickets carry in subjects ("ΠΕΚΕΣ1").
    tags: dict[str, str]
    # The coordinator's rules; None when the config names no rules (no routing).
    rules: Rules | None = None


class Step(Protocol):
    name: str

    def run(self, ctx: MailContext) -> Outcome | None: ...


def registry() -> dict[str, Callable[[Deps], Step]]:
    """Every step by name (imported here, not at module level: steps import helpers)."""
    from .acknowledge import Acknowledge
    from .automatic import AutomaticMail
    from .classify import Classify
    from .follow_up import FollowUp
    from .open_ticket import OpenTicket
    from .route import Route
    from .seen import SeenBefore

    steps = (AutomaticMail, SeenBefore, FollowUp, Classify, OpenTicket, Route, Acknowledge)
    return {step.name: step for step in steps}


def build_steps(names: tuple[str, ...], deps: Deps) -> list[Step]:
    """The steps named, in order; raises ConfigError for an unknown or doubled name."""
    known = registry()
    problems = [f"pipeline: unknown step '{n}'" for n in names if n not in known]
    problems += [f"pipeline: step '{n}' named twice" for n in set(names) if names.count(n) > 1]
    if problems:
        raise ConfigError(problems)
    return [known[name](deps) for name in names]
