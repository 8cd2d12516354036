"""Block Kit validation of what the bot sends, with slack_sdk's own models.

Slack answers ``invalid_blocks`` to a message whose blocks break its rules; the fake Web
API does the same through ``problems``, so a builder that produces a bad payload fails
the test that drove it (and the fake keeps the reason in ``FakeSlack.invalid``).

A block is accepted when slack_sdk parses it into a known type, its ``validate_json``
passes (lengths, counts, required fields) and it survives a round trip unchanged (a
key slack_sdk does not know would be dropped by Slack too, so it is a mistake here).
"""

from __future__ import annotations

from typing import Any

from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

#: Slack's limits: blocks per message / per modal or Home tab, characters of the fallback text.
MESSAGE_BLOCKS = 50
VIEW_BLOCKS = 100
TEXT_CHARS = 40_000


def _block_problems(blocks: Any, limit: int) -> list[str]:
    if not isinstance(blocks, list):
        return ["blocks is not a list"]
    problems = [f"{len(blocks)} blocks (at most {limit})"] if len(blocks) > limit else []
    for index, raw in enumerate(blocks):
        try:
            block = Block.parse(raw) if isinstance(raw, dict) else None
        except (TypeError, ValueError) as exc:
            problems.append(f"block {index}: {exc}")
            continue
        if block is None:
            problems.append(f"block {index}: unknown block {str(raw)[:80]}")
            continue
        try:
            block.validate_json()
        except SlackObjectFormationError as exc:
            problems.append(f"block {index} ({raw.get('type')}): {exc}")
            continue
        if block.to_dict() != raw:
            problems.append(f"block {index} ({raw.get('type')}): does not round-trip (unknown or misplaced keys)")
    return problems


def message_problems(params: dict[str, Any]) -> list[str]:
    """What is wrong with a message payload (``chat.postMessage`` & co., ``response_url``)."""
    problems = []
    text = params.get("text")
    if text is not None and not isinstance(text, str):
        problems.append("text is not a string")
    elif text and len(text) > TEXT_CHARS:
        problems.append(f"text has {len(text)} characters")
    if params.get("blocks") is not None:
        problems += _block_problems(params["blocks"], MESSAGE_BLOCKS)
    if not text and not params.get("blocks") and not params.get("delete_original"):
        problems.append("neither text nor blocks")
    return problems


def view_problems(view: Any) -> list[str]:
    """What is wrong with a ``views.open`` / ``views.publish`` view."""
    if not isinstance(view, dict):
        return ["view is not an object"]
    problems = _block_problems(view.get("blocks", []), VIEW_BLOCKS)
    try:
        View(**view).validate_json()
    except (SlackObjectFormationError, TypeError) as exc:
        problems.append(f"view: {exc}")
    return problems


_MESSAGE_METHODS = {"chat.postMessage", "chat.postEphemeral", "chat.update", "chat.scheduleMessage"}
_VIEW_METHODS = {"views.open", "views.publish", "views.update", "views.push"}


def problems_of(method: str, params: dict[str, Any]) -> list[str]:
    """Problems of a Web API call's payload (methods without a payload have none)."""
    if method in _MESSAGE_METHODS or method == "response_url":
        return message_problems(params)
    if method in _VIEW_METHODS:
        return view_problems(params.get("view"))
    return []
