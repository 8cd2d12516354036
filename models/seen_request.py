"""Signed Slack requests already executed, remembered for the signature window so a replay is refused."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class SeenRequest(Model):
    """One validly signed Slack HTTP request that was let through to the handlers.

    Slack sends no nonce, but the signature (an HMAC of timestamp and body) is unique per
    request; a second row with the same signature cannot be inserted, which is how every
    replica learns that a request was already executed. Rows whose timestamp has left
    the acceptance window can never match a request again and are purged.
    """

    id = fields.BigIntField(primary_key=True)
    # ``v0=`` + 64 hex digits as Slack sent it; only verified signatures are stored.
    signature = fields.CharField(max_length=128, unique=True)
    # X-Slack-Request-Timestamp (Unix seconds): what the purge compares with the window.
    timestamp = fields.BigIntField(db_index=True)
    seen_at = fields.DatetimeField()

    class Meta:
        table = "slack_request_seen"
        table_description = "Validly signed Slack requests already executed (replay refusal)."
