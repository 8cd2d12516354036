"""The invoice language: chosen per buyer, by default from the buyer's country.

An invoice is printed in one language — labels, dates and legal notes — so an
accountant never reads two. A company's ``language`` setting wins; without one the
buyer's country decides (DE/AT/CH → de, FR/BE/LU → fr, PL → pl, ES → es, IT → it,
NL → nl, everyone else en). The language is snapshotted on the invoice at issue time.
"""

from __future__ import annotations

from invoicing.errors import InvalidInput
from invoicing.parties.companies import set_company_column
from models import Company

#: The languages invoices can be printed in (ISO 639-1).
LANGUAGES: tuple[str, ...] = ("en", "de", "fr", "pl", "es", "it", "nl")
_BY_COUNTRY = {
    "DE": "de", "AT": "de", "CH": "de", "FR": "fr", "BE": "fr", "LU": "fr", "PL": "pl", "ES": "es", "IT": "it",
    "NL": "nl",
}  # fmt: skip


def default_language(country: str) -> str:
    """The language of a buyer in ``country`` (ISO 3166 alpha-2) that chose none."""
    return _BY_COUNTRY.get(country.strip().upper(), "en")


def invoice_language(setting: str, country: str) -> str:
    """The language an invoice to a buyer with this ``language`` setting and ``country`` is printed in."""
    return setting if setting in LANGUAGES else default_language(country)


def parse_language(value: str, field: str = "language") -> str:
    """``DE`` → ``de``; ``auto`` or "" → "" (the buyer country's default); others are refused."""
    code = value.strip().lower()
    if code in ("", "auto"):
        return ""
    if code not in LANGUAGES:
        raise InvalidInput(field, f"{value!r} is not an invoice language; use one of {', '.join(LANGUAGES)} or auto")
    return code


async def set_company_language(company: Company, value: str, *, actor: str) -> tuple[str, str] | None:
    """Set ``company``'s invoice language (``parse_language``; "" = its country's default).

    One transaction locks the company row, writes and records a ``company.language`` audit entry
    (target ``company:<co>``); returns ``(old, new)``, or None when nothing changed. ``company``
    is updated in place. Issued invoices keep the language they were issued in.
    """
    language = parse_language(value)
    old = str(await set_company_column(company, "language", language, key="language", actor=actor))
    return (old, language) if old != language else None
