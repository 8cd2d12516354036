"""Xero's identity server: the token endpoint (code exchange, refresh) and revocation.

Client authentication is HTTP Basic with the tenant's own app (``AppCredentials``). What a caller
may rely on: a refused refresh token is ``InvalidGrant`` (the connection is lost: connect again);
no answer at all (timeout, connection dropped, 5xx) is ``XeroUnavailable`` and the same refresh
token may be sent again — Xero keeps a used refresh token valid for 30 minutes for exactly that.
"""

from __future__ import annotations

import base64
import json
import logging
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from invoicing.integrations.xero.endpoints import XeroHttp
from invoicing.integrations.xero.errors import XeroError, XeroRequestFailed, XeroUnavailable

log = logging.getLogger(__name__)


#: Longest wait for one token-endpoint answer (seconds), whatever ``XeroHttp.timeout`` says.
TOKEN_TIMEOUT = 10.0


class InvalidGrant(XeroError):
    """The identity server refused the grant (``invalid_grant``): the refresh token or code is dead."""


@dataclass(frozen=True)
class AppCredentials:
    """The tenant's Xero app (never in a repr)."""

    client_id: str
    client_secret: str = field(repr=False)
    legacy_scopes: bool = False

    def basic_auth(self) -> dict[str, str]:
        """The ``Authorization`` header of HTTP Basic client authentication."""
        pair = f"{self.client_id}:{self.client_secret}".encode()
        return {"Authorization": "Basic " + base64.b64encode(pair).decode("ascii")}


@dataclass(frozen=True)
class TokenSet:
    """An access token (``expires_in`` seconds from when it was issued), its refresh token and scopes."""

    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_in: int
    scope: str

    def to_json(self) -> str:
        return json.dumps({"access_token": self.access_token, "refresh_token": self.refresh_token,
                           "expires_in": self.expires_in, "scope": self.scope})

    @classmethod
    def from_json(cls, text: str) -> TokenSet:
        return cls.from_answer(json.loads(text))

    @classmethod
    def from_answer(cls, body: Any) -> TokenSet:
        if not isinstance(body, dict) or not isinstance(body.get("access_token"), str):
            raise XeroRequestFailed("Xero's token answer had no access token.", status=200)
        refresh = body.get("refresh_token")
        if not isinstance(refresh, str) or not refresh:
            raise XeroRequestFailed("Xero gave no refresh token: the app must ask for the offline_access scope.",
                                    status=200)
        try:
            expires_in = int(body.get("expires_in", 1800))
        except (TypeError, ValueError):
            expires_in = 1800
        return cls(body["access_token"], refresh, expires_in, str(body.get("scope") or ""))


_REASONS = {
    "invalid_client": "Xero does not accept the app's client id or secret; run `/invoicing xero setup` again.",
    "unauthorized_client": "The Xero app may not use this grant; check the app's type (web app) at Xero.",
}


async def _token_call(http: XeroHttp, app: AppCredentials, form: dict[str, str], what: str) -> dict[str, Any]:
    try:
        # Short: a refresh holds its connection's row lock (on SQLite the process's write lock) meanwhile.
        timeout = aiohttp.ClientTimeout(total=min(http.timeout, TOKEN_TIMEOUT))
        async with http.session.post(http.urls.token, data=form, timeout=timeout,
                                     headers={**app.basic_auth(), "Accept": "application/json"}) as answer:
            text = await answer.text()
            status = answer.status
    except (TimeoutError, aiohttp.ClientError) as exc:
        log.warning("xero token call lost what=%s error=%s", what, type(exc).__name__)
        raise XeroUnavailable(f"Xero's identity server did not answer the {what}; try again later.") from None
    try:
        body = json.loads(text) if text else {}
    except ValueError:
        body = {}
    if status >= 500:
        raise XeroUnavailable(f"Xero's identity server failed the {what} (HTTP {status}); try again later.")
    if status != 200:
        code = str(body.get("error") or "") if isinstance(body, dict) else ""
        log.warning("xero token call refused what=%s status=%s error=%s", what, status, code)
        if code == "invalid_grant":
            raise InvalidGrant(f"Xero refused the {what} (invalid_grant).")
        raise XeroRequestFailed(_REASONS.get(code, f"Xero refused the {what} (HTTP {status} {code})."),
                                status=status)
    if not isinstance(body, dict):
        raise XeroRequestFailed(f"Xero's answer to the {what} was not JSON.", status=status)
    return body


async def exchange_code(http: XeroHttp, app: AppCredentials, *, code: str, code_verifier: str) -> TokenSet:
    """The tokens for an authorisation ``code`` (PKCE: the verifier of the state it came with)."""
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": http.urls.redirect_uri,
            "code_verifier": code_verifier}
    return TokenSet.from_answer(await _token_call(http, app, form, "code exchange"))


async def refresh(http: XeroHttp, app: AppCredentials, refresh_token: str) -> TokenSet:
    """New tokens for ``refresh_token`` (Xero rotates it: the answer holds the next one)."""
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    return TokenSet.from_answer(await _token_call(http, app, form, "token refresh"))


async def revoke(http: XeroHttp, app: AppCredentials, refresh_token: str) -> None:
    """Revoke ``refresh_token`` (and the access tokens issued from it) at Xero."""
    try:
        async with http.session.post(http.urls.revocation, data={"token": refresh_token}, headers=app.basic_auth(),
                                     timeout=http.client_timeout) as answer:
            status = answer.status
            await answer.read()
    except (TimeoutError, aiohttp.ClientError):
        raise XeroUnavailable("Xero's identity server did not answer the revocation; try again later.") from None
    if status >= 500:
        raise XeroUnavailable(f"Xero's identity server failed the revocation (HTTP {status}); try again later.")
    if status != 200:
        raise XeroRequestFailed(f"Xero refused the revocation (HTTP {status}).", status=status)
