"""One spelling per mailbox: the normalised address that every comparison and count uses.

``"Victim"@School.Example``, ``victim@school.example`` and ``victim@SCHOOL.EXAMPLE.``
reach the same person, so the reply limit, the own-address guard and the check of who
may write into a ticket must all see the same string. Kept apart from headers.py, which
parses the headers; this module only compares what was parsed.
"""

from __future__ import annotations

import re

# RFC 5322 atext, plus any non-ASCII character (RFC 6531 allows UTF-8 local parts).
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~\-\u0080-\U0010ffff]+"
_DOT_ATOM = re.compile(rf"{_ATOM}(?:\.{_ATOM})*")
_QUOTED_PAIR = re.compile(r"\\(.)")
# A domain name or an address literal such as [192.0.2.1].
_DOMAIN = re.compile(rf"{_DOT_ATOM.pattern}|\[[^\[\]\\\s]+\]")


def normalise(address: str) -> str:
    """The canonical form of the addr-spec ``address``, or '' when it is not usable.

    Quotes around a local part that needs none are removed (``"victim"`` is
    ``victim``, RFC 5321 section 4.1.2), local part and domain are lower-cased (parse.py
    already lowers whole addresses, and hardly any mail system treats case in a local
    part as a different person), a trailing dot and the IDNA spelling of the domain are
    made one. Whitespace or a control character anywhere, an empty part, or a local part
    that stays quoted after this (spaces, '@', ...) make the address unusable: nobody
    is answered at such an address.
    """
    address = address.strip().strip("<>")
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain:
        return ""
    if len(local) >= 2 and local.startswith('"') and local.endswith('"'):
        local = _QUOTED_PAIR.sub(r"\1", local[1:-1])
    local = local.lower()
    domain = _domain(domain)
    if not domain or not _DOT_ATOM.fullmatch(local) or not local.isprintable():
        return ""
    return f"{local}@{domain}"


def _domain(domain: str) -> str:
    domain = domain.casefold().rstrip(".")
    if not _DOMAIN.fullmatch(domain) or not domain.isprintable():
        return ""
    if not domain.isascii() and not domain.startswith("["):
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError:
            return ""
    return domain


def same(first: str, second: str) -> bool:
    """Whether two addresses reach the same mailbox (False when either is unusable)."""
    one = normalise(first)
    return bool(one) and one == normalise(second)
