"""``/invoicing credit`` and ``void`` in Slack: a preview with a confirm button, then one credit note.

Commands and clicks are signed requests to the real bolt app; what Slack received is read
from the fake Web API, the credit notes, e-mails and audit entries from the database.
Both backends.
"""

from __future__ import annotations

import asyncio

import pytest

from bot.notifier import SlackNoticeChannel, notice_client
from bot.slack_web import ChannelPoster, web_client
from commands.context import CommandContext, Services
from commands.dispatch import dispatch
from invoicing.delivery.slack_notices import NoticeOutbox
from models import AuditEntry, CreditNote, Delivery, DeliveryKind, DeliveryStatus, Tenant
from tests import factories as f
from tests.bot.slack_harness import SlackHarness, start_harness, stop_harness
from tests.bot.test_invoice_buttons import CHANNEL, answer, buttons, issued, outbox, press
from tests.factories import T0
from tests.fakes.slack_api import text_of

CONFIRM = "ib:credit_confirm"


@pytest.fixture
async def slack(db):
    kicks: list[int] = []

    async def kick() -> None:
        kicks.append(1)

    harness = await start_harness(services=Services(kick_outbox=kick), admins={"UADMIN", "UDANA"}, clock=lambda: T0)
    harness.kicks = kicks  # type: ignore[attr-defined]
    yield harness
    await stop_harness(harness)


@pytest.fixture
async def acme(db):
    t = await f.tenant(team="T1")
    c = await f.company(t, "acme")
    c.slack_channel = CHANNEL
    await c.save()
    await f.price(t, "MUG", "5.00")
    return c


async def preview(slack: SlackHarness, text: str, *, user: str = "UADMIN") -> dict:
    """Type ``text`` in the channel; the preview as the channel has it."""
    before = len(slack.fake.received("chat.postMessage"))
    await slack.command(text, channel=CHANNEL, user=user)
    await slack.fake.wait_for("chat.postMessage", before + 1)
    return slack.fake.posts(CHANNEL)[-1]


async def test_credit_previews_lines_amounts_and_what_remains_and_takes_no_number(slack: SlackHarness, acme):
    await issued(slack, acme, orders=2)
    shown = await preview(slack, 'credit 000001 lines=2 reason="Damaged in transit"')
    text = text_of(shown)
    assert "Credit invoice 000001 (acme)? £6.00 credited" in text
    assert "Line 2" in text and "Line 1 " not in text and "Damaged in transit" in text
    assert "£6.00 of £12.00" in text  # what remains on the invoice afterwards
    assert "Would be credit note CN-000001" in text
    button = buttons(shown)[CONFIRM]
    assert button["style"] == "primary" and button["confirm"]["confirm"]["text"] == "Issue credit note"
    assert await CreditNote.all().count() == 0
    assert (await Tenant.get(name="inkwell")).last_credit_note_number == 0


async def test_only_admins_may_ask_for_a_credit_note(slack: SlackHarness, acme):
    await issued(slack, acme)
    reply = await slack.reply('credit 000001 reason="x"', channel=CHANNEL, user="UMEMBER")
    assert "Only workspace admins or InvoiceBot admins of inkwell can issue credit notes." in text_of(reply)


async def test_a_bad_selection_is_refused_with_the_usage(slack: SlackHarness, acme):
    await issued(slack, acme)
    reply = await slack.reply('credit 000001 lines=9 reason="x"', channel=CHANNEL)
    assert "there is no line 9" in text_of(reply) and "/invoicing credit <number>" in text_of(reply)
    reply = await slack.reply("credit 000001 lines=1", channel=CHANNEL)
    assert "reason: is required" in text_of(reply)


async def test_confirming_issues_the_credit_note_and_marks_the_preview(slack: SlackHarness, acme):
    await issued(slack, acme, orders=2)
    shown = await preview(slack, 'credit 000001 lines=1 reason="Damaged"')
    await press(slack, shown, CONFIRM, user="UDANA")
    [update] = await slack.fake.wait_for("chat.update")
    assert update.params["ts"] == shown["ts"]
    now = slack.fake.message(CHANNEL, shown["ts"])
    assert "Credit note CN-000001 issued for invoice 000001 (£6.00) by <@UDANA> at 09:00 GMT" in text_of(now)
    assert CONFIRM not in buttons(now)
    note = await CreditNote.get(display_number="CN-000001")
    assert note.gross_total == 6 and note.actor == "slack:UDANA" and note.reason == "Damaged"
    assert note.request_key == f"credit-click:{CHANNEL}:{shown['ts']}"
    assert await Delivery.filter(credit_note_id=note.id).count() == 1
    assert await AuditEntry.filter(action="credit_note.issue", actor="slack:UDANA").count() == 1
    assert slack.kicks  # type: ignore[attr-defined]


