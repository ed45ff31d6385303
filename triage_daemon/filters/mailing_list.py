"""Mailing-list and newsletter mail (RFC 2369 / RFC 2919 headers): never answered."""

from ..context import ParsedMail

LIST_HEADERS = ("list-id", "list-unsubscribe", "list-post", "list-help", "x-mailing-list")


class MailingList:
    name = "mailing-list"
    description = "List-Id, List-Unsubscribe and other list headers"

    def check(self, mail: ParsedMail, own_addresses: frozenset[str]) -> str | None:
        for header in LIST_HEADERS:
            if mail.headers.get(header):
                return f"{header} present"
        return None
