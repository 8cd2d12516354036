"""The orders writer: what is written is exactly what was given, valid, streamed and deterministic."""

from __future__ import annotations

import io
import tracemalloc
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from invoicing.integrations.xml_export.records import (
    ExportHeader,
    ExportOrder,
    clean_text,
    order_problem,
)
from invoicing.integrations.xml_export.sample import (
    SAMPLE_HEADER,
    export_order,
    generated_orders,
    line,
    sample_orders,
)
from invoicing.integrations.xml_export.schema import XmlExportInvalid
from invoicing.integrations.xml_export.validation import orders_schema, validate_orders_file
from invoicing.integrations.xml_export.writer import NAMESPACE, SCHEMA_VERSION, write_orders

N = {"x": NAMESPACE}
DAY = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def written(orders: list[ExportOrder], header: ExportHeader = SAMPLE_HEADER) -> bytes:
    out = io.BytesIO()
    assert write_orders(out, header, orders) == len(orders)
    return out.getvalue()


def parsed(data: bytes) -> etree._Element:
    root = etree.fromstring(data)
    assert orders_schema().validate(root), orders_schema().error_log
    return root


def text(node: etree._Element, path: str) -> str | None:
    return node.findtext("/".join(f"x:{step}" for step in path.split("/")), namespaces=N)


def one(description: str = "Mug", *, ref: str = "ORD-1", error: str | None = None, **changes: object) -> ExportOrder:
    order = export_order(7, ref, DAY, "GB", "GBP", (line("MUG", description, 2, "4.10", "20", "S", "GBP"),),
                         shipping="3.95", shipping_rate="20", error=error)
    return replace(order, **changes)  # type: ignore[arg-type]


def test_every_field_reads_back_exactly_as_given() -> None:
    orders = sample_orders()
    root = parsed(written(orders))
    assert root.tag == f"{{{NAMESPACE}}}OrderExport" and root.get("version") == SCHEMA_VERSION == "1.0"
    header = root.find("x:Header", N)
    assert header is not None
    h = SAMPLE_HEADER
    assert [text(header, p) for p in ("Tenant", "Company", "CompanyName", "Sequence", "FileName", "Created",
                                      "Period/DispatchedFrom", "Period/DispatchedBefore")] == [
        h.tenant, h.company, h.company_name, "17", "inkwell-zeta-000017.xml", "2026-11-29T00:00:42+00:00",
        "2026-11-22T00:00:00+00:00", "2026-11-29T00:00:00+00:00"]
    skipped = root.findall("x:SkippedOrders/x:SkippedOrder", N)
    assert [(text(s, "OrderRef"), text(s, "Reason")) for s in skipped] == list(h.skipped)
    assert root.find("x:SkippedOrders", N).get("count") == "2"  # type: ignore[union-attr]
    nodes = root.findall("x:Orders/x:Order", N)
    assert len(nodes) == len(orders)
    for node, order in zip(nodes, orders, strict=True):
        assert int(node.get("revision", "")) == order.revision
        assert int(text(node, "OrderId") or "") == order.order_id
        assert text(node, "OrderRef") == order.order_ref
        assert datetime.fromisoformat(text(node, "DispatchedAt") or "") == order.dispatched_at
        assert (text(node, "ShipToCountry"), text(node, "Currency")) == (order.ship_to_country, order.currency)
        assert text(node, "InvoiceNumber") == order.invoice_number
        assert text(node, "Error") == order.error
        assert [Decimal(text(node, p) or "") for p in ("Shipping/Net", "Shipping/Vat", "Totals/Net", "Totals/Vat",
                                                         "Totals/Gross")] == [
            order.shipping_net, order.shipping_vat, order.net_total, order.vat_total, order.gross_total]
        lines = node.findall("x:Lines/x:Line", N)
        assert [int(n.get("number", "")) for n in lines] == list(range(1, len(order.lines) + 1))
        for n, item in zip(lines, order.lines, strict=True):
            assert (text(n, "Sku"), text(n, "Description"), int(text(n, "Quantity") or "")) == (
                item.sku, item.description, item.quantity)
            assert Decimal(text(n, "UnitCost") or "") == item.unit_cost
            assert Decimal(text(n, "VatRate") or "") == item.vat_rate
            assert text(n, "VatCategory") == item.vat_category
            assert (Decimal(text(n, "Net") or ""), Decimal(text(n, "Vat") or "")) == (item.net, item.vat)
    totals = root.find("x:FileTotals", N)
    assert totals is not None
    assert (text(totals, "OrderCount"), text(totals, "SkippedCount")) == ("5", "2")
    by_currency = {t.get("currency"): t for t in totals.findall("x:CurrencyTotal", N)}
    assert list(by_currency) == ["EUR", "GBP"]
    for currency, node in by_currency.items():
        mine = [o for o in orders if o.currency == currency]
        assert int(text(node, "OrderCount") or "") == len(mine)
        for name, attr in (("Net", "net_total"), ("Vat", "vat_total"), ("Gross", "gross_total")):
            assert Decimal(text(node, name) or "") == sum((getattr(o, attr) for o in mine), Decimal(0))


