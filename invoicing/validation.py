"""Validators for the small values every entry point shares: names, currencies, zones, switches, instants
and the one definition of a control character."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from babel.numbers import list_currencies

from invoicing.errors import InvalidInput

#: The control characters, as the inside of a regex character class valid in Python and in
#: ECMA-262 (JSON Schema ``pattern``): Unicode Cc (C0 controls, DEL, C1 controls) plus the line
#: and paragraph separators U+2028 (Zl) and U+2029 (Zp) — everything a mail header, an SMTP
#: envelope, a CSV reader or a PDF text line may take as a line break or a control. These are
#: *all* the code points of those categories (Unicode never assigns new Cc ones; tests check
#: against unicodedata), spelled as a class because a regex is far cheaper than a category
#: lookup per character.
CONTROL_CHARACTER_CLASS = r"\x00-\x1f\x7f-\x9f\u2028\u2029"
_CONTROL_CHARACTERS = re.compile(f"[{CONTROL_CHARACTER_CLASS}]")
_SHORT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
_SKU = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,63}$")
_CURRENCIES = frozenset(list_currencies())

#: The reason given when a typed value holds a control character.
CONTROL_CHARACTERS_REFUSED = "must not contain line breaks or control characters"

# The one yes/no vocabulary: what ops type in Slack (on/off) and what spreadsheets write
# (TRUE/FALSE, yes/no, Y/N, 1/0), case-insensitive.
_SWITCH_ON = frozenset({"on", "true", "yes", "y", "t", "1"})
_SWITCH_OFF = frozenset({"off", "false", "no", "n", "f", "0"})


def is_control_character(char: str) -> bool:
    """Whether ``char`` is a control character or a line/paragraph separator (the one definition)."""
    return _CONTROL_CHARACTERS.fullmatch(char) is not None


def has_control_characters(value: str) -> bool:
    """Whether ``value`` contains any character ``is_control_character`` accepts.

    Entry points refuse such text (``text``, accounting details, BCC lists); what is
    written out (mail headers, PDF lines) replaces them (``without_control_characters``).
    """
    return _CONTROL_CHARACTERS.search(value) is not None


def without_control_characters(value: str, replacement: str = " ") -> str:
    """``value`` with every control character and line/paragraph separator replaced."""
    return _CONTROL_CHARACTERS.sub(replacement, value)


def parse_switch(
    value: bool | str, field: str, *, reason: str = "is not on or off; use on/off (or true/false, yes/no)"
) -> bool:
    """``on``/``off`` and their synonyms (a bool passes as is); anything else is ``InvalidInput(field, …)``.

    The message is ``"<value> <reason>"``; callers whose users know other words (a CSV
    column says "true or false") pass their own ``reason``. An empty value is not a
    switch: callers with a default apply it before calling.
    """
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word in _SWITCH_ON:
        return True
    if word in _SWITCH_OFF:
        return False
    raise InvalidInput(field, f"{value!r} {reason}")


def parse_instant(
    value: str,
    field: str,
    *,
    expected: str = "an ISO 8601 date-time such as 2026-11-20T14:03:00Z",
    naive: str = "must include a time zone offset, e.g. Z for UTC",
) -> datetime:
    """An ISO 8601 date-time that states its offset (``Z``, ``+01:00``), as an aware UTC datetime.

    Every text date-time from outside (CSV cells, API query bounds) goes through here, so
    they all accept the same forms. Without an offset the instant is ambiguous and refused
    with ``naive``; text that is no date-time is refused as ``"<value> is not <expected>"``
    (callers that also accept other forms say so in ``expected``).
    """
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput(field, f"{value!r} is not {expected}") from None
    if moment.tzinfo is None:
        raise InvalidInput(field, naive)
    return in_utc(moment, field)


#: The instants InvoiceBot stores or compares: a day inside ``datetime``'s calendar (years 1-9999), so
#: that every time zone (offsets under 24 hours) can show them — Slack and the PDF print instants in
#: the company's zone, where ``0001-01-01T00:00Z`` (London: LMT -00:01) has no date at all.
EARLIEST = datetime(1, 1, 2, tzinfo=UTC)
#: The first instant past the range (exclusive): the last one accepted is 9999-12-30T23:59:59.999999Z.
LATEST = datetime(9999, 12, 31, tzinfo=UTC)
OUT_OF_RANGE = "is out of range; use an instant between 0001-01-02 and 9999-12-30 in UTC"


def in_utc(moment: datetime, field: str) -> datetime:
    """An aware datetime converted to UTC, refused (``InvalidInput``) outside ``EARLIEST``–``LATEST``.

    Covers the instants that have no UTC datetime at all (``0001-01-01T00:00+01:00`` would be an
    ``OverflowError`` deep inside) and those a time zone could not show.
    """
    with calendar_range(field, f"{moment.isoformat()} "):
        utc = moment.astimezone(UTC)
    if not EARLIEST <= utc < LATEST:
        raise InvalidInput(field, f"{moment.isoformat()} {OUT_OF_RANGE}")
    return utc


@contextmanager
def calendar_range(field: str, shown: str = "") -> Iterator[None]:
    """Turn the ``OverflowError`` of date arithmetic past year 1 or 9999 into ``InvalidInput(field)``.

    For parsers of local wall times (``next=``, ``starting_from=``), whose conversion to UTC
    overflows before there is an instant to check; ``shown`` prefixes the reason (the value).
    """
    try:
        yield
    except OverflowError:
        raise InvalidInput(field, f"{shown}{OUT_OF_RANGE}") from None


def whole_number(text: str, field: str, *, low: int, high: int, what: str = "a whole number") -> int:
    """A whole number typed as ASCII digits, between ``low`` and ``high`` (``InvalidInput`` naming them).

    The reason reads ``'<text>' is not <what> between <low> and <high>``.

    ``str.isdigit`` also takes ``²`` and ``٣``, which ``int`` refuses or reads unexpectedly, and
    ``int`` refuses more than 4,300 digits: both were unhandled errors in Slack commands.
    """
    value = text.strip()
    if not re.fullmatch(r"-?[0-9]{1,20}", value) or not low <= int(value) <= high:
        raise InvalidInput(field, f"{text[:40]!r} is not {what} between {low} and {high}")
    return int(value)


def short_name(value: str, field: str = "company") -> str:
    name = value.strip().lower()
    if not _SHORT_NAME.match(name):
        raise InvalidInput(field, f"{value!r} is not a valid short name; use 1-40 letters, digits, - or _ (e.g. acme)")
    return name


def currency(value: str, field: str = "currency") -> str:
    code = value.strip().upper()
    if code not in _CURRENCIES or len(code) != 3:
        raise InvalidInput(field, f"{value!r} is not an ISO 4217 currency code; use e.g. GBP, EUR or USD")
    return code


def timezone(value: str, field: str = "timezone") -> str:
    name = value.strip()
    try:
        if name not in available_timezones():
            raise ZoneInfoNotFoundError(name)
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(
            field, f"{value!r} is not an IANA time zone; use e.g. Europe/London or America/New_York"
        ) from None
    return name


def sku(value: str, field: str = "sku") -> str:
    text = value.strip()
    if not _SKU.match(text):
        raise InvalidInput(field, f"{value!r} is not a valid SKU; 1-64 letters, digits and . _ / -")
    return text


def storable(value: str, max_len: int) -> bool:
    """Whether ``value`` could be stored in a column of ``max_len``; a lookup of anything else finds nothing.

    Check before filtering on user input: Tortoise raises on values longer than the column
    and PostgreSQL on NUL bytes, instead of answering "no such row".
    """
    return len(value) <= max_len and "\x00" not in value


def text(value: object, field: str, *, max_len: int = 200, required: bool = True) -> str:
    result = "" if value is None else str(value).strip()
    if required and not result:
        raise InvalidInput(field, "is required")
    if len(result) > max_len:
        raise InvalidInput(field, f"is {len(result)} characters long; at most {max_len}")
    if has_control_characters(result):
        raise InvalidInput(field, CONTROL_CHARACTERS_REFUSED)
    return result
