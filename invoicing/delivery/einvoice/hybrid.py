"""The PDF that is delivered: plain, or Factur-X when the company wants it and the invoice can be one.

``facturx_pdf(pdf, doc)`` never fails the delivery for the e-invoice's sake: when
``profile.refusal(doc)`` gives a reason (a three-decimal currency such as BHD), the
plain PDF goes and ``HybridPdf.refusal`` says why, for the log and the run report.
Pure and deterministic like the renderer it post-processes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from invoicing.billing.document import InvoiceDocument
from invoicing.delivery.einvoice import profile
from invoicing.delivery.einvoice.cii import build_cii
from invoicing.delivery.einvoice.facturx import attach_facturx

__all__ = ["HybridPdf", "facturx_pdf", "render_facturx_pdf", "render_hybrid"]


@dataclass(frozen=True)
class HybridPdf:
    """``data`` is the PDF to send; ``facturx`` whether the XML is inside; ``refusal`` why not ("" if it is)."""

    data: bytes
    facturx: bool
    refusal: str = ""


def facturx_pdf(pdf: bytes, doc: InvoiceDocument) -> HybridPdf:
    """``pdf`` (the plain rendering of ``doc``) with ``factur-x.xml`` attached, or unchanged with the reason."""
    reason = profile.refusal(doc)
    if reason is not None:
        return HybridPdf(pdf, facturx=False, refusal=reason)
    return HybridPdf(attach_facturx(pdf, doc, build_cii(doc)), facturx=True)


def render_hybrid(renderer: Callable[[InvoiceDocument], bytes], doc: InvoiceDocument) -> HybridPdf:
    """``renderer(doc)`` made a Factur-X where possible (``facturx_pdf``): the delivery path's one call."""
    return facturx_pdf(renderer(doc), doc)


def render_facturx_pdf(doc: InvoiceDocument) -> bytes:
    """Render ``doc`` and attach its CII (benchmarks, tests and tools; raises ``EInvoiceUnavailable``)."""
    from invoicing.delivery.pdf import render_invoice_pdf  # fpdf2: only where a PDF is rendered

    return attach_facturx(render_invoice_pdf(doc), doc, build_cii(doc))
