"""The App Home tab: ``app_home_opened`` → ``views.publish`` of the tenant's state, paged, escaped, scoped."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from slack_sdk.models.views import View

from commands import home
from commands.home import MAX_HOME_BLOCKS, PAGE_SIZE, PendingApproval, home_view
from commands.replies import button
from invoicing.integrations.pdf_emailer.run import run_by_name
from models import Company, Delivery, DeliveryStatus, Integration, IntegrationKind, RunTrigger, Tenant
from tests import factories as f
from tests.bot.slack_harness import SlackHarness, start_harness, stop_harness
from tests.factories import T0
from tests.fakes.slack_api import Call, text_of
from tests.invoicing.delivery.test_delivery import Clock

HOSTILE = "<!channel> <@U0BOSS> <http://evil.example|click> &amp;"


@pytest.fixture
async def slack(db):
    harness = await start_harness()
    yield harness
    await stop_harness(harness)


@pytest.fixture
async def tenant(db) -> Tenant:
    return await f.tenant(team="T1")


async def open_home(slack: SlackHarness, user: str = "UOPS", *, team: str = "T1", tab: str = "home") -> Call:
    before = len(slack.fake.received("views.publish"))
    response = await slack.event({"type": "app_home_opened", "user": user, "channel": "D0HOME", "tab": tab,
                                  "event_ts": "1.000001"}, team=team)
    assert response.status == 200
    return (await slack.fake.wait_for("views.publish", before + 1))[before]


def valid(view: dict) -> dict:
    """The view as Slack would take it: slack_sdk's own model validates it (raises otherwise)."""
    View(**view).validate_json()
    for block in view["blocks"]:
        ids = [e["action_id"] for e in block.get("elements", []) if "action_id" in e]
        assert len(ids) == len(set(ids)), f"duplicate action_id in one block: {ids}"
    return view


def shown(view: dict) -> str:
    return text_of({"blocks": view["blocks"]})


def mrkdwn_texts(node: object) -> list[str]:
    """Every mrkdwn text in the view (plain_text is never parsed by Slack, so it may hold anything)."""
    if isinstance(node, list):
        return [t for item in node for t in mrkdwn_texts(item)]
    if not isinstance(node, dict):
        return []
    found = [str(node["text"])] if node.get("type") == "mrkdwn" else []
    return found + [t for v in node.values() if isinstance(v, dict | list) for t in mrkdwn_texts(v)]


def buttons(view: dict) -> dict[str, str]:
    """label → action_id of every button in the view."""
    return {e["text"]["text"]: e["action_id"] for b in view["blocks"] if b["type"] == "actions"
            for e in b["elements"]}


def value_of(view: dict, label: str) -> str:
    return next(e.get("value", "") for b in view["blocks"] if b["type"] == "actions" for e in b["elements"]
                if e["text"]["text"] == label)


async def bulk_companies(t: Tenant, count: int, prefix: str = "co") -> None:
    """``count`` companies with their integration rows, inserted in bulk (a large tenant, quickly)."""
    await Company.bulk_create([Company(tenant_id=t.id, short_name=f"{prefix}{i:04d}", name=f"Company {i}",
                                       country="GB", currency="GBP", timezone="Europe/London")
                               for i in range(count)])
    ids = await Company.filter(tenant_id=t.id, short_name__startswith=prefix).values_list("id", flat=True)
    await Integration.bulk_create([Integration(company_id=i, kind=IntegrationKind.PDF_EMAILER) for i in ids])


