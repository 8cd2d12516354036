"""Country facts more than one rule needs: the EU-27 member states and Greece's VAT prefix.

Kept apart from the rules that use them (required accounting fields and VAT number
prefixes in ``invoicing.parties.accounting``, the reverse-charge notice in
``invoicing.billing.vat_rules``) so a change of membership is one edit.
"""

from __future__ import annotations

EU_MEMBER_STATES = frozenset(
    {"AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU",
     "IE", "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK"}
)  # fmt: skip
"""ISO 3166 codes of the 27 member states (Greece as ``GR``; its VAT prefix is ``EL``).

The United Kingdom is not one; Northern Ireland (``XI``) is kept out too, for simplicity.
"""

#: VAT number prefixes that differ from the ISO 3166 country code.
_VAT_PREFIXES = {"GR": "EL"}
_COUNTRY_OF_PREFIX = {prefix: country for country, prefix in _VAT_PREFIXES.items()}


def vat_prefix(country: str) -> str:
    """The prefix of VAT numbers issued in ``country`` (an upper-case ISO code): ``GR`` → ``EL``."""
    return _VAT_PREFIXES.get(country, country)


def eu_member_state(code: str) -> str | None:
    """The member state for a country code or VAT prefix (``"el"`` → ``"GR"``), or None outside the EU."""
    code = code.strip().upper()
    code = _COUNTRY_OF_PREFIX.get(code, code)
    return code if code in EU_MEMBER_STATES else None
