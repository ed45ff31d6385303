"""Mail from one of the helpdesks' own addresses: answering it would start a loop."""

from ..context import ParsedMail
from ..parse.addresses import normalise


class OwnAddress:
    name = "own-address"
    description = "sent from one of the helpdesk addresses (in any spelling)"

    def check(self, mail: ParsedMail, own_addresses: frozenset[str]) -> str | None:
        # '"Helpdesk"@PEKES1.att.example' is our own address too.
        sender = normalise(mail.from_addr)
        if sender and sender in {normalise(a) for a in own_addresses}:
            return f"sent from our own address {mail.from_addr}"
        return None