async def test_the_channel_is_told_about_the_credit_note(slack: SlackHarness, acme):
    await issued(slack, acme, orders=2)
    shown = await preview(slack, 'void 000001 reason="Order cancelled"')
    await press(slack, shown, CONFIRM)
    await slack.fake.wait_for("chat.update")
    channel = SlackNoticeChannel(notice_client("xoxb-test", slack.fake.api_url),
                                 ChannelPoster(web_client("xoxb-test", slack.fake.api_url), min_interval=0))
    before = len(slack.fake.posts(CHANNEL))
    await NoticeOutbox(channel, lambda: T0).deliver_due()
    posted = slack.fake.posts(CHANNEL)[before:]
    texts = [text_of(p) for p in posted]
    notice = next(t for t in texts if "credit note CN-000001 issued for invoice 000001" in t)
    assert "£12.00" in notice and "Order cancelled" in notice and "£0.00" in notice


async def test_two_admins_confirming_at_once_issue_one_credit_note(slack: SlackHarness, acme):
    await issued(slack, acme, orders=2)
    shown = await preview(slack, 'credit 000001 lines=1 reason="x"')
    await asyncio.gather(press(slack, shown, CONFIRM, user="UADMIN"), press(slack, shown, CONFIRM, user="UDANA"))
    await slack.fake.wait_for("chat.update")
    loser = text_of(await answer(slack))
    assert "already issued from this message" in loser or "already fully credited" in loser
    assert await CreditNote.all().count() == 1
    assert (await Tenant.get(name="inkwell")).last_credit_note_number == 1


async def test_a_non_admin_click_is_refused_and_changes_nothing(slack: SlackHarness, acme):
    await issued(slack, acme)
    shown = await preview(slack, 'void 000001 reason="x"')
    await press(slack, shown, CONFIRM, user="UMEMBER")
    assert "can issue credit notes" in text_of(await answer(slack))
    assert await CreditNote.all().count() == 0 and slack.fake.received("chat.update") == []


async def test_a_stale_preview_is_refused_when_the_invoice_was_credited_meanwhile(slack: SlackHarness, acme):
    await issued(slack, acme, orders=2)
    first = await preview(slack, 'void 000001 reason="a"')
    second = await preview(slack, 'credit 000001 lines=1 reason="b"')
    await press(slack, second, CONFIRM)
    await slack.fake.wait_for("chat.update")
    await press(slack, first, CONFIRM)
    shown = text_of(await answer(slack))
    assert "was credited since this preview" in shown
    assert await CreditNote.all().count() == 1


async def test_another_workspace_cannot_credit_this_tenants_invoice(slack: SlackHarness, acme):
    await issued(slack, acme)
    shown = await preview(slack, 'void 000001 reason="x"')
    await f.tenant("other", team="T2")
    await press(slack, shown, CONFIRM, team="T2")
    assert "No invoice '000001'" in text_of(await answer(slack))
    assert await CreditNote.all().count() == 0


async def test_a_forged_button_value_is_a_clear_refusal(slack: SlackHarness, acme):
    await issued(slack, acme)
    await slack.click(CONFIRM, "<!channel>{", message_ts="1.1", message_blocks=[], channel=CHANNEL)
    assert "does not carry a credit request" in text_of(await answer(slack))
    assert await CreditNote.all().count() == 0


async def test_invoices_lists_credit_notes_under_their_invoice_with_what_remains(slack: SlackHarness, acme):
    await issued(slack, acme, orders=2)
    shown = await preview(slack, 'credit 000001 lines=1 reason="Damaged"')
    await press(slack, shown, CONFIRM)
    await slack.fake.wait_for("chat.update")
    listed = text_of(await slack.reply("invoices acme", channel=CHANNEL))
    assert "credit note *CN-000001*" in listed and "£6.00 credited" in listed and "remains £6.00 of £12.00" in listed
    tenant = await Tenant.get(name="inkwell")
    ctx = CommandContext(tenant, "UADMIN", services=Services(render_pdf=_no_pdf))
    detail = await dispatch("invoice 000001", ctx)
    fields = [f["text"] for b in detail.blocks for f in b.get("fields", [])]
    assert "*Credited*\n£6.00" in fields and "*Remains*\n£6.00" in fields and "CN-000001" in str(detail.blocks)


