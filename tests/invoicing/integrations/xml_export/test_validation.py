"""Validation of an export file before upload: valid files pass; every kind of bad file fails at its line."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from invoicing.integrations.xml_export.sample import SAMPLE_HEADER, generated_orders, sample_orders, sample_path
from invoicing.integrations.xml_export.schema import XmlExportInvalid
from invoicing.integrations.xml_export.validation import validate_orders_file
from invoicing.integrations.xml_export.writer import write_orders

REPOSITORY = Path(__file__).resolve().parents[4]


@pytest.fixture
def sample_text() -> str:
    out = io.BytesIO()
    write_orders(out, SAMPLE_HEADER, sample_orders())
    return out.getvalue().decode("utf-8")


def broken(tmp_path: Path, text: str, old: str, new: str, *, occurrence: int = 1) -> tuple[Path, int]:
    """``text`` with the ``occurrence``-th ``old`` replaced by ``new``, and the line number of that change."""
    at = -1
    for _ in range(occurrence):
        at = text.index(old, at + 1)
    changed = text[:at] + new + text[at + len(old):]
    path = tmp_path / "inkwell-zeta-000017.xml"
    path.write_text(changed, encoding="utf-8")
    return path, text.count("\n", 0, at) + 1


def fails(path: Path, *words: str) -> XmlExportInvalid:
    with pytest.raises(XmlExportInvalid) as caught:
        validate_orders_file(path)
    message = str(caught.value)
    assert message.startswith(f"{path.name} line {caught.value.line}: "), message
    for word in words:
        assert word in message, message
    assert "{urn:" not in message, message
    return caught.value


def test_the_committed_sample_validates(tmp_path: Path) -> None:
    validate_orders_file(sample_path())


def test_a_file_the_writer_wrote_validates(tmp_path: Path, sample_text: str) -> None:
    path = tmp_path / "a.xml"
    path.write_text(sample_text, encoding="utf-8")
    validate_orders_file(path)


@pytest.mark.parametrize(("old", "new", "words"), [
    ("<Quantity>3</Quantity>", "<Quantity>0</Quantity>", ["Quantity", "'0'"]),
    ("<Quantity>3</Quantity>", "<Quantity>three</Quantity>", ["Quantity", "three"]),
    ("<Currency>GBP</Currency>", "<Currency>gbp</Currency>", ["Currency", "gbp"]),
    ("<ShipToCountry>GB</ShipToCountry>", "<ShipToCountry>GBR</ShipToCountry>", ["ShipToCountry"]),
    ("<VatCategory>S</VatCategory>", "<VatCategory>X</VatCategory>", ["VatCategory", "'X'"]),
    ("<Net>22.01</Net>", "<Net>22.0</Net>", ["Net", "22.0"]),
    ("<Net>22.01</Net>", "<Net>-22.01</Net>", ["Net", "-22.01"]),
    ("<Net>22.01</Net>", "<Net>2.201E1</Net>", ["Net"]),
    ("<UnitCost>7.335</UnitCost>", "<UnitCost>7.33501</UnitCost>", ["UnitCost"]),
    ("<VatRate>20</VatRate>", "<VatRate>120</VatRate>", ["VatRate", "120"]),
    ("<DispatchedAt>2026-11-23T09:12:00+00:00", "<DispatchedAt>2026-11-23T09:12:00+01:00", ["DispatchedAt"]),
    ("<DispatchedAt>2026-11-23T09:12:00+00:00", "<DispatchedAt>2026-11-23T09:12:00", ["DispatchedAt"]),
    ("<OrderRef>ZT-10481</OrderRef>", f"<OrderRef>{'R' * 65}</OrderRef>", ["OrderRef", "length"]),
    ("<Sku>TEE-BLK-M</Sku>", f"<Sku>{'S' * 65}</Sku>", ["Sku"]),
    ('<Order revision="0">', '<Order revision="-1">', ["revision"]),
    ('<Order revision="0">', "<Order>", ["revision"]),
    ('version="1.0"', 'version="2.0"', ["version"]),
    ("<Sku>TEE-BLK-M</Sku>", "", ["Description", "Expected is", "Sku"]),
    ("<Sku>TEE-BLK-M</Sku>", "<Sku>TEE-BLK-M</Sku><Colour>black</Colour>", ["Colour", "not expected"]),
])
def test_an_invalid_value_or_element_fails_at_its_line_with_the_xsd_reason(
        tmp_path: Path, sample_text: str, old: str, new: str, words: list[str]) -> None:
    path, line = broken(tmp_path, sample_text, old, new)
    assert fails(path, *words).line in (line, line + 1)


def test_an_order_twice_in_one_file_fails(tmp_path: Path, sample_text: str) -> None:
    path, line = broken(tmp_path, sample_text, "<OrderId>4102</OrderId>", "<OrderId>4101</OrderId>")
    assert fails(path, "4101", "Duplicate").line == line


def test_an_order_whose_totals_do_not_add_up_fails_at_the_order(tmp_path: Path, sample_text: str) -> None:
    path, _ = broken(tmp_path, sample_text, "<Net>34.16</Net>", "<Net>34.17</Net>")
    error = fails(path, "order 'ZT-10481'", "Totals/Net 34.17 is not its lines plus shipping (34.16)")
    assert error.line == sample_text.splitlines().index('    <Order revision="0">') + 1


def test_a_gross_that_is_not_net_plus_vat_fails(tmp_path: Path, sample_text: str) -> None:
    path, _ = broken(tmp_path, sample_text, "<Gross>40.99</Gross>", "<Gross>41.99</Gross>")
    fails(path, "Totals/Gross 41.99 is not Net 34.16 + Vat 6.83")


def test_lines_out_of_number_fail(tmp_path: Path, sample_text: str) -> None:
    path, line = broken(tmp_path, sample_text, '<Line number="2">', '<Line number="3">')
    assert fails(path, 'line number="3" should be 2').line == line


def test_file_totals_that_do_not_match_the_orders_fail(tmp_path: Path, sample_text: str) -> None:
    path, _ = broken(tmp_path, sample_text, "<OrderCount>5</OrderCount>", "<OrderCount>6</OrderCount>")
    fails(path, "FileTotals/OrderCount is 6 but the file has 5 orders")
    eur = sample_text.index('<CurrencyTotal currency="EUR">')
    path, line = broken(tmp_path, sample_text[:eur] + sample_text[eur:].replace("<Net>22.80</Net>", "<Net>22.81</Net>",
                                                                               1), "", "")
    fails(path, "FileTotals EUR Net is 22.81 but its orders add up to 22.80")


def test_a_currency_without_its_total_fails(tmp_path: Path, sample_text: str) -> None:
    start = sample_text.index('    <CurrencyTotal currency="EUR">')
    end = sample_text.index("</CurrencyTotal>", start) + len("</CurrencyTotal>\n")
    path, _ = broken(tmp_path, sample_text[:start] + sample_text[end:], "", "")
    fails(path, "FileTotals has no total for EUR")


def test_a_skipped_count_that_does_not_match_fails(tmp_path: Path, sample_text: str) -> None:
    path, line = broken(tmp_path, sample_text, '<SkippedOrders count="2">', '<SkippedOrders count="3">')
    fails(path, 'count="3" but lists 2')


@pytest.mark.parametrize(("cut", "words"), [(0.5, ["Couldn't find end of Start Tag"]), (0.93, ["Premature end"]),
                                            (0.0, ["the file is empty"])])
def test_a_truncated_or_empty_file_fails(tmp_path: Path, sample_text: str, cut: float, words: list[str]) -> None:
    path = tmp_path / "cut.xml"
    path.write_text(sample_text[: int(len(sample_text) * cut)], encoding="utf-8")
    fails(path, *words)


def test_another_namespace_or_root_fails(tmp_path: Path, sample_text: str) -> None:
    path, line = broken(tmp_path, sample_text, "urn:invoicebot:xml-export:orders:1.0", "urn:example:orders")
    assert fails(path, "No matching global declaration").line == line


def test_entities_are_never_resolved_and_the_file_fails(tmp_path: Path, sample_text: str) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    doctype = f'<!DOCTYPE OrderExport [<!ENTITY x SYSTEM "file://{secret}">]>\n'
    body = sample_text.replace("?>\n", "?>\n" + doctype, 1).replace("<Reason>on hold</Reason>", "<Reason>&x;</Reason>")
    path = tmp_path / "xxe.xml"
    path.write_text(body, encoding="utf-8")
    error = fails(path, "DOCTYPE")
    assert "TOP-SECRET" not in str(error) and error.line == 2  # the DOCTYPE's own line


def test_a_missing_file_fails_with_a_message(tmp_path: Path) -> None:
    with pytest.raises(XmlExportInvalid, match="nothing.xml cannot be read"):
        validate_orders_file(tmp_path / "nothing.xml")


#: Run in a child process so its peak RSS is its own (the test process's peak is shared with other tests).
_CHILD = textwrap.dedent("""
    import json, resource, sys
    from pathlib import Path
    from invoicing.integrations.xml_export.validation import orders_schema, validate_orders_file
    orders_schema()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    validate_orders_file(Path(sys.argv[1]))
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"before_kb": before, "after_kb": after}))
""")


def big_file(path: Path, count: int) -> None:
    """A valid file of ``count`` orders, made fast: the writer's output of one order, repeated with new ids."""
    one = io.BytesIO()
    order = next(generated_orders(1))
    write_orders(one, SAMPLE_HEADER, [order])
    text = one.getvalue().decode("utf-8")
    start, end = text.index("    <Order "), text.index("  </Orders>")
    head, block, tail = text[:start], text[start:end], text[end:]
    tail = tail.replace("<OrderCount>1</OrderCount>", f"<OrderCount>{count}</OrderCount>")
    for total in (order.net_total, order.vat_total, order.gross_total):
        tail = tail.replace(f">{total:.2f}<", f">{total * count:.2f}<", 1)
    with path.open("w", encoding="utf-8") as out:
        out.write(head)
        for index in range(count):
            out.write(block.replace(f"<OrderId>{order.order_id}<", f"<OrderId>{index}<")
                           .replace(order.order_ref, f"BIG-{index:07d}"))
        out.write(tail)


