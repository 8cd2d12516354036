"""Accounting details shared by the seller (tenant) and the buyers (companies).

The same keys are used on both sides so that one validator and one snapshot
function serve both; which keys are *required* depends on the country and the
role and is decided in ``invoicing.parties.accounting``, not here.
"""

from tortoise import fields
from tortoise.models import Model

ACCOUNTING_KEYS: tuple[str, ...] = (
    "legal_name",
    "address_line1",
    "address_line2",
    "city",
    "region",
    "postcode",
    "country",
    "vat_number",
    "company_number",
    "email",
    "phone",
    "payment_terms_days",
    "iban",
    "bic",
)


class AccountingFields(Model):
    """Abstract mixin: a party's legal identity as printed on invoices."""

    legal_name = fields.CharField(max_length=200, default="")
    address_line1 = fields.CharField(max_length=200, default="")
    address_line2 = fields.CharField(max_length=200, default="")
    city = fields.CharField(max_length=100, default="")
    region = fields.CharField(max_length=100, default="")
    postcode = fields.CharField(max_length=20, default="")
    # ISO 3166-1 alpha-2, upper case.
    country = fields.CharField(max_length=2, default="")
    # Stored compact with its country prefix (e.g. ``GB980780684``).
    vat_number = fields.CharField(max_length=20, default="")
    company_number = fields.CharField(max_length=40, default="")
    email = fields.CharField(max_length=254, default="")
    phone = fields.CharField(max_length=40, default="")
    payment_terms_days = fields.IntField(default=30)
    iban = fields.CharField(max_length=40, default="")
    bic = fields.CharField(max_length=11, default="")

    class Meta:
        abstract = True

    def accounting_dict(self) -> dict[str, str | int]:
        """The accounting keys and their current values (for snapshots and replies)."""
        return {key: getattr(self, key) for key in ACCOUNTING_KEYS}
