"""Routing: which topic and which person a new ticket goes to, and why.

The order is the coordinator's: an override in the rules wins over the model; then
the model's topic; an unsure ticket goes where ``review_to`` says. Among the topic's
specialists of the PEKES the available one with the fewest open tickets gets it, ties
going to whoever was given a ticket longest ago (round-robin); a topic with nobody
available goes to the PEKES coordinator. The reason is kept on the ticket.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime

from ..rules import Rules
from ..rules.shapes import Override
from ..triage.textprep import fold, strip_accents

# Before any assignment: everyone ties on "longest ago".
NEVER = datetime.min


@dataclass(frozen=True)
class Load:
    """What assignment needs to know of one person: open tickets, last assignment."""

    open: int = 0
    last_assigned: datetime = NEVER


@dataclass(frozen=True)
class Route:
    topic: str | None
    assignee: str
    assignee_name: str
    role: str  # "specialist" or "coordinator"
    reason: str
    override: int | None = None  # 1-based index of the override that decided


def _folded(text: str) -> str:
    return strip_accents(fold(text))


def _domain(address: str) -> str:
    return address.rpartition("@")[2].lower()


def matching_override(rules: Rules, sender: str, text: str) -> tuple[int, Override] | None:
    """The first override whose sender, domain or phrase matches, with its 1-based index."""
    folded = _folded(text)
    sender = sender.strip().lower()
    for index, item in enumerate(rules.overrides.overrides, 1):
        kind, value = item.when.key()
        if kind == "sender" and sender == value:
            return index, item
        if kind == "domain" and (_domain(sender) == value or _domain(sender).endswith("." + value)):
            return index, item
        if kind == "phrase" and _folded(value) in folded:
            return index, item
    return None


def route(
    rules: Rules,
    *,
    pekes: str,
    topic: str | None,
    review: bool,
    sender: str,
    text: str,
    today: date,
    load: Mapping[str, Load],
) -> Route:
    """Decide topic and assignee for a technical ticket of ``pekes``.

    ``topic`` and ``review`` are the model's; ``text`` is the subject and new text;
    ``load`` maps addresses to their current load (missing: nothing open, never given).
    """
    found = matching_override(rules, sender, text)
    why_topic = "το θέμα από το μοντέλο"
    if found:
        index, item = found
        kind, value = item.when.key()
        why_topic = f"κανόνας {index} των overrides ({kind}: {value})"
        topic = item.topic or topic
        if item.person:
            person = rules.staff(item.person)
            return Route(
                topic,
                item.person,
                person.name if person else item.person,
                "specialist",
                f"{why_topic}: ορίζει υπεύθυνο {item.person}",
                override=index,
            )
    if review and rules.helpdesk.review_to == "coordinator":
        return _to_coordinator(rules, pekes, topic, "το μοντέλο δεν ήταν βέβαιο: στον συντονιστή")
    return _to_specialist(rules, pekes, topic, today, load, why_topic, found)


def _to_specialist(rules, pekes, topic, today, load, why_topic, found) -> Route:
    people = rules.specialists_for(pekes, topic) if topic else []
    available = [p for p in people if p.available(today)]
    if not available:
        why = "κανείς ειδικός διαθέσιμος" if people else "κανείς ειδικός για το θέμα"
        return _to_coordinator(rules, pekes, topic, f"{why} στο {pekes}: στον συντονιστή")

    def rank(person):
        current = load.get(person.address, Load())
        return current.open, current.last_assigned

    chosen = min(available, key=rank)
    skipped = len(people) - len(available)
    count = load.get(chosen.address, Load()).open
    reason = f"{why_topic}· ειδικός με τα λιγότερα ανοιχτά αιτήματα ({count})"
    if skipped:
        reason += f"· {skipped} μη διαθέσιμος/οι"
    return Route(
        topic, chosen.address, chosen.name, "specialist", reason, found[0] if found else None
    )


def _to_coordinator(rules: Rules, pekes: str, topic: str | None, reason: str) -> Route:
    person = rules.coordinator(pekes)
    return Route(topic, person.address, person.name, "coordinator", reason)
