"""The fake Web API refuses what Slack refuses, so a bad builder fails its test."""

from __future__ import annotations

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from commands.dispatch import help_reply
from tests.fakes.block_kit import message_problems, view_problems
from tests.fakes.slack_api import FakeSlack


def test_a_real_reply_is_valid():
    reply = help_reply()
    assert message_problems({"text": reply.text, "blocks": list(reply.blocks)}) == []


@pytest.mark.parametrize("block, problem", [
    ({"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}, "3000"),
    ({"type": "section", "text": {"type": "mrkdwn", "text": "x"}, "colour": "red"}, "round-trip"),
    ({"type": "bogus"}, "unknown block"),
    ({"type": "header", "text": {"type": "plain_text", "text": "x" * 151}}, "150"),
])
def test_bad_blocks_are_named(block, problem):
    problems = message_problems({"text": "t", "blocks": [block]})
    assert problems and problem in problems[0]


def test_too_many_blocks_and_bad_views():
    blocks = [{"type": "divider"}] * 51
    assert "51 blocks" in message_problems({"text": "t", "blocks": blocks})[0]
    assert view_problems({"type": "home", "blocks": [{"type": "divider"}] * 101})
    assert view_problems({"type": "home", "blocks": [{"type": "divider"}]}) == []


async def test_the_fake_answers_invalid_blocks_and_remembers_it():
    fake = await FakeSlack().start()
    client = AsyncWebClient(token="xoxb-t", base_url=fake.api_url)
    with pytest.raises(SlackApiError) as caught:
        await client.chat_postMessage(channel="C1", text="t", blocks=[{"type": "bogus"}])
    assert caught.value.response["error"] == "invalid_blocks"
    assert fake.posts("C1") == []
    with pytest.raises(AssertionError, match="payloads Slack refuses"):
        await fake.stop()
