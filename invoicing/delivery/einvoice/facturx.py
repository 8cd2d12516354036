"""The invoice PDF as a Factur-X 1.0 (profile EN 16931) hybrid: PDF/A-3b with ``factur-x.xml`` embedded.

``attach_facturx(pdf, doc, xml)`` post-processes the plain PDF that
``invoicing.delivery.pdf`` renders (so the layout code knows nothing of e-invoices)
and adds what PDF/A-3b and Factur-X require:

* an ``/OutputIntent`` (``GTS_PDFA1``) with the sRGB IEC 61966-2.1 ICC profile that
  fpdf2 ships, because the page content paints in DeviceRGB;
* ``factur-x.xml`` as an embedded file stream (Flate-compressed, ``/Subtype
  /text#2Fxml``, size, MD5 checksum and modification date in ``/Params``), its file
  specification with ``/AFRelationship /Alternative`` (the XML is the same invoice in
  another form), referenced from the catalogue's ``/AF`` array and its
  ``/EmbeddedFiles`` name tree;
* an XMP metadata stream with ``pdfaid:part 3`` / ``conformance B``, the Dublin Core,
  XMP and PDF properties matching the document information dictionary, and the
  Factur-X extension schema (``fx:DocumentType INVOICE``, ``fx:DocumentFileName``,
  ``fx:Version 1.0``, ``fx:ConformanceLevel EN 16931``) declared in
  ``pdfaExtension:schemas`` as PDF/A requires for non-standard properties;
* a PDF 1.7 header and a trailer ``/ID``.

What it relies on from the renderer: every font embedded (fpdf2 embeds TrueType
subsets), no encryption, no JavaScript, colours in DeviceRGB. ``tests/…/einvoice``
checks the result's structure; there is no veraPDF on the CI machine (Java).

Deterministic: every date written (info dictionary, XMP, embedded file) is the
document's issue time, and the file identifier is derived from the content, so the
same document gives the same bytes — resends and the feed serve identical files.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from io import BytesIO
from xml.sax.saxutils import escape

from pypdf import PdfReader, PdfWriter
from pypdf.generic import (
    ArrayObject,
    ByteStringObject,
    DecodedStreamObject,
    DictionaryObject,
    NameObject,
    NumberObject,
    StreamObject,
    TextStringObject,
)

from invoicing.billing.document import InvoiceDocument

__all__ = ["FILENAME", "attach_facturx"]

FILENAME = "factur-x.xml"
FX_NAMESPACE = "urn:factur-x:pdfa:CrossIndustryDocument:invoice:1p0#"
CONFORMANCE = "EN 16931"
PRODUCER = "InvoiceBot (fpdf2, pypdf)"


def attach_facturx(pdf: bytes, doc: InvoiceDocument, xml: bytes) -> bytes:
    """``pdf`` (a plain fpdf2 rendering of ``doc``) as PDF/A-3b with ``xml`` (its CII) embedded."""
    writer = PdfWriter(clone_from=PdfReader(BytesIO(pdf)))
    writer.pdf_header = b"%PDF-1.7"  # PDF/A-3 is based on PDF 1.7 (embedded files, /AF)
    moment = doc.issued_at.astimezone(UTC)
    pdf_date = moment.strftime("D:%Y%m%d%H%M%S+00'00'")
    info = {key: str(value) for key, value in (writer.metadata or {}).items()}
    info.update({"/Producer": PRODUCER, "/CreationDate": pdf_date, "/ModDate": pdf_date})
    writer.add_metadata(info)
    filespec = writer._add_object(_filespec(writer, xml, pdf_date))
    catalog = writer._root_object
    catalog[NameObject("/AF")] = writer._add_object(ArrayObject([filespec]))
    catalog[NameObject("/Names")] = DictionaryObject({
        NameObject("/EmbeddedFiles"): DictionaryObject({
            NameObject("/Names"): ArrayObject([TextStringObject(FILENAME), filespec]),
        }),
    })
    catalog[NameObject("/Metadata")] = writer._add_object(_xmp_stream(info, moment))
    catalog[NameObject("/OutputIntents")] = ArrayObject([writer._add_object(_output_intent(writer))])
    catalog[NameObject("/PageMode")] = NameObject("/UseAttachments")
    digest = hashlib.md5(pdf + xml, usedforsecurity=False).digest()  # identifier, not security
    writer._ID = ArrayObject([ByteStringObject(digest), ByteStringObject(digest)])
    out = BytesIO()
    writer.write(out)
    return out.getvalue()


def _filespec(writer: PdfWriter, xml: bytes, pdf_date: str) -> DictionaryObject:
    stream = DecodedStreamObject()
    stream.set_data(xml)
    embedded = stream.flate_encode()
    embedded.update({
        NameObject("/Type"): NameObject("/EmbeddedFile"),
        NameObject("/Subtype"): NameObject("/text/xml"),
        NameObject("/Params"): DictionaryObject({
            NameObject("/ModDate"): TextStringObject(pdf_date),
            NameObject("/Size"): NumberObject(len(xml)),
            NameObject("/CheckSum"): ByteStringObject(hashlib.md5(xml, usedforsecurity=False).digest()),
        }),
    })
    file_ref = writer._add_object(embedded)
    return DictionaryObject({
        NameObject("/Type"): NameObject("/Filespec"),
        NameObject("/F"): TextStringObject(FILENAME),
        NameObject("/UF"): TextStringObject(FILENAME),
        NameObject("/Desc"): TextStringObject("Factur-X invoice (UN/CEFACT CII, EN 16931)"),
        NameObject("/AFRelationship"): NameObject("/Alternative"),
        NameObject("/EF"): DictionaryObject({NameObject("/F"): file_ref, NameObject("/UF"): file_ref}),
    })


def _output_intent(writer: PdfWriter) -> DictionaryObject:
    profile = DecodedStreamObject()
    profile.set_data(_srgb_profile())
    icc: StreamObject = profile.flate_encode()
    icc[NameObject("/N")] = NumberObject(3)
    return DictionaryObject({
        NameObject("/Type"): NameObject("/OutputIntent"),
        NameObject("/S"): NameObject("/GTS_PDFA1"),
        NameObject("/OutputConditionIdentifier"): TextStringObject("sRGB IEC61966-2.1"),
        NameObject("/RegistryName"): TextStringObject("http://www.color.org"),
        NameObject("/Info"): TextStringObject("sRGB2014 (v2)"),
        NameObject("/DestOutputProfile"): writer._add_object(icc),
    })


@cache
def _srgb_profile() -> bytes:
    """sRGB2014 (ICC v2, color.org; copied from fpdf2 so the service process need not import fpdf2)."""
    return resources.files("invoicing.delivery.einvoice").joinpath("icc", "sRGB2014.icc").read_bytes()


def _xmp_stream(info: dict[str, str], moment: datetime) -> StreamObject:
    stream = DecodedStreamObject()
    stream.set_data(_xmp(info, moment).encode("utf-8"))
    stream.update({NameObject("/Type"): NameObject("/Metadata"), NameObject("/Subtype"): NameObject("/XML")})
    compressed: StreamObject = stream.flate_encode()
    return compressed


def _xmp(info: dict[str, str], moment: datetime) -> str:
    """The XMP packet; its values are those of the info dictionary (PDF/A requires them to agree)."""
    when = moment.strftime("%Y-%m-%dT%H:%M:%S+00:00")

    def text(key: str) -> str:
        return escape(info.get(key, ""))

    def lang_alt(tag: str, key: str) -> str:
        if not info.get(key):
            return ""
        return f'<{tag}><rdf:Alt><rdf:li xml:lang="x-default">{text(key)}</rdf:li></rdf:Alt></{tag}>'

    creator = f"<dc:creator><rdf:Seq><rdf:li>{text('/Author')}</rdf:li></rdf:Seq></dc:creator>" \
        if info.get("/Author") else ""
    keywords = f"<pdf:Keywords>{text('/Keywords')}</pdf:Keywords>" if info.get("/Keywords") else ""
    creator_tool = f"<xmp:CreatorTool>{text('/Creator')}</xmp:CreatorTool>" if info.get("/Creator") else ""
    return f"""<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/">
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
<rdf:Description rdf:about="" xmlns:pdfaid="http://www.aiim.org/pdfa/ns/id/">
<pdfaid:part>3</pdfaid:part><pdfaid:conformance>B</pdfaid:conformance>
</rdf:Description>
<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/">
<dc:format>application/pdf</dc:format>{lang_alt("dc:title", "/Title")}{creator}{lang_alt("dc:description", "/Subject")}
</rdf:Description>
<rdf:Description rdf:about="" xmlns:pdf="http://ns.adobe.com/pdf/1.3/">
<pdf:Producer>{text("/Producer")}</pdf:Producer>{keywords}
</rdf:Description>
<rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/">
{creator_tool}<xmp:CreateDate>{when}</xmp:CreateDate><xmp:ModifyDate>{when}</xmp:ModifyDate><xmp:MetadataDate>{when}</xmp:MetadataDate>
</rdf:Description>
<rdf:Description rdf:about="" xmlns:pdfaExtension="http://www.aiim.org/pdfa/ns/extension/"
 xmlns:pdfaSchema="http://www.aiim.org/pdfa/ns/schema#" xmlns:pdfaProperty="http://www.aiim.org/pdfa/ns/property#">
