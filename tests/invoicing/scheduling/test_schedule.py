"""Schedule arithmetic: presets, cron, the product default, time zones and DST."""

from __future__ import annotations

import functools
import itertools
import os
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from invoicing.errors import InvalidInput
from invoicing.scheduling.schedule import (
    Schedule,
    first_run,
    latest_slot,
    next_slot,
    parse_next_local,
    parse_schedule,
    slot_at_or_after,
    to_utc,
)

LONDON, NEW_YORK, LORD_HOWE = "Europe/London", "America/New_York", "Australia/Lord_Howe"
HELP = (
    "use hourly, daily (00:00), weekly (Sunday 00:00), monthly (the 1st, 00:00) or a 5-field cron expression "
    "'minute hour day-of-month month day-of-week' in the company time zone, e.g. '30 6 * * 1-5'"
)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def local(tz: str, *args: int, fold: int = 0) -> datetime:
    """A wall time of ``tz`` as the UTC instant it names (``fold=1``: the second occurrence)."""
    return datetime(*args, tzinfo=ZoneInfo(tz), fold=fold).astimezone(UTC)


def slots(schedule: str, tz: str, after: datetime, count: int) -> list[datetime]:
    parsed, found = parse_schedule(schedule), []
    for _ in range(count):
        after = next_slot(parsed, after, tz)
        found.append(after)
    return found


def walls(instants: list[datetime], tz: str) -> list[str]:
    """Local wall time with its UTC offset, the way ops would read a run list."""
    return [i.astimezone(ZoneInfo(tz)).strftime("%a %d %H:%M%z") for i in instants]


# --- parsing -----------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expression"), [
    ("hourly", "0 * * * *"), ("daily", "0 0 * * *"), ("weekly", "0 0 * * 0"), ("monthly", "0 0 1 * *"),
    (" Weekly ", "0 0 * * 0"), ("30  6 * * 1-5", "30 6 * * 1-5"), ("0 9 1,15 * *", "0 9 1,15 * *"),
])
def test_presets_and_cron_expressions_are_accepted(text, expression):
    assert parse_schedule(text).expression == expression


@pytest.mark.parametrize(("text", "message"), [
    ("0 0 * * * *",
     f"schedule: '0 0 * * * *' has 6 fields; a cron expression has exactly 5 (no seconds field); {HELP}"),
    ("fortnightly", f"schedule: 'fortnightly' has 1 field; a cron expression has exactly 5 (no seconds field); {HELP}"),
    ("", f"schedule: '' is empty; a cron expression has exactly 5 (no seconds field); {HELP}"),
    ("61 * * * *", f"schedule: '61 * * * *' is not a valid cron expression; {HELP}"),
    ("0 0 30 2 *", f"schedule: '0 0 30 2 *' never matches a date; {HELP}"),
    ("H 0 * * *", f"schedule: 'H 0 * * *' uses random (R) or hashed (H) fields; {HELP}"),
])
def test_an_invalid_schedule_is_refused_with_the_presets_and_the_cron_format(text, message):
    with pytest.raises(InvalidInput) as refused:
        parse_schedule(text)
    assert refused.value.field == "schedule"
    assert refused.value.message == message


def test_wildcard_minute_or_hour_schedules_follow_real_time_fixed_ones_the_wall_clock():
    assert parse_schedule("hourly").per_real_time and parse_schedule("*/15 9 * * *").per_real_time
    assert not any(parse_schedule(s).per_real_time for s in ("daily", "weekly", "monthly", "30 2 * * *"))



# --- classic cron meanings where croniter differs -----------------------------------------


def run_dates(expression: str, count: int) -> list[date]:
    """The dates of the next ``count`` slots of a midnight schedule (UTC) after 2026-06-01."""
    return [slot.date() for slot in slots(expression, "UTC", utc(2026, 6, 1), count)]


def calendar(rule: Callable[[date], bool], count: int) -> list[date]:
    """The first ``count`` dates after 2026-06-01 for which ``rule`` holds."""
    found, day = [], date(2026, 6, 1)
    while len(found) < count:
        day += timedelta(days=1)
        if rule(day):
            found.append(day)
    return found


