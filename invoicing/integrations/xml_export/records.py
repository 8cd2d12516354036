"""What one XML export file carries: plain, frozen values built by the selection, written by ``writer``.

Money is ``Decimal`` (never float), every datetime is aware (written in UTC). The selection
(``selection.py``) builds these from stored rows; ``writer.write_orders`` turns them into the
``urn:invoicebot:xml-export:orders:1.0`` format (``docs/xml/invoicebot-orders-1.0.xsd``).

What a caller may rely on — and what ``order_problem`` checks, so an order that would make an
invalid or inconsistent file is reported (skipped with the reason) instead of written:

* identifiers (order ref, SKU, invoice number, currency, country) are written exactly as given:
  one that XML 1.0 cannot carry (C0 control characters, lone surrogates, U+FFFE/U+FFFF) or that is
  longer than its database column is refused, never altered;
* free text (descriptions, the order's error text, the company's legal name, skip reasons) is
  written with those characters **removed** (``clean_text``): they are invisible, XML 1.0 cannot
  carry them, and an accountant's import must not fail on a stray byte from the order feed.
  Tab, line feed and carriage return are kept;
* amounts are multiples of the currency's minor unit (what ``money.round_money`` gives) and not
  negative; a unit cost has at most ``AMOUNT_PLACES`` (4) decimals; a VAT rate is 0-100 %;
* an order's figures add up: ``net_total`` = Σ line ``net`` + ``shipping_net`` and
  ``gross_total`` = ``net_total`` + ``vat_total``. A line's ``net`` is its goods only
  (``quantity × unit_cost``, rounded); the order's shipping is ``shipping_net``/``shipping_vat``.
  VAT is not re-added here: it is computed per rate and rounded once per rate (``money``), so
  Σ line ``vat`` + ``shipping_vat`` may differ from ``vat_total`` by rounding; ``vat_total`` is
  the order's VAT.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

from tortoise.models import Model

from invoicing.billing.limits import AMOUNT_PLACES, MAX_INT
from invoicing.billing.money import minor_unit
from invoicing.billing.vat_rules import CATEGORIES
from models import Company, Invoice, Order, OrderItem, Tenant


@lru_cache(maxsize=64)
def _minor_unit(currency: str) -> Decimal:
    return minor_unit(currency)


def _max_length(model: type[Model], name: str) -> int:
    column: Any = model._meta.fields_map[name]
    return int(column.max_length)


#: Column lengths the XSD repeats (a test keeps them equal): what the database can hold.
ORDER_REF_LENGTH = _max_length(Order, "external_ref")
SKU_LENGTH = _max_length(OrderItem, "sku")
DESCRIPTION_LENGTH = _max_length(OrderItem, "description")
INVOICE_NUMBER_LENGTH = _max_length(Invoice, "display_number")
TENANT_LENGTH = _max_length(Tenant, "name")
COMPANY_LENGTH = _max_length(Company, "short_name")
COMPANY_NAME_LENGTH = _max_length(Company, "name")

#: Characters XML 1.0 cannot carry (``Char`` production): C0 controls but tab/LF/CR, surrogates, U+FFFE/U+FFFF.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_CURRENCY = re.compile(r"[A-Z]{3}")
_COUNTRY = re.compile(r"[A-Z]{2}")
_HUNDRED = Decimal(100)


@dataclass(frozen=True)
class ExportLine:
    """One order item. ``net`` = quantity × unit cost rounded to the currency (goods only, no shipping);
    ``vat_rate`` is a percentage (``Decimal("20")``); ``vat_category`` an EN 16931 code (S, Z, E, AE, K, G, O)."""

    sku: str
    description: str
    quantity: int
    unit_cost: Decimal
    net: Decimal
    vat_rate: Decimal
    vat_category: str
    vat: Decimal


@dataclass(frozen=True)
class ExportOrder:
    """One dispatched order as exported; ``revision`` 0 is its first export, n > 0 replaces export n - 1."""

    order_id: int
    order_ref: str
    revision: int
    dispatched_at: datetime
    ship_to_country: str
    currency: str
    lines: tuple[ExportLine, ...]
    shipping_net: Decimal
    shipping_vat: Decimal
    net_total: Decimal
    vat_total: Decimal
    gross_total: Decimal
    invoice_number: str | None
    error: str | None


@dataclass(frozen=True)
class ExportHeader:
    """The file's header. ``starting_from`` (None: from the first order) and ``cutoff`` (exclusive) bound the
    dispatch times of its orders; ``skipped`` lists ``(order_ref, reason)`` of orders left out of this file."""

    tenant: str
    company: str
    company_name: str
    sequence: int
    file_name: str
    created_at: datetime
    starting_from: datetime | None
    cutoff: datetime
    skipped: tuple[tuple[str, str], ...]


def clean_text(text: str) -> str:
    """``text`` without the characters XML 1.0 cannot carry (see the module docstring); the rest unchanged."""
    return _NOT_XML.sub("", text)


def identifier_problem(what: str, value: str, max_length: int) -> str | None:
    """Why ``value`` cannot be written as the identifier ``what``, or None (identifiers are never altered)."""
    if not value.strip():
        return f"its {what} is empty"
    if len(value) > max_length:
        return f"its {what} is {len(value)} characters long (at most {max_length})"
    bad = _NOT_XML.search(value) or re.search(r"[\t\n\r]", value)
    if bad is not None:
        return f"its {what} {value.encode('unicode_escape').decode('ascii')!r} contains U+{ord(bad.group()):04X}"
    return None


def datetime_problem(what: str, moment: datetime) -> str | None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        return f"its {what} {moment.isoformat()} has no time zone"
    return None


def amount_problem(what: str, amount: Decimal, currency: str, *, places: int | None = None) -> str | None:
    """Why ``amount`` is not a non-negative amount of ``currency`` (a multiple of its minor unit, or of
    ``10**-places`` when given), or None."""
    if not isinstance(amount, Decimal) or not amount.is_finite():
        return f"its {what} {amount!r} is not a decimal amount"
    if amount < 0:
        return f"its {what} {amount} is negative"
    unit = Decimal(1).scaleb(-places) if places is not None else _minor_unit(currency)
    if amount % unit != 0:
        return f"its {what} {amount} is not rounded to {unit} {currency}"
    if amount.adjusted() >= 28:
        return f"its {what} {amount} is too large"
    return None


def _line_problems(number: int, line: ExportLine, currency: str) -> Iterator[str | None]:
    where = f"line {number}"
    yield identifier_problem(f"{where} SKU", line.sku, SKU_LENGTH)
    if len(clean_text(line.description)) > DESCRIPTION_LENGTH:
        yield f"its {where} description is longer than {DESCRIPTION_LENGTH} characters"
    if not isinstance(line.quantity, int) or not 1 <= line.quantity <= MAX_INT:
        yield f"its {where} quantity {line.quantity} is not between 1 and {MAX_INT:,}"
    yield amount_problem(f"{where} unit cost", line.unit_cost, currency, places=AMOUNT_PLACES)
    yield amount_problem(f"{where} net", line.net, currency)
    yield amount_problem(f"{where} VAT", line.vat, currency)
    if not isinstance(line.vat_rate, Decimal) or not line.vat_rate.is_finite() or not 0 <= line.vat_rate <= _HUNDRED:
        yield f"its {where} VAT rate {line.vat_rate} is not between 0 and 100 %"
    elif line.vat_rate % Decimal("0.001") != 0:
        yield f"its {where} VAT rate {line.vat_rate} has more than 3 decimals"
    if line.vat_category not in CATEGORIES:
        yield f"its {where} VAT category {line.vat_category!r} is not one of {', '.join(CATEGORIES)}"


def _order_problems(order: ExportOrder) -> Iterator[str | None]:
    yield identifier_problem("order ref", order.order_ref, ORDER_REF_LENGTH)
    if not 0 <= order.order_id <= MAX_INT:
        yield f"its id {order.order_id} is out of range"
    if order.revision < 0:
        yield f"its revision {order.revision} is negative"
    yield datetime_problem("dispatch time", order.dispatched_at)
    if not _COUNTRY.fullmatch(order.ship_to_country):
        yield f"its ship-to country {order.ship_to_country!r} is not an ISO 3166 code (two capital letters)"
    if not _CURRENCY.fullmatch(order.currency):
        yield f"its currency {order.currency!r} is not an ISO 4217 code (three capital letters)"
        return
    if order.invoice_number is not None:
        yield identifier_problem("invoice number", order.invoice_number, INVOICE_NUMBER_LENGTH)
    if not order.lines:
        yield "it has no lines"
    for number, line in enumerate(order.lines, start=1):
        yield from _line_problems(number, line, order.currency)
    amounts = (("shipping net", order.shipping_net), ("shipping VAT", order.shipping_vat),
               ("net total", order.net_total), ("VAT total", order.vat_total), ("gross total", order.gross_total))
    problems = [amount_problem(what, value, order.currency) for what, value in amounts]
    yield from problems
    if any(problems):
        return
    net = sum((line.net for line in order.lines), Decimal(0)) + order.shipping_net
    if net != order.net_total:
        yield f"its net total {order.net_total} is not its lines plus shipping ({net})"
    if order.net_total + order.vat_total != order.gross_total:
        yield f"its gross total {order.gross_total} is not net {order.net_total} + VAT {order.vat_total}"


def order_problem(order: ExportOrder) -> str | None:
    """The first reason ``order`` cannot be written as it is (words for the ops person), or None.

    ``writer.write_orders`` refuses a file with such an order; the selection should skip it with this
    reason instead (the rest of the company's orders still go).
    """
    for problem in _order_problems(order):
        if problem is not None:
            return problem
    return None


def header_problem(header: ExportHeader) -> str | None:
    """The first reason ``header`` cannot be written, or None."""
    checks = (
        identifier_problem("tenant", header.tenant, TENANT_LENGTH),
        identifier_problem("company", header.company, COMPANY_LENGTH),
        identifier_problem("file name", header.file_name, 200),
        None if len(clean_text(header.company_name)) <= COMPANY_NAME_LENGTH else "the company name is too long",
        None if 1 <= header.sequence <= MAX_INT else f"the sequence {header.sequence} is out of range",
        datetime_problem("creation time", header.created_at),
        datetime_problem("cutoff", header.cutoff),
        datetime_problem("starting from", header.starting_from) if header.starting_from is not None else None,
        *(identifier_problem("skipped order ref", ref, ORDER_REF_LENGTH) for ref, _ in header.skipped),
    )
    return next((problem for problem in checks if problem is not None), None)


def utc_text(moment: datetime) -> str:
    """``moment`` as written in the file: ISO 8601 in UTC to the second, ``2026-12-02T09:30:00+00:00``."""
    return moment.astimezone(UTC).replace(microsecond=0).isoformat()
