"""Working time: the hours a helpdesk is staffed, on the school calendar.

Escalation times and the digest's answer times are counted in working hours, so a
ticket that arrives on a Friday evening before a holiday is not "late" on Monday
morning. A day is closed when it is not a working weekday, a public holiday (the
``holidays`` package, which knows the moving Orthodox Easter), inside a school holiday
(Christmas, Easter) or one of the rules' extra closed days.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays
from dateutil.easter import EASTER_ORTHODOX, easter

# A year holds about 180 working days; a ladder never needs more than a few of them,
# and a calendar with no working day at all is refused by the rules check.
MAX_DAYS_SCANNED = 3 * 366


def christmas_holiday(year: int) -> tuple[date, date]:
    """Greek schools' Christmas holiday that starts in ``year``: 24 December to 7 January."""
    return date(year, 12, 24), date(year + 1, 1, 7)


def easter_holiday(year: int) -> tuple[date, date]:
    """Greek schools' Easter holiday: Holy Monday to the Sunday after Easter (Thomas)."""
    sunday = easter(year, EASTER_ORTHODOX)
    return sunday - timedelta(days=6), sunday + timedelta(days=7)


SCHOOL_HOLIDAYS = {
    "christmas": ("διακοπές Χριστουγέννων", christmas_holiday),
    "easter": ("διακοπές Πάσχα", easter_holiday),
}


@dataclass(frozen=True)
class ClosedSpan:
    """Extra closed days from the rules, both ends included."""

    first: date
    last: date
    reason: str


@dataclass
class WorkingCalendar:
    """When the helpdesk works: weekdays, hours and closed days, in one time zone."""

    timezone: str = "Europe/Athens"
    weekdays: frozenset[int] = frozenset(range(5))
    start: time = time(8, 0)
    end: time = time(15, 0)
    country: str = "GR"
    school_holidays: tuple[str, ...] = ("christmas", "easter")
    closed: tuple[ClosedSpan, ...] = ()
    _public: holidays.HolidayBase = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.zone = ZoneInfo(self.timezone)
        self._public = holidays.country_holidays(self.country, language="el")

    def closed_reason(self, day: date) -> str | None:
        """Why ``day`` is not a working day, or None when it is one."""
        if day.weekday() not in self.weekdays:
            return "μη εργάσιμη ημέρα της εβδομάδας"
        name = self._public.get(day)
        if name:
            return f"αργία: {name}"
        for key in self.school_holidays:
            label, span = SCHOOL_HOLIDAYS[key]
            for year in (day.year - 1, day.year):
                first, last = span(year)
                if first <= day <= last:
                    return label
        for span in self.closed:
            if span.first <= day <= span.last:
                return span.reason
        return None

    def _window(self, day: date) -> tuple[datetime, datetime] | None:
        """The working hours of ``day`` in UTC, or None for a closed day."""
        if self.closed_reason(day) is not None:
            return None
        opens = datetime.combine(day, self.start, self.zone).astimezone(UTC)
        closes = datetime.combine(day, self.end, self.zone).astimezone(UTC)
        return opens, closes

    def _days_from(self, moment: datetime) -> Iterable[date]:
        day = moment.astimezone(self.zone).date()
        for offset in range(MAX_DAYS_SCANNED):
            yield day + timedelta(days=offset)

    def working_seconds(self, since: datetime, until: datetime) -> float:
        """Working seconds between two aware datetimes (0 when ``until`` is not later)."""
        if until <= since:
            return 0.0
        total = 0.0
        last_day = until.astimezone(self.zone).date()
        for day in self._days_from(since):
            if day > last_day:
                break
            window = self._window(day)
            if window is None:
                continue
            begin, end = max(window[0], since), min(window[1], until)
            if end > begin:
                total += (end - begin).total_seconds()
        return total

    def working_hours(self, since: datetime, until: datetime) -> float:
        return self.working_seconds(since, until) / 3600

    def add_working_hours(self, start: datetime, hours: float) -> datetime:
        """The moment ``hours`` working hours after ``start`` (aware, UTC).

        Raises ValueError when no working time is found in the next three years.
        """
        remaining = timedelta(hours=hours)
        for day in self._days_from(start):
            window = self._window(day)
            if window is None:
                continue
            begin = max(window[0], start)
            if window[1] <= begin:
                continue
            available = window[1] - begin
            if remaining <= available:
                return begin + remaining
            remaining -= available
        raise ValueError("the working calendar has no working time in the next three years")

    def is_working_time(self, moment: datetime) -> bool:
        window = self._window(moment.astimezone(self.zone).date())
        return window is not None and window[0] <= moment < window[1]
