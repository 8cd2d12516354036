"""Exchange rates a tenant has on record: the only rates an invoice may be restated with.

Rates are never fetched or made up: ops set them (``source=ops``), the order feed
pushes them (``feed``) or the ECB reference-rate CSV is imported (``ecb``). ``rate``
is how many units of ``quote`` one unit of ``base`` buys on ``day`` (the ECB's
``EUR → USD 1.0802`` is ``base=EUR, quote=USD, rate=1.0802``). One rate per pair and
day: a later write for the same day replaces it (and is audited by the writer).
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from models.tenant import Tenant


class FxSource(StrEnum):
    OPS = "ops"
    FEED = "feed"
    ECB = "ecb"


class FxRate(Model):
    id = fields.IntField(primary_key=True)
    tenant: fields.ForeignKeyRelation[Tenant] = fields.ForeignKeyField(
        "models.Tenant", related_name="fx_rates", on_delete=fields.CASCADE
    )
    tenant_id: int
    base = fields.CharField(max_length=3)
    quote = fields.CharField(max_length=3)
    day = fields.DateField()
    rate = fields.DecimalField(max_digits=20, decimal_places=10)
    source = fields.CharEnumField(FxSource, max_length=4)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "fx_rate"
        unique_together = (("tenant", "base", "quote", "day"),)
