"""Slack requests already executed: signatures (a replay is refused) and request ids (a retry is not run again)."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class SeenRequest(Model):
    """One Slack request that was let through to the handlers, by signature or by stable id.

    Slack sends no nonce, but the signature (an HMAC of timestamp and body) is unique per
    request; a second row with the same signature cannot be inserted, which is how every
    replica learns that a request was already executed. Rows whose timestamp has left
    the acceptance window can never match a request again and are purged.

    A *retry* (Slack re-sending what it thinks was not acknowledged) is signed anew, so it
    is recognised by a stable id instead (``id:event:<event_id>``, ``id:trigger:<trigger_id>``…,
    see ``bot.replays.request_key``), in the same unique column; such rows are kept until
    ``retain_until``, past Slack's retry schedule.
    """

    id = fields.BigIntField(primary_key=True)
    # ``v0=`` + 64 hex digits as Slack sent it (only verified signatures are stored), or ``id:…``.
    signature = fields.CharField(max_length=128, unique=True)
    # X-Slack-Request-Timestamp (Unix seconds): what the purge compares with the window.
    timestamp = fields.BigIntField(db_index=True)
    seen_at = fields.DatetimeField()
    # Unix seconds after which a request-id row is purged; None for signature rows (the window decides).
    retain_until = fields.BigIntField(null=True, db_index=True)

    class Meta:
        table = "slack_request_seen"
        table_description = "Validly signed Slack requests already executed (replay refusal)."