MONDAY, TUESDAY, WEDNESDAY, SUNDAY = 0, 1, 2, 6  # date.weekday()


@pytest.mark.parametrize(("text", "expression", "after", "expected"), [
    ("5-5 * * * *", "5 * * * *", utc(2026, 6, 1), [utc(2026, 6, 1, 0, 5), utc(2026, 6, 1, 1, 5)]),
    ("5-5/2 * * * *", "5 * * * *", utc(2026, 6, 1), [utc(2026, 6, 1, 0, 5), utc(2026, 6, 1, 1, 5)]),
    ("0 5-5 * * *", "0 5 * * *", utc(2026, 6, 1), [utc(2026, 6, 1, 5), utc(2026, 6, 2, 5)]),
    ("0 0 3-3 * *", "0 0 3 * *", utc(2026, 6, 1), [utc(2026, 6, 3), utc(2026, 7, 3)]),
    ("0 0 1 6-6 *", "0 0 1 6 *", utc(2026, 6, 1), [utc(2027, 6, 1), utc(2028, 6, 1)]),
    ("0 0 1 jun-jun *", "0 0 1 jun *", utc(2026, 6, 1), [utc(2027, 6, 1), utc(2028, 6, 1)]),
    ("0 9 * * 2-2", "0 9 * * 2", utc(2026, 6, 1), [utc(2026, 6, 2, 9), utc(2026, 6, 9, 9)]),
    ("0 9 * * Tue-2", "0 9 * * Tue", utc(2026, 6, 1), [utc(2026, 6, 2, 9), utc(2026, 6, 9, 9)]),
    ("0 9 * * 1,3-3", "0 9 * * 1,3", utc(2026, 6, 1), [utc(2026, 6, 1, 9), utc(2026, 6, 3, 9), utc(2026, 6, 8, 9)]),
])
def test_an_equal_range_means_its_single_value_in_every_field(text, expression, after, expected):
    schedule = parse_schedule(text)
    assert schedule.expression == expression
    assert slots(text, "UTC", after, len(expected)) == expected


def test_an_equal_range_keeps_the_checks_of_its_value():
    with pytest.raises(InvalidInput, match="is not a valid cron expression"):
        parse_schedule("61-61 * * * *")
    with pytest.raises(InvalidInput, match="is not a valid cron expression"):
        parse_schedule("5-5/0 * * * *")
    with pytest.raises(InvalidInput, match="never matches a date"):
        parse_schedule("0 0 30-30 2 *")


def test_a_day_field_starting_with_a_star_is_unrestricted_so_the_two_day_fields_are_anded():
    assert run_dates("0 0 */2 * 1", 6) == calendar(lambda d: d.day % 2 == 1 and d.weekday() == MONDAY, 6)
    assert run_dates("0 0 */1 * 1", 4) == calendar(lambda d: d.weekday() == MONDAY, 4)
    assert run_dates("0 0 1-7 * */7", 4) == calendar(lambda d: d.day <= 7 and d.weekday() == SUNDAY, 4)


def test_restricted_day_fields_not_starting_with_a_star_are_ored_as_in_classic_cron():
    assert run_dates("0 0 1-31/2 * 1", 12) == calendar(lambda d: d.day % 2 == 1 or d.weekday() == MONDAY, 12)
    assert run_dates("0 0 1,15 * 1", 8) == calendar(lambda d: d.day in (1, 15) or d.weekday() == MONDAY, 8)
    assert run_dates("0 0 13 * 2-3", 8) == calendar(lambda d: d.day == 13 or d.weekday() in (TUESDAY, WEDNESDAY), 8)


# --- presets in the company time zone ----------------------------------------------------


def test_weekly_is_sunday_midnight_in_the_company_time_zone():
    monday = utc(2026, 11, 2, 9, 0)
    assert slots("weekly", LONDON, monday, 2) == [utc(2026, 11, 8), utc(2026, 11, 15)]
    assert slots("weekly", NEW_YORK, monday, 1) == [utc(2026, 11, 8, 5)]
    assert slots("weekly", "Asia/Kathmandu", monday, 1) == [utc(2026, 11, 7, 18, 15)]


