"""Nothing lost silently (issue 13, item 4): lists page and say "1–40 of 500", long values split.

Through the real signed Slack endpoint: every company of 500 is reachable by typing
``page=N`` and by pressing "Next page ▸"; values at their column limits (and 10,000-
character error texts) in every list and show command give payloads within Slack's
limits (checked by ``tests/fakes/slack_scan.limit_findings``, which also validates each
block with slack_sdk's models), and each value is shown whole, or cut saying how much.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from commands.fitting import MAX_BLOCKS, block_chars, split_text
from commands.paging import action_id
from commands.replies import MAX_MESSAGE_CHARS, Mrkdwn, mention, message, section
from invoicing.integrations.pdf_emailer.run import run_by_name
from invoicing.parties.companies import create_company
from models import Company, Delivery, DeliveryStatus, Tenant
from tests import factories as f
from tests.bot.slack_harness import SlackHarness, start_harness, stop_harness
from tests.fakes.slack_api import FakeSlack, text_of
from tests.fakes.slack_scan import limit_findings, message_calls


@pytest.fixture
async def slack(db) -> AsyncIterator[SlackHarness]:
    harness = await start_harness()
    yield harness
    await stop_harness(harness)


async def _answers(fake: FakeSlack, before: int, timeout: float = 20.0) -> list[dict]:
    """Every message call after ``before``, once nothing more arrives for a moment."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while len(message_calls(fake.calls)) <= before and loop.time() < end:
        await asyncio.sleep(0.02)
    seen = -1
    while seen != len(fake.calls) and loop.time() < end:
        seen = len(fake.calls)
        await asyncio.sleep(0.1)
    calls = message_calls(fake.calls)[before:]
    assert calls, "no answer"
    return [c.params for c in calls]


async def _ask(slack: SlackHarness, text: str, **kwargs) -> list[dict]:
    before = len(message_calls(slack.fake.calls))
    assert (await slack.command(text, **kwargs)).status == 200
    return await _answers(slack.fake, before)


def _next_button(params: dict) -> str | None:
    for block in params.get("blocks") or []:
        for el in block.get("elements") or []:
            if el.get("action_id") == action_id("page") and el["text"]["text"].startswith("Next"):
                return el["value"]
    return None


def _shown(answers: list[dict]) -> str:
    return "\n".join(text_of(a) for a in answers)


def _squeezed(text: str) -> str:
    return "".join(text.split())


async def test_500_companies_are_all_reachable_through_pages_and_the_next_page_button(slack: SlackHarness):
    t = await f.tenant(team="T1")
    for i in range(500):
        await create_company(t, f"shop{i:03d}", name=f"Shop {i} Ltd", country="GB", currency="GBP")
    (first,) = await _ask(slack, "companies")
    assert "Companies of inkwell · 1–40 of 500" in text_of(first)
    assert "page 1 of 13" in text_of(first) and "`/invoicing companies page=2`" in text_of(first)

    typed, clicked = set(), set()
    for page in range(1, 14):
        answers = await _ask(slack, f"companies page={page}")
        typed |= {w.strip("*") for w in _shown(answers).split() if w.startswith("*shop")}
    (last,) = await _ask(slack, "companies page=13")
    assert "481–500 of 500" in text_of(last) and _next_button(last) is None

    params, pages = first, 1
    while True:
        clicked |= {w.strip("*") for w in text_of(params).split() if w.startswith("*shop")}
        value = _next_button(params)
        if value is None:
            break
        before = len(message_calls(slack.fake.calls))
        assert (await slack.click(action_id("page"), value)).status == 200
        (params,) = await _answers(slack.fake, before)
        assert params.get("response_type") == "ephemeral"
        pages += 1
    expected = {f"shop{i:03d}" for i in range(500)}
    assert typed == expected and clicked == expected and pages == 13
    assert "0 of 500" not in _shown(await _ask(slack, "companies page=14"))  # past the end: says so
    assert "there are 500" in _shown(await _ask(slack, "companies page=14"))


async def test_a_page_button_reads_only_and_only_the_clickers_tenant(slack: SlackHarness):
    t = await f.tenant(team="T1")
    await f.company(t, "acme")
    rival = await f.tenant("rival", team="T2")
    await f.company(rival, "beta")
    before = len(message_calls(slack.fake.calls))
    await slack.click(action_id("page"), "companies page=1", team="T2", user="URIVAL")
    (answer,) = await _answers(slack.fake, before)
    assert "beta" in text_of(answer) and "acme" not in text_of(answer)
    before = len(message_calls(slack.fake.calls))
    await slack.click(action_id("page"), 'company add evil name="Evil" country=GB currency=GBP page=2')
    (answer,) = await _answers(slack.fake, before)
    assert "does not open a list" in text_of(answer)
    assert not await Company.filter(short_name="evil").exists()


