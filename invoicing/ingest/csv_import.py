"""CSV import of orders and prices: every row checked first, then all or nothing.

If any row is bad, the report lists every bad row (row number, column, reason) and
nothing is written. Otherwise the rows go through the same validated write paths as
the HTTP feed (``upsert_orders`` / ``set_products``) in one transaction, with bulk
statements, so 100,000 rows take seconds, not minutes.

Row numbers count the header as row 1, as a spreadsheet shows them. Text may be
UTF-8 (with or without BOM) or Windows-1252 (cp1252, what Excel writes on Windows),
decided line by line so a file concatenated from both still reads correctly; a cell
that is neither is reported. Comma or semicolon delimiters are recognised from the
header. Nothing here prints: callers show the report (and drive a progress bar via
``progress(phase, done, total)``).
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from invoicing import validation
from invoicing.errors import InvalidInput
from invoicing.ingest.batches import UpsertResult
from invoicing.ingest.catalog import (
    PriceInput,
    ProductInput,
    clean_price,
    retailers_of,
    set_products,
)
from invoicing.ingest.order_sync import (
    SHIP_TO_KEYS,
    CleanOrder,
    InvoicedOrderConflict,
    ItemInput,
    OrderInput,
    clean_item,
    clean_order,
    upsert_orders,
)
from models import Company, Tenant

Progress = Callable[[str, int, int], None]

ORDER_REQUIRED = ("company", "ref", "status", "sku", "quantity")
#: Order-level columns: taken from the order's first row; later rows may repeat them or leave them empty.
ORDER_LEVEL = ("status", "dispatched_at", "on_hold", "error", "updated_at", *(f"ship_to_{k}" for k in SHIP_TO_KEYS))
ORDER_COLUMNS = (*ORDER_REQUIRED, "dispatched_at", "on_hold", "error", "description", "updated_at",
                 *(f"ship_to_{k}" for k in SHIP_TO_KEYS))
PRICE_REQUIRED = ("sku", "name", "cost_price", "tax_rate")
PRICE_COLUMNS = (*PRICE_REQUIRED, "retailer", "shipping", "currency")

_REPORT_EVERY = 5000


@dataclass(frozen=True)
class RowError:
    row: int
    column: str
    reason: str

    def __str__(self) -> str:
        where = f"row {self.row}, column {self.column}" if self.column else f"row {self.row}"
        return f"{where}: {self.reason}"


@dataclass(frozen=True)
class ImportReport:
    """What an import did; with ``errors`` it did nothing at all."""

    kind: str
    rows: int
    encoding: str
    errors: tuple[RowError, ...] = ()
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    stale: int = 0
    products_created: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors


def decode(data: bytes) -> tuple[str, str]:
    """Text of a CSV file and a description of its encoding (``utf-8``, ``cp1252``, ``mixed …``)."""
    bom = data.startswith(codecs.BOM_UTF8)
    if bom:
        data = data[len(codecs.BOM_UTF8):]
    try:
        return data.decode("utf-8"), "utf-8 with BOM" if bom else "utf-8"
    except UnicodeDecodeError:
        pass
    lines, fallback, utf8_non_ascii = [], 0, 0
    for line in data.splitlines(keepends=True):
        try:
            lines.append(line.decode("utf-8"))
            utf8_non_ascii += not line.isascii()
        except UnicodeDecodeError:
            # cp1252 leaves 5 bytes undefined; they become U+FFFD and the cell is reported.
            lines.append(line.decode("cp1252", errors="replace"))
            fallback += 1
    encoding = "cp1252" if not utf8_non_ascii else f"mixed: utf-8, cp1252 on {fallback} line(s)"
    return "".join(lines), encoding


@dataclass
class _Table:
    rows: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)


def _read(text: str, required: Sequence[str], known: Sequence[str]) -> _Table:
    """Rows as ``(row number, {column: cell})``; header problems end the reading."""
    table = _Table()
    first_line = text.split("\n", 1)[0]
    delimiter = ";" if first_line.count(";") > first_line.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = [name.strip().lower() for name in next(reader, [])]
    for name in header:
        if name not in known:
            table.errors.append(RowError(1, name, f"unknown column; the columns are {', '.join(known)}"))
        elif header.count(name) > 1:
            table.errors.append(RowError(1, name, "appears twice"))
    for name in required:
        if name not in header:
            table.errors.append(RowError(1, name, "required column is missing"))
    if table.errors:
        return table
    for number, cells in enumerate(reader, start=2):
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) != len(header):
            table.errors.append(RowError(number, "", f"has {len(cells)} fields; the header has {len(header)}"))
            continue
        row = dict(zip(header, cells, strict=True))
        bad = [name for name, cell in row.items() if "\ufffd" in cell]
        for name in bad:
            table.errors.append(RowError(number, name, "contains bytes that are neither UTF-8 nor Windows-1252"))
        if not bad:
            table.rows.append((number, row))
    return table


def _bool(text: str, column: str) -> bool:
    """A yes/no cell; an empty cell is "no" (the column is optional)."""
    return validation.parse_switch(text, column, reason="is not true or false") if text.strip() else False


def _instant(text: str, column: str) -> datetime | None:
    return validation.parse_instant(text, column) if text.strip() else None


def _quantity(text: str) -> int:
    if not re.fullmatch(r"\s*\d{1,9}\s*", text):
        raise InvalidInput("quantity", f"{text!r} is not a whole number")
    return int(text)


@dataclass
class _Order:
    first_row: int
    company: str
    ref: str
    level: dict[str, str]
    items: list[tuple[int, ItemInput]] = field(default_factory=list)


def _column(error_field: str) -> str:
    """A field name of ``clean_order`` → the CSV column it came from."""
    return error_field.replace("ship_to.", "ship_to_")


def _order_input(order: _Order) -> OrderInput:
    level = order.level
    ship_to = {k: level[f"ship_to_{k}"].strip() for k in SHIP_TO_KEYS if level.get(f"ship_to_{k}", "").strip()}
    return OrderInput(
        company=order.company, ref=order.ref, items=[item for _, item in order.items],
        status=level["status"].strip().lower(), dispatched_at=_instant(level.get("dispatched_at", ""), "dispatched_at"),
        on_hold=_bool(level.get("on_hold", ""), "on_hold"), error=level.get("error") or None,
        ship_to=ship_to or None, updated_at=_instant(level.get("updated_at", ""), "updated_at"),
    )


def _group_orders(rows: list[tuple[int, dict[str, str]]], companies: set[str], tenant: str,
                  errors: list[RowError], progress: Progress | None) -> dict[tuple[str, str], _Order]:
    orders: dict[tuple[str, str], _Order] = {}
    for done, (number, row) in enumerate(rows, start=1):
        if progress and done % _REPORT_EVERY == 0:
            progress("check", done, len(rows))
        company, ref = row["company"].strip().lower(), row["ref"].strip()
        if company not in companies:
            reason = "is required" if not company else f"no company '{company}' in {tenant}"
            errors.append(RowError(number, "company", reason))
        if not ref:
            errors.append(RowError(number, "ref", "is required"))
        try:
            item = clean_item(ItemInput(row["sku"], _quantity(row["quantity"]), row.get("description", "")))
        except InvalidInput as exc:
            errors.append(RowError(number, exc.field, exc.reason))
            item = None
        if company not in companies or not ref:
            continue
        order = orders.get((company, ref))
        if order is None:
            order = orders[(company, ref)] = _Order(number, company, ref, {c: row.get(c, "") for c in ORDER_LEVEL})
        else:
            for column in ORDER_LEVEL:
                value = row.get(column, "").strip()
                if value and value != order.level[column].strip():
                    errors.append(RowError(number, column, f"{value!r} differs from row {order.first_row} of the "
                                                           f"same order ({order.level[column].strip()!r})"))
        if item is not None:
            order.items.append((number, item))
    return orders


async def import_orders(tenant: Tenant, data: bytes, *, progress: Progress | None = None) -> ImportReport:
    """Import orders (one row per item; rows with the same company + ref form one order)."""
    text, encoding = decode(data)
    table = _read(text, ORDER_REQUIRED, ORDER_COLUMNS)
    errors = table.errors
    companies = set(await retailers_of(tenant))
    orders = _group_orders(table.rows, companies, tenant.name, errors, progress)
    cleaned: list[CleanOrder] = []
    first_rows: list[int] = []
    for order in orders.values():
        if not order.items:
            continue  # every item row is bad and already reported
        try:
            cleaned.append(clean_order(_order_input(order)))
            first_rows.append(order.first_row)
        except InvalidInput as exc:
            match = re.match(r"items\[(\d+)\]\.(\w+)$", exc.field)
            if match:
                errors.append(RowError(order.items[int(match[1])][0], match[2], exc.reason))
            else:
                errors.append(RowError(order.first_row, _column(exc.field), exc.reason))
    base: dict[str, Any] = {"kind": "orders", "rows": len(table.rows), "encoding": encoding}
    if errors:
        return ImportReport(**base, errors=tuple(sorted(errors, key=lambda e: (e.row, e.column))))
    try:
        outcomes = await upsert_orders(tenant, cleaned, progress=(lambda d, t: progress("write", d, t))
                                       if progress else None)
    except InvoicedOrderConflict as exc:
        return ImportReport(**base, errors=tuple(RowError(first_rows[c.index], "ref", c.message) for c in exc.changes))
    counts = {result: sum(1 for o in outcomes if o.result is result) for result in UpsertResult}
    return ImportReport(**base, created=counts[UpsertResult.CREATED], updated=counts[UpsertResult.UPDATED],
                        unchanged=counts[UpsertResult.UNCHANGED], stale=counts[UpsertResult.STALE])


def _price_rows(tenant: Tenant, rows: list[tuple[int, dict[str, str]]], retailers: Mapping[str, Company],
                errors: list[RowError]) -> Iterator[tuple[int, str, str, PriceInput]]:
    for number, row in rows:
        try:
            sku = validation.sku(row["sku"])
            price = PriceInput(row.get("retailer", "").strip() or None, row["cost_price"],
                               row.get("shipping", "").strip() or "0", row["tax_rate"],
                               row.get("currency", "").strip() or None)
            clean_price(tenant, price, retailers)
            yield number, sku, validation.text(row["name"], "name", required=False), price
        except InvalidInput as exc:
            errors.append(RowError(number, exc.field, exc.reason))


async def import_prices(tenant: Tenant, data: bytes, *, actor: str = "cli",
                        progress: Progress | None = None) -> ImportReport:
    """Import prices (one row per SKU and retailer; empty retailer = the default price)."""
    text, encoding = decode(data)
    table = _read(text, PRICE_REQUIRED, PRICE_COLUMNS)
    errors = table.errors
    retailers = await retailers_of(tenant)
    named: dict[str, tuple[int, str]] = {}  # sku → (row, name) of the first row that names it
    first_rows: dict[str, int] = {}
    prices: dict[str, list[PriceInput]] = {}
    seen: dict[tuple[str, str | None], int] = {}
    for number, sku, name, price in _price_rows(tenant, table.rows, retailers, errors):
        key = (sku, (price.retailer or "").lower() or None)
        if key in seen:
            errors.append(RowError(number, "retailer", f"{sku} already has this price in row {seen[key]}"))
            continue
        seen[key] = number
        first_rows.setdefault(sku, number)
        if name and sku in named and named[sku][1] != name:
            errors.append(RowError(number, "name", f"{name!r} differs from row {named[sku][0]} ({named[sku][1]!r})"))
        elif name:
            named.setdefault(sku, (number, name))
        prices.setdefault(sku, []).append(price)
    for sku, number in first_rows.items():
        if sku not in named:
            errors.append(RowError(number, "name", f"is required for {sku} (in at least one of its rows)"))
    base: dict[str, Any] = {"kind": "prices", "rows": len(table.rows), "encoding": encoding}
    if errors:
        return ImportReport(**base, errors=tuple(sorted(errors, key=lambda e: (e.row, e.column))))
    if progress:
        progress("write", 0, len(prices))
    result = await set_products(tenant, [ProductInput(sku, named[sku][1], prices[sku]) for sku in prices],
                                actor=actor)
    if progress:
        progress("write", len(prices), len(prices))
    return ImportReport(**base, created=result.prices_created, updated=result.prices_updated,
                        unchanged=result.prices_unchanged, products_created=result.products_created)