def test_monthly_is_the_first_at_midnight_and_daily_every_midnight():
    assert slots("monthly", NEW_YORK, utc(2026, 1, 15), 3) == [
        utc(2026, 2, 1, 5), utc(2026, 3, 1, 5), utc(2026, 4, 1, 4)]
    assert slots("daily", LONDON, utc(2026, 6, 30, 22, 59), 2) == [utc(2026, 6, 30, 23), utc(2026, 7, 1, 23)]


def test_the_next_slot_is_strictly_after_the_given_instant():
    assert next_slot(parse_schedule("hourly"), utc(2026, 11, 2, 9), "UTC") == utc(2026, 11, 2, 10)


# --- DST: Europe/London (2026-03-29 gap 01:00-02:00, 2026-10-25 fold 01:00-02:00) --------


def test_london_daily_midnight_is_unaffected_by_either_change():
    assert walls(slots("daily", LONDON, utc(2026, 3, 27, 12), 3), LONDON) == [
        "Sat 28 00:00+0000", "Sun 29 00:00+0000", "Mon 30 00:00+0100"]
    assert walls(slots("daily", LONDON, utc(2026, 10, 24, 12), 2), LONDON) == ["Sun 25 00:00+0100", "Mon 26 00:00+0000"]


def test_london_a_daily_slot_in_the_spring_gap_runs_when_the_gap_ends():
    assert walls(slots("30 1 * * *", LONDON, utc(2026, 3, 27, 12), 3), LONDON) == [
        "Sat 28 01:30+0000", "Sun 29 02:00+0100", "Mon 30 01:30+0100"]


def test_london_a_daily_slot_in_the_autumn_fold_runs_once_at_its_first_occurrence():
    assert slots("30 1 * * *", LONDON, utc(2026, 10, 24, 12), 2) == [
        local(LONDON, 2026, 10, 25, 1, 30, fold=0), local(LONDON, 2026, 10, 26, 1, 30)]


def test_london_hourly_skips_the_missing_hour_and_runs_in_both_repeated_hours():
    assert walls(slots("hourly", LONDON, utc(2026, 3, 28, 23, 30), 3), LONDON) == [
        "Sun 29 00:00+0000", "Sun 29 02:00+0100", "Sun 29 03:00+0100"]  # one real hour apart
    assert walls(slots("hourly", LONDON, utc(2026, 10, 24, 23, 30), 4), LONDON) == [
        "Sun 25 01:00+0100", "Sun 25 01:00+0000", "Sun 25 02:00+0000", "Sun 25 03:00+0000"]


# --- DST: America/New_York (2026-03-08 gap 02:00-03:00, 2026-11-01 fold 01:00-02:00) ----


def test_new_york_a_daily_slot_in_the_spring_gap_runs_at_three():
    assert walls(slots("30 2 * * *", NEW_YORK, utc(2026, 3, 6, 12), 3), NEW_YORK) == [
        "Sat 07 02:30-0500", "Sun 08 03:00-0400", "Mon 09 02:30-0400"]


def test_new_york_a_daily_slot_in_the_autumn_fold_runs_once():
    found = slots("30 1 * * *", NEW_YORK, utc(2026, 10, 31, 12), 2)
    assert walls(found, NEW_YORK) == ["Sun 01 01:30-0400", "Mon 02 01:30-0500"]
    assert found[1] - found[0] == timedelta(hours=25)


def test_new_york_hourly_runs_once_per_real_hour_across_both_changes():
    spring = slots("hourly", NEW_YORK, utc(2026, 3, 8, 5, 30), 3)
    assert walls(spring, NEW_YORK) == ["Sun 08 01:00-0500", "Sun 08 03:00-0400", "Sun 08 04:00-0400"]
    autumn = slots("hourly", NEW_YORK, utc(2026, 11, 1, 3, 30), 4)
    assert walls(autumn, NEW_YORK) == [
        "Sun 01 00:00-0400", "Sun 01 01:00-0400", "Sun 01 01:00-0500", "Sun 01 02:00-0500"]
    assert {b - a for a, b in itertools.pairwise(autumn)} == {timedelta(hours=1)}