#: Every character here grows when escaped (``&`` → ``&amp;``): the worst case for length.
def _long(n: int, seed: str) -> str:
    return (seed + " &<> " * n)[:n]


@pytest.fixture
async def huge(db) -> Tenant:
    t = await f.tenant(team="T1")
    for i in range(3):
        short = f"big{i}"
        c = await create_company(t, short, name=_long(200, f"Name{i}"), country="GB", currency="GBP",
                                 channel="CBILLING", accounting={
                                     **f.BUYER, "legal_name": _long(200, f"Legal{i}"),
                                     "address_line1": _long(200, "Line1"), "address_line2": _long(200, "Line2"),
                                     "city": _long(100, "City"), "region": _long(100, "Region")})
        await f.price(t, "MUG", "5.00", name=_long(200, "Mug"))
        for j in range(30):
            await f.order(c, ref=_long(64, f"R{i}-{j}-"))
            await f.order(c, ref=_long(64, f"E{i}-{j}-"), error=_long(2000, f"Error{j}"))  # the ingest limit
        await run_by_name(t, short, clock=lambda: f.T0)
    await Delivery.filter().update(status=DeliveryStatus.FAILED, last_error=_long(10_000, "550"))
    return await Tenant.get(id=t.id)


async def test_values_at_their_column_limits_stay_within_slack_limits_and_are_not_dropped(slack: SlackHarness,
                                                                                        huge: Tenant):
    c = await Company.get(short_name="big0")
    invoice = (await c.invoices.all())[0].display_number  # type: ignore[attr-defined]
    commands = ["companies", "accounting big0", "emailer big0", "orders big0", "orders big0 errors",
                "orders big0 uninvoiced page=2", "invoices big0", f"invoice {invoice}", "audit", "audit big0",
                "deliveries", "deliveries big0", "schedule", "seller", "help", "run big1 dry-run"]
    everything: list[dict] = []
    for text in commands:
        answers = await _ask(slack, text)
        everything += answers
        shown = _squeezed(_shown(answers))
        if text == "accounting big0":
            for key in ("legal_name", "address_line1", "address_line2", "city", "region"):
                assert _squeezed(getattr(c, key)) in shown, key
        if text == "companies":
            for i in range(3):
                assert _squeezed((await Company.get(short_name=f"big{i}")).name) in shown
        if text == "orders big0 errors":
            assert "characters)" in shown  # the 10,000-character error is cut, saying how much
        if text == "deliveries":
            assert "characters)" in shown
    problems = limit_findings([c for c in message_calls(slack.fake.calls)])
    assert not problems, "\n".join(map(str, problems[:10]))
    assert any("(part 2 of" in (a.get("text") or "") for a in everything)  # some answers needed several messages


def test_a_long_text_is_split_at_lines_and_never_inside_an_escape_or_a_mention():
    text = Mrkdwn("\n".join(["&amp;" * 100 + str(mention("U12345"))] * 40))
    pieces = split_text(text, 3000)
    assert all(len(p) <= 3000 for p in pieces) and "".join(pieces).replace("\n", "") == text.replace("\n", "")
    hard = split_text(Mrkdwn("&lt;" * 2000 + "<@U1>" * 500), 3000)
    for piece in hard:
        assert piece.count("&") == piece.count(";") and piece.count("<") == piece.count(">")


def test_a_reply_too_big_for_one_message_continues_in_order_without_losing_a_block():
    blocks = [section(f"row {i} " + "x" * 2500) for i in range(120)]
    reply = message("big", *blocks)
    parts = reply.parts()
    assert len(parts) > 1 and all(len(p.blocks) <= MAX_BLOCKS for p in parts)
    assert all(sum(block_chars(b) for b in p.blocks) <= MAX_MESSAGE_CHARS for p in parts)
    rows = [b["text"]["text"].split()[1] for p in parts for b in p.blocks if b["type"] == "section"]
    assert rows == [str(i) for i in range(120)]
    assert parts[1].text.endswith(f"(part 2 of {len(parts)})")


def test_a_clipped_label_or_text_never_ends_inside_an_escape_or_a_mention():
    from commands.replies import clip

    for text in ("x" * 95 + "&amp;" + "y" * 50, Mrkdwn("x" * 96 + "<@U0BOSS>" + "y" * 50), "a" * 200):
        cut = clip(text, 100)
        assert len(cut) <= 100 and cut.endswith("…")
        assert "&am…" not in cut and "&a…" not in cut and "<@U0…" not in cut
    assert isinstance(clip(Mrkdwn("z" * 300), 100), Mrkdwn)
