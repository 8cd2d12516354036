"""The identity side: the authorize page, the token and revocation endpoints, ``/connections``.

``GET /identity/connect/authorize`` stands for Xero's login and consent page: it "logs in" the user set
with ``FakeXero.authorize_as`` and redirects at once to ``redirect_uri?code=…&state=…``. An unknown
``client_id`` or an unregistered ``redirect_uri`` gets an error page (no redirect, as OAuth2 requires);
other problems redirect with ``error=…``. Consent creates (or refreshes) the user's connections from the
app to the chosen organisations, each with the authorisation's ``authEventId``.

The token endpoint takes a form body and HTTP Basic client authentication; its rules are in ``tokens``.
"""

from __future__ import annotations

import base64
import binascii
import functools
import secrets
from datetime import datetime
from typing import TYPE_CHECKING
from urllib.parse import urlencode, urlsplit

from aiohttp import web

from tests.fakes.xero.store import Connection, FakeApp, new_id
from tests.fakes.xero.tokens import Code, TokenError

if TYPE_CHECKING:
    from tests.fakes.xero.server import FakeXero

#: The scopes Xero offers (the broad ``accounting.transactions`` only to apps created before 2 Mar 2026).
KNOWN_SCOPES = frozenset({
    "openid", "profile", "email", "offline_access",
    "accounting.contacts", "accounting.contacts.read", "accounting.settings", "accounting.settings.read",
    "accounting.invoices", "accounting.invoices.read", "accounting.payments", "accounting.payments.read",
    "accounting.banktransactions", "accounting.banktransactions.read", "accounting.manualjournals",
    "accounting.manualjournals.read", "accounting.attachments", "accounting.attachments.read",
    "accounting.budgets.read", "accounting.journals.read",
})
BROAD_SCOPES = frozenset({"accounting.transactions", "accounting.transactions.read", "accounting.reports.read"})


def routes(xero: FakeXero) -> list[web.RouteDef]:
    return [
        web.get("/identity/connect/authorize", functools.partial(authorize, xero)),
        web.post("/connect/token", functools.partial(token, xero)),
        web.post("/connect/revocation", functools.partial(revocation, xero)),
    ]


def _error_page(status: int, error: str, description: str) -> web.Response:
    return web.Response(status=status, content_type="text/html",
                        text=f"<html><body><h1>{error}</h1><p>{description}</p></body></html>")


def _redirect(uri: str, params: dict[str, str]) -> web.Response:
    separator = "&" if urlsplit(uri).query else "?"
    raise web.HTTPFound(uri + separator + urlencode(params))


def _scope_problem(app: FakeApp, scopes: list[str]) -> str | None:
    for scope in scopes:
        if scope in BROAD_SCOPES:
            if app.granular:
                return f"{scope} is not available to apps created after 2 March 2026"
        elif scope not in KNOWN_SCOPES:
            return f"unknown scope {scope}"
        if app.scopes is not None and scope not in app.scopes:
            return f"the app may not request {scope}"
    return None


