"""The feed pushes exchange rates: ``PUT /api/v1/fx-rates/{base}/{quote}/{day}`` (source ``feed``, audited)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from invoicing import audit
from models import FxRate, FxSource
from tests.bot.test_feed import feed  # noqa: F401 - the running feed fixture


async def test_the_feed_pushes_a_rate_that_is_created_then_updated_and_audited(feed):  # noqa: F811
    created = await feed.call("PUT", "/fx-rates/EUR/GBP/2026-12-01", {"rate": "0.85230"})
    assert created.status == 201
    assert created.body == {"applied": True, "result": "created", "base": "EUR", "quote": "GBP", "day": "2026-12-01",
                            "rate": "0.8523", "source": "feed"}
    again = await feed.call("PUT", "/fx-rates/EUR/GBP/2026-12-01", {"rate": "0.8523"})
    assert again.status == 200 and again.body["result"] == "unchanged"
    updated = await feed.call("PUT", "/fx-rates/EUR/GBP/2026-12-01", {"rate": "0.8519"})
    assert updated.status == 200 and updated.body["result"] == "updated"
    row = await FxRate.get(tenant_id=feed.tenant.id)
    assert (row.day, row.rate, row.source) == (date(2026, 12, 1), Decimal("0.8519"), FxSource.FEED)
    assert [e.actor.startswith("api:") for e in await audit.recent(feed.tenant.id, target="fx:EUR/GBP")] == [True] * 2


async def test_bad_rates_from_the_feed_are_422_naming_the_field_and_write_nothing(feed):  # noqa: F811
    for path, body, field in [
        ("/fx-rates/EUR/EUR/2026-12-01", {"rate": "1"}, "quote"),
        ("/fx-rates/EUR/GBP/2026-02-30", {"rate": "0.85"}, "day"),
        ("/fx-rates/EUR/GBP/2026-12-01", {"rate": "0"}, "rate"),
        ("/fx-rates/EUR/GBP/2026-12-01", {"rate": 0.85}, "rate"),
        ("/fx-rates/XXY/GBP/2026-12-01", {"rate": "0.85"}, "base"),
    ]:
        reply = await feed.call("PUT", path, body)
        assert reply.status == 422 and reply.body["errors"][0]["path"] == field, (path, reply.body)
    assert await FxRate.all().count() == 0
