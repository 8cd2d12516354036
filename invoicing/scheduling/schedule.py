"""Schedule arithmetic: when the PDF Emailer of a company runs next (pure functions).

A schedule is a preset or a 5-field cron expression, always read in the company's
IANA time zone; every function takes and returns aware UTC datetimes.

Why we do not hand croniter aware datetimes: croniter has had (and has) DST bugs
with them — e.g. pallets-eco/croniter#25 (a daily job drifts an hour after the
autumn change) and #258 (``get_next`` skips a fire time across Lord Howe's
30-minute shift). So croniter only ever iterates *naive wall-clock* times (pure
calendar arithmetic, no zone, independent of the host's TZ) and this module maps
each wall-clock candidate to an instant with ``zoneinfo`` and PEP 495 ``fold``.

DST resolution (the classic Vixie-cron rule, stated here once):

* A schedule at a **fixed local time** (``daily``, ``weekly``, ``monthly``,
  ``30 2 * * *`` — neither the minute nor the hour field starts with ``*``)
  follows the wall clock:
  - a slot in the spring-forward gap (02:30 on a day that jumps 02:00 → 03:00)
    runs at the first instant after the gap (03:00 local): it is late, never lost;
  - a slot in the autumn fold (01:30 happens twice) runs **once**, at the first
    occurrence.
* A schedule with a **wildcard** minute or hour field (``hourly``,
  ``*/15 * * * *``) follows real elapsed time:
  - slots in the gap do not exist and are not run (hourly: 01:00 EST → 03:00 EDT,
    one real hour apart);
  - slots in the fold run in **both** occurrences (hourly: 01:00 EDT and 01:00
    EST, an hour apart), i.e. once per real hour — for folds of at most 3 hours,
    which covers every fold in current tzdata.

Field meanings (classic cron, where croniter deviates; the expression is
normalised before croniter sees it, so ``Schedule.expression`` is what runs):

* An **equal range** (``2-2``, ``Tue-Tue``, ``5-5/2``) is its single value, so it
  is rewritten to that value: croniter expands it to the whole cycle on purpose
  (documented in pallets-eco/croniter#257), which would run ``0 9 * * 2-2`` every
  day and ``5-5 * * * *`` every minute.
* **Day of month and day of week** follow Vixie cron: a field that starts with
  ``*`` (``*``, ``*/2``) is unrestricted, and then a day must match both fields
  (``0 0 */2 * 1``: Mondays that are odd days of the month); only when neither
  starts with ``*`` does either field suffice (``0 0 1-31/2 * 1``, ``0 0 1,15 * 1``).
  croniter ORs whenever neither field expands to every value, and ``*/2`` does
  not, so it gets ``day_or=False`` (AND) when either field starts with ``*``.
"""

from __future__ import annotations

import functools
import math
import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import CroniterBadCronError, CroniterBadDateError, CroniterError, croniter

from invoicing.errors import InvalidInput

PRESETS: dict[str, str] = {
    "hourly": "0 * * * *",
    "daily": "0 0 * * *",
    "weekly": "0 0 * * 0",
    "monthly": "0 0 1 * *",
}

SCHEDULE_HELP = (
    "use hourly, daily (00:00), weekly (Sunday 00:00), monthly (the 1st, 00:00) or a 5-field cron "
    "expression 'minute hour day-of-month month day-of-week' in the company time zone, e.g. '30 6 * * 1-5'"
)
NEXT_FORMAT = "YYYY-MM-DD HH:MM"

#: Wildcard schedules repeat slots of folds up to this long (see the module docstring).
_MAX_REPEATED_FOLD = timedelta(hours=3)
_FOLD_MARGIN = _MAX_REPEATED_FOLD + timedelta(minutes=1)
_NEXT_PATTERN = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[ T](\d{1,2}):(\d{2})$")
# Croniter's random (R) and hashed (H) fields would make slots differ per process.
_NONDETERMINISTIC = re.compile(r"(?:^|[,/-])[RH]", re.IGNORECASE)
_RANGE = re.compile(r"^([0-9a-z]+)-([0-9a-z]+)(?:/([0-9]+))?$", re.IGNORECASE)
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
#: Per field (minute, hour, day of month, month, day of week): the names cron accepts.
_NAMES: tuple[dict[str, int], ...] = (
    {}, {}, {}, {name: number for number, name in enumerate(_MONTHS, start=1)},
    {name: number for number, name in enumerate(_WEEKDAYS)},
)


