"""Tests for desk/worktime.py: working hours on the Greek school calendar."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest

from triage_daemon.desk.worktime import ClosedSpan, WorkingCalendar, easter_holiday

ATHENS = WorkingCalendar()


def at(text: str) -> datetime:
    """An Athens local time written as 'YYYY-MM-DD HH:MM', as an aware UTC datetime."""
    local = datetime.fromisoformat(text).replace(tzinfo=ATHENS.zone)
    return local.astimezone(UTC)


@pytest.mark.parametrize(
    ("day", "reason"),
    [
        (date(2020, 3, 23), None),  # a Monday of the first week of distance education
        (date(2020, 3, 28), "μη εργάσιμη ημέρα της εβδομάδας"),
        (date(2020, 3, 25), "αργία: Εικοστή Πέμπτη Μαρτίου"),
        (date(2020, 3, 2), "αργία: Καθαρά Δευτέρα"),  # moves with Orthodox Easter
        (date(2020, 4, 13), "διακοπές Πάσχα"),  # Holy Monday 2020
        (date(2020, 4, 24), "διακοπές Πάσχα"),  # Friday after Easter
        (date(2020, 4, 27), None),  # Monday after Thomas Sunday: back to work
        (date(2021, 1, 4), "διακοπές Χριστουγέννων"),
        (date(2021, 1, 8), None),
        (date(2020, 6, 8), "αργία: Δευτέρα του Αγίου Πνεύματος"),
    ],
    ids=str,
)
def test_closed_days(day, reason):
    assert ATHENS.closed_reason(day) == reason


def test_orthodox_easter_holiday_moves_with_the_year():
    assert easter_holiday(2020) == (date(2020, 4, 13), date(2020, 4, 26))
    assert easter_holiday(2021) == (date(2021, 4, 26), date(2021, 5, 9))


def test_working_hours_skip_the_night_and_the_weekend():
    # Friday 13:00 to Monday 10:00, local: 2 h on Friday, 2 h on Monday.
    assert ATHENS.working_hours(at("2020-03-27 13:00"), at("2020-03-30 10:00")) == 4


def test_working_hours_across_the_summer_time_change():
    # Clocks went forward on Sunday 29 March 2020; the day's window is local time.
    assert ATHENS.working_hours(at("2020-03-27 08:00"), at("2020-03-30 15:00")) == 14


def test_a_holiday_in_between_counts_as_no_time():
    # Tuesday 24 March 14:00 to Thursday 26 March 09:00 across the 25th: 1 h + 1 h.
    assert ATHENS.working_hours(at("2020-03-24 14:00"), at("2020-03-26 09:00")) == 2


def test_no_time_when_the_end_is_not_later():
    assert ATHENS.working_hours(at("2020-03-24 14:00"), at("2020-03-24 10:00")) == 0


@pytest.mark.parametrize(
    ("start", "hours", "due"),
    [
        ("2020-03-23 09:00", 2, "2020-03-23 11:00"),
        ("2020-03-23 14:00", 2, "2020-03-24 09:00"),  # the rest on the next morning
        ("2020-03-23 20:00", 1, "2020-03-24 09:00"),  # sent at night: counts from 08:00
        ("2020-03-24 14:30", 1, "2020-03-26 08:30"),  # the 25th is a holiday
        ("2020-04-10 14:00", 3, "2020-04-27 10:00"),  # Easter holiday in between
        ("2020-03-27 14:00", 7, "2020-03-30 14:00"),  # over a weekend
    ],
    ids=str,
)
def test_add_working_hours(start, hours, due):
    assert ATHENS.add_working_hours(at(start), hours) == at(due)


def test_adding_then_measuring_gives_the_same_hours():
    start = at("2020-04-09 11:17")
    for hours in (0.5, 3, 7, 11, 40):
        assert ATHENS.working_hours(start, ATHENS.add_working_hours(start, hours)) == hours


def test_extra_closed_days_and_other_hours():
    calendar = WorkingCalendar(
        start=time(9, 0),
        end=time(13, 0),
        closed=(ClosedSpan(date(2020, 3, 26), date(2020, 3, 27), "απεργία"),),
    )
    assert calendar.closed_reason(date(2020, 3, 27)) == "απεργία"
    assert calendar.add_working_hours(at("2020-03-24 12:00"), 2) == at("2020-03-30 10:00")


def test_a_calendar_with_no_working_day_is_refused():
    with pytest.raises(ValueError, match="no working time"):
        WorkingCalendar(weekdays=frozenset()).add_working_hours(at("2020-03-23 09:00"), 1)


def test_is_working_time():
    assert ATHENS.is_working_time(at("2020-03-23 08:00"))
    assert not ATHENS.is_working_time(at("2020-03-23 15:00"))
    assert not ATHENS.is_working_time(at("2020-03-25 10:00"))
