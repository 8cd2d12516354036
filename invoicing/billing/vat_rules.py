"""VAT categories (EN 16931 BT-151/BT-118): which one a line has, and which ones a rate allows.

Every invoice line carries one of ``S`` standard rate, ``Z`` zero rated, ``E`` exempt,
``AE`` reverse charge, ``K`` intra-Community supply, ``G`` export outside the EU or
``O`` outside the scope of VAT. A price may state its category (``price … category=K``);
otherwise ``derive_category`` decides it per invoice from who sells to whom:

* a rate above 0 % is a VAT charge: ``S``;
* at 0 %, an EU seller selling to a buyer **with a VAT number** in **another** member state
  makes an intra-Community supply of goods (``K``, Article 138 Directive 2006/112/EC);
  our supplies are goods, so the reverse charge of services (``AE``, Article 196) is never
  derived — only set per price;
* at 0 %, an EU seller selling outside the EU, or a UK seller selling outside the UK
  (``GB``/``XI``), exports (``G``: Article 146 / zero-rated export); so does any other
  seller selling to a buyer in another country;
* any other 0 % line (domestic, or EU→EU to a buyer without a VAT number) is ``Z``.

A category that contradicts its rate is refused where the price is set (``check_category``):
``S`` needs a rate above 0 %, every other category exactly 0 %. ``E`` also needs its VATEX
code (the legal basis of the exemption, ``EXEMPT_CODES``). Member states are
``invoicing.parties.countries.EU_MEMBER_STATES``; ``eu_country`` accepts Greece's ``EL``.
"""

from __future__ import annotations

import re
from decimal import Decimal

from invoicing.billing.money import plain
from invoicing.errors import InvalidInput
from invoicing.parties.countries import eu_member_state as eu_country

__all__ = [
    "CATEGORIES", "EXEMPT_CODES", "UK", "check_category", "derive_category", "eu_country", "exemption_code",
    "parse_category",
]

#: The EN 16931 VAT category codes we use, in the order a breakdown prints them.
CATEGORIES: tuple[str, ...] = ("S", "Z", "K", "G", "AE", "E", "O")
#: The VATEX code each zero-rated category carries (BT-121); ``E``'s comes from the price, ``Z`` has none.
_CATEGORY_CODES = {"K": "VATEX-EU-IC", "G": "VATEX-EU-G", "AE": "VATEX-EU-AE", "O": "VATEX-EU-O"}
#: The VATEX codes an exempt (``E``) price may give: an exemption article of Directive 2006/112/EC
#: (optionally with its point, ``VATEX-EU-132-1G``) or France's franchise en base.
EXEMPT_CODES = re.compile(r"^VATEX-EU-(132|143|148|151|309)(-[0-9A-Z]{1,3})?$|^VATEX-FR-FRANCHISE$")
#: The United Kingdom with Northern Ireland: a GB seller exporting means a buyer outside both.
UK = frozenset({"GB", "XI"})
ZERO = Decimal(0)


def derive_category(seller_country: str, buyer_country: str, buyer_vat_number: str, rate: Decimal) -> str:
    """The category of a line at ``rate`` percent without a per-price category (rule in the module docstring)."""
    if rate != ZERO:
        return "S"
    seller, buyer = seller_country.strip().upper(), buyer_country.strip().upper()
    seller_eu, buyer_eu = eu_country(seller), eu_country(buyer)
    if seller_eu is not None:
        if buyer_eu is None:
            return "G"
        if buyer_eu != seller_eu and buyer_vat_number.strip():
            return "K"
        return "Z"
    if seller in UK:
        return "Z" if buyer in UK else "G"
    return "Z" if buyer == seller or not buyer else "G"


def parse_category(value: str, field: str = "category") -> str:
    """``k`` → ``K``; ``auto`` or "" → "" (derive it per invoice); anything else is refused."""
    code = value.strip().upper()
    if code in ("", "AUTO"):
        return ""
    if code not in CATEGORIES:
        raise InvalidInput(field, f"{value!r} is not a VAT category; use one of {', '.join(CATEGORIES)} or auto")
    return code


def check_category(category: str, rate: Decimal, exemption: str = "", *, field: str = "category") -> str:
    """Refuse a category that contradicts ``rate``; return the exemption code to store ("" unless ``E``).

    ``S`` at 0 % and any other category above 0 % contradict each other; ``E`` needs an
    ``EXEMPT_CODES`` VATEX code and no other category takes one.
    """
    exemption = exemption.strip().upper()
    if category == "":
        if exemption:
            raise InvalidInput("exemption", "is only for category=E (exempt)")
        return ""
    if category == "S" and rate == ZERO:
        raise InvalidInput(field, "S (standard rate) needs a VAT rate above 0 %; for 0 % use Z, K, G, AE, E or O")
    if category != "S" and rate != ZERO:
        raise InvalidInput(field, f"{category} is a 0 % category but the VAT rate is {plain(rate)} %; use tax=0 or "
                                  "category=S")
    if category != "E":
        if exemption:
            raise InvalidInput("exemption", "is only for category=E (exempt)")
        return ""
    if not EXEMPT_CODES.match(exemption):
        raise InvalidInput("exemption", "category=E needs the VATEX code of the exemption, e.g. "
                                        "exemption=VATEX-EU-132 (Article 132 Directive 2006/112/EC)")
    return exemption


def exemption_code(category: str, exempt_code: str = "") -> str:
    """The VATEX code (BT-121) of a breakdown row: fixed per category, the price's own for ``E``, none for S/Z."""
    if category == "E":
        return exempt_code
    return _CATEGORY_CODES.get(category, "")
