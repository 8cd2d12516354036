"""Run and delivery notifications in each company's Slack channel.

Failures to post are logged and never break invoicing: the invoice, its run record
and its delivery are already committed when a notification is attempted.
"""

from __future__ import annotations

import logging

from slack_sdk.errors import SlackApiError

from bot.slack import ChannelPoster, slack_error
from commands.notifications import (
    delivery_failed_reply,
    failed_reply,
    refused_reply,
    run_reply,
)
from commands.replies import Reply
from invoicing.billing.runs import RunReport
from invoicing.delivery.outbox import DeliveryOutcome
from models import Company, Delivery, DeliveryStatus

log = logging.getLogger(__name__)


class Notifier:
    """Posts to ``company.slack_channel``; does nothing for companies without a channel."""

    def __init__(self, poster: ChannelPoster | None) -> None:
        self.poster = poster

    async def _post(self, company: Company, reply: Reply) -> None:
        if self.poster is None or not company.slack_channel:
            return
        try:
            await self.poster.post(company.slack_channel, Reply(text=reply.text, blocks=reply.blocks, ephemeral=False))
        except SlackApiError as exc:
            log.warning("notification not posted company=%s channel=%s error=%s", company.short_name,
                        company.slack_channel, slack_error(exc))

    async def run_finished(self, report: RunReport) -> None:
        """A run committed (scheduled or manual from outside Slack): announce it."""
        if report.invoice_number is None:
            return
        company = await Company.get_or_none(id=report.company_id)
        if company is not None:
            await self._post(company, run_reply(report, timezone=company.timezone))

    async def run_refused(self, company_id: int, reason: str, *, failed: bool = False) -> None:
        """A scheduled run was refused (ops must fix something) or failed (rolled back)."""
        company = await Company.get_or_none(id=company_id)
        if company is not None:
            await self._post(company, (failed_reply if failed else refused_reply)(company.short_name, reason))

    async def deliveries(self, outcomes: list[DeliveryOutcome]) -> None:
        """Follow up on deliveries that failed permanently (one query for all of them)."""
        failed = [outcome for outcome in outcomes if outcome.status == DeliveryStatus.FAILED]
        if not failed:
            return
        rows = await Delivery.filter(id__in=[o.delivery_id for o in failed]).select_related("invoice__company")
        by_id = {row.id: row for row in rows}
        for outcome in failed:
            delivery = by_id[outcome.delivery_id]
            company = delivery.invoice.company
            await self._post(company, delivery_failed_reply(outcome.invoice_number, delivery.to_addr, outcome.error,
                                                            company.short_name))