@dataclass(frozen=True)
class Schedule:
    """A parsed schedule: ``text`` as stored, ``expression`` the 5-field cron it means."""

    text: str
    expression: str
    #: True when the minute or hour field is a wildcard: follows real time across DST.
    per_real_time: bool


def parse_schedule(text: str) -> Schedule:
    """Parse a preset or 5-field cron; ``InvalidInput("schedule", …)`` saying how to fix it."""
    return _parse_schedule(" ".join(str(text).split()))


@functools.lru_cache(maxsize=1024)
def _parse_schedule(text: str) -> Schedule:
    preset = text.lower()
    if preset in PRESETS:
        return Schedule(preset, PRESETS[preset], per_real_time=_follows_real_time(PRESETS[preset].split(" ")))
    fields = text.split(" ") if text else []
    if len(fields) != 5:
        reason = "is empty" if not fields else f"has {len(fields)} field{'s' if len(fields) != 1 else ''}"
        raise InvalidInput("schedule", f"{text!r} {reason}; a cron expression has exactly 5 (no seconds field); "
                                       f"{SCHEDULE_HELP}")
    if any(_NONDETERMINISTIC.search(f) for f in fields):
        raise InvalidInput("schedule", f"{text!r} uses random (R) or hashed (H) fields; {SCHEDULE_HELP}")
    fields = [_single_values(field, _NAMES[index]) for index, field in enumerate(fields)]
    expression = " ".join(fields)
    try:
        _croniter(expression, datetime(2000, 1, 1)).get_next(datetime)
    except CroniterBadDateError:
        raise InvalidInput("schedule", f"{text!r} never matches a date; {SCHEDULE_HELP}") from None
    except (CroniterBadCronError, CroniterError, ValueError, KeyError):
        raise InvalidInput("schedule", f"{text!r} is not a valid cron expression; {SCHEDULE_HELP}") from None
    return Schedule(text, expression, per_real_time=_follows_real_time(fields))


def _single_values(field: str, names: dict[str, int]) -> str:
    """``field`` with each equal range (``2-2``, ``tue-2``, ``5-5/2``) written as its value.

    A zero step is left in place so that croniter refuses it as it would anywhere.
    """
    parts = field.split(",")
    for index, part in enumerate(parts):
        match = _RANGE.match(part)
        if match is None or (match[3] is not None and int(match[3]) == 0):
            continue
        low, high = (_number(bound, names) for bound in (match[1], match[2]))
        if low is not None and low == high:
            parts[index] = match[1]
    return ",".join(parts)


def _number(token: str, names: dict[str, int]) -> int | None:
    """A field value written as digits or a cron name; None for anything else (``L``)."""
    return int(token) if token.isdigit() else names.get(token.lower())


def _croniter(expression: str, start: datetime) -> croniter:
    """A croniter for a normalised expression, ANDing the day fields when Vixie cron does."""
    fields = expression.split(" ")
    return croniter(expression, start, day_or=not (fields[2].startswith("*") or fields[4].startswith("*")))


def _follows_real_time(fields: list[str]) -> bool:
    """Vixie cron's rule: a wildcard minute or hour field means "every so often", not "at"."""
    return fields[0].startswith("*") or fields[1].startswith("*")


def next_slot(schedule: Schedule, after: datetime, tz: str) -> datetime:
    """The first slot strictly after ``after`` (aware), as an aware UTC datetime.

    Strictly increasing and independent of the host's time zone; DST handled as the
    module docstring says.
    """
    zone = _zone(tz)
    after = _utc(after)
    start = after.astimezone(zone).replace(tzinfo=None, fold=0)
    if schedule.per_real_time and _near_transition(after, zone):
        # In or before a fold, the second occurrence of a wall time already passed
        # is still ahead: start the wall-clock search early enough to see it.
        start -= _FOLD_MARGIN
    candidates = _wall_clock_iterator(schedule.expression, start)
    best: datetime | None = None
    while True:
        local = candidates.get_next(datetime)
        instants, lower_bound = _instants(local, zone, schedule.per_real_time)
        for instant in instants:
            if instant > after and (best is None or instant < best):
                best = instant
        # Instants of later wall times are never before this one's first instant.
        if best is not None and lower_bound >= best:
            return best


