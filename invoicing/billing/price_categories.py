"""A price's own VAT category (``price … category=K``), kept consistent with its rate.

Most prices have none and get the category derived per invoice (``vat_rules``); ops set
one where the derivation cannot know (an exempt product, a service reverse charged, a
supply outside the scope of VAT). A category is stored only when it agrees with the
price's rate (``vat_rules.check_category``), and a rate change that would contradict the
stored category is refused until the category is changed too.
"""

from __future__ import annotations

from decimal import Decimal

from invoicing import audit
from invoicing.billing.money import plain
from invoicing.billing.vat_rules import check_category
from invoicing.errors import InvalidInput
from models import Price


async def apply_price_category(tenant_id: int, product_id: int, retailer_id: int | None, *, category: str | None,
                               exemption: str, target: str, actor: str) -> tuple[str, str]:
    """Set (``category`` given; "" = derive) or re-check (None) the category of one stored price.

    Call inside the transaction that wrote the price, so a refusal rolls the price back too.
    Returns the stored ``(category, exemption code)``; a change writes a ``price.category``
    audit entry on ``target`` (``price:MUG:default``). Raises ``InvalidInput`` when the
    category contradicts the price's rate.
    """
    row = await Price.filter(product_id=product_id, retailer_id=retailer_id).select_for_update().get()
    rate = plain(Decimal(row.tax_rate))
    if category is None:
        try:
            check_category(row.vat_category, rate, row.vat_exemption_code)
        except InvalidInput:
            raise InvalidInput("category", f"this price has VAT category {row.vat_category}, which a {rate} % rate "
                                           "contradicts; give the category too (category=S, or category=auto to "
                                           "derive it per invoice)") from None
        return row.vat_category, row.vat_exemption_code
    code = check_category(category, rate, exemption)
    if (row.vat_category, row.vat_exemption_code) != (category, code):
        old = {"category": row.vat_category, "exemption": row.vat_exemption_code}
        row.vat_category, row.vat_exemption_code = category, code
        await row.save(update_fields=["vat_category", "vat_exemption_code", "updated_at"])
        await audit.record(tenant_id, actor=actor, action="price.category", target=target, old=old,
                           new={"category": category, "exemption": code})
    return category, code
