"""``invoicebot token …`` and ``invoicebot import …``, run as real subprocesses against a real database."""

from __future__ import annotations

import re

import pytest

from bot.db import database
from models import ApiToken, Order
from tests import factories as f
from tests.bot.test_cli import invoicebot


@pytest.mark.parametrize("command", [["token"], ["token", "create"], ["token", "list"], ["token", "revoke"],
                                     ["import"]])
def test_the_feed_commands_have_help(tmp_path, command):
    result = invoicebot(*command, "--help", data_dir=tmp_path)
    assert result.returncode == 0 and result.stdout.startswith("usage: invoicebot")


async def test_a_token_is_printed_once_listed_by_prefix_and_revoked(tmp_path, db_url):
    created = invoicebot("tenant", "create", "inkwell", "--slack-team", "T0123", data_dir=tmp_path,
                         database_url=db_url.url)
    assert created.returncode == 0, created.stderr
    made = invoicebot("token", "create", "inkwell", "--label", "shopify sync", data_dir=tmp_path,
                      database_url=db_url.url)
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert re.fullmatch(r"ibt_[A-Za-z0-9_-]{43}", token) and "not shown again" in made.stderr
    prefix = token[:12]

    listed = invoicebot("token", "list", "inkwell", data_dir=tmp_path, database_url=db_url.url)
    assert listed.returncode == 0 and prefix in listed.stdout and "shopify sync" in listed.stdout
    assert token not in listed.stdout

    revoked = invoicebot("token", "revoke", "inkwell", prefix, data_dir=tmp_path, database_url=db_url.url)
    assert revoked.returncode == 0 and f"Token {prefix} revoked" in revoked.stdout
    async with database(db_url.url, apply_migrations=False):
        assert (await ApiToken.get(prefix=prefix)).revoked_at is not None

    unknown = invoicebot("token", "revoke", "inkwell", "ibt_nope", data_dir=tmp_path, database_url=db_url.url)
    assert unknown.returncode == 2 and len(unknown.stderr.strip().splitlines()) == 1
    assert "No token with prefix 'ibt_nope' in inkwell" in unknown.stderr
    nobody = invoicebot("token", "create", "nobody", data_dir=tmp_path, database_url=db_url.url)
    assert nobody.returncode == 2 and "No tenant called 'nobody'" in nobody.stderr


async def test_import_reports_every_bad_row_and_imports_nothing_then_imports_a_good_file(tmp_path, db_url):
    async with database(db_url.url):
        t = await f.tenant()
        await f.company(t)
    header = "company,ref,status,dispatched_at,on_hold,sku,quantity"
    bad = tmp_path / "bad.csv"
    bad.write_text(f"{header}\nacme,SO-1,dispatched,2026-11-01T10:00:00Z,false,MUG,2\n"
                   "acme,SO-2,dispatched,2026-11-01T10:00:00Z,maybe,MUG,1\n"
                   "acme,SO-3,dispatched,2026-11-01T10:00:00Z,false,MUG,0\n", encoding="utf-8")
    result = invoicebot("import", "orders", str(bad), "--tenant", "inkwell", data_dir=tmp_path,
                        database_url=db_url.url)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "invoicebot: error: bad.csv: 2 bad row(s); nothing was imported",
        "  row 3, column on_hold: 'maybe' is not true or false",
        "  row 4, column quantity: must be a whole number between 1 and 100000",
    ]
    async with database(db_url.url, apply_migrations=False):
        assert await Order.all().count() == 0

    good = tmp_path / "good.csv"
    good.write_bytes(f"{header}\nacme,SO-1,dispatched,2026-11-01T10:00:00Z,false,MUG,2\n".encode("cp1252"))
    result = invoicebot("import", "orders", str(good), "--tenant", "inkwell", data_dir=tmp_path,
                        database_url=db_url.url)
    assert result.returncode == 0, result.stderr
    assert "Imported orders from good.csv (1 rows, utf-8): 1 created, 0 updated, 0 unchanged." in result.stdout

    missing = invoicebot("import", "prices", str(tmp_path / "nope.csv"), "--tenant", "inkwell", data_dir=tmp_path,
                         database_url=db_url.url)
    assert missing.returncode == 2 and "cannot read" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1
