"""Check an export file before it leaves: the XSD, then the figures an accountant would check.

``validate_orders_file(path)`` streams the file (``etree.iterparse`` with the schema plugged into
the parser, each order dropped once checked), so memory stays flat at 100,000 orders. It raises
``XmlExportInvalid`` with the file name, the line and what is wrong on the first problem:

* not well-formed XML, or not valid against ``docs/xml/invoicebot-orders-1.0.xsd`` (lxml's
  message, namespace removed: ``line 41: Element 'Quantity': '0' is less than 1``);
* an order whose totals do not add up (net = lines + shipping, gross = net + VAT), lines not
  numbered 1, 2, 3 …;
* ``FileTotals`` (or the skipped count) that do not match the orders in the file.

No DTD is loaded, no entity resolved and nothing fetched from the network.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import NoReturn

from lxml import etree

from invoicing.integrations.xml_export.schema import NAMESPACE, XmlExportInvalid, schema_path

__all__ = ["XmlExportInvalid", "validate_orders_file"]

_lock = threading.Lock()
_schema: etree.XMLSchema | None = None
_N = f"{{{NAMESPACE}}}"
_ORDER, _SKIPPED, _SKIPPED_ORDERS, _FILE_TOTALS = (f"{_N}Order", f"{_N}SkippedOrder", f"{_N}SkippedOrders",
                                                    f"{_N}FileTotals")


def orders_schema() -> etree.XMLSchema:
    """The compiled XSD (compiled once per process)."""
    global _schema
    with _lock:
        if _schema is None:
            _schema = etree.XMLSchema(etree.parse(str(schema_path())))
        return _schema


@dataclass
class _Seen:
    orders: int = 0
    skipped: int = 0
    skipped_count: int | None = None


@lru_cache(maxsize=64)
def _qualified(path: str) -> str:
    return "/".join(_N + step for step in path.split("/"))


def _amount(element: etree._Element, path: str) -> Decimal:
    return Decimal(element.findtext(_qualified(path)) or "0")


def validate_orders_file(path: Path) -> None:
    """Raise ``XmlExportInvalid`` unless ``path`` is a valid, consistent export file (see the module doc)."""
    seen = _Seen()
    totals: dict[str, list[Decimal]] = {}
    try:
        for _, element in etree.iterparse(str(path), events=("end",), schema=orders_schema(),
                                          tag=(_ORDER, _SKIPPED, _SKIPPED_ORDERS, _FILE_TOTALS),
                                          resolve_entities=False, no_network=True, load_dtd=False):
            if element.tag == _ORDER:
                seen.orders += 1
                _check_order(path, element, totals)
            elif element.tag == _SKIPPED:
                seen.skipped += 1
            elif element.tag == _SKIPPED_ORDERS:
                seen.skipped_count = int(element.get("count", "0"))
                if seen.skipped_count != seen.skipped:
                    _refuse(path, element, f"SkippedOrders says count=\"{seen.skipped_count}\" but lists "
                                           f"{seen.skipped} orders")
            else:
                _check_file_totals(path, element, seen, totals)
            element.clear(keep_tail=True)
            while element.getprevious() is not None:
                parent = element.getparent()
                assert parent is not None
                del parent[0]
    except etree.XMLSyntaxError as error:
        line = int(error.position[0])
        raise XmlExportInvalid(f"{path.name} line {line}: {_plain(error.msg)}", line=line) from None
    except OSError as error:
        raise XmlExportInvalid(f"{path.name} cannot be read: {error.strerror or error}") from None


def _plain(message: str) -> str:
    """lxml's message without the namespace in every element name."""
    return message.replace(_N, "").rstrip(".").rsplit(", line ", 1)[0]


def _refuse(path: Path, element: etree._Element, problem: str) -> NoReturn:
    line: int | None = element.sourceline  # type: ignore[assignment]  # lxml-stubs: int, or None when unknown
    raise XmlExportInvalid(f"{path.name} line {line}: {problem}", line=line)


def _check_order(path: Path, order: etree._Element, totals: dict[str, list[Decimal]]) -> None:
    ref = order.findtext(_qualified("OrderRef"))
    lines = order.findall(_qualified("Lines/Line"))
    for position, line in enumerate(lines, start=1):
        if line.get("number") != str(position):
            _refuse(path, line, f"order {ref!r}: line number=\"{line.get('number')}\" should be {position}")
    net = sum((_amount(line, "Net") for line in lines), Decimal(0)) + _amount(order, "Shipping/Net")
    total_net, vat, gross = (_amount(order, f"Totals/{name}") for name in ("Net", "Vat", "Gross"))
    if net != total_net:
        _refuse(path, order, f"order {ref!r}: Totals/Net {total_net} is not its lines plus shipping ({net})")
    if total_net + vat != gross:
        _refuse(path, order, f"order {ref!r}: Totals/Gross {gross} is not Net {total_net} + Vat {vat}")
    sums = totals.setdefault(order.findtext(_qualified("Currency")) or "", [Decimal(0)] * 4)
    for index, value in enumerate((Decimal(1), total_net, vat, gross)):
        sums[index] += value


def _check_file_totals(path: Path, element: etree._Element, seen: _Seen, totals: dict[str, list[Decimal]]) -> None:
    stated = int(element.findtext(_qualified("OrderCount")) or "0")
    if stated != seen.orders:
        _refuse(path, element, f"FileTotals/OrderCount is {stated} but the file has {seen.orders} orders")
    skipped = int(element.findtext(_qualified("SkippedCount")) or "0")
    if skipped != seen.skipped:
        _refuse(path, element, f"FileTotals/SkippedCount is {skipped} but the file lists {seen.skipped}")
    listed: set[str] = set()
    for total in element.findall(_qualified("CurrencyTotal")):
        currency = total.get("currency", "")
        listed.add(currency)
        actual = totals.get(currency)
        if actual is None:
            _refuse(path, total, f"FileTotals has a {currency} total but no order is in {currency}")
            return
        for index, name in enumerate(("OrderCount", "Net", "Vat", "Gross")):
            value = Decimal(total.findtext(_qualified(name)) or "0")
            if value != actual[index]:
                _refuse(path, total, f"FileTotals {currency} {name} is {value} but its orders add up to "
                                     f"{actual[index]}")
    missing = sorted(set(totals) - listed)
    if missing:
        _refuse(path, element, f"FileTotals has no total for {', '.join(missing)}")