def latest_slot(schedule: Schedule, tz: str, *, floor: datetime, now: datetime) -> datetime:
    """The latest slot at or before ``now`` that is not before ``floor``; ``floor`` if none.

    ``floor`` is a slot that is known to be due (the stored ``next_run_at``); after
    downtime this finds the cutoff of the one catch-up run without walking every
    missed slot: it probes growing windows back from ``now``.
    """
    floor, now = _utc(floor), _utc(now)
    if now <= floor:
        return floor
    for window in (timedelta(minutes=10), timedelta(days=1), timedelta(days=35), timedelta(days=400)):
        if now - window <= floor:
            break
        probe = next_slot(schedule, now - window, tz)
        if probe <= now:
            return _walk(schedule, tz, probe, now)
    return _walk(schedule, tz, floor, now)


@dataclass(frozen=True)
class DueRun:
    """What the scheduler does with a claimed slot: one run, then the following slot."""

    cutoff: datetime
    catch_up: bool
    next_run_at: datetime


def due_run(schedule: Schedule, tz: str, *, slot: datetime, now: datetime, grace: timedelta) -> DueRun:
    """The one run for a due ``slot`` (the stored ``next_run_at``) at ``now``.

    The cutoff is a scheduled time, never "now", so a late run sweeps in no later
    orders. After downtime the integration runs **once**, with the latest due slot
    as cutoff (its invoice covers every missed period), and is a catch-up when
    more than one slot was missed or it starts later than ``grace``; the next run
    is the first slot strictly after ``now`` — no burst of missed runs.
    """
    slot, now = _utc(slot), _utc(now)
    following = next_slot(schedule, slot, tz)
    if following > now:  # the usual case: only this slot is due
        return DueRun(cutoff=slot, catch_up=now - slot > grace, next_run_at=following)
    cutoff = latest_slot(schedule, tz, floor=following, now=now)
    return DueRun(cutoff=cutoff, catch_up=True, next_run_at=next_slot(schedule, cutoff, tz))


def first_run(
    schedule: Schedule, now: datetime, tz: str, *, next_local: datetime | None = None,
    starting_from: datetime | None = None,
) -> datetime:
    """When a just-enabled (or reconfigured) integration runs first, in UTC.

    ``next_local`` (the ``next=`` field, already parsed to UTC) wins; otherwise the
    product default applies: the top of the next local hour. Either way no run
    happens before ``starting_from``: then the first run is the first schedule slot
    at or after it.
    """
    now = _utc(now)
    first = _utc(next_local) if next_local is not None else next_slot(parse_schedule("hourly"), now, tz)
    if starting_from is not None and first < _utc(starting_from):
        return slot_at_or_after(schedule, starting_from, tz)
    return first


def slot_at_or_after(schedule: Schedule, moment: datetime, tz: str) -> datetime:
    """The first slot at or after ``moment`` (slots are whole minutes, gap ends whole seconds)."""
    return next_slot(schedule, _utc(moment) - timedelta(microseconds=1), tz)


def parse_next_local(text: str, tz: str, now: datetime) -> datetime | None:
    """Parse ``next=YYYY-MM-DD HH:MM`` (company local time) to UTC; ``none`` → None.

    A time in the past or inside a DST gap is refused; an ambiguous time (DST fold)
    means its first occurrence.
    """
    value = " ".join(str(text).split())
    if value.lower() == "none":
        return None
    match = _NEXT_PATTERN.match(value)
    if match is None:
        raise InvalidInput("next", f"{text!r} is not a date and time; use {NEXT_FORMAT} in the company time zone "
                                   f"({tz}) or none")
    try:
        year, month, day, hour, minute = (int(part) for part in match.groups())
        local = datetime(year, month, day, hour, minute)
    except ValueError:
        raise InvalidInput("next", f"{value!r} is not a real date and time; use {NEXT_FORMAT}") from None
    shown = local.strftime("%Y-%m-%d %H:%M")
    zone = _zone(tz)
    if not _exists(local, zone):
        gap_end = _gap_end(local, zone).astimezone(zone).strftime("%H:%M")
        raise InvalidInput("next", f"{shown} does not exist in {tz}: the clocks go forward (DST gap) and skip it; "
                                   f"choose a time outside the gap, e.g. {gap_end}")
    moment = local.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if moment <= _utc(now):
        current = _utc(now).astimezone(zone).strftime("%Y-%m-%d %H:%M")
        raise InvalidInput("next", f"{shown} ({tz}) is in the past (it is now {current} there); give a future time "
                                   f"as {NEXT_FORMAT}")
    return moment


