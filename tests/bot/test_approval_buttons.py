"""Approve / Skip buttons on the approval preview, through signed block_actions requests to the real bolt app."""

from __future__ import annotations

import asyncio
import json
import os
from datetime import timedelta
from pathlib import Path

import pytest

from bot.notifier import SlackNoticeChannel
from bot.slack_web import web_client
from commands.approvals import approval_message
from invoicing.delivery.slack_notices import NoticeOutbox
from models import ApprovalState, Invoice, NoticeKind, Order, RunApproval, SlackNotice, Tenant
from tests import factories as f
from tests.bot.slack_harness import SlackHarness, start_harness, stop_harness
from tests.bot.test_scheduler import SLOT, at
from tests.fakes.slack_api import text_of
from tests.invoicing.integrations.test_approval import prepared

NOW = SLOT + timedelta(hours=1, minutes=42)
DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.fixture
async def slack(db):
    harness = await start_harness(admins={"UADMIN", "UDANA"}, clock=lambda: NOW)
    yield harness
    await stop_harness(harness)


async def click(h: SlackHarness, posted: dict, action: str, *, user: str = "UADMIN") -> None:
    """Press the button ``action`` (``approval_approve``…) on the posted message, as Slack sends it."""
    button = next(e for b in posted["blocks"] if b["type"] == "actions" for e in b["elements"]
                  if e["action_id"] == f"ib:{action}")
    response = await h.click(button["action_id"], button["value"], user=user, team="T1", channel=posted["channel"],
                             message_ts=posted["ts"], message_blocks=posted["blocks"])
    assert response.status == 200


async def preview(h: SlackHarness, **policy) -> tuple[Tenant, RunApproval, dict]:
    """A prepared approval whose preview notice the real notice worker posted to the fake Slack."""
    t, c, approval = await prepared(**policy)
    t.slack_team_id = "T1"
    await t.save()
    client = web_client("xoxb-test-token", h.fake.api_url)
    await NoticeOutbox(SlackNoticeChannel(client, h.poster), clock=at(SLOT)).deliver_due()
    (posted,) = [m for m in h.fake.posts("CBILL") if "Approve the invoice" in m["text"]]
    return t, approval, posted


