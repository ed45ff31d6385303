"""Automatic mail (auto-replies, bounces, lists, our own): ignored, never answered."""

from __future__ import annotations

from ..context import MailContext
from ..errors import IgnoreMessage
from ..filters import build_chain
from . import Deps


class AutomaticMail:
    name = "automatic-mail"

    def __init__(self, deps: Deps):
        from ..pipeline import FILTERS  # the filter order is data beside the step order

        self.filters = build_chain(FILTERS)
        self.own_addresses = deps.own_addresses

    def run(self, ctx: MailContext) -> None:
        for rule in self.filters:
            reason = rule.check(ctx.mail, self.own_addresses)
            if reason:
                raise IgnoreMessage(reason, stage=rule.name)
