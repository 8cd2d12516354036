"""The invoice PDF, by concern: labels, formats, text (fonts, shaping, wrapping), header, table, totals, document.

The entry point is ``invoicing.delivery.pdf.render_invoice_pdf``.
"""