async def test_opening_the_home_publishes_each_companys_state_for_the_opener(slack: SlackHarness, tenant):
    acme = await f.company(tenant, "acme")
    await f.company(tenant, "zeta")
    await f.price(tenant, "MUG", "5.00", shipping="1.50")
    await f.order(acme, quantity=2)
    report = await run_by_name(tenant, "acme", trigger=RunTrigger.MANUAL, clock=Clock(T0))
    await f.emailer(acme, enabled=True, schedule="weekly", next_run_at=T0 + timedelta(days=7))
    await Delivery.filter().update(status=DeliveryStatus.FAILED, attempts=1, last_error="550 5.1.1 mailbox unknown")

    call = await open_home(slack, "UOPS")
    assert call.params["user_id"] == "UOPS"
    view = valid(call.params["view"])
    assert view["type"] == "home"
    text = shown(view)
    assert "InvoiceBot — inkwell" in text
    assert "*acme* — Acme Ltd" in text and "*zeta* — Zeta Ltd" in text
    # next run in the company's time zone (Europe/London: GMT in November)
    assert "PDF Emailer on · weekly · next Mon 09 Nov 2026 09:00 GMT" in text
    assert f"Last invoice *{report.invoice_number}* · 02 Nov 2026 · £15.60" in text
    assert "1 failing delivery — newest: `550 5.1.1 mailbox unknown`" in text
    assert "PDF Emailer off" in text and "No invoice yet" in text  # zeta
    assert "Companies 1–2 of 2 · page 1 of 1" in text
    assert "Next ▸" not in buttons(view)


async def test_the_messages_tab_publishes_nothing(slack: SlackHarness, tenant):
    await slack.event({"type": "app_home_opened", "user": "UOPS", "channel": "D0HOME", "tab": "messages"})
    await open_home(slack, "UOPS")  # a later Home opening is the first (and only) publish
    assert len(slack.fake.received("views.publish")) == 1


async def test_an_unlinked_workspace_gets_a_home_explaining_how_to_link_it(slack: SlackHarness, tenant):
    await f.company(tenant, "acme")
    view = valid((await open_home(slack, team="T999")).params["view"])
    assert "invoicebot tenant create NAME --slack-team T999" in shown(view)
    assert "acme" not in shown(view)


async def test_a_workspace_sees_only_its_own_companies(slack: SlackHarness, tenant):
    await f.company(tenant, "acme")
    other = await f.tenant("rival", team="T2")
    await f.company(other, "theirs")
    view = valid((await open_home(slack, team="T2")).params["view"])
    assert "*theirs*" in shown(view) and "acme" not in shown(view) and "rival" in shown(view)
    view = valid((await open_home(slack, team="T1")).params["view"])
    assert "*acme*" in shown(view) and "theirs" not in shown(view)


async def test_hostile_names_and_errors_are_shown_as_text(slack: SlackHarness, tenant):
    acme = await f.company(tenant, "acme")
    await Company.filter(id=acme.id).update(name=HOSTILE)
    await Tenant.filter(id=tenant.id).update(name=f"ink {HOSTILE}")
    await f.price(tenant, "MUG", "5.00")
    await f.order(acme)
    await run_by_name(tenant, "acme", trigger=RunTrigger.MANUAL, clock=Clock(T0))
    await Delivery.filter().update(status=DeliveryStatus.PENDING, attempts=2, last_error=f"451 `{HOSTILE}`")
    view = valid((await open_home(slack)).params["view"])
    raw = "\n".join(mrkdwn_texts(view))
    assert "&amp;amp;" in raw and "&lt;!channel&gt;" in raw
    for markup in ("<!channel>", "<@U0BOSS>", "<http://evil.example"):
        assert markup not in raw
    assert HOSTILE in shown(view)  # displayed exactly as typed, `&amp;` included
    assert "1 failing delivery — newest: `451 '<!channel>" in shown(view)


