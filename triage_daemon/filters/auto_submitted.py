"""RFC 3834: any Auto-Submitted value other than "no" marks automatic mail."""

from ..context import ParsedMail


class AutoSubmitted:
    name = "auto-submitted"
    description = "Auto-Submitted header other than 'no' (RFC 3834 section 5)"

    def check(self, mail: ParsedMail, own_addresses: frozenset[str]) -> str | None:
        for value in mail.headers.get("auto-submitted", []):
            keyword = value.split(";", 1)[0].strip().lower()
            if keyword and keyword != "no":
                return f"Auto-Submitted: {value.strip()}"
        return None