<pdfaExtension:schemas><rdf:Bag><rdf:li rdf:parseType="Resource">
<pdfaSchema:schema>Factur-X PDFA Extension Schema</pdfaSchema:schema>
<pdfaSchema:namespaceURI>{FX_NAMESPACE}</pdfaSchema:namespaceURI>
<pdfaSchema:prefix>fx</pdfaSchema:prefix>
<pdfaSchema:property><rdf:Seq>
{_property("DocumentFileName", "The name of the embedded XML document")}
{_property("DocumentType", "The type of the hybrid document in capital letters, e.g. INVOICE or ORDER")}
{_property("Version", "The actual version of the standard applying to the embedded XML document")}
{_property("ConformanceLevel", "The conformance level of the embedded XML document")}
</rdf:Seq></pdfaSchema:property>
</rdf:li></rdf:Bag></pdfaExtension:schemas>
</rdf:Description>
<rdf:Description rdf:about="" xmlns:fx="{FX_NAMESPACE}">
<fx:DocumentType>INVOICE</fx:DocumentType><fx:DocumentFileName>{FILENAME}</fx:DocumentFileName>
<fx:Version>1.0</fx:Version><fx:ConformanceLevel>{CONFORMANCE}</fx:ConformanceLevel>
</rdf:Description>
</rdf:RDF>
</x:xmpmeta>
<?xpacket end="w"?>"""


def _property(name: str, description: str) -> str:
    return (f'<rdf:li rdf:parseType="Resource"><pdfaProperty:name>{name}</pdfaProperty:name>'
            "<pdfaProperty:valueType>Text</pdfaProperty:valueType>"
            "<pdfaProperty:category>external</pdfaProperty:category>"
            f"<pdfaProperty:description>{description}</pdfaProperty:description></rdf:li>")
