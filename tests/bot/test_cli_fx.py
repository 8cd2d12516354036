"""``invoicebot import fx FILE``: the ECB reference rates, run as a real subprocess against a real database."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from bot.db import database
from models import FxRate, FxSource
from tests import factories as f
from tests.bot.test_cli import invoicebot


async def test_import_fx_reads_the_ecb_csv_and_refuses_a_bad_file_whole(tmp_path, db_url):
    async with database(db_url.url):
        await f.tenant()
    bad = tmp_path / "bad.csv"
    bad.write_text("Date, USD, GBP,\n01 December 2026, 1.05, 0.85,\nsoon, 1.06, 0.86,\n", encoding="utf-8")
    result = invoicebot("import", "fx", str(bad), "--tenant", "inkwell", data_dir=tmp_path, database_url=db_url.url)
    assert result.returncode == 2 and "line 3: 'soon' is not a date" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    async with database(db_url.url, apply_migrations=False):
        assert await FxRate.all().count() == 0

    good = tmp_path / "eurofxref.csv"
    good.write_text("Date, USD, GBP,\n01 December 2026, 1.0500, 0.85230,\n", encoding="utf-8")
    result = invoicebot("import", "fx", str(good), "--tenant", "inkwell", data_dir=tmp_path, database_url=db_url.url)
    assert result.returncode == 0, result.stderr
    assert "Imported ECB rates from eurofxref.csv (1 day(s), 2 rates): 2 created" in result.stdout
    async with database(db_url.url, apply_migrations=False):
        row = await FxRate.get(quote="GBP")
        assert (row.base, row.day, row.rate, row.source) == ("EUR", date(2026, 12, 1), Decimal("0.8523"),
                                                             FxSource.ECB)