async def test_a_500_company_tenant_is_paged_within_the_block_limit_and_every_page_is_reachable(
        slack: SlackHarness, tenant):
    await bulk_companies(tenant, 500)
    view = valid((await open_home(slack, "UOPS")).params["view"])
    assert len(view["blocks"]) <= MAX_HOME_BLOCKS
    pages = -(-500 // PAGE_SIZE)
    seen: list[str] = []
    for page in range(1, pages + 1):
        text = shown(view)
        assert f"page {page} of {pages}" in text
        seen += [line.split("*")[1] for line in text.splitlines() if line.startswith("*co")]
        if page == pages:
            break
        assert buttons(view)["Next ▸"] == "ib:home_page"
        before = len(slack.fake.received("views.publish"))
        response = await slack.click("ib:home_page", value_of(view, "Next ▸"), user="UOPS",
                                     view={"private_metadata": view["private_metadata"]})
        assert response.status == 200
        call = (await slack.fake.wait_for("views.publish", before + 1))[before]
        assert call.params["user_id"] == "UOPS"
        view = valid(call.params["view"])
        assert len(view["blocks"]) <= MAX_HOME_BLOCKS
    assert seen == [f"co{i:04d}" for i in range(500)]  # each company once, in order, none lost
    assert "Next ▸" not in buttons(view) and buttons(view)["◂ Previous"] == "ib:home_page_back"
    before = len(slack.fake.received("views.publish"))
    await slack.click("ib:home_page_back", value_of(view, "◂ Previous"), user="UOPS", view={})
    back = valid((await slack.fake.wait_for("views.publish", before + 1))[before].params["view"])
    assert f"page {pages - 1} of {pages}" in shown(back)


async def test_a_page_click_with_a_bad_value_changes_nothing_and_says_why(slack: SlackHarness, tenant):
    await f.company(tenant, "acme")
    await slack.click("ib:home_page", "9; drop", user="UOPS", view={})
    dm = await slack.fake.wait_for("chat.postMessage")
    assert "is not a page number" in text_of(dm[0].params)
    assert dm[0].params["channel"] == "UOPS"
    # the Home is shown again as it was (the page it showed), not moved anywhere
    assert [c.params["view"]["private_metadata"] for c in slack.fake.received("views.publish")] == ["page=1"]


async def test_a_page_past_the_end_shows_the_last_page(tenant):
    await bulk_companies(tenant, 20)
    view = valid(await home_view(tenant, page=99))
    assert "Companies 16–20 of 20 · page 2 of 2" in shown(view)


async def test_any_other_click_on_the_home_republishes_it_at_the_same_page(slack: SlackHarness, tenant,
                                                                            monkeypatch: pytest.MonkeyPatch):
    from commands.click_handlers import CLICKS
    from commands.clicks import ClickResult

    await bulk_companies(tenant, 40)
    done: list[str] = []

    async def approve(click) -> ClickResult:  # stands in for approval mode's Approve button
        done.append(click.value)
        return ClickResult()

    monkeypatch.setitem(CLICKS, "approve_test", approve)
    await slack.click("ib:approve_test", "42", user="UOPS", view={"private_metadata": "page=2"})
    view = valid((await slack.fake.wait_for("views.publish"))[0].params["view"])
    assert done == ["42"]
    assert "page 2 of 3" in shown(view)


async def test_pending_approvals_show_with_their_buttons_within_the_block_limit(tenant):
    await bulk_companies(tenant, 30)
    ids = [c.id for c in await Company.filter(tenant_id=tenant.id).order_by("short_name")]

    async def approvals(tenant_id: int) -> list[PendingApproval]:
        assert tenant_id == tenant.id
        return [PendingApproval(cid, f"Invoice ready for {HOSTILE}: £{n}.00",
                                (button("Approve", "ib:approve", f"{cid}-{n}", style="primary"),
                                 button("Skip", "ib:skip", f"{cid}-{n}")))
                for cid in ids for n in range(5)]

    view = valid(await home_view(tenant, approvals=approvals))
    assert len(view["blocks"]) <= MAX_HOME_BLOCKS
    text = shown(view)
    assert text.count("Invoice ready for") == PAGE_SIZE * home.APPROVALS_SHOWN
    assert text.count("… and 3 more waiting") == PAGE_SIZE
    assert not any("<!channel>" in t for t in mrkdwn_texts(view))
    approve = [e for b in view["blocks"] if b["type"] == "actions" for e in b["elements"]
               if e["action_id"] == "ib:approve"]
    assert approve[0]["value"] == f"{ids[0]}-0"



def test_the_manifest_subscribes_to_app_home_opened_and_enables_the_home_tab():
    import yaml  # pyyaml comes with the test dependencies (schemathesis)

    manifest = yaml.safe_load((Path(__file__).parents[2] / "slack" / "manifest.yml").read_text())
    settings, features = manifest["settings"], manifest["features"]
    url = features["slash_commands"][0]["url"]
    assert settings["event_subscriptions"] == {"request_url": url, "bot_events": ["app_home_opened"]}
    assert settings["interactivity"] == {"is_enabled": True, "request_url": url}
    assert features["app_home"] == {"home_tab_enabled": True, "messages_tab_enabled": True,
                                    "messages_tab_read_only_enabled": True}