def test_new_york_weekly_across_spring_forward_stays_at_sunday_midnight():
    assert walls(slots("weekly", NEW_YORK, utc(2026, 3, 2), 3), NEW_YORK) == [
        "Sun 08 00:00-0500", "Sun 15 00:00-0400", "Sun 22 00:00-0400"]


# --- DST: Australia/Lord_Howe (30-minute shift; 2026-10-04 gap 02:00-02:30) ----------


def test_lord_howe_thirty_minute_gap_and_fold():
    assert walls(slots("15 2 * * *", LORD_HOWE, utc(2026, 10, 3), 2), LORD_HOWE) == [
        "Sun 04 02:30+1100", "Mon 05 02:15+1100"]
    assert walls(slots("hourly", LORD_HOWE, utc(2026, 10, 3, 13, 45), 3), LORD_HOWE) == [
        "Sun 04 01:00+1030", "Sun 04 03:00+1100", "Sun 04 04:00+1100"]
    # 2026-04-05: 02:00 (+11) → 01:30 (+10:30); 01:45 happens twice, a fixed slot runs once.
    found = slots("45 1 * * *", LORD_HOWE, utc(2026, 4, 4), 2)
    assert walls(found, LORD_HOWE) == ["Sun 05 01:45+1100", "Mon 06 01:45+1030"]
    assert walls(slots("*/30 * * * *", LORD_HOWE, utc(2026, 4, 4, 14, 15), 3), LORD_HOWE) == [
        "Sun 05 01:30+1100", "Sun 05 01:30+1030", "Sun 05 02:00+1030"]


# --- the product default: next hour, then the schedule --------------------------------


def test_enabled_without_a_next_time_runs_at_the_next_hour_then_sunday_midnight():
    now = utc(2026, 11, 2, 9, 20)  # Monday
    weekly = parse_schedule("weekly")
    first = first_run(weekly, now, LONDON)
    assert first == utc(2026, 11, 2, 10)
    assert next_slot(weekly, first, LONDON) == utc(2026, 11, 8)


def test_the_next_hour_is_the_top_of_the_local_hour_in_half_hour_zones():
    assert first_run(parse_schedule("weekly"), utc(2026, 11, 2, 9, 20), "Asia/Kolkata") == utc(2026, 11, 2, 9, 30)


def test_an_explicit_next_time_is_the_first_run():
    assert first_run(parse_schedule("weekly"), utc(2026, 11, 2, 9), LONDON, next_local=utc(2026, 11, 4, 15)) == \
        utc(2026, 11, 4, 15)


def test_no_run_happens_before_starting_from_the_first_is_the_first_slot_at_or_after_it():
    weekly, now = parse_schedule("weekly"), utc(2026, 11, 2, 9)
    assert first_run(weekly, now, LONDON, starting_from=utc(2026, 12, 1)) == utc(2026, 12, 6)
    assert first_run(weekly, now, LONDON, starting_from=utc(2026, 12, 6)) == utc(2026, 12, 6)
    assert first_run(weekly, now, LONDON, next_local=utc(2026, 11, 5), starting_from=utc(2026, 11, 20)) == \
        utc(2026, 11, 22)
    assert slot_at_or_after(parse_schedule("hourly"), utc(2026, 11, 2, 9), "UTC") == utc(2026, 11, 2, 9)


# --- next= --------------------------------------------------------------------------------


def test_next_is_read_in_the_company_time_zone():
    now = utc(2026, 6, 1)
    assert parse_next_local("2026-06-05 14:30", NEW_YORK, now) == utc(2026, 6, 5, 18, 30)
    assert parse_next_local(" none ", NEW_YORK, now) is None


