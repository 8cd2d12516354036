"""EN 16931 e-invoices: CII (Factur-X) and UBL (Peppol BIS 3.0) XML, the Factur-X PDF/A-3, validation."""
