"""The XSD and the committed sample: documented, versioned, as strict as the database, never drifting."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest
from lxml import etree

from invoicing.integrations.xml_export import records
from invoicing.integrations.xml_export.file_names import MAX_FILE_NAME, file_name
from invoicing.integrations.xml_export.sample import SAMPLE_HEADER, sample_orders, sample_path
from invoicing.integrations.xml_export.schema import NAMESPACE, SCHEMA_VERSION, schema_path
from invoicing.integrations.xml_export.validation import validate_orders_file
from invoicing.integrations.xml_export.writer import write_orders

XS = {"xs": "http://www.w3.org/2001/XMLSchema"}
REPOSITORY = Path(__file__).resolve().parents[4]


def xsd() -> etree._Element:
    return etree.parse(str(schema_path())).getroot()


def test_the_schema_is_found_in_the_checkout_under_docs_xml() -> None:
    assert schema_path() == REPOSITORY / "docs" / "xml" / "invoicebot-orders-1.0.xsd"


def test_the_schema_is_versioned_by_namespace_and_version() -> None:
    root = xsd()
    assert root.get("targetNamespace") == NAMESPACE == f"urn:invoicebot:xml-export:orders:{SCHEMA_VERSION}"
    assert root.get("version") == SCHEMA_VERSION and schema_path().name == f"invoicebot-orders-{SCHEMA_VERSION}.xsd"


def test_every_element_attribute_and_type_is_documented() -> None:
    undocumented = [
        f"{node.tag.split('}')[1]} {node.get('name')}"
        for node in xsd().iter(f"{{{XS['xs']}}}element", f"{{{XS['xs']}}}attribute", f"{{{XS['xs']}}}simpleType")
        if not (node.findtext("xs:annotation/xs:documentation", namespaces=XS) or "").strip()
    ]
    assert undocumented == []


def test_the_revision_documentation_says_a_later_revision_replaces_the_earlier_export() -> None:
    revision = xsd().find(".//xs:attribute[@name='revision']", XS)
    assert revision is not None
    assert "REPLACES" in (revision.findtext("xs:annotation/xs:documentation", namespaces=XS) or "")


@pytest.mark.parametrize(("type_name", "length"), [
    ("OrderRefType", records.ORDER_REF_LENGTH), ("SkuType", records.SKU_LENGTH),
    ("DescriptionType", records.DESCRIPTION_LENGTH), ("InvoiceNumberType", records.INVOICE_NUMBER_LENGTH),
    ("TenantType", records.TENANT_LENGTH), ("CompanyType", records.COMPANY_LENGTH),
    ("CompanyNameType", records.COMPANY_NAME_LENGTH), ("FileNameType", MAX_FILE_NAME),
])
def test_text_lengths_are_the_database_columns(type_name: str, length: int) -> None:
    facet = xsd().find(f"xs:simpleType[@name='{type_name}']/xs:restriction/xs:maxLength", XS)
    assert facet is not None and int(facet.get("value", "")) == length


def test_vat_categories_are_the_en_16931_codes_we_issue() -> None:
    from invoicing.billing.vat_rules import CATEGORIES

    codes = [e.get("value") for e in xsd().findall("xs:simpleType[@name='VatCategoryType']//xs:enumeration", XS)]
    assert sorted(codes) == sorted(CATEGORIES)


def test_the_committed_sample_is_what_the_writer_writes_now_and_it_validates() -> None:
    out = io.BytesIO()
    write_orders(out, SAMPLE_HEADER, sample_orders())
    assert sample_path().read_bytes() == out.getvalue(), "regenerate it with scripts/xml-sample"
    validate_orders_file(sample_path())


def test_the_sample_script_writes_the_same_file(tmp_path: Path) -> None:
    target = tmp_path / "sample.xml"
    done = subprocess.run([sys.executable, "-m", "invoicing.integrations.xml_export.sample", str(target)],
                          cwd=REPOSITORY, capture_output=True, text=True, check=False, timeout=120)
    assert done.returncode == 0, done.stderr
    assert target.read_bytes() == sample_path().read_bytes()


@pytest.mark.parametrize(("tenant", "company", "sequence", "name"), [
    ("acme", "zeta", 17, "acme-zeta-000017.xml"),
    ("Ink & Thread Ltd", "zeta", 1, "ink-thread-ltd-zeta-000001.xml"),
    ("Druckhaus Müller", "müller_de", 2, "druckhaus-muller-muller_de-000002.xml"),
    ("日本", "jp", 1_234_567, "x-jp-1234567.xml"),
])
def test_file_names_are_slugged_and_deterministic(tenant: str, company: str, sequence: int, name: str) -> None:
    assert file_name(tenant, company, sequence) == name


def test_companies_differing_only_in_underscore_and_hyphen_never_share_a_file_name() -> None:
    assert file_name("acme", "a_b", 1) != file_name("acme", "a-b", 1)


def test_a_file_name_is_at_most_200_characters_and_valid_in_the_schema() -> None:
    name = file_name("t" * 300, "c" * 40, 999_999_999)
    assert len(name) <= MAX_FILE_NAME and name.endswith("-" + "c" * 40 + "-999999999.xml")
    pattern = xsd().find("xs:simpleType[@name='FileNameType']/xs:restriction/xs:pattern", XS)
    assert pattern is not None
    import re

    assert re.fullmatch(pattern.get("value", "").replace("\\-", "-"), name)
    with pytest.raises(ValueError):
        file_name("acme", "zeta", 0)
