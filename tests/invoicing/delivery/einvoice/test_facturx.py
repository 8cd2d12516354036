"""The Factur-X PDF: PDF/A-3b structure, the embedded CII, the XMP, deterministic bytes.

There is no veraPDF here (Java, not on the CI machine), so the PDF/A-3b requirements
that the attachment adds are checked one by one, from the parsed file: header, output
intent with an ICC profile, embedded file stream and its spec (AFRelationship, /AF),
XMP identification + Factur-X extension schema, info dictionary agreeing with the XMP,
trailer ID. The factur-x package reads the XML back as any receiving system would.
"""

from __future__ import annotations

from io import BytesIO
from typing import Any

import facturx
import pytest
from lxml import etree
from pypdf import PdfReader

from invoicing.delivery.einvoice.cii import build_cii
from invoicing.delivery.einvoice.facturx import FX_NAMESPACE
from invoicing.delivery.einvoice.hybrid import facturx_pdf, render_facturx_pdf
from invoicing.delivery.einvoice.validation import validate
from invoicing.delivery.pdf import render_invoice_pdf
from tests.invoicing.delivery.einvoice import documents

RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"


@pytest.fixture(scope="module")
def invoice_pdf() -> bytes:
    return render_facturx_pdf(documents.intra_eu_de_fr())


def _xmp(reader: PdfReader) -> Any:
    metadata = reader.trailer["/Root"]["/Metadata"].get_object()
    assert metadata["/Type"] == "/Metadata" and metadata["/Subtype"] == "/XML"
    return etree.fromstring(metadata.get_data())


def test_embedded_xml_is_the_cii_of_the_document_and_passes_the_rules(invoice_pdf: bytes) -> None:
    doc = documents.intra_eu_de_fr()
    filename, xml = facturx.get_facturx_xml_from_pdf(invoice_pdf, check_xsd=True)
    assert filename == "factur-x.xml"
    assert xml == build_cii(doc)
    assert facturx.get_level(etree.fromstring(xml)) == "en16931"
    assert validate(xml, "cii").ok


def test_embedded_file_is_an_associated_alternative_compressed_stream(invoice_pdf: bytes) -> None:
    reader = PdfReader(BytesIO(invoice_pdf))
    root = reader.trailer["/Root"]
    af = root["/AF"].get_object()
    assert len(af) == 1
    spec = af[0].get_object()
    assert spec["/Type"] == "/Filespec"
    assert spec["/F"] == spec["/UF"] == "factur-x.xml"
    assert spec["/AFRelationship"] == "/Alternative"
    names = root["/Names"]["/EmbeddedFiles"]["/Names"]
    assert names[0] == "factur-x.xml" and names[1].get_object() == spec
    stream = spec["/EF"]["/F"].get_object()
    assert stream["/Type"] == "/EmbeddedFile"
    assert stream["/Subtype"] == "/text/xml"
    assert stream["/Filter"] == "/FlateDecode"
    params = stream["/Params"]
    assert params["/Size"] == len(stream.get_data())
    assert params["/ModDate"] == "D:20261202093000+00'00'"


def test_pdfa_3b_identification_output_intent_and_trailer_id(invoice_pdf: bytes) -> None:
    assert invoice_pdf.startswith(b"%PDF-1.7\n")
    reader = PdfReader(BytesIO(invoice_pdf))
    intents = reader.trailer["/Root"]["/OutputIntents"]
    assert len(intents) == 1
    intent = intents[0].get_object()
    assert intent["/S"] == "/GTS_PDFA1"
    profile = intent["/DestOutputProfile"].get_object()
    assert profile["/N"] == 3
    assert profile.get_data()[36:40] == b"acsp"  # an ICC profile's signature
    assert len(reader.trailer["/ID"]) == 2
    assert "/Encrypt" not in reader.trailer
    xmp = _xmp(reader)
    ns = {"pdfaid": "http://www.aiim.org/pdfa/ns/id/", "rdf": RDF}
    assert xmp.findtext(".//pdfaid:part", namespaces=ns) == "3"
    assert xmp.findtext(".//pdfaid:conformance", namespaces=ns) == "B"


def test_xmp_carries_the_factur_x_extension_schema_and_its_values(invoice_pdf: bytes) -> None:
    xmp = _xmp(PdfReader(BytesIO(invoice_pdf)))
    ns = {"fx": FX_NAMESPACE, "pdfaSchema": "http://www.aiim.org/pdfa/ns/schema#",
          "pdfaProperty": "http://www.aiim.org/pdfa/ns/property#"}
    assert xmp.findtext(".//fx:DocumentType", namespaces=ns) == "INVOICE"
    assert xmp.findtext(".//fx:DocumentFileName", namespaces=ns) == "factur-x.xml"
    assert xmp.findtext(".//fx:Version", namespaces=ns) == "1.0"
    assert xmp.findtext(".//fx:ConformanceLevel", namespaces=ns) == "EN 16931"
    assert xmp.findtext(".//pdfaSchema:namespaceURI", namespaces=ns) == FX_NAMESPACE
    assert xmp.findtext(".//pdfaSchema:prefix", namespaces=ns) == "fx"
    declared = {n.text for n in xmp.iterfind(".//pdfaProperty:name", namespaces=ns)}
    assert declared == {"DocumentType", "DocumentFileName", "Version", "ConformanceLevel"}


def test_info_dictionary_agrees_with_the_xmp_and_dates_are_the_issue_time(invoice_pdf: bytes) -> None:
    reader = PdfReader(BytesIO(invoice_pdf))
    info = reader.metadata
    assert info is not None
    xmp = reader.xmp_metadata
    assert xmp is not None
    assert info["/CreationDate"] == info["/ModDate"] == "D:20261202093000+00'00'"
    assert xmp.xmp_create_date == xmp.xmp_modify_date == xmp.xmp_metadata_date
    assert xmp.xmp_create_date.isoformat().startswith("2026-12-02T09:30:00")
    assert xmp.dc_title == {"x-default": info["/Title"]}
    assert xmp.dc_creator == [info["/Author"]]
    assert xmp.dc_description == {"x-default": info["/Subject"]}
    assert xmp.pdf_producer == info["/Producer"]
    assert xmp.xmp_creator_tool == info["/Creator"]


def test_the_page_content_is_unchanged_and_still_readable(invoice_pdf: bytes) -> None:
    doc = documents.intra_eu_de_fr()
    plain = PdfReader(BytesIO(render_invoice_pdf(doc)))
    hybrid = PdfReader(BytesIO(invoice_pdf))
    assert len(hybrid.pages) == len(plain.pages)
    assert hybrid.pages[0].extract_text() == plain.pages[0].extract_text()
    assert doc.number in hybrid.pages[0].extract_text()


def test_same_document_gives_identical_factur_x_bytes() -> None:
    doc = documents.credit_note()
    first = render_facturx_pdf(doc)
    assert render_facturx_pdf(doc) == first
    _, xml = facturx.get_facturx_xml_from_pdf(first, check_xsd=True)
    assert b"<ram:TypeCode>381</ram:TypeCode>" in xml


def test_a_bhd_invoice_keeps_its_plain_pdf_and_says_why_there_is_no_e_invoice() -> None:
    doc = documents.bhd()
    plain = render_invoice_pdf(doc)
    hybrid = facturx_pdf(plain, doc)
    assert hybrid.data == plain
    assert not hybrid.facturx
    assert "at most 2 decimals" in hybrid.refusal
    assert "/EmbeddedFiles" not in PdfReader(BytesIO(hybrid.data)).trailer["/Root"]