async def authorize(xero: FakeXero, request: web.Request) -> web.Response:
    query = request.query
    app = xero.apps.get(query.get("client_id", ""))
    if app is None:
        return _error_page(400, "unauthorized_client", "Unknown client or client not enabled")
    redirect_uri = query.get("redirect_uri", "")
    if app.redirect_uris is not None and redirect_uri not in app.redirect_uris:
        return _error_page(400, "invalid_request", "Invalid redirect_uri")
    if urlsplit(redirect_uri).scheme not in ("http", "https"):
        return _error_page(400, "invalid_request", "Invalid redirect_uri")
    state = {"state": query["state"]} if "state" in query else {}
    if query.get("response_type") != "code":
        return _redirect(redirect_uri, {"error": "unsupported_response_type", **state})
    scopes = query.get("scope", "").split()
    problem = _scope_problem(app, scopes) if scopes else "scope is required"
    if problem is not None:
        return _redirect(redirect_uri, {"error": "invalid_scope", "error_description": problem, **state})
    challenge = query.get("code_challenge")
    if challenge is not None and query.get("code_challenge_method") != "S256":
        return _redirect(redirect_uri, {"error": "invalid_request",
                                        "error_description": "code_challenge_method must be S256", **state})
    if xero.login is None:
        return _redirect(redirect_uri, {"error": "access_denied", **state})
    user, organisations = xero.login
    now = xero.now()
    auth_event_id = new_id()
    for org in organisations:
        existing = next((c for c in xero.connections if c.user == user and c.client_id == app.client_id
                         and c.tenant_id == org.tenant_id), None)
        if existing is None:
            xero.connections.append(Connection(new_id(), org.tenant_id, org.name, user, app.client_id,
                                               auth_event_id, now, now))
        else:
            existing.updated, existing.auth_event_id = now, auth_event_id
    code = xero.tokens.issue_code(Code(app.client_id, redirect_uri, user, tuple(scopes), challenge,
                                       auth_event_id, now))
    return _redirect(redirect_uri, {"code": code, **state, "scope": " ".join(scopes)})


def _client(xero: FakeXero, request: web.Request) -> FakeApp:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Basic "):
        raise TokenError("invalid_client", "HTTP Basic client authentication is required")
    try:
        client_id, _, secret = base64.b64decode(header[6:], validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise TokenError("invalid_client") from exc
    app = xero.apps.get(client_id)
    if app is None or not secrets.compare_digest(secret, app.client_secret):
        raise TokenError("invalid_client")
    return app


async def token(xero: FakeXero, request: web.Request) -> web.Response:
    now = xero.now()
    grant_type = ""
    try:
        if request.content_type != "application/x-www-form-urlencoded":
            raise TokenError("invalid_request", "the body must be application/x-www-form-urlencoded")
        form = await request.post()
        grant_type = str(form.get("grant_type", ""))
        app = _client(xero, request)
        if grant_type == "authorization_code":
            verifier = form.get("code_verifier")
            grant = xero.tokens.redeem_code(str(form.get("code", "")), client_id=app.client_id,
                                            redirect_uri=str(form.get("redirect_uri", "")),
                                            verifier=str(verifier) if verifier is not None else None, now=now)
        elif grant_type == "refresh_token":
            grant = xero.tokens.refresh(str(form.get("refresh_token", "")), client_id=app.client_id, now=now)
        else:
            raise TokenError("unsupported_grant_type")
    except TokenError as error:
        xero.token_requests.append(TokenRequest(grant_type, error.code, now))
        body = {"error": error.code, **({"error_description": error.description} if error.description else {})}
        return web.json_response(body, status=400)
    answer = xero.tokens.tokens_for(grant, now=now)
    xero.token_requests.append(TokenRequest(grant_type, "ok", now))
    if xero.take_token_drop():
        # The token was issued (and the old refresh token used) but the client never hears of it.
        assert request.transport is not None
        request.transport.close()
    return web.json_response(answer, headers={"Cache-Control": "no-store"})


async def revocation(xero: FakeXero, request: web.Request) -> web.Response:
    try:
        app = _client(xero, request)
    except TokenError as error:
        return web.json_response({"error": error.code}, status=400)
    form = await request.post()
    grant = xero.tokens.revoke(str(form.get("token", "")), client_id=app.client_id)
    if grant is not None:
        xero.connections[:] = [c for c in xero.connections
                               if not (c.user == grant.user and c.client_id == grant.client_id)]
    return web.Response(status=200)


class TokenRequest:
    """One call of the token endpoint: its grant type and outcome (``ok`` or the OAuth2 error code)."""

    __slots__ = ("at", "grant_type", "outcome")

    def __init__(self, grant_type: str, outcome: str, at: datetime) -> None:
        self.grant_type, self.outcome, self.at = grant_type, outcome, at

    def __repr__(self) -> str:
        return f"TokenRequest({self.grant_type!r}, {self.outcome!r})"
