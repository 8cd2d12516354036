"""Scheduled runs queue their Slack notice with what they record (issue 12, item 6).

The scheduler only posts nothing itself any more: each outcome is a ``slack_notice`` row
committed with the run record (or, for a slot that cannot run, by the scheduler).
"""

from __future__ import annotations

from bot.scheduler import Scheduler
from invoicing.integrations.pdf_emailer.run import KIND, run_company
from models import NoticeKind, SlackNotice
from tests import factories as f
from tests.bot.test_scheduler import SLOT, at, due_company, setup_tenant


async def test_every_scheduled_outcome_of_a_company_with_a_channel_queues_its_notice(db):
    t = await setup_tenant()
    good = await due_company(t, "good")
    await f.order(good)
    broke = await f.company(t, "broke", complete=False)
    await f.emailer(broke, enabled=True, next_run_at=SLOT)
    boom = await due_company(t, "boom")
    await f.order(boom)
    bogus = await due_company(t, "bogus", schedule="every full moon")
    quiet = await due_company(t, "quiet")  # no channel: nothing queued
    await f.order(quiet)
    for company in (good, broke, boom, bogus):
        company.slack_channel = f"C{company.short_name.upper()}"
        await company.save()

    async def runner(tenant, company, **kwargs):
        def crash(step: str) -> None:
            if step == "recorded" and company.short_name == "boom":  # after its notice was written
                raise RuntimeError("disk full")
        return await run_company(tenant, company, checkpoint=crash, **kwargs)

    await Scheduler(clock=at(SLOT), runners={KIND: runner}).tick()

    notices = {n.channel: n for n in await SlackNotice.all()}
    assert {channel: n.kind for channel, n in notices.items()} == {
        "CGOOD": NoticeKind.RUN_ISSUED, "CBROKE": NoticeKind.RUN_REFUSED, "CBOOM": NoticeKind.RUN_FAILED,
        "CBOGUS": NoticeKind.RUN_FAILED}
    assert notices["CBOOM"].payload["reason"] == "Run failed (RuntimeError); nothing was issued."
    assert "is missing" in notices["CBROKE"].payload["reason"]
    assert "Schedule 'every full moon' cannot be computed" in notices["CBOGUS"].payload["reason"]