def test_a_100000_order_file_validates_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "big.xml"
    big_file(path, 100_000)
    size_mb = path.stat().st_size / 2**20
    assert size_mb > 40  # a tree of this file would take several times its size
    child = subprocess.run([sys.executable, "-c", _CHILD, str(path)], capture_output=True, text=True, check=False,
                           cwd=REPOSITORY, timeout=300)
    assert child.returncode == 0, child.stderr
    rss = json.loads(child.stdout)
    growth_mb = (rss["after_kb"] - rss["before_kb"]) / 1024
    assert growth_mb < 40, f"validating {size_mb:.0f} MB grew RSS by {growth_mb:.0f} MB"


def test_the_100000_order_file_with_one_bad_order_fails_at_that_order(tmp_path: Path) -> None:
    path = tmp_path / "big.xml"
    big_file(path, 20_000)
    text = path.read_text(encoding="utf-8")
    at = text.index("<OrderRef>BIG-0012345</OrderRef>")
    path.write_text(text[:at] + "<OrderRef>BIG-0012345</OrderRef><Oops/>" + text[at + 32:], encoding="utf-8")
    error = fails(path, "Oops")
    # libxml2 numbers lines past 65,535 through a side channel that may be one line late.
    assert error.line in (text.count("\n", 0, at) + 1, text.count("\n", 0, at) + 2)
