"""``content=invoices``: an issued invoice or credit note as one UBL 2.1 / Peppol BIS 3.0 file.

``ubl_document(doc)`` is ``invoicing.delivery.einvoice.ubl.build_ubl`` — the same XML the
e-invoice delivery produces, so the accounts package and the buyer's e-invoice inbox see one
document — checked with the EN 16931 validation (UBL 2.1 XSD + CEN Schematron) before it is
returned: a file that would fail the customer's import is never delivered. Pure and
deterministic (same document → same bytes). The first call in a process compiles the
Schematron (a few seconds); later calls take milliseconds.
"""

from __future__ import annotations

from invoicing.billing.document import InvoiceDocument
from invoicing.delivery.einvoice import validation
from invoicing.delivery.einvoice.profile import EInvoiceUnavailable
from invoicing.delivery.einvoice.ubl import build_ubl
from invoicing.integrations.xml_export.schema import XmlExportInvalid

__all__ = ["ubl_document"]


def ubl_document(doc: InvoiceDocument) -> bytes:
    """The UBL XML (UTF-8) of ``doc``: an ``Invoice``, or a ``CreditNote`` for ``doc.kind == "credit_note"``.

    Raises ``XmlExportInvalid`` when ``doc`` cannot be an EN 16931 document (e.g. a currency with
    three decimals: the reason from ``profile.refusal``) or when the XML fails the XSD or a fatal
    Schematron rule (the rules that failed, for the ops person; a bug, never the customer's fault).
    """
    what = "credit note" if doc.kind == "credit_note" else "invoice"
    try:
        xml = build_ubl(doc)
    except EInvoiceUnavailable as refused:
        raise XmlExportInvalid(f"Cannot export {what} {doc.number} as UBL: {refused.reason}.") from None
    report = validation.validate(xml, "ubl")
    if not report.ok:
        raise XmlExportInvalid(f"The UBL of {what} {doc.number} is not valid EN 16931: {report.summary()}")
    return xml

