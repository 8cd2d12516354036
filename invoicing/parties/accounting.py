"""Accounting details: which are required where, and how each value is validated.

Required fields depend on the party's role and country (the product article: "some
fields may not be required depending on your country"). The rules, in one table:

* everyone: ``legal_name``, ``address_line1``, ``city``, ``country``;
* ``postcode``: everywhere except countries without postal codes (``NO_POSTCODE``);
* ``region`` (state/province): US, CA, AU;
* the buyer: ``email`` — invoices are sent there;
* the seller in a VAT area (EU-27, GB, XI, NO, CH): ``vat_number``;
* the seller in GB: ``company_number`` (UK trading-disclosure rules).

Values are validated and normalised here (python-stdnum for VAT, IBAN and BIC;
email-validator for addresses) so stored details are always well-formed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal, TypeVar

from babel import Locale
from email_validator import EmailNotValidError, validate_email
from stdnum import bic as stdnum_bic
from stdnum import iban as stdnum_iban
from stdnum.exceptions import ValidationError
from stdnum.util import get_cc_module
from tortoise.transactions import in_transaction

from invoicing.errors import InvalidInput
from invoicing.parties.countries import EU_MEMBER_STATES, vat_prefix
from invoicing.validation import CONTROL_CHARACTERS_REFUSED, has_control_characters, whole_number
from models import ACCOUNTING_KEYS, AccountingFields

Role = Literal["seller", "buyer"]
P = TypeVar("P", bound=AccountingFields)

VAT_REGISTERED_SELLER = EU_MEMBER_STATES | {"GB", "XI", "NO", "CH"}
NO_POSTCODE = frozenset({
    "AE", "AG", "AO", "AW", "BS", "BZ", "BO", "CW", "FJ", "GD", "GH", "HK",
    "JM", "KI", "QA", "SB", "SR", "SY", "TV", "UG", "VU", "YE", "ZW",
})
REGION_REQUIRED = frozenset({"US", "CA", "AU"})

_COUNTRIES = frozenset(code for code in Locale("en").territories if isinstance(code, str) and len(code) == 2
                       and code.isalpha())
_PHONE = re.compile(r"^\+?[0-9 ()./-]{5,30}$")
_MAX_LEN = {
    "legal_name": 200, "address_line1": 200, "address_line2": 200, "city": 100,
    "region": 100, "postcode": 20, "company_number": 40, "phone": 40,
}


def required_fields(role: Role, country: str) -> list[str]:
    """The keys that must be non-empty for a party of ``role`` in ``country``."""
    country = (country or "").upper()
    required = ["legal_name", "address_line1", "city", "country"]
    if country not in NO_POSTCODE:
        required.append("postcode")
    if country in REGION_REQUIRED:
        required.append("region")
    if role == "buyer":
        required.append("email")
    if role == "seller" and country in VAT_REGISTERED_SELLER:
        required.append("vat_number")
    if role == "seller" and country == "GB":
        required.append("company_number")
    return required


def missing_fields(details: Mapping[str, Any], role: Role) -> list[str]:
    """Required keys that are empty, in a stable order (for "missing …" messages)."""
    required = required_fields(role, str(details.get("country") or ""))
    return [key for key in required if not str(details.get(key) or "").strip()]


def normalise_country(value: str, field: str = "country") -> str:
    code = value.strip().upper()
    if code not in _COUNTRIES:
        raise InvalidInput(field, f"{value!r} is not an ISO 3166 country code; use two letters such as GB, DE or US")
    return code


def normalise_vat_number(value: str, country: str) -> str:
    """Validate with python-stdnum for ``country`` and store compact with its prefix (``DE136695976``)."""
    raw = value.strip()
    if not raw:
        return ""
    country = country.upper()
    module = get_cc_module(country.lower(), "vat") if country else None
    if module is None:
        if not re.fullmatch(r"[A-Za-z0-9 .-]{2,20}", raw):
            raise InvalidInput("vat_number", f"{raw!r} does not look like a tax number")
        return re.sub(r"[ .-]", "", raw).upper()
    try:
        number = module.validate(raw)
    except ValidationError as exc:
        raise InvalidInput(
            "vat_number", f"{raw!r} is not a valid {country} VAT number ({str(exc).rstrip('.').lower()})"
        ) from None
    prefix = vat_prefix(country)
    if country in EU_MEMBER_STATES | {"GB", "XI"} and not number.upper().startswith(prefix):
        number = prefix + number
    return number.upper()


def normalise_email(value: str, field: str = "email") -> str:
    """``value`` as a deliverable address, normalised, or ``InvalidInput(field, …)`` saying why not.

    * An international **domain** is accepted (``ap@bücher.example``, or its A-label
      ``ap@xn--bcher-kva.example``): it must be valid IDNA 2008 with the UTS #46 mapping
      (email-validator checks it with the ``idna`` package) and is stored in Unicode, lower
      case; delivery sends it as the A-label to a mail server without SMTPUTF8
      (``invoicing.delivery.addresses``), so it always arrives.
    * A **local part** (before the @) with non-ASCII characters is refused: it has no
      ASCII form, so it only arrives if every server on the way supports SMTPUTF8, which
      cannot be known when the address is typed — an invoice address that may bounce
      later is refused now instead.
    """
    raw = value.strip()
    if has_control_characters(value):
        raise InvalidInput(field, CONTROL_CHARACTERS_REFUSED)
    try:
        checked = validate_email(raw, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidInput(field, f"{raw!r} is not a valid e-mail address ({exc})") from None
    if checked.ascii_email is None:
        raise InvalidInput(field, f"{raw!r} has non-ASCII characters before the @: such a mailbox only receives "
                                  "mail if every mail server on the way supports SMTPUTF8, which cannot be checked "
                                  "here; use an ASCII mailbox name (an international domain such as "
                                  "ap@bücher.example is fine)")
    return checked.normalized


def normalise_accounting(updates: Mapping[str, Any], *, country: str) -> dict[str, Any]:
    """Validate a set of ``key=value`` updates; return normalised values or raise ``InvalidInput``.

    ``country`` is the party's country after the update (VAT numbers are checked
    against it). Empty strings clear optional values.
    """
    clean: dict[str, Any] = {}
    for key, value in updates.items():
        if key not in ACCOUNTING_KEYS:
            raise InvalidInput(key, f"unknown accounting key; use one of {', '.join(ACCOUNTING_KEYS)}")
        text = "" if value is None else str(value)
        if key == "payment_terms_days":
            clean[key] = whole_number(text, key, low=0, high=365, what="a whole number of days")
            continue
        if has_control_characters(text):
            raise InvalidInput(key, CONTROL_CHARACTERS_REFUSED)
        text = text.strip()
        if not text:
            clean[key] = ""
        elif key == "country":
            clean[key] = normalise_country(text)
        elif key == "vat_number":
            clean[key] = normalise_vat_number(text, country)
        elif key == "email":
            clean[key] = normalise_email(text)
        elif key == "iban":
            try:
                clean[key] = stdnum_iban.validate(text)
            except ValidationError:
                raise InvalidInput(key, f"{text!r} is not a valid IBAN") from None
        elif key == "bic":
            try:
                clean[key] = stdnum_bic.validate(text)
            except ValidationError:
                raise InvalidInput(key, f"{text!r} is not a valid BIC/SWIFT code") from None
        elif key == "phone":
            if not _PHONE.match(text):
                raise InvalidInput(key, f"{text!r} is not a phone number; digits, spaces and + ( ) - only")
            clean[key] = text
        else:
            limit = _MAX_LEN.get(key, 200)
            if len(text) > limit:
                raise InvalidInput(key, f"is {len(text)} characters long; at most {limit}")
            clean[key] = text
    return clean


def accounting_changes(party: AccountingFields, updates: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Validate ``updates`` against ``party``'s current values; return ``{key: (old, new)}`` of real changes.

    Pure: nothing is written or mutated. A country change re-validates the stored VAT
    number against the new country. Raises ``InvalidInput`` if any value is invalid.
    """
    country = str(updates.get("country") or party.country or "")
    if "country" in updates and str(updates["country"]).strip():
        country = normalise_country(str(updates["country"]))
    clean = normalise_accounting(updates, country=country)
    if "country" in clean and "vat_number" not in clean and party.vat_number:
        clean["vat_number"] = normalise_vat_number(party.vat_number, country)
    return {k: (getattr(party, k), v) for k, v in clean.items() if getattr(party, k) != v}


