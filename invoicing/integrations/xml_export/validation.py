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

import re
import threading
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import NoReturn

from lxml import etree

from invoicing.integrations.xml_export.schema import NAMESPACE, XmlExportInvalid, schema_path

__all__ = ["XmlExportInvalid", "validate_orders_file"]

_lock = threading.Lock()
_schema: etree.XMLSchema | None = None
_sections: etree.XMLSchema | None = None
_N = f"{{{NAMESPACE}}}"
_ROOT = "OrderExport"
_SECTIONS = ("Header", "SkippedOrders", "Order", "FileTotals")
_ORDER, _SKIPPED_ORDERS, _FILE_TOTALS = f"{_N}Order", f"{_N}SkippedOrders", f"{_N}FileTotals"


def orders_schema() -> etree.XMLSchema:
    """The compiled XSD (compiled once per process)."""
    global _schema
    with _lock:
        if _schema is None:
            _schema = etree.XMLSchema(etree.parse(str(schema_path())))
        return _schema


def _sections_schema() -> etree.XMLSchema:
    """The same XSD with its sections declared as roots, to validate one section (an order) at a time.

    libxml2 validates a streamed document without line numbers (and reports at the end), so each
    section is also validated on its own as soon as it is parsed: the first bad order is reported
    with its line, while the rest of the file has not been read.
    """
    global _sections
    with _lock:
        if _sections is None:
            roots = "".join(f'<xs:element name="{name}" type="{name}Type"/>' for name in _SECTIONS)
            text = (f'<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns="{NAMESPACE}" '
                    f'targetNamespace="{NAMESPACE}" elementFormDefault="qualified">'
                    f'<xs:include schemaLocation="{schema_path().name}"/>{roots}</xs:schema>')
            base = str(schema_path().with_name("sections.xsd"))  # not the XSD's own name: it may not include itself
            _sections = etree.XMLSchema(etree.fromstring(text.encode("utf-8"), base_url=base))
        return _sections


@dataclass
class _Seen:
    orders: int = 0
    skipped: int = 0
    line: int = 1
    root_line: int = 1
    complete: bool = False
    order_ids: set[int] = field(default_factory=set)


@lru_cache(maxsize=64)
def _qualified(path: str) -> str:
    return "/".join(_N + step for step in path.split("/"))


def _amount(element: etree._Element, path: str) -> Decimal:
    return Decimal(element.findtext(_qualified(path)) or "0")


def validate_orders_file(path: Path) -> None:
    """Raise ``XmlExportInvalid`` unless ``path`` is a valid, consistent export file (see the module doc)."""
    _check_readable(path)
    _refuse_doctype(path)
    seen = _Seen()
    totals: dict[str, list[Decimal]] = {}
    sections = _sections_schema()
    try:
        for event, element in etree.iterparse(str(path), events=("start", "end"), schema=orders_schema(),
                                              tag=(f"{{*}}{_ROOT}", *(_N + name for name in _SECTIONS)),
                                              no_network=True, load_dtd=False):
            # resolve_entities=False would make lxml drop the parser's own errors when a schema is plugged in
            # (a truncated file "passes"): entities are refused here instead, with the whole DOCTYPE.
            if event == "start":
                if etree.QName(element).localname == _ROOT:
                    seen.root_line = element.sourceline or 1
                    if element.getroottree().docinfo.doctype:
                        _refuse(path, element, "the file has a DOCTYPE (DTDs and entities are not allowed)")
                continue
            if element.tag != _N + _ROOT and not sections.validate(element):
                first = sections.error_log.last_error  # type: ignore[attr-defined]  # not in lxml-stubs
                raise XmlExportInvalid(f"{path.name} line {first.line}: {_plain(first.message)}", line=first.line)
            seen.line = int(element.sourceline or seen.line)
            if element.tag == _ORDER:
                _check_order(path, element, seen, totals)
            elif element.tag == _SKIPPED_ORDERS:
                _check_skipped(path, element, seen)
            elif element.tag == _FILE_TOTALS:
                _check_file_totals(path, element, seen, totals)
                seen.complete = True
            element.clear(keep_tail=True)
            while element.getprevious() is not None:
                parent = element.getparent()
                assert parent is not None
                del parent[0]
        if not seen.complete:
            _refuse_at(path, seen.line, "the file ends before its FileTotals (it is incomplete)")
    except etree.XMLSyntaxError as error:
        line = int(error.position[0])
        if not line:  # a document-level XSD error (root, version, a missing section): no line from libxml2
            line = seen.root_line if _ROOT in error.msg or "global declaration" in error.msg else seen.line
        raise XmlExportInvalid(f"{path.name} line {line}: {_plain(error.msg)}", line=line) from None
    except OSError as error:
        raise XmlExportInvalid(f"{path.name} cannot be read: {error.strerror or error}") from None


#: What may come before the root element: an XML declaration, comments, processing instructions, space.
_PROLOG_ITEM = re.compile(rb"\s+|<\?.*?\?>|<!--.*?-->", re.S)
_PROLOG_BYTES = 1 << 16


def _refuse_doctype(path: Path) -> None:
    """Refuse a DOCTYPE before streaming: lxml may report an undefined entity (a DTD we do not load) before
    it hands over the root's start event (6.2 does), and the ops message must say *why* the file is wrong."""
    with path.open("rb") as source:
        head = source.read(_PROLOG_BYTES)
    at = 3 if head.startswith(b"\xef\xbb\xbf") else 0
    while (item := _PROLOG_ITEM.match(head, at)) is not None and item.end() > at:
        at = item.end()
    if head.startswith(b"<!DOCTYPE", at):
        line = head.count(b"\n", 0, at) + 1
        _refuse_at(path, line, "the file has a DOCTYPE (DTDs and entities are not allowed)")


def _check_readable(path: Path) -> None:
    try:
        size = path.stat().st_size
    except OSError as error:
        raise XmlExportInvalid(f"{path.name} cannot be read: {error.strerror or error}") from None
    if size == 0:
        raise XmlExportInvalid(f"{path.name} line 1: the file is empty", line=1)


def _plain(message: str) -> str:
    """lxml's message without the namespaces in element names and without its own position suffix."""
    return re.sub(r"\{[^}]*\}", "", message).rstrip(".").rsplit(", line ", 1)[0]


def _refuse(path: Path, element: etree._Element, problem: str) -> NoReturn:
    line: int = element.sourceline or 0  # type: ignore[assignment]  # lxml-stubs: int, or None when unknown
    _refuse_at(path, line, problem)


def _refuse_at(path: Path, line: int, problem: str) -> NoReturn:
    raise XmlExportInvalid(f"{path.name} line {line}: {problem}", line=line)


def _check_skipped(path: Path, element: etree._Element, seen: _Seen) -> None:
    seen.skipped = len(element)
    count = int(element.get("count", "0"))
    if count != seen.skipped:
        _refuse(path, element, f"SkippedOrders says count=\"{count}\" but lists {seen.skipped} orders")


def _check_order(path: Path, order: etree._Element, seen: _Seen, totals: dict[str, list[Decimal]]) -> None:
    seen.orders += 1
    ref = order.findtext(_qualified("OrderRef"))
    order_id = order.find(_qualified("OrderId"))
    assert order_id is not None and order_id.text is not None  # the XSD requires it
    if int(order_id.text) in seen.order_ids:
        _refuse(path, order_id, f"order {ref!r}: OrderId {order_id.text} is already in this file (Duplicate)")
    seen.order_ids.add(int(order_id.text))
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
