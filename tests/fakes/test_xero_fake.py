"""The fake Xero must be trusted: it refuses what Xero refuses and enforces Xero's token rules and limits.

Plain aiohttp client calls (the real client is ``invoicing``'s); the fake's clock is a ``FakeClock``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import secrets
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest

from tests.fakes.xero import FakeClock, FakeOrg, FakeXero, Limits
from tests.fakes.xero.totals import document_totals, line_total

REDIRECT = "https://invoicebot.example/xero/callback"
SCOPES = "openid profile email offline_access accounting.invoices accounting.contacts"
API = "/api.xro/2.0"


@dataclass
class Session:
    xero: FakeXero
    http: aiohttp.ClientSession
    client_id: str
    client_secret: str
    org: FakeOrg
    clock: FakeClock

    @property
    def basic(self) -> dict[str, str]:
        raw = f"{self.client_id}:{self.client_secret}".encode()
        return {"Authorization": "Basic " + base64.b64encode(raw).decode()}

    async def authorize(self, *, scope: str = SCOPES, verifier: str | None = None,
                        redirect_uri: str = REDIRECT, client_id: str | None = None) -> aiohttp.ClientResponse:
        params = {"response_type": "code", "client_id": client_id or self.client_id, "redirect_uri": redirect_uri,
                  "scope": scope, "state": "st-1"}
        if verifier is not None:
            params |= {"code_challenge": _s256(verifier), "code_challenge_method": "S256"}
        return await self.http.get(f"{self.xero.base_url}/identity/connect/authorize", params=params,
                                   allow_redirects=False)

    async def code(self, **kwargs: Any) -> str:
        response = await self.authorize(**kwargs)
        assert response.status == 302, await response.text()
        query = parse_qs(urlsplit(response.headers["Location"]).query)
        assert query["state"] == ["st-1"]
        return query["code"][0]

    async def token(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        async with self.http.post(f"{self.xero.base_url}/connect/token", data=form, headers=self.basic) as r:
            return r.status, await r.json()

    async def login(self, scope: str = SCOPES) -> dict[str, Any]:
        verifier = secrets.token_urlsafe(48)
        code = await self.code(scope=scope, verifier=verifier)
        status, body = await self.token({"grant_type": "authorization_code", "code": code,
                                         "redirect_uri": REDIRECT, "code_verifier": verifier})
        assert status == 200, body
        return body

    async def call(self, method: str, path: str, access: str, *, json: Any = None, tenant: str | None = None,
                   params: dict[str, str] | None = None, headers: dict[str, str] | None = None,
                   ) -> tuple[int, Any, aiohttp.ClientResponse]:
        sent = {"Authorization": f"Bearer {access}", "xero-tenant-id": tenant or self.org.tenant_id,
                "Accept": "application/json", **(headers or {})}
        async with self.http.request(method, f"{self.xero.base_url}{path}", json=json, params=params,
                                     headers=sent) as response:
            try:
                body = await response.json(content_type=None)
            except ValueError:
                body = await response.text()
            return response.status, body, response


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def invoice(number: str, **overrides: Any) -> dict[str, Any]:
    return {"Type": "ACCREC", "Contact": {"ContactNumber": "ACME"}, "InvoiceNumber": number,
            "LineAmountTypes": "Exclusive", "Date": "2026-11-30", "DueDate": "2026-12-30", "CurrencyCode": "GBP",
            "Reference": "Nov 2026", "Status": "AUTHORISED",
            "LineItems": [{"Description": "Mugs", "Quantity": 3, "UnitAmount": 4.15, "AccountCode": "200",
                           "TaxType": "OUTPUT2"},
                          {"Description": "Shipping", "Quantity": 1, "UnitAmount": 5.99, "AccountCode": "200",
                           "TaxType": "ZERORATEDOUTPUT"}],
            **overrides}


@asynccontextmanager
async def fake_session(limits: Limits | None = None, latency: float = 0.0) -> AsyncIterator[Session]:
    clock = FakeClock()
    async with FakeXero(limits=limits or Limits(), clock=clock, latency=latency, check_responses=True) as xero, \
            aiohttp.ClientSession() as http:
        app = xero.register_app(redirect_uris=[REDIRECT])
        org = xero.add_organisation("Acme Ltd")
        xero.authorize_as("dana", [org])
        yield Session(xero, http, app.client_id, app.client_secret, org, clock)
        # The fake's own answers must have the shape Xero's spec gives them.
        assert xero.response_errors == []


@pytest.fixture
async def s() -> AsyncIterator[Session]:
    async with fake_session() as session:
        yield session


async def with_contact(s: Session, access: str) -> None:
    status, body, _ = await s.call("PUT", f"{API}/Contacts", access,
                                   json={"Contacts": [{"Name": "Acme Retail", "ContactNumber": "ACME"}]})
    assert status == 200, body


# -- identity -------------------------------------------------------------------------------------------

async def test_authorization_code_with_pkce_gives_tokens_and_connections(s: Session) -> None:
    tokens = await s.login()
    assert tokens["expires_in"] == 1800 and tokens["token_type"] == "Bearer"
    assert tokens["refresh_token"] and tokens["id_token"]
    status, connections, _ = await s.call("GET", "/connections", tokens["access_token"])
    assert status == 200
    assert [(c["tenantId"], c["tenantName"], c["tenantType"]) for c in connections] == [
        (s.org.tenant_id, "Acme Ltd", "ORGANISATION")]
    assert s.xero.validation_errors == []


async def test_wrong_pkce_verifier_and_reused_code_are_invalid_grant(s: Session) -> None:
    code = await s.code(verifier="v" * 50)
    status, body = await s.token({"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
                                  "code_verifier": "w" * 50})
    assert (status, body["error"]) == (400, "invalid_grant")
    code = await s.code(verifier="v" * 50)
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": "v" * 50}
    assert (await s.token(form))[0] == 200
    assert (await s.token(form))[1]["error"] == "invalid_grant"


async def test_authorize_refuses_unknown_client_and_redirect_uri_without_redirecting(s: Session) -> None:
    assert (await s.authorize(client_id="NOPE")).status == 400
    assert (await s.authorize(redirect_uri="https://evil.example/cb")).status == 400


async def test_new_apps_cannot_request_accounting_transactions(s: Session) -> None:
    response = await s.authorize(scope="offline_access accounting.transactions")
    assert response.status == 302
    assert parse_qs(urlsplit(response.headers["Location"]).query)["error"] == ["invalid_scope"]


async def test_wrong_client_secret_is_invalid_client(s: Session) -> None:
    s.client_secret = "wrong"
    status, body = await s.token({"grant_type": "refresh_token", "refresh_token": "x"})
    assert (status, body["error"]) == (400, "invalid_client")


async def test_no_refresh_token_without_offline_access(s: Session) -> None:
    tokens = await s.login(scope="openid accounting.invoices")
    assert "refresh_token" not in tokens


async def test_refresh_rotates_and_the_old_token_has_30_minutes_of_grace(s: Session) -> None:
    first = (await s.login())["refresh_token"]
    status, second = await s.token({"grant_type": "refresh_token", "refresh_token": first})
    assert status == 200 and second["refresh_token"] != first
    s.clock.advance(29 * 60)
    status, again = await s.token({"grant_type": "refresh_token", "refresh_token": first})
    assert status == 200, "a lost answer may be retried with the old token within 30 minutes"
    s.clock.advance(2 * 60)
    status, body = await s.token({"grant_type": "refresh_token", "refresh_token": first})
    assert (status, body["error"]) == (400, "invalid_grant")
    status, _ = await s.token({"grant_type": "refresh_token", "refresh_token": second["refresh_token"]})
    assert status == 200


async def test_unused_refresh_tokens_expire_after_60_days(s: Session) -> None:
    refresh = (await s.login())["refresh_token"]
    s.clock.advance(60 * 86400 + 1)
    status, body = await s.token({"grant_type": "refresh_token", "refresh_token": refresh})
    assert (status, body["error"]) == (400, "invalid_grant")


async def test_access_tokens_expire_after_30_minutes(s: Session) -> None:
    access = (await s.login())["access_token"]
    await with_contact(s, access)
    s.clock.advance(1800)
    status, body, response = await s.call("GET", f"{API}/Contacts/ACME", access)
    assert status == 401 and "TokenExpired" in body["Detail"]
    assert "invalid_token" in response.headers["WWW-Authenticate"]


async def test_a_dropped_token_answer_still_rotated_and_the_old_token_recovers(s: Session) -> None:
    first = (await s.login())["refresh_token"]
    s.xero.drop_next_token_response()
    with pytest.raises(aiohttp.ClientError):
        await s.token({"grant_type": "refresh_token", "refresh_token": first})
    status, _ = await s.token({"grant_type": "refresh_token", "refresh_token": first})
    assert status == 200
    assert [r.outcome for r in s.xero.token_requests if r.grant_type == "refresh_token"] == ["ok", "ok"]


async def test_revocation_ends_the_grant_and_its_connections(s: Session) -> None:
    tokens = await s.login()
    async with s.http.post(f"{s.xero.base_url}/connect/revocation", data={"token": tokens["refresh_token"]},
                           headers=s.basic) as response:
        assert response.status == 200
    status, body = await s.token({"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert body["error"] == "invalid_grant"
    assert s.xero.connections == []


async def test_deleting_a_connection_refuses_its_tenant(s: Session) -> None:
    access = (await s.login())["access_token"]
    _, connections, _ = await s.call("GET", "/connections", access)
    status, _, _ = await s.call("DELETE", f"/connections/{connections[0]['id']}", access)
    assert status == 204
    status, body, _ = await s.call("GET", f"{API}/Contacts/ACME", access)
    assert status == 403


async def test_accounting_needs_the_granted_scope(s: Session) -> None:
    access = (await s.login(scope="offline_access accounting.contacts"))["access_token"]
    status, body, _ = await s.call("PUT", f"{API}/Invoices", access, json={"Invoices": [invoice("INV-1")]})
    assert status == 401 and "accounting.invoices" in body["Detail"]
    assert s.xero.store(s.org).invoices == []


async def test_an_unconnected_tenant_is_forbidden(s: Session) -> None:
    other = s.xero.add_organisation("Other Ltd")
    access = (await s.login())["access_token"]
    status, _, _ = await s.call("GET", f"{API}/Contacts/ACME", access, tenant=other.tenant_id)
    assert status == 403


# -- request validation -----------------------------------------------------------------------------------

async def test_spec_invalid_requests_are_400_and_recorded(s: Session) -> None:
    access = (await s.login())["access_token"]
    bad = [
        ("PUT", f"{API}/Invoices", {"Invoices": [invoice("INV-1", Type="SALE")]}, {}),
        ("PUT", f"{API}/Invoices", {"Invoices": [invoice("INV-1", LineItems=[{"Quantity": "three"}])]}, {}),
        ("PUT", f"{API}/Invoices", {"Invoices": "INV-1"}, {}),
        ("PUT", f"{API}/Invoices", {"Invoices": [invoice("INV-1")]}, {"Idempotency-Key": "k" * 129}),
        ("PUT", f"{API}/CreditNotes", {"CreditNotes": [{"Type": "ACCRECCREDIT", "Total": "lots"}]}, {}),
        ("PUT", f"{API}/PurchaseOrders", {"PurchaseOrders": [{"Status": "SENT"}]}, {}),
        ("PUT", f"{API}/Contacts", {"Contacts": [{"Name": "A", "IsCustomer": "yes"}]}, {}),
        ("GET", f"{API}/Contacts/{'N' * 51}", None, {}),
    ]
    for method, path, body, headers in bad:
        status, answer, _ = await s.call(method, path, access, json=body, headers=headers)
        assert status == 400, (path, body, answer)
        assert answer["Type"] == "PostDataInvalidException"
    assert len(s.xero.validation_errors) == len(bad)
    assert s.xero.store(s.org).invoices == [] and s.xero.store(s.org).contacts == []


async def test_a_missing_tenant_header_is_a_spec_violation(s: Session) -> None:
    access = (await s.login())["access_token"]
    async with s.http.get(f"{s.xero.base_url}{API}/Contacts/ACME",
                          headers={"Authorization": f"Bearer {access}"}) as response:
        assert response.status == 400
    assert "xero-tenant-id" in s.xero.validation_errors[0].errors[0]


async def test_requests_over_3_5_mb_are_413(s: Session) -> None:
    access = (await s.login())["access_token"]
    huge = {"Invoices": [invoice(f"INV-{i}", Reference="x" * 4000) for i in range(1000)]}
    status, _, _ = await s.call("PUT", f"{API}/Invoices", access, json=huge)
    assert status == 413
    assert s.xero.store(s.org).invoices == []


# -- documents ------------------------------------------------------------------------------------------------

async def test_invoices_are_created_with_xero_totals(s: Session) -> None:
    access = (await s.login())["access_token"]
    await with_contact(s, access)
    status, body, response = await s.call("PUT", f"{API}/Invoices", access, json={"Invoices": [invoice("INV-1")]})
    assert status == 200, body
    created = body["Invoices"][0]
    # 3 × 4.15 = 12.45 at 20 % → 2.49; 5.99 at 0 %.
    assert (created["SubTotal"], created["TotalTax"], created["Total"]) == (18.44, 2.49, 20.93)
    assert [line["TaxAmount"] for line in created["LineItems"]] == [2.49, 0.0]
    assert created["Contact"]["ContactNumber"] == "ACME" and created["Status"] == "AUTHORISED"
    assert created["Date"].startswith("/Date(")
    assert [i["InvoiceNumber"] for i in s.xero.store(s.org).invoices] == ["INV-1"]
    assert int(response.headers["X-MinLimit-Remaining"]) == 60 - 2
    assert s.xero.validation_errors == []


async def test_tax_is_rounded_per_line(s: Session) -> None:
    access = (await s.login())["access_token"]
    await with_contact(s, access)
    lines = [{"Description": f"L{i}", "Quantity": 1, "UnitAmount": 0.13, "AccountCode": "200",
              "TaxType": "OUTPUT2"} for i in range(3)]
    status, body, _ = await s.call("PUT", f"{API}/Invoices", access,
                                   json={"Invoices": [invoice("INV-1", LineItems=lines)]})
    assert status == 200, body
    # 0.026 rounds to 0.03 on each line: 0.09, not round(0.39 × 20 %) = 0.08.
    assert body["Invoices"][0]["TotalTax"] == 0.09


async def test_summarize_errors_false_mixes_created_and_failed_elements(s: Session) -> None:
    access = (await s.login())["access_token"]
    await with_contact(s, access)
    await s.call("PUT", f"{API}/Invoices", access, json={"Invoices": [invoice("INV-1")]})
    batch = [
        invoice("INV-2"),
        invoice("INV-1"),  # duplicate number
        invoice("INV-3", LineItems=[{"Description": "x", "Quantity": 1, "UnitAmount": 1, "AccountCode": "999"}]),
        invoice("INV-4", LineItems=[{"Description": "x", "Quantity": 1, "UnitAmount": 1, "AccountCode": "200",
                                     "TaxType": "BOGUS"}]),
        invoice("INV-5", Contact={"ContactNumber": "NOBODY"}),
    ]
    status, body, _ = await s.call("PUT", f"{API}/Invoices", access, json={"Invoices": batch},
                                   params={"summarizeErrors": "false"})
    assert status == 200
    assert [e["HasErrors"] for e in body["Invoices"]] == [False, True, True, True, True]
    messages = [e["ValidationErrors"][0]["Message"] for e in body["Invoices"][1:]]
    assert "must be unique" in messages[0] and "999" in messages[1] and "BOGUS" in messages[2]
    assert "NOBODY" in messages[3]
    assert [i["InvoiceNumber"] for i in s.xero.store(s.org).invoices] == ["INV-1", "INV-2"]


async def test_summarize_errors_by_default_refuses_the_whole_batch(s: Session) -> None:
    access = (await s.login())["access_token"]
    await with_contact(s, access)
    batch = [invoice("INV-1"), invoice("INV-2", Contact={"ContactNumber": "NOBODY"})]
    status, body, _ = await s.call("PUT", f"{API}/Invoices", access, json={"Invoices": batch})
    assert status == 400 and body["Type"] == "ValidationException"
    assert [e["InvoiceNumber"] for e in body["Elements"]] == ["INV-2"]
    assert s.xero.store(s.org).invoices == []


async def test_the_same_idempotency_key_replays_and_a_different_body_is_refused(s: Session) -> None:
    access = (await s.login())["access_token"]
    await with_contact(s, access)
    key = {"Idempotency-Key": "inv-1-v1"}
    first = await s.call("PUT", f"{API}/Invoices", access, json={"Invoices": [invoice("INV-1")]}, headers=key)
    again = await s.call("PUT", f"{API}/Invoices", access, json={"Invoices": [invoice("INV-1")]}, headers=key)
    assert first[0] == again[0] == 200 and first[1] == again[1]
    assert len(s.xero.store(s.org).invoices) == 1
    status, body, _ = await s.call("PUT", f"{API}/Invoices", access, json={"Invoices": [invoice("INV-9")]},
                                   headers=key)
    assert status == 400 and "Idempotency-Key" in body["Message"]
    assert len(s.xero.store(s.org).invoices) == 1


async def test_a_lost_answer_of_a_processed_request_is_replayed_by_its_key(s: Session) -> None:
    access = (await s.login())["access_token"]
    await with_contact(s, access)
    s.xero.fail_next(f"{API}/Invoices", status=503, processed=True)
    key = {"Idempotency-Key": "inv-1"}
    status, _, _ = await s.call("PUT", f"{API}/Invoices", access, json={"Invoices": [invoice("INV-1")]}, headers=key)
    assert status == 503 and len(s.xero.store(s.org).invoices) == 1
    status, body, _ = await s.call("PUT", f"{API}/Invoices", access, json={"Invoices": [invoice("INV-1")]},
                                   headers=key)
    assert status == 200 and body["Invoices"][0]["InvoiceNumber"] == "INV-1"
    assert len(s.xero.store(s.org).invoices) == 1


async def test_contacts_by_contact_number_and_the_50_character_limit(s: Session) -> None:
    access = (await s.login())["access_token"]
    await with_contact(s, access)
    status, body, _ = await s.call("GET", f"{API}/Contacts/ACME", access)
    assert status == 200 and body["Contacts"][0]["Name"] == "Acme Retail"
    assert (await s.call("GET", f"{API}/Contacts/NOPE", access))[0] == 404
    status, body, _ = await s.call("PUT", f"{API}/Contacts", access, params={"summarizeErrors": "false"},
                                   json={"Contacts": [{"Name": "Long", "ContactNumber": "N" * 51}]})
    assert status == 400 and "too long" in body["Message"]  # the spec's maxLength: 50
    assert len(s.xero.store(s.org).contacts) == 1 and len(s.xero.validation_errors) == 1


async def test_credit_notes_and_purchase_orders(s: Session) -> None:
    access = (await s.login())["access_token"]
    await with_contact(s, access)
    note = {"Type": "ACCRECCREDIT", "Contact": {"ContactNumber": "ACME"}, "CreditNoteNumber": "CN-1",
            "Date": "2026-12-01", "Status": "AUTHORISED", "LineAmountTypes": "Exclusive",
            "LineItems": [{"Description": "Refund", "Quantity": 1, "UnitAmount": 10, "AccountCode": "200",
                           "TaxType": "OUTPUT2"}]}
    status, body, _ = await s.call("PUT", f"{API}/CreditNotes", access, json={"CreditNotes": [note]})
    assert status == 200, body
    assert body["CreditNotes"][0]["Total"] == 12.0
    order = {"Contact": {"ContactNumber": "ACME"}, "Reference": "INV-1", "Status": "SUBMITTED",
             "Date": "2026-12-01", "LineItems": [{"Description": "Mugs", "Quantity": 2, "UnitAmount": 3.5}]}
    status, body, _ = await s.call("PUT", f"{API}/PurchaseOrders", access, json={"PurchaseOrders": [order]})
    assert status == 200, body
    assert s.xero.store(s.org).purchase_orders[0]["PurchaseOrderNumber"] == "PO-0001"
    assert s.xero.validation_errors == []


# -- limits ---------------------------------------------------------------------------------------------------

async def _get(s: Session, access: str, tenant: str | None = None) -> tuple[int, aiohttp.ClientResponse]:
    status, _, response = await s.call("GET", f"{API}/Contacts", access, tenant=tenant)
    return status, response


async def test_the_minute_limit_is_429_with_retry_after_until_the_window_moves() -> None:
    async with fake_session(Limits(per_minute=3)) as s:
        access = (await s.login())["access_token"]
        remaining = []
        for _ in range(3):
            status, response = await _get(s, access)
            assert status == 200
            remaining.append(response.headers["X-MinLimit-Remaining"])
        assert remaining == ["2", "1", "0"]
        s.clock.advance(20)
        status, response = await _get(s, access)
        assert status == 429
        assert response.headers["X-Rate-Limit-Problem"] == "minute"
        assert response.headers["Retry-After"] == "40"
        assert response.headers["X-MinLimit-Remaining"] == "0"
        s.clock.advance(40)
        assert (await _get(s, access))[0] == 200
        assert [c.problem for c in s.xero.rejections(s.org)] == ["minute"]
        assert len(s.xero.calls(s.org)) == 5


async def test_the_daily_limit_and_the_starter_tier() -> None:
    async with fake_session(Limits(per_minute=100, per_day=4, starter_per_day=2)) as s:
        starter = s.xero.add_organisation("Tiny Ltd", tier="starter")
        s.xero.authorize_as("dana", [s.org, starter])
        tokens = await s.login()
        access = tokens["access_token"]
        for _ in range(2):
            assert (await _get(s, access, starter.tenant_id))[0] == 200
        status, response = await _get(s, access, starter.tenant_id)
        assert status == 429 and response.headers["X-Rate-Limit-Problem"] == "daily"
        assert 86_000 < int(response.headers["Retry-After"]) <= 86_400
        assert response.headers["X-DayLimit-Remaining"] == "0"
        for _ in range(4):
            assert (await _get(s, access))[0] == 200
        assert (await _get(s, access))[0] == 429
        s.clock.advance(86_400)
        _, tokens = await s.token({"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
        assert (await _get(s, tokens["access_token"]))[0] == 200


async def test_the_app_minute_limit_spans_organisations() -> None:
    async with fake_session(Limits(app_per_minute=3)) as s:
        other = s.xero.add_organisation("Other Ltd")
        s.xero.authorize_as("dana", [s.org, other])
        access = (await s.login())["access_token"]
        assert [(await _get(s, access, tenant))[0] for tenant in (s.org.tenant_id, other.tenant_id) * 2] == [
            200, 200, 200, 429]
        status, response = await _get(s, access, other.tenant_id)
        assert response.headers["X-Rate-Limit-Problem"] == "appminute"
        assert response.headers["X-AppMinLimit-Remaining"] == "0" and response.headers["Retry-After"] == "60"


async def test_ten_parallel_calls_see_the_concurrency_limit_of_five() -> None:
    async with fake_session(Limits(), latency=0.3) as s:
        access = (await s.login())["access_token"]
        results = await asyncio.gather(*(_get(s, access) for _ in range(10)))
        statuses = sorted(status for status, _ in results)
        assert statuses == [200] * 5 + [429] * 5
        assert {r.headers["X-Rate-Limit-Problem"] for status, r in results if status == 429} == {"concurrent"}
        assert all("Retry-After" in r.headers for status, r in results if status == 429)
        assert s.xero.max_in_flight(s.org) == 5
        assert (await _get(s, access))[0] == 200, "in-flight calls are released"


# -- more of Xero's behaviour and the fault injection ------------------------------------------------------

async def test_post_updates_by_number_and_put_never_does(s: Session) -> None:
    access = (await s.login())["access_token"]
    await with_contact(s, access)
    await s.call("PUT", f"{API}/Invoices", access, json={"Invoices": [invoice("INV-1", Status="DRAFT")]})
    status, body, _ = await s.call("POST", f"{API}/Invoices", access,
                                   json={"Invoices": [invoice("INV-1", Reference="Dec 2026")]})
    assert status == 200, body
    assert [(i["InvoiceNumber"], i["Reference"], i["Status"]) for i in s.xero.store(s.org).invoices] == [
        ("INV-1", "Dec 2026", "AUTHORISED")]
    status, body, _ = await s.call("PUT", f"{API}/Invoices", access, json={"Invoices": [invoice("INV-1")]})
    assert status == 400 and "must be unique" in body["Elements"][0]["ValidationErrors"][0]["Message"]


async def test_a_duplicate_number_within_one_batch_is_refused(s: Session) -> None:
    access = (await s.login())["access_token"]
    await with_contact(s, access)
    status, body, _ = await s.call("PUT", f"{API}/Invoices", access, params={"summarizeErrors": "false"},
                                   json={"Invoices": [invoice("INV-1"), invoice("INV-1")]})
    assert [e["HasErrors"] for e in body["Invoices"]] == [False, True]
    assert len(s.xero.store(s.org).invoices) == 1


async def test_a_new_contact_name_on_an_invoice_creates_one_contact(s: Session) -> None:
    access = (await s.login())["access_token"]
    contact = {"Name": "Beta Shop", "ContactNumber": "BETA"}
    status, body, _ = await s.call("PUT", f"{API}/Invoices", access,
                                   json={"Invoices": [invoice("INV-1", Contact=contact),
                                                      invoice("INV-2", Contact=contact)]})
    assert status == 200, body
    assert [c["ContactNumber"] for c in s.xero.store(s.org).contacts] == ["BETA"]


async def test_fail_next_answers_without_doing_the_work(s: Session) -> None:
    access = (await s.login())["access_token"]
    await with_contact(s, access)
    s.xero.fail_next(f"{API}/Invoices", status=500, body={"Message": "boom"})
    status, body, _ = await s.call("PUT", f"{API}/Invoices", access, json={"Invoices": [invoice("INV-1")]})
    assert (status, body) == (500, {"Message": "boom"})
    assert s.xero.store(s.org).invoices == []
    assert (await s.call("PUT", f"{API}/Invoices", access, json={"Invoices": [invoice("INV-1")]}))[0] == 200


async def test_a_dropped_connection_after_processing_leaves_the_invoice_stored(s: Session) -> None:
    access = (await s.login())["access_token"]
    await with_contact(s, access)
    s.xero.fail_next(f"{API}/Invoices", processed=True, drop=True)
    # POST: aiohttp silently retries an idempotent method (PUT) once on a dropped keep-alive connection.
    with pytest.raises(aiohttp.ClientError):
        await s.call("POST", f"{API}/Invoices", access, json={"Invoices": [invoice("INV-1")]})
    assert len(s.xero.store(s.org).invoices) == 1


async def test_unknown_paths_and_methods_are_recorded(s: Session) -> None:
    access = (await s.login())["access_token"]
    assert (await s.call("GET", f"{API}/Bananas", access))[0] == 404
    assert (await s.call("DELETE", f"{API}/Invoices", access))[0] == 405
    assert len(s.xero.validation_errors) == 2


async def test_paths_are_case_insensitive_like_xero(s: Session) -> None:
    access = (await s.login())["access_token"]
    assert (await s.call("GET", "/Connections", access))[0] == 200
    assert (await s.call("GET", "/api.xro/2.0/contacts", access))[0] == 200
    assert s.xero.validation_errors == []


async def test_revoking_needs_the_owning_client(s: Session) -> None:
    tokens = await s.login()
    other = s.xero.register_app(redirect_uris=[REDIRECT])
    raw = base64.b64encode(f"{other.client_id}:{other.client_secret}".encode()).decode()
    async with s.http.post(f"{s.xero.base_url}/connect/revocation", data={"token": tokens["refresh_token"]},
                           headers={"Authorization": f"Basic {raw}"}) as response:
        assert response.status == 200
    assert (await s.token({"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}))[0] == 200


async def test_old_apps_use_accounting_transactions() -> None:
    async with fake_session() as s:
        old = s.xero.register_app(redirect_uris=[REDIRECT], created=date(2025, 6, 1))
        s.client_id, s.client_secret = old.client_id, old.client_secret
        access = (await s.login(scope="offline_access accounting.transactions accounting.contacts"))["access_token"]
        status, body, _ = await s.call("PUT", f"{API}/Invoices", access,
                                       json={"Invoices": [invoice("INV-1", Contact={"Name": "Acme"})]})
        assert status == 200, body


async def test_the_fake_runs_as_a_program_and_reports_its_state() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.fakes.xero", "--per-minute", "600", "--organisations", "2",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    try:
        assert process.stdout is not None and process.stdin is not None
        started = json.loads(await asyncio.wait_for(process.stdout.readline(), 30))
        assert len(started["tenant_ids"]) == 2 and started["client_secret"]
        async with aiohttp.ClientSession() as http, http.get(f"{started['base_url']}/_fake/state") as response:
            state = await response.json()
        assert set(state["organisations"]) == set(started["tenant_ids"])
        assert state["validation_errors"] == []
    finally:
        if process.stdin is not None:
            process.stdin.close()
        await asyncio.wait_for(process.wait(), 30)


def test_totals_inclusive_no_tax_discount_and_four_decimal_unit_amounts() -> None:
    inclusive = line_total(quantity=Decimal("1"), unit_amount=Decimal("12.00"), discount_rate=Decimal("0"),
                           rate_percent=Decimal("20"), amount_types="Inclusive")
    assert (inclusive.line_amount, inclusive.tax_amount) == (Decimal("12.00"), Decimal("2.00"))
    assert document_totals([inclusive], "Inclusive") == (Decimal("10.00"), Decimal("2.00"), Decimal("12.00"))
    discounted = line_total(quantity=Decimal("3"), unit_amount=Decimal("9.99"), discount_rate=Decimal("10"),
                            rate_percent=Decimal("20"), amount_types="NoTax")
    assert (discounted.line_amount, discounted.tax_amount) == (Decimal("26.97"), Decimal("0.00"))
    fine = line_total(quantity=Decimal("1000"), unit_amount=Decimal("0.01255"), discount_rate=Decimal("0"),
                      rate_percent=Decimal("20"), amount_types="Exclusive", unitdp=4)
    assert (fine.unit_amount, fine.line_amount, fine.tax_amount) == (Decimal("0.0126"), Decimal("12.60"),
                                                                     Decimal("2.52"))
    coarse = line_total(quantity=Decimal("1000"), unit_amount=Decimal("0.01255"), discount_rate=Decimal("0"),
                        rate_percent=Decimal("20"), amount_types="Exclusive")
    assert coarse.line_amount == Decimal("10.00")


async def test_two_parallel_requests_with_one_key_create_one_invoice() -> None:
    async with fake_session(latency=0.2) as s:
        access = (await s.login())["access_token"]
        await with_contact(s, access)
        key = {"Idempotency-Key": "inv-1"}
        first, second = await asyncio.gather(*(
            s.call("PUT", f"{API}/Invoices", access, json={"Invoices": [invoice("INV-1")]}, headers=key)
            for _ in range(2)))
        assert first[0] == second[0] == 200 and first[1] == second[1]
        assert len(s.xero.store(s.org).invoices) == 1


async def test_malformed_json_is_refused_and_recorded(s: Session) -> None:
    access = (await s.login())["access_token"]
    async with s.http.put(f"{s.xero.base_url}{API}/Invoices", data=b'{"Invoices": [',
                          headers={"Authorization": f"Bearer {access}", "xero-tenant-id": s.org.tenant_id,
                                   "Content-Type": "application/json"}) as response:
        assert response.status == 400
        assert (await response.json())["Type"] == "PostDataInvalidException"
    assert len(s.xero.validation_errors) == 1
