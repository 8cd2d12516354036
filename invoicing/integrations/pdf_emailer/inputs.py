"""The PDF Emailer's typed values as ops write them (dates, times, BCC lists), parsed to stored values.

Pure functions over text and the company time zone; each raises ``InvalidInput`` naming
the field, in words for the ops person.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from invoicing import validation
from invoicing.delivery.bcc import parse_bcc
from invoicing.errors import InvalidInput
from invoicing.scheduling.schedule import to_utc

_DATE_FORMATS = ("%Y-%m-%d", "%Y-%m-%d %H:%M")


def starting_from(value: str | date | datetime, tz: str) -> datetime | None:
    """A date (local midnight) or local date and time of the company → UTC; ``none`` clears it."""
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else to_utc(value, tz)
    if isinstance(value, date):
        return to_utc(datetime(value.year, value.month, value.day), tz)
    text = " ".join(str(value).split())
    if text.lower() == "none":
        return None
    for form in _DATE_FORMATS:
        try:
            return to_utc(datetime.strptime(text, form), tz)
        except ValueError:
            continue
    raise InvalidInput("starting_from", f"{value!r} is not a date; use YYYY-MM-DD (or YYYY-MM-DD HH:MM) in the "
                                        f"company time zone ({tz}), or none")


def bcc(value: str | Sequence[str]) -> tuple[str, ...]:
    text = value if isinstance(value, str) else ",".join(value)
    if text.strip().lower() == "none":
        return ()
    return tuple(parse_bcc(text))


def in_range(moment: datetime | None, field: str) -> datetime | None:
    """Refuse a time too close to the calendar's ends to be shown in every zone (``validation.in_utc``)."""
    return None if moment is None else validation.in_utc(moment, field)


def aware_future(moment: datetime, tz: str, now: datetime) -> datetime:
    """``next`` given as a datetime (API callers): it must be aware and in the future."""
    if moment.tzinfo is None:
        raise InvalidInput("next", "must include a time zone offset (or be given as text in the company time zone)")
    if moment <= now:
        raise InvalidInput("next", f"{local(moment, tz)} ({tz}) is in the past; give a future time")
    return moment.astimezone(UTC)


def local(moment: datetime, tz: str) -> str:
    """``YYYY-MM-DD HH:MM`` in the company zone, the form ops type and read."""
    return moment.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M")