def to_utc(local: datetime, tz: str) -> datetime:
    """A naive local wall time of ``tz`` as a UTC instant, resolved like fixed-time slots.

    A time in a DST gap becomes the first instant after the gap; an ambiguous time
    its first occurrence (used for ``starting_from`` dates: local midnight).
    """
    zone = _zone(tz)
    local = local.replace(tzinfo=None)
    if not _exists(local, zone):
        return _gap_end(local, zone)
    return local.replace(tzinfo=zone, fold=0).astimezone(UTC)


def _walk(schedule: Schedule, tz: str, start: datetime, now: datetime) -> datetime:
    latest = start
    while (following := next_slot(schedule, latest, tz)) <= now:
        latest = following
    return latest


def _instants(local: datetime, zone: ZoneInfo, per_real_time: bool) -> tuple[list[datetime], datetime]:
    """The instants a matching wall time stands for, and a lower bound for later wall times."""
    first = local.replace(tzinfo=zone, fold=0).astimezone(UTC)
    second = local.replace(tzinfo=zone, fold=1).astimezone(UTC)
    if first == second:
        return [first], first
    if first < second:  # fold: the wall time happens twice
        if per_real_time and second - first <= _MAX_REPEATED_FOLD:
            return [first, second], first
        return [first], first
    gap_end = _gap_end(local, zone)  # gap: the wall time never happens
    return ([] if per_real_time else [gap_end]), gap_end


def _near_transition(moment: datetime, zone: ZoneInfo) -> bool:
    """True when the UTC offset changes within a fold margin of ``moment`` (either side)."""
    return (moment - _FOLD_MARGIN).astimezone(zone).utcoffset() != (moment + _FOLD_MARGIN).astimezone(zone).utcoffset()


def _exists(local: datetime, zone: ZoneInfo) -> bool:
    """False for a wall time in a DST gap (PEP 495: fold=0 then maps *after* fold=1)."""
    return local.replace(tzinfo=zone, fold=0).astimezone(UTC) <= local.replace(tzinfo=zone, fold=1).astimezone(UTC)


def _gap_end(local: datetime, zone: ZoneInfo) -> datetime:
    """The transition instant of the gap containing ``local``: the first existing instant after it.

    PEP 495 puts the transition between the fold=1 and fold=0 readings of a
    nonexistent time; zoneinfo exposes no transition list, so bisect (whole seconds).
    """
    low = math.floor(local.replace(tzinfo=zone, fold=1).timestamp())  # before the transition
    high = math.ceil(local.replace(tzinfo=zone, fold=0).timestamp())  # after it
    after_offset = datetime.fromtimestamp(high, zone).utcoffset()
    while high - low > 1:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, zone).utcoffset() == after_offset:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, UTC)


def _wall_clock_iterator(expression: str, start: datetime) -> croniter:
    """A croniter over naive wall-clock times from ``start``.

    Parsing an expression costs twice as much as stepping it, so each thread keeps
    one iterator per expression and rewinds it (the caller steps it without
    yielding to another coroutine in between).
    """
    cache: dict[str, croniter] = _ITERATORS.__dict__.setdefault("by_expression", {})
    iterator = cache.get(expression)
    if iterator is None:
        if len(cache) >= _MAX_CACHED_ITERATORS:
            cache.clear()
        iterator = cache[expression] = _croniter(expression, start)
    else:
        iterator.set_current(start, force=True)
    return iterator


_ITERATORS = threading.local()
_MAX_CACHED_ITERATORS = 1024


@functools.lru_cache(maxsize=512)
def _zone(tz: str) -> ZoneInfo:
    return ZoneInfo(tz)


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("schedule arithmetic needs aware datetimes (UTC inside InvoiceBot)")
    return moment.astimezone(UTC)
