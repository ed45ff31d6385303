"""Time, injected: the code asks a Clock, so tests can move time forward by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class Clock:
    """The real clock. Times are aware datetimes in UTC, as stored in the database."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class FrozenClock(Clock):
    """A clock that only moves when told to (for tests)."""

    def __init__(self, start: datetime | None = None):
        self._now = start or datetime(2020, 3, 23, 7, 0, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, **delta: float) -> None:
        self._now += timedelta(**delta)
