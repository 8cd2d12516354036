"""Reading the well-known parts of a Slack payload, the same way everywhere."""

from __future__ import annotations

from typing import Any


def team_of(body: dict[str, Any]) -> str:
    """The workspace (team id) a request comes from: slash commands say ``team_id``, interactions ``team.id``."""
    team = body.get("team_id") or body.get("team") or ""
    if isinstance(team, dict):  # Slack sends ``team`` as an id or as an object with one (``http._shape_error``)
        team = team.get("id") or ""
    return str(team)
