"""The export format's identity: its namespace and version, where its XSD is, and the error for a bad file.

The XSD is the documented, versioned artefact customers receive, so it lives once, in the
repository's ``docs/xml/`` (not a copy inside the package that could drift). ``schema_path``
finds it relative to this file, which is the repository checkout for ``pip install -e .``
(the way the service is installed; the Schematron files of ``invoicing.delivery.einvoice``
are found the same way, next to their package). The schema is part of the code's version, not
a setting of the deployment.
"""

from __future__ import annotations

from pathlib import Path

from invoicing.errors import InvoiceBotError

__all__ = ["NAMESPACE", "SCHEMA_FILE", "SCHEMA_VERSION", "XmlExportInvalid", "schema_path"]

SCHEMA_VERSION = "1.0"
NAMESPACE = "urn:invoicebot:xml-export:orders:1.0"
SCHEMA_FILE = "invoicebot-orders-1.0.xsd"

#: invoicing/integrations/xml_export/schema.py → the repository root.
_REPOSITORY = Path(__file__).resolve().parents[3]


class XmlExportInvalid(InvoiceBotError, ValueError):
    """An export file (or what would be written into one) is not valid; ``line`` is where, when known.

    The message says which file, the line, and what is wrong, for the ops person.
    """

    def __init__(self, message: str, *, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


def schema_path() -> Path:
    """The XSD of the current version, ``docs/xml/invoicebot-orders-1.0.xsd`` of this checkout."""
    path = _REPOSITORY / "docs" / "xml" / SCHEMA_FILE
    if not path.is_file():
        raise FileNotFoundError(f"the XML export schema is missing: {path} (install InvoiceBot from its "
                                "repository with `pip install -e .`)")
    return path