def test_amounts_are_plain_decimals_never_rounded_or_floated() -> None:
    big = export_order(1, "BIG", DAY, "GB", "GBP", (line("X", "", 100_000, "9999999.9999", "20", "S", "GBP"),))
    tenths = [export_order(2 + i, f"T{i}", DAY, "GB", "GBP", (line("X", "", 1, "0.10", "0", "Z", "GBP"),))
              for i in range(3)]
    data = written([big, *tenths])
    assert b"<UnitCost>9999999.9999</UnitCost>" in data and b"<Net>999999999990.00</Net>" in data
    # 0.10 + 0.10 + 0.10 is 0.30 (a float sum would be 0.30000000000000004); no exponent anywhere.
    totals = parsed(data).find("x:FileTotals/x:CurrencyTotal", N)
    assert totals is not None
    assert Decimal(text(totals, "Net") or "") == big.net_total + Decimal("0.30")
    assert b"E+" not in data and b"e+" not in data
    assert b"<UnitCost>0.10</UnitCost>" in data and b"<VatRate>0</VatRate>" in data


def test_a_three_decimal_currency_keeps_its_third_decimal_and_a_zero_decimal_one_shows_two() -> None:
    bhd = export_order(1, "B", DAY, "BH", "BHD", (line("X", "", 3, "1.2345", "10", "S", "BHD"),))
    jpy = export_order(2, "J", DAY, "JP", "JPY", (line("X", "", 3, "1000", "10", "S", "JPY"),))
    data = written([bhd, jpy])
    parsed(data)
    assert b"<Net>3.704</Net>" in data and b"<Vat>0.370</Vat>" in data
    assert b"<Net>3000.00</Net>" in data and b"<Vat>300.00</Vat>" in data


def test_markup_lookalikes_and_cdata_ends_are_escaped_and_read_back() -> None:
    hostile = "<b>&amp; ]]> \"quoted\" 'single' &#x41; <!-- x --> <![CDATA[ y ]]>\ttab"
    header = replace(SAMPLE_HEADER, company_name=hostile[:200], skipped=(("R<1>&", hostile),))
    data = written([one(hostile, ref="A&B<C>]]>", error=hostile)], header)
    root = parsed(data)
    order = root.find("x:Orders/x:Order", N)
    assert order is not None
    assert text(order, "OrderRef") == "A&B<C>]]>"
    assert text(order, "Lines/Line/Description") == hostile and text(order, "Error") == hostile
    assert text(root, "Header/CompanyName") == hostile[:200]
    assert text(root, "SkippedOrders/SkippedOrder/Reason") == hostile
    assert b"]]>" not in data and b"<b>" not in data


def test_right_to_left_cjk_and_astral_text_read_back() -> None:
    words = "עברית عربي 日本語の説明 中文 한국어 😀🧵 e\u0301 \u200f\u202e"
    root = parsed(written([one(words, error=words)]))
    assert text(root, "Orders/Order/Lines/Line/Description") == words
    assert text(root, "Orders/Order/Error") == words


def test_line_breaks_in_free_text_survive_including_carriage_returns() -> None:
    description = "first line\r\nsecond line\rthird\nfourth"
    data = written([one(description)])
    assert text(parsed(data), "Orders/Order/Lines/Line/Description") == description


def test_control_characters_are_stripped_from_free_text() -> None:
    dirty = "Mug\x00 with\x0b vertical\x1f tab\ufffe\uffff\ud800 end"
    data = written([one(dirty, error="bad\x07 bell")], replace(SAMPLE_HEADER, skipped=(("X1", "why\x1b"),)))
    root = parsed(data)
    assert text(root, "Orders/Order/Lines/Line/Description") == "Mug with vertical tab end" == clean_text(dirty)
    assert text(root, "Orders/Order/Error") == "bad bell"
    assert text(root, "SkippedOrders/SkippedOrder/Reason") == "why"


@pytest.mark.parametrize("ref", ["ORD\x0b1", "ORD\x001", "ORD\n1", "ORD\t1", "   ", ""])
def test_control_characters_in_an_identifier_refuse_the_order_never_alter_it(ref: str) -> None:
    order = one(ref=ref)
    assert order_problem(order) is not None and "order ref" in (order_problem(order) or "")
    with pytest.raises(XmlExportInvalid, match="order ref"):
        written([one(), order])