async def lock_party(party: P) -> P:
    """``party``'s row read again under ``SELECT … FOR NO KEY UPDATE``; call inside a transaction.

    The lock is held until that transaction ends, so values read from the returned
    row are the ones a concurrent change waits for (on SQLite tortoise serialises the
    transactions of a process, which gives the same guarantee). ``NO KEY`` because we
    never change a primary key: inserts that merely reference the row (its audit
    entries, orders, invoices) take ``FOR KEY SHARE`` for their foreign-key check and
    must not queue behind a configuration change, or three such transactions can
    deadlock (seen in ``trials/config_race.py``).
    """
    return await type(party).filter(id=party.pk).select_for_update(no_key=True).get()


def copy_accounting(source: AccountingFields, target: AccountingFields) -> None:
    """Refresh ``target``'s accounting keys from ``source`` (the row as stored)."""
    for key in ACCOUNTING_KEYS:
        setattr(target, key, getattr(source, key))


async def update_accounting(party: AccountingFields, updates: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Validate and apply updates to a tenant or company row; return ``{key: (old, new)}``.

    Runs in its own ``in_transaction()`` (nested in the caller's when there is one):
    locks the row, reads the old values under that lock, validates and writes. The
    lock lasts until the outermost transaction ends, so a caller that writes its audit
    entry in the same transaction records exactly the values it replaced.
    All-or-nothing: nothing is written unless every value is valid. ``party`` is
    refreshed in place with the stored accounting details.
    """
    async with in_transaction():
        row = await lock_party(party)
        changes = accounting_changes(row, updates)
        if changes:
            row.update_from_dict({key: new for key, (_, new) in changes.items()})
            await row.save(update_fields=list(changes))
    copy_accounting(row, party)
    return changes
