"""Billing: eligibility, prices, money and VAT, numbering, invoice runs and the invoice document."""
