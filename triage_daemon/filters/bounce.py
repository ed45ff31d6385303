"""Bounces and delivery reports (RFC 3464 / RFC 6522): never answered."""

from ..context import ParsedMail

REPORT_TYPES = ("multipart/report",)
DAEMON_LOCALPARTS = ("mailer-daemon", "postmaster", "mail-daemon", "mailerdaemon")


class Bounce:
    name = "bounce"
    description = "multipart/report, an empty Return-Path, or a MAILER-DAEMON sender"

    def check(self, mail: ParsedMail, own_addresses: frozenset[str]) -> str | None:
        if mail.content_type.lower() in REPORT_TYPES:
            return f"delivery report ({mail.content_type})"
        for value in mail.headers.get("return-path", []):
            if value.strip() in ("<>", ""):
                return "empty Return-Path (null envelope sender)"
        local = mail.from_addr.split("@", 1)[0].lower()
        if local in DAEMON_LOCALPARTS:
            return f"sender {mail.from_addr} is a mail system"
        if mail.headers.get("x-failed-recipients"):
            return "X-Failed-Recipients present"
        return None
