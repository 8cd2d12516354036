"""Which e-invoice a company's invoices carry: ``einvoice=auto|facturx|none`` on its PDF Emailer.

* ``facturx`` — the e-mailed PDF is a Factur-X (PDF/A-3 with the CII XML embedded);
* ``none`` — a plain PDF;
* ``auto`` (the default, also for companies that never set it) — Factur-X when the
  buyer is in the EU (the member states mandate or are moving to structured
  e-invoices: DE receive 2025 / issue 2027, FR 2026, BE 2026, PL 2026), plain otherwise.

Stored in the PDF Emailer integration's ``settings`` JSON under ``einvoice`` (what
only one kind needs lives there, ``models.integration``): it decides what that
integration sends, and ops find it beside BCC and schedule in
``/invoicing emailer <co>``. The UBL/CII files of the feed
(``GET /api/v1/invoices/{n}.xml``) do not depend on it. A resend uses the current
setting: the invoice's content is fixed, only whether the XML travels inside the PDF.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from invoicing.errors import InvalidInput
from invoicing.parties.countries import EU_MEMBER_STATES
from models import Integration, IntegrationKind

__all__ = ["AUTO", "CHOICES", "SETTING", "describe", "facturx_wanted", "parse_choice", "stored_choice", "wants_facturx"]

SETTING = "einvoice"
AUTO, FACTURX, NONE = "auto", "facturx", "none"
CHOICES = (AUTO, FACTURX, NONE)


def parse_choice(value: object) -> str:
    """``auto``, ``facturx`` or ``none`` as ops type it (any case); ``InvalidInput("einvoice")`` otherwise."""
    text = str(value).strip().lower().replace("-", "")
    if text in CHOICES:
        return text
    raise InvalidInput(SETTING, f"{value!r} is not one of {', '.join(CHOICES)} "
                                "(auto: Factur-X for EU buyers, a plain PDF otherwise)")


def stored_choice(settings: Mapping[str, Any]) -> str:
    """The choice in an integration's settings; ``auto`` when it was never set."""
    value = settings.get(SETTING, AUTO)
    return value if value in CHOICES else AUTO


def wants_facturx(choice: str, buyer_country: str) -> bool:
    """Whether the PDF for a buyer in ``buyer_country`` carries the Factur-X XML."""
    if choice == AUTO:
        return buyer_country.strip().upper() in EU_MEMBER_STATES
    return choice == FACTURX


def describe(choice: str, buyer_country: str) -> str:
    """How ``/invoicing emailer`` shows it: the effect, then why."""
    effect = "Factur-X (PDF/A-3 + EN 16931 XML)" if wants_facturx(choice, buyer_country) else "plain PDF"
    if choice == AUTO:
        return f"{effect}: auto, Factur-X for EU buyers"
    return f"{effect}: set to {choice}"


async def facturx_wanted(company_id: int, buyer_country: str) -> bool:
    """``wants_facturx`` for ``company_id``'s current PDF Emailer setting (``auto`` without an integration)."""
    row = await Integration.get_or_none(company_id=company_id, kind=IntegrationKind.PDF_EMAILER)
    return wants_facturx(stored_choice(row.settings) if row is not None else AUTO, buyer_country)


def run_note(settings: Mapping[str, Any], buyer_country: str, currency: str) -> str:
    """What a run report says when the company wants Factur-X but the invoice cannot be one, else ``""``."""
    from invoicing.delivery.einvoice.profile import currency_refusal

    if not wants_facturx(stored_choice(settings), buyer_country):
        return ""
    reason = currency_refusal(currency)
    return f"{reason[0].upper()}{reason[1:]}." if reason else ""
