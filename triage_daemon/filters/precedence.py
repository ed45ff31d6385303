"""Precedence: bulk, junk, list or auto_reply marks mail not to be answered."""

from ..context import ParsedMail

AUTOMATIC = {"bulk", "junk", "list", "auto_reply", "auto-reply"}


class Precedence:
    name = "precedence"
    description = "Precedence: bulk, junk, list or auto_reply"

    def check(self, mail: ParsedMail, own_addresses: frozenset[str]) -> str | None:
        for value in mail.headers.get("precedence", []):
            if value.strip().lower() in AUTOMATIC:
                return f"Precedence: {value.strip()}"
        return None
