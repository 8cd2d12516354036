"""What the feed's response models write: the instant format, and a page built without validation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from bot.feed_schemas import ListedOrder, OrderPage
from models import OrderStatus


def _listed(dispatched_at: datetime | None) -> ListedOrder:
    return {"company": "acme", "ref": "SO-1", "status": OrderStatus.DISPATCHED, "on_hold": False, "error": None,
            "dispatched_at": dispatched_at, "invoiced": True, "invoice_number": "INK-000001"}


@pytest.mark.parametrize(("instant", "text"), [
    (datetime(2026, 11, 20, 14, 3, tzinfo=UTC), "2026-11-20T14:03:00Z"),
    (datetime(2026, 11, 20, 14, 3, 0, 120000, tzinfo=UTC), "2026-11-20T14:03:00.120000Z"),
    (datetime(2026, 11, 20, 14, 3, 0, 1, tzinfo=ZoneInfo("Europe/London")), "2026-11-20T14:03:00.000001Z"),
    (datetime(2026, 7, 1, 9, 30, tzinfo=timezone(timedelta(hours=1))), "2026-07-01T09:30:00+01:00"),
])
def test_instants_are_iso_8601_with_z_for_utc_and_microseconds_only_when_set(instant: datetime, text: str):
    page = OrderPage.model_construct(orders=[_listed(instant)], next_cursor=None)
    assert f'"dispatched_at":"{text}"'.encode() in page.__pydantic_serializer__.to_json(page)
    assert text == instant.isoformat().replace("+00:00", "Z")  # the format the feed has always written


def test_a_page_built_from_rows_writes_what_the_validated_model_writes():
    rows = [_listed(datetime(2026, 10, 1, tzinfo=UTC) + timedelta(seconds=n)) for n in range(3)] + [_listed(None)]
    constructed = OrderPage.model_construct(orders=rows, next_cursor="bzQ")
    validated = OrderPage.model_validate({"orders": rows, "next_cursor": "bzQ"})
    assert constructed.model_dump_json() == validated.model_dump_json()
    assert OrderPage.model_validate_json(constructed.model_dump_json()) == validated
    assert constructed.model_dump_json().startswith(
        '{"orders":[{"company":"acme","ref":"SO-1","status":"dispatched","on_hold":false,"error":null,'
        '"dispatched_at":"2026-10-01T00:00:00Z","invoiced":true,"invoice_number":"INK-000001"},')