@pytest.mark.parametrize(("changes", "reason"), [
    ({"dispatched_at": datetime(2026, 11, 23, 9, 0)}, "has no time zone"),
    ({"currency": "gbp"}, "ISO 4217"),
    ({"currency": "POUND"}, "ISO 4217"),
    ({"ship_to_country": "GBR"}, "ISO 3166"),
    ({"net_total": Decimal("99.99"), "gross_total": Decimal("99.99")}, "not its lines plus shipping"),
    ({"gross_total": Decimal("1.00")}, "not net"),
    ({"shipping_net": Decimal("-1.00")}, "negative"),
    ({"vat_total": Decimal("1.005")}, "not rounded to 0.01 GBP"),
    ({"vat_total": Decimal("NaN")}, "not a decimal amount"),
    ({"revision": -1}, "revision -1"),
    ({"lines": ()}, "no lines"),
    ({"invoice_number": "X" * 41}, "invoice number is 41 characters long (at most 40)"),
    ({"order_ref": "R" * 65}, "order ref is 65 characters long (at most 64)"),
])
def test_an_order_the_format_cannot_carry_is_refused_with_the_reason(changes: dict[str, object], reason: str) -> None:
    order = one(**changes)
    assert reason in (order_problem(order) or "")
    with pytest.raises(XmlExportInvalid, match=f"Cannot write order '{order.order_ref}' to inkwell-zeta-000017.xml"):
        written([order])


@pytest.mark.parametrize(("changes", "reason"), [
    ({"sku": "S" * 65}, "SKU is 65 characters"),
    ({"description": "d" * 301}, "longer than 300"),
    ({"quantity": 0}, "quantity 0"),
    ({"unit_cost": Decimal("1.23456")}, "unit cost 1.23456 is not rounded to 0.0001"),
    ({"vat_rate": Decimal("100.5")}, "between 0 and 100"),
    ({"vat_rate": Decimal("5.5555")}, "more than 3 decimals"),
    ({"vat_category": "X"}, "VAT category 'X'"),
])
def test_a_line_the_format_cannot_carry_is_refused_with_its_number(changes: dict[str, object], reason: str) -> None:
    order = one()
    order = replace(order, lines=(order.lines[0], replace(order.lines[0], **changes)))  # type: ignore[arg-type]
    problem = order_problem(order) or ""
    assert "line 2" in problem and reason in problem


def test_a_naive_header_time_is_refused_before_anything_is_written() -> None:
    out = io.BytesIO()
    with pytest.raises(XmlExportInvalid, match="cutoff .* has no time zone"):
        write_orders(out, replace(SAMPLE_HEADER, cutoff=datetime(2026, 11, 29)), [one()])
    assert out.getvalue() == b""


def test_times_are_written_in_utc_with_the_offset() -> None:
    local = DAY.astimezone(timezone(timedelta(hours=-5))) + timedelta(microseconds=999)
    data = written([one(dispatched_at=local)])
    assert text(parsed(data), "Orders/Order/DispatchedAt") == "2026-11-23T09:00:00+00:00"


def test_same_input_gives_the_same_bytes_from_a_list_or_a_generator() -> None:
    first = written(sample_orders())
    assert written(sample_orders()) == first
    out = io.BytesIO()
    write_orders(out, SAMPLE_HEADER, iter(sample_orders()))
    assert out.getvalue() == first


def test_an_empty_selection_is_still_a_valid_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.xml"
    path.write_bytes(written([]))
    validate_orders_file(path)
    assert b"<OrderCount>0</OrderCount>" in path.read_bytes()


class _Sink:
    """A binary sink that keeps only the byte count (so only the writer's own memory is measured)."""

    def __init__(self) -> None:
        self.size = 0

    def write(self, data: bytes) -> int:
        self.size += len(data)
        return len(data)


def test_the_writer_streams_its_memory_does_not_grow_with_the_orders() -> None:
    def peak(count: int) -> tuple[int, int]:
        sink = _Sink()
        tracemalloc.start()
        try:
            write_orders(sink, SAMPLE_HEADER, generated_orders(count))  # type: ignore[arg-type]
            return tracemalloc.get_traced_memory()[1], sink.size
        finally:
            tracemalloc.stop()

    small, _ = peak(200)
    large, size = peak(4_000)
    # 4,000 orders are ~4 MB of XML; kept in memory they would be far more than this margin.
    assert size > 4_000_000
    assert large < small + 512 * 1024, (small, large)


def test_the_writer_reads_the_orders_one_at_a_time() -> None:
    out = io.BytesIO()
    sizes: list[int] = []

    def orders() -> object:
        for order in generated_orders(300):
            sizes.append(len(out.getvalue()))
            yield order

    write_orders(out, SAMPLE_HEADER, orders())  # type: ignore[arg-type]
    # Output reaches the file in buffer-sized pieces while later orders have not been made yet.
    assert sizes[0] < 2_000 and len(set(sizes)) > 20 and sizes[-1] > 200_000, sizes


_TEXT = st.text(st.characters(codec="utf-8"), max_size=300)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(description=_TEXT, error=st.none() | _TEXT)
def test_any_text_reads_back_as_its_xml_characters_and_the_file_stays_valid(description: str,
                                                                             error: str | None) -> None:
    root = parsed(written([one(description, error=error)]))
    assert (text(root, "Orders/Order/Lines/Line/Description") or "") == clean_text(description)
    if error is not None:
        assert (text(root, "Orders/Order/Error") or "") == clean_text(error)
