"""Mail from one of the helpdesks' own addresses: answering it would start a loop."""

from ..message import ParsedMail


class OwnAddress:
    name = "own-address"
    description = "sent from one of the helpdesk addresses"

    def check(self, mail: ParsedMail, own_addresses: frozenset[str]) -> str | None:
        if mail.from_addr.lower() in own_addresses:
            return f"sent from our own address {mail.from_addr}"
        return None
