"""The indexes of the migrated schema, on both backends.

* Every index and unique constraint the models declare exists in the database the migrations
  build. Tortoise's SQLite migrations rebuild a table to alter a column, and the rebuilt table
  had lost its indexes — including ``invoice_run.invoice_id``'s UNIQUE, one of the guards of
  "an invoice is recorded by one run".
* Every foreign key is the leading column of an index. Neither PostgreSQL nor SQLite indexes a
  referencing column by itself, and Tortoise does not either; without one, "the deliveries of
  this invoice", "the runs of this integration" or a join from the parent side reads the whole
  child table — a cost that grows with the history a tenant keeps (a 1,000-company burst spent a
  core in ``/invoicing deliveries`` joining delivery to invoice as a nested loop over two
  sequential scans).
"""

import contextlib

from tortoise import Tortoise, connections

from bot.db import database, throwaway_database

Index = tuple[str, tuple[str, ...], bool]  # table, columns in order, unique

#: Built by migrations 0020 and 0021 only: partial indexes of the open e-mails and notices, which the models cannot
#: declare. ``delivery_open`` is also the index ``delivery.tenant_id`` leads (tenants are never deleted).
PARTIAL: set[Index] = {("delivery", ("tenant_id", "id"), False), ("slack_notice", ("tenant_id", "id"), False)}


async def _postgres_indexes() -> set[Index]:
    rows = await connections.get("default").execute_query_dict(
        """SELECT t.relname AS tbl, i.indisunique AS uniq,
                  array_agg(a.attname ORDER BY k.ord) AS cols
             FROM pg_index i
             JOIN pg_class t ON t.oid = i.indrelid
             JOIN pg_namespace n ON n.oid = t.relnamespace AND n.nspname = 'public'
             CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
             JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
            WHERE NOT i.indisprimary
            GROUP BY i.indexrelid, t.relname, i.indisunique""")
    return {(row["tbl"], tuple(row["cols"]), bool(row["uniq"])) for row in rows}


async def _sqlite_indexes() -> set[Index]:
    conn = connections.get("default")
    found = set()
    for table in await _sqlite_tables():
        for index in await conn.execute_query_dict(f'PRAGMA index_list("{table}")'):
            if index["origin"] == "pk":
                continue
            columns = await conn.execute_query_dict(f'PRAGMA index_info("{index["name"]}")')
            found.add((table, tuple(c["name"] for c in sorted(columns, key=lambda c: c["seqno"])),
                       bool(index["unique"])))
    return found


async def _sqlite_tables() -> list[str]:
    rows = await connections.get("default").execute_query_dict(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
    return [row["name"] for row in rows]


async def _indexes() -> set[Index]:
    postgres = connections.get("default").capabilities.dialect == "postgres"
    found = await (_postgres_indexes() if postgres else _sqlite_indexes())
    return {index for index in found if index[0] != "tortoise_migrations"}


async def _foreign_keys() -> set[tuple[str, str]]:
    conn = connections.get("default")
    if conn.capabilities.dialect == "postgres":
        rows = await conn.execute_query_dict(
            """SELECT c.conrelid::regclass::text AS tbl, a.attname AS col FROM pg_constraint c
                 JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
                WHERE c.contype = 'f'""")
        return {(row["tbl"].strip('"'), row["col"]) for row in rows}
    keys = set()
    for table in await _sqlite_tables():
        for fk in await conn.execute_query_dict(f'PRAGMA foreign_key_list("{table}")'):
            if fk["seq"] == 0:
                keys.add((table, fk["from"]))
    return keys


async def test_the_migrations_create_every_index_the_models_declare(db_url, tmp_path):
    async with database(db_url.url, apply_migrations=False):
        migrated = await _indexes()
    async with contextlib.AsyncExitStack() as stack:
        if db_url.backend == "sqlite":
            fresh_url = f"sqlite://{tmp_path}/from_models.db"
        else:
            fresh_url, _ = await stack.enter_async_context(throwaway_database(db_url.url, "invoicebot_models"))
        async with database(fresh_url, apply_migrations=False):
            await Tortoise.generate_schemas()
            declared = await _indexes()
    missing, extra = sorted(declared - migrated), sorted(migrated - declared)
    assert missing == [], f"declared by the models, missing from the migrated schema: {missing}"
    assert extra == sorted(PARTIAL), f"in the migrated schema, declared by no model: {extra}"


async def test_every_foreign_key_leads_an_index(db_url):
    async with database(db_url.url, apply_migrations=False):
        leading = {(table, columns[0]) for table, columns, _ in await _indexes()}
        missing = {key for key in await _foreign_keys() if key not in leading and key[1] != "id"}
    assert sorted(missing) == [], "foreign keys without an index (db_index=True on the field, or a Meta index " \
                                  f"that starts with it): {sorted(missing)}"