async def _no_pdf(_doc) -> bytes:
    return b"%PDF"


async def test_retry_of_a_failed_credit_note_email_resends_the_credit_note_not_the_invoice(db, acme):
    mail = outbox()
    harness = await start_harness(services=Services(resend_invoice=mail.resend,
                                                    resend_credit_note=mail.resend_credit_note),
                                  admins={"UADMIN"}, clock=lambda: T0)
    try:
        await issued(harness, acme)
        shown = await preview(harness, 'void 000001 reason="x"')
        await press(harness, shown, CONFIRM)
        await harness.fake.wait_for("chat.update")
        failed = await Delivery.get(credit_note_id__not_isnull=True)
        await Delivery.filter(id=failed.id).update(status=DeliveryStatus.FAILED)
        await harness.click("ib:delivery_retry", str(failed.id), channel=CHANNEL, message_ts="9.9", message_blocks=[])
        await harness.fake.wait_for("chat.update", 2)
        again = await Delivery.get(kind=DeliveryKind.RESEND)
        assert again.credit_note_id == failed.credit_note_id and again.invoice_id == failed.invoice_id
        assert again.message_id.startswith("<credit-note.") and again.message_id.endswith(".r1@inkwell.example>")
    finally:
        await stop_harness(harness)


async def test_deliveries_name_the_credit_note_whose_email_is_waiting(slack: SlackHarness, acme):
    await issued(slack, acme)
    shown = await preview(slack, 'void 000001 reason="x"')
    await press(slack, shown, CONFIRM)
    await slack.fake.wait_for("chat.update")
    listed = text_of(await slack.reply("deliveries acme", channel=CHANNEL))
    assert "*CN-000001* (acme) → ap@acme.example" in listed and "*000001* (acme) → ap@acme.example" in listed


async def test_a_hostile_reason_is_shown_escaped_and_stored_as_typed(slack: SlackHarness, acme):
    await issued(slack, acme)
    shown = await preview(slack, 'void 000001 reason="<!channel> & <https://evil.example|click>"')
    note_text = str(shown["blocks"])
    assert "<!channel>" not in note_text and "<https://" not in note_text and "&amp;" in note_text
    await press(slack, shown, CONFIRM)
    await slack.fake.wait_for("chat.update")
    note = await CreditNote.get(display_number="CN-000001")
    assert "&" in note.reason and "<!channel>" not in text_of(slack.fake.message(CHANNEL, shown["ts"]))


async def test_credit_note_button_on_the_run_notice_opens_a_form_that_previews_then_issues(slack: SlackHarness, acme):
    notice = await issued(slack, acme, orders=2)
    await press(slack, notice, "ib:credit_open", user="UOPS")  # not an admin: refused, no form
    assert "admin" in text_of(await answer(slack)).lower()
    assert slack.fake.received("views.open") == []

    await press(slack, notice, "ib:credit_open")
    (opened,) = await slack.fake.wait_for("views.open")
    form = opened.params["view"]
    status, body = await slack.submit_view(form, {"lines": "9", "reason": "Damaged", "reinvoice": "no"}, team="T1")
    assert status == 200 and "lines" in body["errors"]  # line 9 does not exist: an error in the form
    status, body = await slack.submit_view(form, {"lines": "all", "reason": "", "reinvoice": "no"}, team="T1")
    assert status == 200 and "reason" in body["errors"]
    assert await CreditNote.all().count() == 0

    before = len(slack.fake.posts(CHANNEL))
    status, body = await slack.submit_view(form, {"lines": "2", "reason": "Damaged <!channel>", "reinvoice": "no"},
                                           team="T1")
    assert (status, body) == (200, {})
    for _ in range(100):
        if len(slack.fake.posts(CHANNEL)) > before:
            break
        await asyncio.sleep(0.02)
    shown = slack.fake.posts(CHANNEL)[-1]
    assert "Credit invoice 000001 (acme)? £6.00 credited" in text_of(shown)
    assert await CreditNote.all().count() == 0  # still only a preview
    await press(slack, shown, CONFIRM)
    await slack.fake.wait_for("chat.update")
    (note,) = await CreditNote.all()
    assert note.display_number == "CN-000001" and note.reason == "Damaged <!channel>"
