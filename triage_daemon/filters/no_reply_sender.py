"""Senders that by name do not read replies (no-reply, notifications, bounces) or no sender."""

import re

from ..context import ParsedMail

NO_REPLY = re.compile(
    r"^(no[-_.]?reply|do[-_.]?not[-_.]?reply|donotreply|noreply|bounces?|notifications?|"
    r"auto[-_.]?reply|autoresponder|daemon)([-+_.].*)?$",
    re.IGNORECASE,
)


class NoReplySender:
    name = "no-reply-sender"
    description = "a no-reply style sender, or no sender address at all"

    def check(self, mail: ParsedMail, own_addresses: frozenset[str]) -> str | None:
        address = mail.reply_to or mail.from_addr
        if not address or "@" not in address:
            return "no sender address to reply to"
        if NO_REPLY.match(address.split("@", 1)[0]):
            return f"sender {address} does not take replies"
        return None