def test_next_in_the_past_is_refused():
    with pytest.raises(InvalidInput) as refused:
        parse_next_local("2026-05-31 19:00", NEW_YORK, utc(2026, 6, 1))
    assert refused.value.message == (
        "next: 2026-05-31 19:00 (America/New_York) is in the past (it is now 2026-05-31 20:00 there); "
        "give a future time as YYYY-MM-DD HH:MM")


def test_next_in_a_dst_gap_is_refused_naming_the_gap():
    with pytest.raises(InvalidInput) as refused:
        parse_next_local("2026-03-29 01:30", LONDON, utc(2026, 3, 1))
    assert refused.value.message == (
        "next: 2026-03-29 01:30 does not exist in Europe/London: the clocks go forward (DST gap) and skip it; "
        "choose a time outside the gap, e.g. 02:00")


def test_an_ambiguous_next_means_its_first_occurrence():
    assert parse_next_local("2026-11-01 01:30", NEW_YORK, utc(2026, 10, 1)) == local(NEW_YORK, 2026, 11, 1, 1, 30)


@pytest.mark.parametrize(("text", "message"), [
    ("tomorrow", ("next: 'tomorrow' is not a date and time; use YYYY-MM-DD HH:MM in the company time zone "
                  "(Europe/London) or none")),
    ("2026-02-30 10:00", "next: '2026-02-30 10:00' is not a real date and time; use YYYY-MM-DD HH:MM"),
])
def test_next_that_is_not_a_date_and_time_is_refused(text, message):
    with pytest.raises(InvalidInput) as refused:
        parse_next_local(text, LONDON, utc(2026, 1, 1))
    assert refused.value.message == message


def test_local_dates_resolve_like_fixed_slots():
    assert to_utc(datetime(2026, 3, 8, 2, 30), NEW_YORK) == local(NEW_YORK, 2026, 3, 8, 3, 0)
    assert to_utc(datetime(2026, 11, 1, 1, 30), NEW_YORK) == local(NEW_YORK, 2026, 11, 1, 1, 30, fold=0)


# --- catch-up: the latest due slot ---------------------------------------------------------


def test_the_latest_due_slot_after_downtime():
    hourly, weekly = parse_schedule("hourly"), parse_schedule("weekly")
    assert latest_slot(hourly, LONDON, floor=utc(2026, 1, 1), now=utc(2026, 3, 1, 5, 30)) == utc(2026, 3, 1, 5)
    assert latest_slot(weekly, LONDON, floor=utc(2026, 11, 8), now=utc(2026, 11, 20)) == utc(2026, 11, 15)
    assert latest_slot(weekly, LONDON, floor=utc(2026, 11, 2, 10), now=utc(2026, 11, 3)) == utc(2026, 11, 2, 10)
    yearly = parse_schedule("0 0 1 1 *")
    assert latest_slot(yearly, "UTC", floor=utc(2019, 1, 1), now=utc(2026, 3, 1)) == utc(2026, 1, 1)


# --- properties ----------------------------------------------------------------------------


def _transitions(tz: str, year: int) -> list[datetime]:
    zone, found = ZoneInfo(tz), []
    moment = utc(year, 1, 1)
    while moment.year == year:
        following = moment + timedelta(minutes=30)
        if moment.astimezone(zone).utcoffset() != following.astimezone(zone).utcoffset():
            found.append(following)
        moment = following
    return found


ZONES = [LONDON, NEW_YORK, LORD_HOWE, "Europe/Dublin", "America/Santiago", "Asia/Kathmandu", "UTC"]
TRANSITIONS = {tz: _transitions(tz, 2026) or [utc(2026, 6, 1)] for tz in ZONES}
EXPRESSIONS = st.builds(
    lambda minute, hour: f"{minute} {hour} * * *",
    st.sampled_from(["0", "15", "30", "45", "*/15", "*/20", "5,50"]),
    st.sampled_from(["*", "0", "1", "2", "3", "23", "*/2", "1-3", "0,12"]),
)


@st.composite
def moments_near_dst(draw) -> tuple[str, datetime]:
    tz = draw(st.sampled_from(ZONES))
    base = draw(st.sampled_from(TRANSITIONS[tz]))
    return tz, base + timedelta(seconds=draw(st.integers(-2 * 86400, 2 * 86400)))


