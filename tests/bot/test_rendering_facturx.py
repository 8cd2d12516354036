"""The render pool also makes the Factur-X PDF in its workers: same bytes as in-process, refusals carried back."""

from __future__ import annotations

import facturx

from bot.rendering import RenderPool
from invoicing.delivery.einvoice.hybrid import render_hybrid
from invoicing.delivery.pdf import render_invoice_pdf
from tests.invoicing.delivery.einvoice import documents


def test_a_worker_renders_the_same_factur_x_bytes_as_this_process_and_reports_refusals():
    doc, bhd = documents.credit_note(), documents.bhd()
    pool = RenderPool(workers=1)
    try:
        hybrid, refused = pool.facturx(doc), pool.facturx(bhd)
    finally:
        pool.close()
    assert hybrid == render_hybrid(render_invoice_pdf, doc)
    assert hybrid.facturx and facturx.get_facturx_xml_from_pdf(hybrid.data)[0] == "factur-x.xml"
    assert not refused.facturx and "at most 2 decimals" in refused.refusal
    assert refused.data == render_invoice_pdf(bhd)
