"""The request pipeline every API call goes through (see ``server`` for the order of the checks)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web

from tests.fakes.xero import accounting, spec
from tests.fakes.xero.store import OrgStore, Replay
from tests.fakes.xero.tokens import AccessToken

if TYPE_CHECKING:
    from tests.fakes.xero.server import FakeXero

IDEMPOTENCY_KEY_MAX = 128
ACCOUNTING_PREFIX = "/api.xro/2.0/"


@dataclass(frozen=True)
class ValidationFailure:
    """A request the real Xero would refuse as malformed: what was sent and every problem found."""

    method: str
    path: str
    errors: list[str]


@dataclass
class Call:
    """One authenticated accounting call for an organisation; ``problem`` is set when it was refused 429."""

    tenant_id: str
    method: str
    path: str
    at: datetime
    client_id: str
    problem: str | None = None
    status: int = 0
    idempotency_key: str | None = None


@dataclass(frozen=True)
class Fault:
    path: str
    method: str | None
    status: int
    body: dict[str, Any] | str | None
    headers: dict[str, str]
    processed: bool
    drop: bool


def _problem(status: int, title: str, detail: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"Type": None, "Title": title, "Status": status, "Detail": detail, "Extensions": {}},
                             status=status, headers=headers)


def _malformed(message: str) -> web.Response:
    return web.json_response({"ErrorNumber": 14, "Type": "PostDataInvalidException", "Message": message},
                             status=400)


def _bearer(xero: FakeXero, request: web.Request) -> AccessToken | web.Response:
    header = request.headers.get("Authorization", "")
    token = xero.tokens.access(header[7:]) if header.startswith("Bearer ") else None
    challenge = {"WWW-Authenticate": 'Bearer error="invalid_token"'}
    if token is None:
        return _problem(401, "Unauthorized", "AuthenticationUnsuccessful", challenge)
    if xero.now() >= token.expires:
        return _problem(401, "Unauthorized", f"TokenExpired: token expired at {token.expires:%m/%d/%Y %H:%M:%S}",
                        challenge)
    return token


def _required_scopes(xero: FakeXero, token: AccessToken, resource: str, method: str) -> set[str]:
    """The scopes of which the token needs one for this resource (a ``.read`` scope is enough for GET)."""
    if resource == "contacts":
        base = {"accounting.contacts"}
    elif xero.apps[token.grant.client_id].granular:
        base = {"accounting.invoices"}
    else:
        base = {"accounting.transactions", "accounting.invoices"}
    return base | ({f"{scope}.read" for scope in base} if method == "GET" else set())


def _fault(xero: FakeXero, path: str, method: str) -> Any:
    for fault in xero.faults:
        if fault.path == path.lower() and fault.method in (None, method):
            xero.faults.remove(fault)
            return fault
    return None


def _fault_response(request: web.Request, fault: Fault) -> web.Response:
    if fault.drop:
        assert request.transport is not None
        request.transport.close()
        return web.Response(status=fault.status)
    if isinstance(fault.body, str) or fault.body is None:
        return web.Response(status=fault.status, text=fault.body or "", headers=fault.headers)
    return web.json_response(fault.body, status=fault.status, headers=fault.headers)


async def handle_api(xero: FakeXero, request: web.Request) -> web.StreamResponse:
    body = await request.read()
    method, path = request.method, request.path
    if len(body) > 3_500_000:
        return _problem(413, "Request Entity Too Large", "The request is larger than 3.5 MB")
    lower = path.lower()
    if lower.startswith(ACCOUNTING_PREFIX):
        document = spec.accounting()
    elif lower == "/connections" or lower.startswith("/connections/"):
        document = spec.identity()
    else:
        return web.json_response({"Detail": f"{path} is not served by the fake Xero"}, status=404)
    errors = document.request_errors(method=method, path=path, query=request.query, headers=request.headers,
                                     body=body, content_type=request.content_type if body else "")
    key = request.headers.get("Idempotency-Key")
    if key is not None and len(key) > IDEMPOTENCY_KEY_MAX:
        errors.append(f"Idempotency-Key is {len(key)} characters; Xero accepts at most {IDEMPOTENCY_KEY_MAX}")
    if lower.startswith(ACCOUNTING_PREFIX + "contacts/") and len(path.split("/")) == 5:
        number = path.split("/")[4]
        if len(number) > 50:
            errors.append(f"ContactNumber is {len(number)} characters; Xero allows at most 50")
    if errors:
        xero.validation_errors.append(ValidationFailure(method, path, errors))
        if any(e.startswith(("PathNotFound", "ServerNotFound")) for e in errors):
            return web.json_response({"Detail": "Resource not found", "Errors": errors}, status=404)
        if any(e.startswith("OperationNotFound") for e in errors):
            return web.json_response({"Detail": "Method not allowed", "Errors": errors}, status=405)
        return _malformed("; ".join(errors))
    token = _bearer(xero, request)
    if isinstance(token, web.Response):
        return token
    if document is spec.identity():
        response: web.StreamResponse = _connections(xero, request, token)
    else:
        response = await _accounting(xero, request, token, body, key)
    # Identity answers are not checked: Xero writes /connections dates without an offset
    # ("2019-12-07T18:46:19.5165400", the spec's own example), which its "date-time" format refuses.
    if xero.check_responses and document is spec.accounting() and isinstance(response, web.Response) \
            and response.status in (200, 400) and response.content_type == "application/json":
        problems = document.response_errors(
            method=method, path=path, query=request.query, headers=request.headers, body=body,
            content_type=request.content_type if body else "", status=response.status,
            answer=bytes(response.body), answer_type=response.content_type)  # type: ignore[arg-type]
        if problems:
            xero.response_errors.append(ValidationFailure(method, path, problems))
    return response


def _connections(xero: FakeXero, request: web.Request, token: AccessToken) -> web.Response:
    mine = xero.connections_of(token.grant.user, token.grant.client_id)
    parts = request.path.split("/")
    if request.method == "DELETE" and len(parts) == 3:
        found = next((c for c in mine if c.id.lower() == parts[2].lower()), None)
        if found is None:
            return _problem(404, "NotFound", "Resource not found")
        xero.connections.remove(found)
        return web.Response(status=204)
    wanted = request.query.get("authEventId")
    return web.json_response([
        {"id": c.id, "authEventId": c.auth_event_id, "tenantId": c.tenant_id, "tenantType": "ORGANISATION",
         "tenantName": c.tenant_name, "createdDateUtc": c.created.strftime("%Y-%m-%dT%H:%M:%S.%f0"),
         "updatedDateUtc": c.updated.strftime("%Y-%m-%dT%H:%M:%S.%f0")}
        for c in mine if wanted is None or c.auth_event_id == wanted
    ])


async def _accounting(xero: FakeXero, request: web.Request, token: AccessToken, body: bytes,
                      key: str | None) -> web.StreamResponse:
    tenant_id = request.headers["xero-tenant-id"]
    grant = token.grant
    books = xero.orgs.get(tenant_id.lower())
    if books is None or not any(c.tenant_id == books.org.tenant_id
                                for c in xero.connections_of(grant.user, grant.client_id)):
        return _problem(403, "Forbidden", "AuthenticationUnsuccessful")
    segments = request.path[len(ACCOUNTING_PREFIX):].split("/")
    needed = _required_scopes(xero, token, segments[0].lower(), request.method)
    if not needed & set(grant.scopes):
        return _problem(401, "Unauthorized", f"AuthorizationUnsuccessful: needs scope {' or '.join(sorted(needed))}")
    now = xero.now()
    tenant = books.org.tenant_id
    verdict = xero.limiter.admit(tenant_id=tenant, tier=books.org.tier, client_id=grant.client_id,
                                 now=now.timestamp())
    call = Call(tenant, request.method, request.path, now, grant.client_id, verdict.problem, 0, key)
    xero.record_call(call)
    if verdict.problem is not None:
        call.status = 429
        return web.Response(status=429, text="Rate limit exceeded", headers=verdict.headers)
    try:
        if xero.latency:
            await asyncio.sleep(xero.latency)
        fault = _fault(xero, request.path, request.method)
        if fault is not None and not fault.processed:
            call.status = fault.status
            return _fault_response(request, fault)
        provider = xero.apps[grant.client_id].name
        answer = await _idempotent(xero, books, request, body, key, now, provider)
        if fault is not None:
            call.status = fault.status
            return _fault_response(request, fault)
    finally:
        xero.limiter.release(tenant)
    call.status = answer.status
    return web.Response(status=answer.status, body=answer.body, content_type="application/json",
                        headers=verdict.headers)


async def _idempotent(xero: FakeXero, books: OrgStore, request: web.Request, body: bytes, key: str | None,
                      now: datetime, provider: str) -> Replay:
    """Run the operation once per Idempotency-Key: the same request replays the first answer."""

    def run() -> Replay:
        answer = accounting.handle(books, method=request.method, segments=request.path[len(ACCOUNTING_PREFIX):]
                                   .split("/"), query=dict(request.query), body=body, now=now, provider=provider)
        return Replay("", answer.status, answer.encode())

    if key is None or request.method not in ("PUT", "POST"):
        return run()
    fingerprint = xero.fingerprint(request.method, request.path, request.query_string, body)
    async with xero.idempotency_lock(books, key):
        replay = books.idempotency.get(key)
        if replay is not None:
            if replay.fingerprint != fingerprint:
                # Xero answers 400; the exact body is not documented, this one has the spec's Error shape.
                return Replay(fingerprint, 400, json.dumps({
                    "ErrorNumber": 400, "Type": "IdempotencyKeyReused",
                    "Message": "The Idempotency-Key has already been used with a different request"}).encode())
            return replay
        answer = run()
        if answer.status in (200, 400):
            books.idempotency[key] = Replay(fingerprint, answer.status, answer.body)
        return answer
