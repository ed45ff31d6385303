"""The shape of the rules, one model per file, and the questions routing asks of them.

Every message a validator raises is written for the coordinator who edits the files:
Greek first, then English after " / ".
"""

from __future__ import annotations

from datetime import date, time
from typing import Annotated, Literal

from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from ..catalogue import TOPICS
from ..desk.worktime import SCHOOL_HOLIDAYS, ClosedSpan, WorkingCalendar

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _address(value: str) -> str:
    try:
        return validate_email(value.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise ValueError(
            f"«{value}» δεν είναι έγκυρη διεύθυνση email / not an email address: {exc}"
        ) from None


def _topic(value: str) -> str:
    if value not in TOPICS:
        raise ValueError(
            f"άγνωστο θέμα «{value}»· επιτρέπονται: {', '.join(TOPICS)} / unknown topic"
        )
    return value


Address = Annotated[str, AfterValidator(_address)]
Topic = Annotated[str, AfterValidator(_topic)]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
Hours = Annotated[float, Field(gt=0, le=24 * 30)]


class Strict(BaseModel):
    # A misspelt key is a rule that silently does nothing: refuse it.
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Person(Strict):
    name: str
    address: Address


class Pekes(Strict):
    """One PEKES: its name as the teachers know it, and its PE86 coordinator."""

    name: str
    coordinator: Person


class Ministry(Strict):
    """The ministry's central helpdesk: the third level, where unsolved tickets go."""

    name: str = "Κεντρικό Helpdesk Τηλεκπαίδευσης του Υπουργείου"
    address: Address


class Helpdesk(Strict):
    """helpdesk.yaml: the region, its PEKES (by mailbox name), the ministry."""

    region: str
    pekes: Annotated[dict[str, Pekes], Field(min_length=1)]
    ministry: Ministry
    # Where a ticket the model was unsure about goes: its topic's specialist (with a note
    # asking to check the topic) or the PEKES coordinator.
    review_to: Literal["specialist", "coordinator"] = "specialist"


class Away(Strict):
    first: Annotated[date, Field(alias="from")]
    until: date

    @model_validator(mode="after")
    def _ordered(self) -> Away:
        if self.until < self.first:
            raise ValueError("το «until» είναι πριν από το «from» / 'until' is before 'from'")
        return self

    def covers(self, day: date) -> bool:
        return self.first <= day <= self.until


class Specialist(Strict):
    name: str
    address: Address
    topics: Annotated[list[Topic], Field(min_length=1)]
    # Mailbox names of the PEKES served; one specialist may serve several.
    pekes: Annotated[list[str], Field(min_length=1)]
    on_leave: bool = False
    away: list[Away] = []

    def available(self, day: date) -> bool:
        return not self.on_leave and not any(a.covers(day) for a in self.away)


class Specialists(Strict):
    specialists: list[Specialist] = []


class Match(Strict):
    """What an override looks at: exactly one of a sender, a school domain or a phrase."""

    sender: Address | None = None
    domain: str | None = None
    phrase: Annotated[str, Field(min_length=3)] | None = None

    @model_validator(mode="after")
    def _one(self) -> Match:
        given = [k for k in ("sender", "domain", "phrase") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "γράψτε ακριβώς ένα από sender, domain, phrase / "
                "give exactly one of sender, domain, phrase"
            )
        return self

    def key(self) -> tuple[str, str]:
        for kind in ("sender", "domain", "phrase"):
            value = getattr(self, kind)
            if value is not None:
                return kind, value.strip().lower()
        raise AssertionError("validated to hold one")


class Override(Strict):
    when: Match
    topic: Topic | None = None
    person: Address | None = None
    note: str = ""

    @model_validator(mode="after")
    def _target(self) -> Override:
        if self.topic is None and self.person is None:
            raise ValueError(
                "ένας κανόνας χρειάζεται topic ή person / an override needs a topic or a person"
            )
        return self


class Overrides(Strict):
    overrides: list[Override] = []


class Ladder(Strict):
    """Working hours without a first answer before each step of the escalation."""

    remind_after: Hours = 2
    coordinator_after: Hours = 4
    ministry_after: Hours = 8

    @model_validator(mode="after")
    def _increasing(self) -> Ladder:
        if not self.remind_after < self.coordinator_after < self.ministry_after:
            raise ValueError(
                "οι χρόνοι πρέπει να αυξάνουν: remind_after < coordinator_after < "
                "ministry_after / the times must increase"
            )
        return self


class Escalation(Strict):
    default: Ladder = Ladder()
    topics: dict[Topic, Ladder] = {}

    def ladder(self, topic: str | None) -> Ladder:
        return self.topics.get(topic or "", self.default)


class OpeningHours(Strict):
    opens: Annotated[time, Field(alias="from")] = time(8, 0)
    closes: Annotated[time, Field(alias="until")] = time(15, 0)

    @model_validator(mode="after")
    def _ordered(self) -> OpeningHours:
        if self.closes <= self.opens:
            raise ValueError("η ώρα «until» πρέπει να είναι μετά το «from» / 'until' before 'from'")
        return self


class ClosedDays(Strict):
    first: Annotated[date, Field(alias="from")]
    until: date | None = None
    reason: str = "κλειστό"

    @model_validator(mode="after")
    def _ordered(self) -> ClosedDays:
        if self.until is not None and self.until < self.first:
            raise ValueError("το «until» είναι πριν από το «from» / 'until' is before 'from'")
        return self


class Calendar(Strict):
    timezone: str = "Europe/Athens"
    working_days: Annotated[list[Weekday], Field(min_length=1)] = [
        "mon",
        "tue",
        "wed",
        "thu",
        "fri",
    ]
    hours: OpeningHours = OpeningHours()
    public_holidays: str = "GR"
    school_holidays: list[Literal["christmas", "easter"]] = ["christmas", "easter"]
    closed: list[ClosedDays] = []

    def working_calendar(self) -> WorkingCalendar:
        return WorkingCalendar(
            timezone=self.timezone,
            weekdays=frozenset(WEEKDAYS.index(d) for d in self.working_days),
            start=self.hours.opens,
            end=self.hours.closes,
            country=self.public_holidays,
            school_holidays=tuple(k for k in self.school_holidays if k in SCHOOL_HOLIDAYS),
            closed=tuple(ClosedSpan(c.first, c.until or c.first, c.reason) for c in self.closed),
        )


class Digest(Strict):
    daily_at: time = time(16, 0)
    weekly_on: Weekday = "fri"
    # The region's digest goes to these; each PEKES's goes to its coordinator.
    region: list[Address] = []
    per_pekes: bool = True


class Groups(Strict):
    """Grouped answers and incidents (bursts of the same problem)."""

    window_hours: Hours = 24
    # Two requests about no FAQ entry join a group when their texts are this similar.
    similarity: Annotated[float, Field(gt=0, le=1)] = 0.6
    incident_count: Annotated[int, Field(ge=2)] = 10
    incident_minutes: Annotated[int, Field(ge=1)] = 15


class Rules(Strict):
    """Everything in one rules folder, validated, with the questions routing asks."""

    helpdesk: Helpdesk
    specialists: Specialists = Specialists()
    overrides: Overrides = Overrides()
    escalation: Escalation = Escalation()
    calendar: Calendar = Calendar()
    digest: Digest = Digest()
    groups: Groups = Groups()

    def coordinator(self, pekes: str) -> Person:
        return self.helpdesk.pekes[pekes].coordinator

    def specialists_for(self, pekes: str, topic: str) -> list[Specialist]:
        """The specialists of ``topic`` serving ``pekes``, available or not, in file order."""
        return [s for s in self.specialists.specialists if pekes in s.pekes and topic in s.topics]

    def staff(self, address: str) -> Person | Specialist | None:
        """The specialist or coordinator with this address, if any."""
        address = address.strip().lower()
        for person in self.specialists.specialists:
            if person.address == address:
                return person
        for pekes in self.helpdesk.pekes.values():
            if pekes.coordinator.address == address:
                return pekes.coordinator
        return None

    def pekes_of(self, address: str) -> list[str]:
        """The PEKES where ``address`` may act: those it serves or coordinates."""
        address = address.strip().lower()
        found = [n for n, p in self.helpdesk.pekes.items() if p.coordinator.address == address]
        for person in self.specialists.specialists:
            if person.address == address:
                found += [n for n in person.pekes if n not in found]
        return found
