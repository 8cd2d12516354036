"""When an integration runs: ``starting_from``, ``schedule`` and ``next`` as every kind configures them.

The rules (the product's, stated once; the PDF Emailer and the XML export both use them):

* **enable** — the first run is the stored ``next`` time if one is pending, otherwise the
  top of the next local hour (the product default); never before ``starting_from`` (then:
  the first schedule slot at or after it).
* **schedule=** — the next run moves to the new schedule's next slot (give ``next=`` in
  the same change to pick another time).
* **next=** — that exact time; ``next=none`` returns to the schedule's next slot.
* **starting_from=** — a pending run that is still allowed and earlier than the schedule's
  next slot is kept; otherwise the next run is the schedule's next slot at or after
  ``starting_from``.
* **disable** — no run is pending any more (``next_run_at`` is cleared; the caller does it).

``parse_timing`` reads what ops typed (all of it, before anything is written) and
``apply_timing`` writes it onto a locked ``Integration`` row; both raise ``InvalidInput``
naming the field.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from invoicing import validation
from invoicing.errors import InvalidInput
from invoicing.integrations.pdf_emailer import inputs
from invoicing.scheduling.schedule import (
    Schedule,
    first_run,
    next_slot,
    parse_next_local,
    parse_schedule,
    slot_at_or_after,
)
from models import Integration


class Unset:
    """Marks a setting that was not given (``None`` is a value: "none" clears)."""


UNSET = Unset()


@dataclass(frozen=True)
class TimingChanges:
    """The parsed timing fields of one change: only those that were given."""

    starting_from: datetime | None | Unset = UNSET
    schedule: Schedule | Unset = UNSET
    next: datetime | None | Unset = UNSET


def parse_timing(tz: str, now: datetime, *, starting_from: str | date | datetime | None = None,
                 schedule: str | None = None, next: str | datetime | None = None) -> TimingChanges:
    """What ops typed (``starting_from=YYYY-MM-DD[ HH:MM]|none``, ``schedule=hourly|…|<cron>``,
    ``next=YYYY-MM-DD HH:MM|none`` in the company zone ``tz``); ``None`` = not given."""
    given: dict[str, Any] = {}
    if starting_from is not None:
        with validation.calendar_range("starting_from", f"{starting_from!r} "):
            given["starting_from"] = inputs.in_range(inputs.starting_from(starting_from, tz), "starting_from")
    if schedule is not None:
        given["schedule"] = parse_schedule(schedule)
    if next is not None:
        with validation.calendar_range("next", f"{next!r} "):  # a local time whose UTC falls past year 9999
            moment = inputs.aware_future(next, tz, now) if isinstance(next, datetime) \
                else parse_next_local(next, tz, now)
        given["next"] = inputs.in_range(moment, "next")
    return TimingChanges(**given)


def enable_timing(row: Integration, tz: str, now: datetime) -> None:
    """Turn ``row`` on and set its first run (the rules above)."""
    pending = row.next_run_at if row.next_run_at is not None and row.next_run_at > now else None
    row.enabled = True
    row.next_run_at = first_run(parse_schedule(row.schedule), now, tz, next_local=pending,
                                starting_from=row.starting_from)


def apply_timing(row: Integration, tz: str, changes: TimingChanges, now: datetime) -> None:
    """Write ``changes`` onto ``row`` and recompute ``next_run_at`` (may raise ``InvalidInput``)."""
    if not isinstance(changes.starting_from, Unset):
        row.starting_from = changes.starting_from
    if not isinstance(changes.schedule, Unset):
        row.schedule = changes.schedule.text
    schedule = parse_schedule(row.schedule)
    if isinstance(changes.next, datetime):
        if row.starting_from is not None and changes.next < row.starting_from:
            raise InvalidInput("next", f"{inputs.local(changes.next, tz)} is before starting_from "
                                       f"{inputs.local(row.starting_from, tz)}; no run happens before it")
        row.next_run_at = changes.next
    elif not row.enabled:
        if changes.next is None:
            row.next_run_at = None
    elif changes.next is None or not isinstance(changes.schedule, Unset):
        row.next_run_at = _schedule_next(schedule, now, tz, row.starting_from)
    elif not isinstance(changes.starting_from, Unset):
        following = _schedule_next(schedule, now, tz, row.starting_from)
        pending = row.next_run_at
        allowed = pending is not None and pending > now and (row.starting_from is None or pending >= row.starting_from)
        row.next_run_at = min(pending, following) if allowed and pending is not None else following


def _schedule_next(schedule: Schedule, now: datetime, tz: str, starting_from: datetime | None) -> datetime:
    if starting_from is not None and starting_from > now:
        return slot_at_or_after(schedule, starting_from, tz)
    return next_slot(schedule, now, tz)