async def test_the_preview_shows_totals_period_and_the_two_buttons(slack):
    t, approval, posted = await preview(slack)
    shown = text_of(posted)
    assert "Approve the invoice for acme? £24.00" in shown and "*Orders*\n2" in shown and "*Total*\n£24.00" in shown
    assert "no invoice number is used until it is approved" in shown
    buttons = [e for b in posted["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert [(b["text"]["text"], b.get("style")) for b in buttons] == [("Approve", "primary"), ("Skip", None)]


async def test_approve_issues_and_updates_the_preview_without_buttons(slack):
    t, approval, posted = await preview(slack)
    await click(slack, posted, "approval_approve", user="UDANA")
    (update,) = (await slack.fake.wait_for("chat.update"))
    params = update.params
    assert params["ts"] == posted["ts"] and params["channel"] == "CBILL"
    assert "Approved by <@UDANA> at 10:42 GMT — invoice 000001" in text_of(params)
    assert not [b for b in params["blocks"] if b["type"] == "actions"]
    assert (await Invoice.get()).display_number == "000001"
    row = await RunApproval.get(id=approval.id)
    assert (row.state, row.decided_by, row.message_ts) == (ApprovalState.APPROVED, "slack:UDANA", posted["ts"])


async def test_a_non_admin_is_refused_and_nothing_changes(slack):
    t, approval, posted = await preview(slack)
    for action in ("approval_approve", "approval_skip"):
        await click(slack, posted, action, user="UGUEST")
    replies = await slack.fake.wait_for("response_url", 2)
    assert all("Only workspace admins" in text_of(r.params) for r in replies)
    assert all(r.params["response_type"] == "ephemeral" for r in replies)
    assert slack.fake.received("chat.update") == []
    assert (await RunApproval.get(id=approval.id)).state == ApprovalState.PENDING
    assert await Invoice.all().count() == 0


async def test_skip_updates_the_preview_and_leaves_the_orders(slack):
    t, approval, posted = await preview(slack)
    await click(slack, posted, "approval_skip")
    (update,) = await slack.fake.wait_for("chat.update")
    assert "Skipped by <@UADMIN> at 10:42 GMT" in text_of(update.params)
    assert await Order.filter(invoice_id=None).count() == 2


async def test_two_admins_clicking_approve_at_once_give_one_invoice(slack):
    t, approval, posted = await preview(slack)
    await asyncio.gather(click(slack, posted, "approval_approve", user="UADMIN"),
                         click(slack, posted, "approval_approve", user="UDANA"))
    updates = await slack.fake.wait_for("chat.update", 2)
    assert await Invoice.all().count() == 1
    assert all("invoice 000001" in text_of(u.params) for u in updates)
    (loser,) = await slack.fake.wait_for("response_url", 1)
    assert "Nothing changed: This approval was already approved" in text_of(loser.params)


async def test_changed_orders_refuse_and_a_fresh_preview_is_queued(slack):
    t, approval, posted = await preview(slack)
    company = await approval.company
    await f.order(company, dispatched_at=SLOT - timedelta(minutes=3))
    await click(slack, posted, "approval_approve")
    (update,) = await slack.fake.wait_for("chat.update")
    assert "the orders changed, nothing was issued" in text_of(update.params)
    (reply,) = await slack.fake.wait_for("response_url")
    assert "a fresh preview" in text_of(reply.params)
    fresh = await RunApproval.get(state=ApprovalState.PENDING)
    notice = await SlackNotice.get(dedupe_key=f"approval:{fresh.id}")
    assert notice.kind == NoticeKind.APPROVAL_REQUESTED and notice.payload["orders"] == 3
    assert await Invoice.all().count() == 0


async def test_docs_sample_is_the_real_preview(slack):
    """docs/approval-message.json is generated from the real builder (set REGENERATE=1 to rewrite it)."""
    t, approval, posted = await preview(slack)
    notice = await SlackNotice.get(dedupe_key=f"approval:{approval.id}")
    sample = {"blocks": list(approval_message(NoticeKind.APPROVAL_REQUESTED, notice.payload).blocks)}
    path = DOCS / "approval-message.json"

    if os.environ.get("REGENERATE") or not path.exists():
        path.write_text(json.dumps(sample, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    stored = json.loads(path.read_text(encoding="utf-8"))
    assert [b["type"] for b in stored["blocks"]] == [b["type"] for b in sample["blocks"]]


async def test_emailer_sets_and_shows_the_approval_policy(slack):
    t = await f.tenant(team="T1")
    await f.company(t, "acme")
    shown = text_of(await slack.reply("emailer acme set approval=on approval_timeout=2d on_timeout=issue"))
    assert "*Approval*\non: wait 2d, then issue" in shown
    refused = text_of(await slack.reply("emailer acme set approval_timeout=1m"))
    assert "approval_timeout" in refused and "out of range" in refused
    assert "on: wait 2d, then issue" in text_of(await slack.reply("emailer acme"))


async def test_the_app_home_lists_the_pending_approval_and_approve_there_issues_it(slack):
    t, approval, _ = await preview(slack)
    response = await slack.event({"type": "app_home_opened", "user": "UADMIN", "channel": "D0HOME", "tab": "home",
                                  "event_ts": "1.000001"}, team="T1")
    assert response.status == 200
    home = (await slack.fake.wait_for("views.publish"))[0].params["view"]
    shown = text_of({"blocks": home["blocks"]})
    assert "Waiting for approval:* £24.00 · 2 order(s)" in shown, shown
    (approve,) = [e for b in home["blocks"] if b["type"] == "actions" for e in b["elements"]
                  if e["action_id"] == "ib:approval_approve"]
    assert approve["value"] == str(approval.id) and "confirm" in approve

    await slack.click(approve["action_id"], approve["value"], team="T1", view={"private_metadata": "page=1"})
    republished = (await slack.fake.wait_for("views.publish", 2))[1].params["view"]
    assert (await RunApproval.get(id=approval.id)).state == ApprovalState.APPROVED
    assert await Invoice.filter(company_id=approval.company_id).count() == 1
    assert "Waiting for approval" not in text_of({"blocks": republished["blocks"]})
