"""Filters: each recognises one kind of automatic mail that must never be answered.

A filter has a ``name``, a ``description`` and ``check(mail, own_addresses)``, which
returns the reason it matched, or None. The order they run in is data, in
``pipeline.FILTERS``; this module only registers them by name.
"""

from __future__ import annotations

from typing import Protocol

from ..context import ParsedMail
from .acknowledgement import Acknowledgement
from .auto_submitted import AutoSubmitted
from .autoreply_headers import AutoreplyHeaders
from .bounce import Bounce
from .mailing_list import MailingList
from .no_reply_sender import NoReplySender
from .out_of_office import OutOfOffice
from .own_address import OwnAddress
from .precedence import Precedence


class Filter(Protocol):
    name: str
    description: str

    def check(self, mail: ParsedMail, own_addresses: frozenset[str]) -> str | None: ...


REGISTRY: dict[str, type] = {
    cls.name: cls
    for cls in (
        AutoSubmitted,
        AutoreplyHeaders,
        Precedence,
        MailingList,
        Bounce,
        OwnAddress,
        NoReplySender,
        OutOfOffice,
        Acknowledgement,
    )
}


def build_chain(names: tuple[str, ...]) -> list[Filter]:
    """Instantiate the filters named, in order; a name that does not resolve, or is doubled,
    is a programming error caught at start-up."""
    unknown = [n for n in names if n not in REGISTRY]
    doubled = sorted({n for n in names if names.count(n) > 1})
    if unknown or doubled:
        raise ValueError(f"filter chain: unknown {unknown}, doubled {doubled}")
    return [REGISTRY[n]() for n in names]
