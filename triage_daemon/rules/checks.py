"""Checks across the rules files that no single field can make: names that must exist.

Each check yields (path, message): the path into the rules (its first part names the
file) so the loader can point at the line, and a message in Greek and English.
"""

from __future__ import annotations

from collections.abc import Iterator
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

from ..catalogue import TOPICS
from .shapes import Rules

Found = tuple[tuple, str]


def cross_check(rules: Rules, mailboxes: list[str] | None = None) -> list[Found]:
    found: list[Found] = []
    for check in (_pekes_names, _mailboxes, _overrides, _calendar):
        found += list(check(rules, mailboxes))
    return found


def _pekes_names(rules: Rules, _mailboxes) -> Iterator[Found]:
    known = rules.helpdesk.pekes
    for i, person in enumerate(rules.specialists.specialists):
        for j, name in enumerate(person.pekes):
            if name not in known:
                yield (
                    ("specialists", "specialists", i, "pekes", j),
                    f"άγνωστο ΠΕΚΕΣ «{name}»· υπάρχουν: {', '.join(known)} / unknown PEKES",
                )
    seen: dict[str, int] = {}
    for i, person in enumerate(rules.specialists.specialists):
        if person.address in seen:
            yield (
                ("specialists", "specialists", i, "address"),
                f"η διεύθυνση {person.address} γράφεται δύο φορές / address listed twice",
            )
        seen[person.address] = i


def _mailboxes(rules: Rules, mailboxes: list[str] | None) -> Iterator[Found]:
    if mailboxes is None:
        return
    # A PEKES of the rules that this config does not serve is no error (an instance may
    # serve some of the region's mailboxes; see mailbox_warnings), a mailbox without its
    # PEKES is: its tickets would have no coordinator.
    for name in mailboxes:
        if name not in rules.helpdesk.pekes:
            yield (
                ("helpdesk", "pekes"),
                f"το γραμματοκιβώτιο «{name}» του config δεν έχει ΠΕΚΕΣ εδώ / "
                "the config's mailbox has no PEKES here",
            )


def coverage_warnings(rules: Rules) -> Iterator[Found]:
    """Not errors: a topic nobody covers goes to the coordinator, who should know it."""
    for name in rules.helpdesk.pekes:
        missing = [t for t in TOPICS if not rules.specialists_for(name, t)]
        if missing:
            yield (
                ("specialists", "specialists"),
                f"στο ΠΕΚΕΣ «{name}» κανείς δεν καλύπτει: {', '.join(missing)} "
                f"(πηγαίνουν στον συντονιστή) / no specialist for these topics in {name}",
            )


def _overrides(rules: Rules, _mailboxes) -> Iterator[Found]:
    items = rules.overrides.overrides
    for i, item in enumerate(items):
        if item.person and rules.staff(item.person) is None:
            yield (
                ("overrides", "overrides", i, "person"),
                f"το {item.person} δεν είναι ειδικός ή συντονιστής / not a specialist or "
                "coordinator in the rules",
            )
        kind, value = item.when.key()
        for j in range(i):
            other_kind, other = items[j].when.key()
            same = kind == other_kind and (
                value == other or (kind == "phrase" and (value in other or other in value))
            )
            if same:
                yield (
                    ("overrides", "overrides", i, "when"),
                    f"επικαλύπτεται με τον κανόνα {j + 1} ({other_kind}: {other}): κρατήστε "
                    f"έναν / overlaps override {j + 1}",
                )


def _calendar(rules: Rules, _mailboxes) -> Iterator[Found]:
    calendar = rules.calendar
    try:
        ZoneInfo(calendar.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        yield (("calendar", "timezone"), f"άγνωστη ζώνη ώρας «{calendar.timezone}» / unknown")
    if calendar.public_holidays not in holidays.list_supported_countries():
        yield (
            ("calendar", "public_holidays"),
            f"άγνωστη χώρα αργιών «{calendar.public_holidays}» (π.χ. GR) / unknown country",
        )


def mailbox_warnings(rules: Rules, mailboxes: list[str]) -> Iterator[Found]:
    """Not errors: PEKES of the rules that the config's mailboxes do not include."""
    for name in rules.helpdesk.pekes:
        if name not in mailboxes:
            yield (
                ("helpdesk", "pekes", name),
                f"το ΠΕΚΕΣ «{name}» δεν είναι γραμματοκιβώτιο αυτού του config "
                f"({', '.join(mailboxes)}) / not a mailbox of this config",
            )
