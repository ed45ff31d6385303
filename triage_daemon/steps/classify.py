"""Triage: technical or not, topic, FAQ key, with the model's confidence and reasons."""

from __future__ import annotations

from ..context import MailContext
from . import Deps


class Classify:
    name = "classify"

    def __init__(self, deps: Deps):
        self.deps = deps

    def run(self, ctx: MailContext) -> None:
        # With no model configured every request is technical and gets the acknowledgement.
        classifier = self.deps.classifier
        ctx.triage = classifier.classify(ctx.mail) if classifier else None
