"""The accounting API client: every call paced, authorised, counted and mapped to our errors.

``XeroClient.call(tenant_id, connection_id, method, path, …)`` sends one request to
``/api.xro/2.0/<path>`` for a connection *of that tenant* (another tenant's connection is ``NotFound``,
as if it did not exist), with ``Authorization: Bearer`` from ``tokens.access_token``, ``xero-tenant-id``,
``Accept: application/json`` and, when given, ``Idempotency-Key``; a ``str`` body is sent as the JSON
text it is (so a request sent again is byte-identical), anything else is serialised; it holds the
organisation's pacer slot (``pacer``) and counts the call in the daily budget (``budget``) first.
Answers:

* 2xx → the parsed JSON (``{}`` when empty);
* 401 → the token is refreshed once (``stale``) and the call repeated;
* 429 → the organisation backs off ``Retry-After`` seconds (others go on) and the call is repeated,
  up to ``attempts``; a daily-limit 429 (``X-Rate-Limit-Problem: daily``) is ``XeroDailyBudgetExhausted``;
* 5xx or no answer → repeated with exponential backoff, but only when repeating cannot create twice
  (a GET, or a request with an ``Idempotency-Key``); then ``XeroUnavailable``;
* 400 → ``XeroValidationError`` with Xero's validation messages; anything else ``XeroRequestFailed``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any

import aiohttp

from invoicing.backoff import retry_delay
from invoicing.errors import NotFound
from invoicing.integrations.xero.budget import count_call
from invoicing.integrations.xero.endpoints import XeroEnv
from invoicing.integrations.xero.errors import (
    XeroDailyBudgetExhausted,
    XeroRateLimited,
    XeroRequestFailed,
    XeroUnavailable,
    XeroValidationError,
)
from invoicing.integrations.xero.pacer import Pacers, Sleep
from invoicing.integrations.xero.tokens import access_token
from models import XeroConnection

log = logging.getLogger(__name__)

#: Longest ``Retry-After`` obeyed in place; a longer wait is returned to the caller as ``XeroRateLimited``.
MAX_IN_PLACE_WAIT = 120.0


def validation_messages(body: Any) -> tuple[str, ...]:
    """Xero's ``ValidationErrors`` messages of a 400 (or its ``Message``), in order, each once."""
    found: list[str] = []
    if isinstance(body, dict):
        for element in body.get("Elements") or []:
            for error in (element.get("ValidationErrors") or []) if isinstance(element, dict) else []:
                if isinstance(error, dict) and error.get("Message"):
                    found.append(str(error["Message"]))
        if not found and body.get("Message"):
            found.append(str(body["Message"]))
    return tuple(dict.fromkeys(found))


@dataclass
class XeroClient:
    """One per process (its ``pacers`` are the per-organisation limiters)."""

    env: XeroEnv
    pacers: Pacers
    attempts: int = 4
    backoff: float = 1.0
    sleep: Sleep = asyncio.sleep

    async def call(self, tenant_id: int, connection_id: int, method: str, path: str, *, body: Any = None,
                   params: dict[str, str] | None = None, idempotency_key: str | None = None) -> Any:
        row = await XeroConnection.get_or_none(id=connection_id, tenant_id=tenant_id)
        if row is None:
            raise NotFound("No such Xero connection in this workspace.")
        if idempotency_key is not None and not 0 < len(idempotency_key) <= 128:
            raise ValueError("an Idempotency-Key is 1 to 128 characters")
        repeatable = method.upper() == "GET" or idempotency_key is not None
        pacer = self.pacers.for_org(row.xero_tenant_id)
        token = await access_token(row.id, box=self.env.box, http=self.env.http, clock=self.env.clock)
        refreshed = False
        http = self.env.http
        url = http.urls.accounting(path)
        for attempt in range(1, self.attempts + 1):
            headers = {"Authorization": f"Bearer {token}", "xero-tenant-id": row.xero_tenant_id,
                       "Accept": "application/json"}
            if idempotency_key is not None:
                headers["Idempotency-Key"] = idempotency_key
            payload: dict[str, Any] = {"json": body}
            if isinstance(body, str):  # already JSON text (pushes: byte-identical when sent again)
                headers["Content-Type"] = "application/json"
                payload = {"data": body.encode()}
            last = attempt == self.attempts
            async with pacer.slot():
                await count_call(row, now=self.env.clock())
                try:
                    async with http.session.request(method, url, headers=headers, params=params, **payload,
                                                    timeout=http.client_timeout) as answer:
                        status, text = answer.status, await answer.text()
                        retry_after, problem = answer.headers.get("Retry-After", ""), \
                            answer.headers.get("X-Rate-Limit-Problem", "")
                except (TimeoutError, aiohttp.ClientError) as exc:
                    log.warning("xero call lost method=%s path=%s attempt=%d error=%s", method, path, attempt,
                                type(exc).__name__)
                    if last or not repeatable:
                        raise XeroUnavailable("Xero did not answer; nothing is lost, it is tried again later.") \
                            from None
                    await self.sleep(retry_delay(attempt, base=self.backoff))
                    continue
            if status == 401 and not refreshed:
                token = await access_token(row.id, box=self.env.box, http=http, clock=self.env.clock, stale=token)
                refreshed = True
                continue
            if status == 429:
                wait = _seconds(retry_after)
                log.warning("xero 429 org=%s problem=%s retry_after=%s", row.xero_tenant_id, problem, wait)
                if problem.lower() in ("day", "daily"):
                    raise XeroDailyBudgetExhausted(f"Xero's daily limit for {row.organisation_name} is reached; "
                                                   "what is waiting goes tomorrow.")
                pacer.back_off(wait)
                if last or wait > MAX_IN_PLACE_WAIT:
                    raise XeroRateLimited(f"Xero asked us to wait {wait:.0f} s ({problem or 'rate limit'}).",
                                          retry_after=wait, problem=problem)
                continue
            if status >= 500:
                if last or not repeatable:
                    raise XeroUnavailable(f"Xero failed the request (HTTP {status}); it is tried again later.")
                await self.sleep(retry_delay(attempt, base=self.backoff))
                continue
            return _answer(status, text)
        raise XeroUnavailable("Xero kept refusing the token; try again later.")


def _seconds(value: str) -> float:
    try:
        return max(0.0, float(value))
    except ValueError:
        return 60.0


def _answer(status: int, text: str) -> Any:
    try:
        parsed: Any = json.loads(text) if text.strip() else {}
    except ValueError:
        parsed = None
    if 200 <= status < 300:
        if parsed is None:
            raise XeroRequestFailed("Xero's answer was not JSON.", status=status)
        return parsed
    if status == 400:
        messages = validation_messages(parsed)
        raise XeroValidationError("Xero refused the request: " + ("; ".join(messages) or "validation failed"),
                                  messages=messages)
    raise XeroRequestFailed(f"Xero refused the request (HTTP {status}).", status=status)
