"""``FakeXero``: one local aiohttp app serving Xero's identity and Accounting API paths.

Every API request (``/connections…``, ``/api.xro/2.0/…``) goes through the same steps, in Xero's order:
size (≤ 3.5 MB, else 413) → OpenAPI validation against the vendored spec (400, recorded in
``validation_errors``) → bearer token (401) → ``xero-tenant-id`` connected for the token's user and app
(403) → scope (401) → limits (429) → fault injection → ``Idempotency-Key`` replay → the operation.
Answers to accounting calls carry the ``X-…Limit-Remaining`` headers.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from aiohttp import web

from tests.fakes.xero import identity, spec, state
from tests.fakes.xero.api import Call, Fault, ValidationFailure, handle_api
from tests.fakes.xero.clock import OffsetClock
from tests.fakes.xero.limits import Limits, RateLimiter
from tests.fakes.xero.store import Connection, FakeApp, FakeOrg, OrgStore, new_id
from tests.fakes.xero.tokens import TokenBook

MAX_REQUEST_BYTES = 3_500_000  # Xero: "≤ 3.5 MB per request"


@dataclass
class FakeXero:
    """The fake; use ``async with FakeXero(...) as xero`` (see ``docs/xero-fake.md``).

    ``latency`` (seconds, real time) makes each accounting call take that long, so tests can observe
    concurrency; ``clock`` is a ``Clock`` (e.g. ``FakeClock``) — real time when omitted.
    """

    limits: Limits = field(default_factory=Limits)
    clock: Any = None
    latency: float = 0.0
    #: the TCP port to listen on (0 = any free port)
    port: int = 0
    #: check the fake's own JSON answers against the spec's response schemas (its own tests turn it on)
    check_responses: bool = False
    apps: dict[str, FakeApp] = field(default_factory=dict)
    orgs: dict[str, OrgStore] = field(default_factory=dict)
    connections: list[Connection] = field(default_factory=list)
    tokens: TokenBook = field(default_factory=TokenBook)
    login: tuple[str, list[FakeOrg]] | None = None
    #: every request that did not match the OpenAPI spec or a rule Xero enforces beyond it
    validation_errors: list[ValidationFailure] = field(default_factory=list)
    #: the fake's answers that did not match the spec's response schemas (with ``check_responses``)
    response_errors: list[ValidationFailure] = field(default_factory=list)
    token_requests: list[identity.TokenRequest] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    base_url: str = ""
    _calls: dict[str, list[Call]] = field(default_factory=dict)
    _token_drops: int = 0
    _runner: web.AppRunner | None = None

    def __post_init__(self) -> None:
        self._clock = OffsetClock(self.clock)
        self.limiter = RateLimiter(self.limits)
        spec.accounting()  # load (≈1 s, once per process) before the first request, not during it
        spec.identity()

    # -- lifecycle -------------------------------------------------------------------------------
    async def __aenter__(self) -> FakeXero:
        app = web.Application(client_max_size=2 * MAX_REQUEST_BYTES + 1)
        app.add_routes(identity.routes(self))
        app.add_routes(state.routes(self))
        app.add_routes([web.route("*", "/{tail:.*}", functools.partial(handle_api, self))])
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- set-up ----------------------------------------------------------------------------------
    def register_app(self, client_id: str | None = None, client_secret: str | None = None, *,
                     scopes: set[str] | frozenset[str] | list[str] | None = None,
                     redirect_uris: list[str] | None = None, created: date | None = None,
                     name: str = "InvoiceBot test app") -> FakeApp:
        """A Xero app (``created`` defaults to today: granular scopes); ``redirect_uris`` None = any."""
        app = FakeApp(client_id=client_id or secrets.token_hex(16).upper(),
                      client_secret=client_secret or secrets.token_urlsafe(36), name=name,
                      created=created or self.now().date(),
                      scopes=frozenset(scopes) if scopes is not None else None,
                      redirect_uris=frozenset(redirect_uris) if redirect_uris is not None else None)
        self.apps[app.client_id] = app
        return app

    def add_organisation(self, name: str = "Acme Ltd", tier: str = "standard", *,
                         tax_rates: dict[str, Decimal] | None = None,
                         accounts: dict[str, str] | None = None, honours_tax_amount: bool = True) -> FakeOrg:
        """An organisation; ``tax_rates`` (TaxType → percent) and ``accounts`` (code → default TaxType)."""
        if tier not in ("standard", "starter"):
            raise ValueError(f"unknown tier {tier!r}")
        org = FakeOrg(tenant_id=new_id(), name=name, tier=tier)
        books = OrgStore(org)
        if tax_rates is not None:
            books.tax_rates = dict(tax_rates)
        if accounts is not None:
            books.accounts = dict(accounts)
        books.honours_tax_amount = honours_tax_amount
        self.orgs[org.tenant_id] = books
        return org

    def authorize_as(self, user: str, organisations: list[FakeOrg]) -> None:
        """Who "logs in" and consents on the authorize page, and which organisations they pick."""
        self.login = (user, list(organisations))

    # -- what happened ---------------------------------------------------------------------------
    def store(self, org: FakeOrg | str) -> OrgStore:
        return self.orgs[org if isinstance(org, str) else org.tenant_id]

    def calls(self, org: FakeOrg | str) -> list[Call]:
        """Authenticated accounting calls naming the organisation, including those refused with 429."""
        return self._calls.setdefault(org if isinstance(org, str) else org.tenant_id, [])

    def rejections(self, org: FakeOrg | str) -> list[Call]:
        return [call for call in self.calls(org) if call.problem is not None]

    def max_in_flight(self, org: FakeOrg | str) -> int:
        return self.limiter.org(org if isinstance(org, str) else org.tenant_id).max_in_flight

    def connections_of(self, user: str, client_id: str) -> list[Connection]:
        return [c for c in self.connections if c.user == user and c.client_id == client_id]

    # -- fault injection and time -----------------------------------------------------------------
    def fail_next(self, path: str, status: int = 500, body: dict[str, Any] | str | None = None, *,
                  method: str | None = None, processed: bool = False, drop: bool = False,
                  headers: dict[str, str] | None = None) -> None:
        """Answer the next call of ``path`` (e.g. ``/api.xro/2.0/Invoices``) with ``status``/``body``.

        ``processed=True``: Xero did the work (objects stored, idempotency recorded) but the answer is the
        failure; ``drop=True``: the connection is closed instead of answering.
        """
        self.faults.append(Fault(path.lower(), method.upper() if method else None, status, body,
                                 dict(headers or {}), processed, drop))

    def drop_next_token_response(self) -> None:
        """The next successful token answer is lost: tokens are issued (and rotated), the socket closes."""
        self._token_drops += 1

    def take_token_drop(self) -> bool:
        if self._token_drops:
            self._token_drops -= 1
            return True
        return False

    def now(self) -> datetime:
        return self._clock()

    def advance(self, seconds: float) -> None:
        self._clock.advance(seconds)

    # -- used by the request pipeline ------------------------------------------------------------
    def record_call(self, call: Call) -> None:
        self.calls(call.tenant_id).append(call)

    def idempotency_lock(self, books: OrgStore, key: str) -> asyncio.Lock:
        return books.idempotency_locks.setdefault(key, asyncio.Lock())

    @staticmethod
    def fingerprint(method: str, path: str, query: str, body: bytes) -> str:
        return hashlib.sha256(b"\0".join([method.encode(), path.lower().encode(), query.encode(), body])).hexdigest()