@functools.cache
def _fields(expression: str) -> tuple[frozenset[int], frozenset[int]]:
    """Minutes and hours of a ``M H * * *`` expression (the only shape the oracle needs)."""
    expanded, _ = croniter.expand(expression)
    minutes, hours = (frozenset(range(n)) if f == ["*"] else frozenset(f)
                      for f, n in zip(expanded, (60, 24), strict=False))  # the first two fields
    assert expanded[2:] == [["*"], ["*"], ["*"]], expression
    return minutes, hours


def _matches(expression: str, naive: datetime) -> bool:
    minutes, hours = _fields(expression)
    return naive.minute in minutes and naive.hour in hours


def _is_slot(schedule: Schedule, instant: datetime, tz: str) -> bool:
    """Brute-force oracle: the DST rules of invoicing.scheduling.schedule, checked minute by minute."""
    zone = ZoneInfo(tz)
    wall = instant.astimezone(zone)
    naive = wall.replace(tzinfo=None, fold=0)
    before = (instant - timedelta(seconds=1)).astimezone(zone).utcoffset()
    if wall.utcoffset() > before and not schedule.per_real_time:  # a gap ends here
        skipped = wall.utcoffset() - before
        minutes = range(1, int(skipped.total_seconds() // 60) + 1)
        if any(_matches(schedule.expression, naive - timedelta(minutes=m)) for m in minutes):
            return True
    if not _matches(schedule.expression, naive):
        return False
    return wall.fold == 0 or schedule.per_real_time


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(EXPRESSIONS, moments_near_dst())
def test_property_next_slot_never_skips_a_due_slot(expression, zone_and_moment):
    tz, after = zone_and_moment
    schedule = parse_schedule(expression)
    found = next_slot(schedule, after, tz)
    assert found > after
    assert _is_slot(schedule, found, tz)
    minute = after.replace(second=0, microsecond=0) + timedelta(minutes=1)
    while minute < found:
        assert not _is_slot(schedule, minute, tz), f"skipped {minute} before {found}"
        minute += timedelta(minutes=1)


@settings(max_examples=100, deadline=None)
@given(st.one_of(EXPRESSIONS, st.sampled_from(["hourly", "daily", "weekly", "monthly", "0 9 * * 1-5"])),
       moments_near_dst())
def test_property_slots_are_strictly_increasing(expression, zone_and_moment):
    tz, after = zone_and_moment
    chain = slots(expression, tz, after, 12)
    assert all(a < b for a, b in zip([after, *chain], chain, strict=False))


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(["hourly", "daily", "weekly", "*/15 * * * *", "30 1 * * *"]), moments_near_dst(),
       st.integers(0, 60 * 24 * 20))
def test_property_the_catch_up_cutoff_is_the_latest_due_slot(expression, zone_and_moment, late_minutes):
    tz, moment = zone_and_moment
    schedule = parse_schedule(expression)
    floor = next_slot(schedule, moment, tz)
    now = floor + timedelta(minutes=late_minutes, seconds=7)
    latest = latest_slot(schedule, tz, floor=floor, now=now)
    assert floor <= latest <= now < next_slot(schedule, latest, tz)


@settings(max_examples=40, deadline=None)
@given(st.one_of(EXPRESSIONS, st.sampled_from(["hourly", "weekly", "monthly"])), moments_near_dst())
def test_property_results_are_identical_whatever_the_host_time_zone(expression, zone_and_moment):
    tz, after = zone_and_moment
    schedule = parse_schedule(expression)
    saved = os.environ.get("TZ")
    results = set()
    try:
        for host in ("UTC", "Pacific/Kiritimati", "America/St_Johns", "Asia/Kathmandu", "Pacific/Pago_Pago"):
            os.environ["TZ"] = host
            time.tzset()
            latest = latest_slot(schedule, tz, floor=after, now=after + timedelta(days=3))
            results.add((next_slot(schedule, after, tz), latest))
    finally:
        if saved is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = saved
        time.tzset()
    assert len(results) == 1
