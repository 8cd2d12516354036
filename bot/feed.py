"""The order feed: an aiohttp sub-application that lets an OMS push and read data over HTTP.

Mount it with ``app.add_subapp(FEED_PREFIX, create_feed_app())``; the caller opens the
database (Tortoise with the global fallback, so handler tasks see the connection).
This module only translates: HTTP + JSON in, ``invoicing`` calls, JSON out. Errors map
as in STYLE.md — ``InvalidInput``/pydantic → 422 ``{"errors": [{"path", "message"}]}``,
``NotFound`` → 404 (also for other tenants' objects), ``Conflict`` → 409, body over the
limit → 413, anything else → 500 ``{"error": "internal error", "id"}`` with the
traceback in the log only. Tokens are never logged; log lines carry the request id,
tenant and token prefix.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import date, datetime
from decimal import Decimal
from functools import partial
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError
from tortoise.exceptions import IntegrityError

from bot.feed_schemas import (
    MONEY_FIELDS,
    MONEY_MESSAGE,
    AppliedResult,
    BatchBody,
    BatchResult,
    CompanyBody,
    CompanyUpserted,
    ConflictingOrder,
    CreditedLine,
    CreditedTaxBand,
    Error,
    FieldError,
    FxRateBody,
    FxRateSet,
    InternalError,
    InvoiceCredit,
    IssuedCreditNote,
    IssuedInvoice,
    IssuedLine,
    IssuedParty,
    IssuedTaxBand,
    IssuedTotals,
    ListedOrder,
    OrderBody,
    OrderConflict,
    OrderPage,
    OrderStale,
    OrderUpserted,
    PriceCounts,
    ProductBody,
    ProductUpserted,
    ValidationErrors,
    openapi,
)
from bot.rendering import render_in_thread
from invoicing.billing.credit_document import CreditNoteDetail, CreditSummary, credits_of, get_credit_note
from invoicing.billing.document import InvoiceDocument, Party
from invoicing.billing.fx import set_rate
from invoicing.billing.money import minor_unit, round_money
from invoicing.billing.queries import (
    InvoiceDetail,
    OrderFilter,
    get_invoice,
    parse_bound,
)
from invoicing.delivery.einvoice.cii import build_cii
from invoicing.delivery.einvoice.profile import EInvoiceUnavailable
from invoicing.delivery.einvoice.ubl import build_ubl
from invoicing.delivery.mail import attachment_filename
from invoicing.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    InvoiceBotError,
    NotFound,
)
from invoicing.ingest.batches import UpsertResult
from invoicing.ingest.catalog import PriceInput, ProductInput, set_products
from invoicing.ingest.order_page import PageRow, feed_page
from invoicing.ingest.order_sync import (
    InvoicedOrderConflict,
    ItemInput,
    OrderInput,
    OrderOutcome,
    clean_order,
    upsert_orders,
)
from invoicing.ingest.token_cache import DEFAULT_TTL, VerifiedTokens
from invoicing.ingest.tokens import Principal, authenticate
from invoicing.parties.companies import upsert_company
from models import FxSource, OrderStatus

log = logging.getLogger(__name__)

FEED_PREFIX = "/api/v1"
DEFAULT_MAX_BODY_BYTES = 1_048_576
MAX_BODY = web.AppKey("feed_max_body_bytes", int)
_OPENAPI = web.AppKey("feed_openapi", dict)
Renderer = Callable[[InvoiceDocument], Awaitable[bytes]]
RENDERER: web.AppKey[Renderer] = web.AppKey("feed_renderer")
TOKENS: web.AppKey[VerifiedTokens[Principal]] = web.AppKey("feed_verified_tokens")
# ``RequestKey`` exists from aiohttp 3.12 on; older versions take a plain string key.
_PRINCIPAL: Any = web.RequestKey("feed_principal", Principal) if hasattr(web, "RequestKey") else "feed_principal"
_PUBLIC_ROUTES = frozenset({"openapi"})
_QUERY_KEYS = frozenset({"company", "invoiced", "from", "to", "cursor", "limit"})
_dumps = partial(json.dumps, ensure_ascii=False, separators=(",", ":"))

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
M = TypeVar("M", bound=BaseModel)


class _HttpError(Exception):
    """An error response decided by the adapter itself (401, 413, 422 from pydantic)."""

    def __init__(self, status: int, payload: Error | ValidationErrors, headers: dict[str, str] | None = None) -> None:
        super().__init__(payload)
        self.status = status
        self.payload = payload
        self.headers = headers or {}


def _reply(payload: BaseModel, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """Every JSON reply is serialised from its response model, the one the OpenAPI document shows."""
    # The serializer's UTF-8 bytes as they are (``model_dump_json`` would decode them for aiohttp to encode).
    return web.Response(body=payload.__pydantic_serializer__.to_json(payload), status=status, headers=headers,
                        content_type="application/json", charset="utf-8")


def _path(field: str) -> str:
    """``items[0].quantity`` (invoicing's spelling) → ``items.0.quantity`` (the feed's)."""
    return re.sub(r"\[(\d+)\]", r".\1", field)


def _error_response(exc: Exception, request_id: str) -> web.Response:
    if isinstance(exc, _HttpError):
        return _reply(exc.payload, exc.status, exc.headers)
    if isinstance(exc, InvalidInput):
        return _reply(ValidationErrors(errors=[FieldError(path=_path(exc.field), message=exc.reason)]), 422)
    if isinstance(exc, NotFound):
        return _reply(Error(error=exc.message), 404)
    if isinstance(exc, InvoicedOrderConflict):
        return _reply(OrderConflict(error=exc.message, invoice=exc.changes[0].invoice_number, conflicts=[
            ConflictingOrder(index=c.index, company=c.company, ref=c.ref, invoice=c.invoice_number, message=c.message)
            for c in exc.changes]), 409)
    if isinstance(exc, Conflict):
        return _reply(Error(error=exc.message), 409)
    if isinstance(exc, Forbidden):
        return _reply(Error(error=exc.message), 403)
    if isinstance(exc, InvoiceBotError):
        return _reply(Error(error=exc.message), 400)
    if isinstance(exc, IntegrityError):
        # Two requests created the same record at once; the loser rolled back and may retry.
        log.warning("feed write conflict id=%s error=%s", request_id, type(exc).__name__)
        return _reply(Error(error="a concurrent request wrote the same record; nothing was written, retry"), 409)
    log.error("feed internal error id=%s", request_id, exc_info=exc)
    return _reply(InternalError(id=request_id), 500)


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Outermost: every outcome becomes JSON with an ``X-Request-Id``; one log line per request."""
    request_id = uuid.uuid4().hex[:16]
    started = time.perf_counter()
    try:
        response = await handler(request)
    except web.HTTPException as exc:  # routing (404/405) raised by aiohttp itself
        response = _reply(Error(error=exc.reason), exc.status, {k: v for k, v in exc.headers.items()
                                                                if k.lower() == "allow"})
    except Exception as exc:  # noqa: BLE001 - mapped to a response (and logged when unexpected), never ignored
        response = _error_response(exc, request_id)
    response.headers["X-Request-Id"] = request_id
    if log.isEnabledFor(logging.INFO):  # the line's arguments are gathered only when it is written
        principal: Principal | None = request.get(_PRINCIPAL)
        log.info("feed request id=%s tenant=%s token=%s method=%s path=%s status=%d ms=%.1f", request_id,
                 principal.tenant_name if principal else "-", principal.prefix if principal else "-",
                 request.method, request.rel_url.path, response.status, (time.perf_counter() - started) * 1000)
    return response


@web.middleware
async def _auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Bearer-token authentication; the principal's tenant scopes every handler."""
    route = request.match_info.route
    if route.name in _PUBLIC_ROUTES or request.match_info.http_exception is not None:
        return await handler(request)
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    challenge = {"WWW-Authenticate": 'Bearer realm="invoicebot"'}
    if scheme.lower() != "bearer" or not token.strip():
        raise _HttpError(401, Error(error="missing bearer token: send Authorization: Bearer <token>"), challenge)
    principal = await authenticate(token.strip(), cache=request.app[TOKENS])
    if principal is None:
        raise _HttpError(401, Error(error="invalid or revoked token"), challenge)
    request[_PRINCIPAL] = principal
    return await handler(request)


def _principal(request: web.Request) -> Principal:
    principal: Principal = request[_PRINCIPAL]
    return principal


async def _body(request: web.Request) -> bytes:
    """The raw body, refusing more than the app's limit without buffering it.

    Enforced here rather than by ``client_max_size``, which belongs to the root
    application and so would not apply to a mounted sub-app.
    """
    limit = request.app[MAX_BODY]
    too_large = _HttpError(413, Error(error=f"request body is larger than {limit} bytes; split the batch"))
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


async def _parse(request: web.Request, model: type[M]) -> M:
    raw = await _body(request)
    try:
        return model.model_validate_json(raw or b"null")
    except ValidationError as exc:
        errors = []
        for error in exc.errors(include_url=False):
            loc = error["loc"]
            message = error["msg"]
            if error["type"] == "string_type" and loc and loc[-1] in MONEY_FIELDS:
                message = MONEY_MESSAGE
            errors.append(FieldError(path=".".join(str(part) for part in loc) or "body", message=message))
        raise _HttpError(422, ValidationErrors(errors=errors)) from None


def _created_or_ok(result: UpsertResult) -> int:
    return 201 if result is UpsertResult.CREATED else 200


def _applied(result: UpsertResult) -> AppliedResult:
    if result is UpsertResult.STALE:  # only orders carry an out-of-order stamp
        raise ValueError("a company or product write is never stale")
    return result


# --- writes -------------------------------------------------------------------------------------


async def put_company(request: web.Request) -> web.Response:
    principal = _principal(request)
    body = await _parse(request, CompanyBody)
    accounting = body.accounting.model_dump(exclude_unset=True) if body.accounting else None
    company, result = await upsert_company(
        await principal.tenant(), request.match_info["co"], name=body.name, country=body.country,
        currency=body.currency, timezone=body.timezone, channel=body.channel, accounting=accounting,
        actor=principal.actor)
    return _reply(CompanyUpserted(result=_applied(result), company=company.short_name), _created_or_ok(result))


async def put_product(request: web.Request) -> web.Response:
    principal = _principal(request)
    body = await _parse(request, ProductBody)
    sku = request.match_info["sku"]
    prices = [PriceInput(p.retailer, p.cost_price, p.shipping, p.tax_rate, p.currency) for p in body.prices]
    outcome = await set_products(await principal.tenant(), [ProductInput(sku, body.name, prices)],
                                 actor=principal.actor, field="")
    counts = PriceCounts(created=outcome.prices_created, updated=outcome.prices_updated,
                         unchanged=outcome.prices_unchanged)
    return _reply(ProductUpserted(result=_applied(outcome.result), sku=sku.strip(), prices=counts),
                  _created_or_ok(outcome.result))


async def put_fx_rate(request: web.Request) -> web.Response:
    """The feed pushes a rate (source ``feed``; audited as ``fx.set`` by ``invoicing.billing.fx.set_rate``)."""
    principal = _principal(request)
    body = await _parse(request, FxRateBody)
    try:
        day = date.fromisoformat(request.match_info["day"])
    except ValueError:
        raise InvalidInput("day", f"{request.match_info['day']!r} is not a calendar date (YYYY-MM-DD)") from None
    row, result = await set_rate(await principal.tenant(), request.match_info["base"], request.match_info["quote"],
                                 body.rate, day, source=FxSource.FEED, actor=principal.actor)
    return _reply(FxRateSet(result=_applied(result), base=row.base, quote=row.quote, day=row.day.isoformat(),
                            rate=format(Decimal(row.rate).normalize(), "f")), _created_or_ok(result))


def _order_input(company: str, ref: str, body: OrderBody) -> OrderInput:
    return OrderInput(
        company=company, ref=ref, items=[ItemInput(i.sku, i.quantity, i.description) for i in body.items],
        status=body.status.value, dispatched_at=body.dispatched_at, on_hold=body.on_hold, error=body.error,
        ship_to=body.ship_to.model_dump(), updated_at=body.updated_at, previous_company=body.previous_company,
    )


def _outcome(outcome: OrderOutcome) -> OrderUpserted | OrderStale:
    result = outcome.result
    if result is UpsertResult.STALE:
        return OrderStale(company=outcome.company, ref=outcome.ref, invoice_number=outcome.invoice_number)
    return OrderUpserted(result=result, company=outcome.company, ref=outcome.ref,
                         invoice_number=outcome.invoice_number)


async def put_order(request: web.Request) -> web.Response:
    principal = _principal(request)
    body = await _parse(request, OrderBody)
    clean = clean_order(_order_input(request.match_info["co"], request.match_info["ref"], body))
    [outcome] = await upsert_orders(principal.tenant_key, [clean])
    return _reply(_outcome(outcome), _created_or_ok(outcome.result))


async def post_orders_batch(request: web.Request) -> web.Response:
    """All or nothing: every order is validated (all errors reported) before anything is written."""
    principal = _principal(request)
    body = await _parse(request, BatchBody)
    cleaned, errors = [], []
    for i, order in enumerate(body.orders):
        try:
            cleaned.append(clean_order(_order_input(order.company, order.ref, order), field=f"orders[{i}]."))
        except InvalidInput as exc:
            errors.append(FieldError(path=_path(exc.field), message=exc.reason))
    if errors:
        raise _HttpError(422, ValidationErrors(errors=errors))
    outcomes = await upsert_orders(principal.tenant_key, cleaned)
    return _reply(BatchResult(results=[_outcome(o) for o in outcomes], counts=Counter(o.result for o in outcomes)))


# --- reads --------------------------------------------------------------------------------------


#: ``OrderStatus`` by stored value: a dict lookup, where calling the enum costs more than the rest of a row.
_STATUS = {status.value: status for status in OrderStatus}


def _order_row(row: PageRow) -> ListedOrder:
    return {"company": row.company, "ref": row.ref, "status": _STATUS[row.status], "on_hold": row.on_hold,
            "error": row.error, "dispatched_at": row.dispatched_at, "invoiced": row.invoice_number is not None,
            "invoice_number": row.invoice_number}


def _bound(query: Any, key: str, *, end: bool) -> datetime | None:
    text = query.get(key)
    if not text:
        return None
    return parse_bound(text, key, end=end)


def _order_filter(query: Any) -> tuple[OrderFilter, str | None, int]:
    unknown = sorted(set(query) - _QUERY_KEYS)
    if unknown:
        raise InvalidInput(unknown[0], f"unknown query parameter; use {', '.join(sorted(_QUERY_KEYS))}")
    invoiced = query.get("invoiced")
    if invoiced not in (None, "true", "false"):
        raise InvalidInput("invoiced", "use true or false")
    limit_text = query.get("limit", "100")
    # ASCII digits only: str.isdigit() also takes "²", which int() refuses; and a bounded length,
    # since int() refuses thousands of digits.
    if not re.fullmatch(r"[0-9]{1,9}", limit_text):
        raise InvalidInput("limit", "must be a whole number between 1 and 500")
    flt = OrderFilter(
        company=query.get("company") or None,
        invoiced=None if invoiced is None else invoiced == "true",
        dispatched_from=_bound(query, "from", end=False),
        dispatched_before=_bound(query, "to", end=True),
    )
    return flt, query.get("cursor") or None, int(limit_text)


async def get_orders(request: web.Request) -> web.Response:
    principal = _principal(request)
    flt, cursor, limit = _order_filter(request.rel_url.query)
    page = await feed_page(principal.tenant_id, flt, cursor=cursor, limit=limit)
    # Rows of our own database, already of the model's types: not validated again, only serialised.
    return _reply(OrderPage.model_construct(orders=[_order_row(r) for r in page.rows], next_cursor=page.next_cursor))


def _unit(amount: Decimal, currency: str) -> str:
    """A per-unit price: to the minor unit when exact (5.0000 → "5.00"), else as stored ("3.3330" → "3.333")."""
    exact = amount.quantize(minor_unit(currency))
    return str(exact) if exact == amount else format(amount.normalize(), "f")


def _party(party: Party) -> IssuedParty:
    return IssuedParty(**{k: v for k, v in vars(party).items() if v})  # type: ignore[typeddict-item]


def _invoice_json(detail: InvoiceDetail, credits: tuple[CreditSummary, ...] = ()) -> IssuedInvoice:
    doc = detail.document
    cur = doc.currency

    def money(amount: Decimal) -> str:
        return str(round_money(amount, cur))

    return IssuedInvoice(
        number=doc.number, company=detail.company, currency=cur, timezone=doc.timezone, issued_at=doc.issued_at,
        period_start=doc.period_start, period_end=doc.period_end, payment_terms_days=doc.payment_terms_days,
        seller=_party(doc.seller), buyer=_party(doc.buyer),
        totals=IssuedTotals(net=money(doc.net_total), tax=money(doc.tax_total), gross=money(doc.gross_total)),
        tax_breakdown=[IssuedTaxBand(rate=format(b.rate.normalize(), "f"), net=money(b.net), tax=money(b.tax))
                       for b in doc.tax_bands],
        lines=[IssuedLine(order_ref=line.order_ref, dispatched_at=line.dispatched_at, sku=line.sku,
                          description=line.description, quantity=line.quantity,
                          unit_cost=_unit(line.unit_cost, cur), unit_shipping=_unit(line.unit_shipping, cur),
                          tax_rate=format(line.tax_rate.normalize(), "f"), net=money(line.net))
               for line in doc.lines],
        order_count=doc.order_count,
        order_refs=list(detail.order_refs),
        credit_notes=[InvoiceCredit(number=c.number, issued_at=c.issued_at, gross=money(c.gross)) for c in credits],
        remaining_gross=money(doc.gross_total - sum((c.gross for c in credits), Decimal(0))),
        pdf=f"{FEED_PREFIX}/invoices/{doc.number}.pdf",
    )


async def get_invoice_json(request: web.Request) -> web.Response:
    tenant_id = _principal(request).tenant_id
    detail = await get_invoice(tenant_id, request.match_info["number"])
    return _reply(_invoice_json(detail, await credits_of(tenant_id, detail.document.number)))


async def get_invoice_pdf(request: web.Request) -> web.Response:
    detail = await get_invoice(_principal(request).tenant_id, request.match_info["number"])
    data = await request.app[RENDERER](detail.document)  # CPU-bound: a thread or the service's process pool
    return web.Response(body=data, content_type="application/pdf", headers={
        "Content-Disposition": f'inline; filename="{attachment_filename(detail.document.number)}"'})


def _credit_note_json(detail: CreditNoteDetail) -> IssuedCreditNote:
    doc, note = detail.document, detail.note
    cur = doc.currency

    def money(amount: Decimal) -> str:
        return str(round_money(amount, cur))

    assert doc.original_issued_at is not None
    return IssuedCreditNote(
        number=doc.number, company=detail.company, invoice_number=doc.original_number,
        invoice_issued_at=doc.original_issued_at, issued_at=doc.issued_at, currency=cur, timezone=doc.timezone,
        reason=doc.reason, reinvoice=note.reinvoice, seller=_party(doc.seller), buyer=_party(doc.buyer),
        totals=IssuedTotals(net=money(doc.net_total), tax=money(doc.tax_total), gross=money(doc.gross_total)),
        tax_breakdown=[CreditedTaxBand(rate=format(b.rate.normalize(), "f"), category=b.category, net=money(b.net),
                                       tax=money(b.tax)) for b in doc.tax_bands],
        lines=[CreditedLine(invoice_line=line.invoice_position, order_ref=line.order_ref,
                            dispatched_at=line.dispatched_at, sku=line.sku, description=line.description,
                            quantity=line.quantity, unit_cost=_unit(Decimal(line.unit_cost), cur),
                            unit_shipping=_unit(Decimal(line.unit_shipping), cur),
                            tax_rate=format(Decimal(line.tax_rate).normalize(), "f"), vat_category=line.vat_category,
                            net=money(Decimal(line.net)))
               for line in detail.lines],
        pdf=f"{FEED_PREFIX}/credit-notes/{doc.number}.pdf",
    )


async def get_credit_note_json(request: web.Request) -> web.Response:
    detail = await get_credit_note(_principal(request).tenant_id, request.match_info["number"])
    return _reply(_credit_note_json(detail))


async def get_credit_note_pdf(request: web.Request) -> web.Response:
    detail = await get_credit_note(_principal(request).tenant_id, request.match_info["number"])
    data = await request.app[RENDERER](detail.document)
    return web.Response(body=data, content_type="application/pdf", headers={
        "Content-Disposition": f'inline; filename="{attachment_filename(detail.document.number)}"'})


#: ``?syntax=`` of ``/invoices/{number}.xml``: UBL 2.1 / Peppol BIS 3.0 (the default) or CII (Factur-X).
XML_SYNTAXES: dict[str, Callable[[InvoiceDocument], bytes]] = {"ubl": build_ubl, "cii": build_cii}


async def get_invoice_xml(request: web.Request) -> web.Response:
    """The EN 16931 XML of an issued invoice; 409 when it cannot be one (a three-decimal currency)."""
    syntax = request.query.get("syntax", "ubl").strip().lower()
    if syntax not in XML_SYNTAXES or set(request.query) - {"syntax"}:
        raise InvalidInput("syntax", "give ?syntax=ubl (UBL 2.1, Peppol BIS 3.0, the default) or ?syntax=cii "
                                     "(UN/CEFACT CII, Factur-X EN 16931), and no other query parameter")
    detail = await get_invoice(_principal(request).tenant_id, request.match_info["number"])
    try:
        data = await asyncio.to_thread(XML_SYNTAXES[syntax], detail.document)  # 500 lines: ~20 ms of CPU
    except EInvoiceUnavailable as exc:
        raise Conflict(f"invoice {detail.document.number} has {exc.reason}") from None
    filename = attachment_filename(detail.document.number).removesuffix(".pdf") + f"-{syntax}.xml"
    return web.Response(body=data, content_type="application/xml", charset="utf-8", headers={
        "Content-Disposition": f'inline; filename="{filename}"'})


async def get_openapi(request: web.Request) -> web.Response:
    return web.json_response(request.app[_OPENAPI], dumps=_dumps)


def create_feed_app(
    *, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES, renderer: Renderer = render_in_thread,
    token_ttl: float = DEFAULT_TTL,
) -> web.Application:
    """The feed as a sub-application; mount it at ``FEED_PREFIX``.

    ``max_body_bytes`` caps every request body (413 beyond it); 1 MiB fits a full
    batch of 1,000 typical orders. ``renderer`` makes invoice PDFs (the service
    passes its process pool). A verified token is trusted for ``token_ttl`` seconds
    without reading it again, so a revoked token stops working within that time
    (``invoicing.ingest.token_cache``; 0 reads it on every request).
    """
    app = web.Application(middlewares=[_errors, _auth])
    app[MAX_BODY] = max_body_bytes
    app[RENDERER] = renderer
    app[TOKENS] = VerifiedTokens(ttl=token_ttl)
    app[_OPENAPI] = openapi(FEED_PREFIX)
    app.router.add_put("/companies/{co}", put_company)
    app.router.add_put("/products/{sku}", put_product)
    app.router.add_put("/fx-rates/{base}/{quote}/{day}", put_fx_rate)
    app.router.add_post("/orders:batch", post_orders_batch)
    app.router.add_put("/orders/{co}/{ref}", put_order)
    app.router.add_get("/orders", get_orders)
    # The .pdf and .xml routes first: ``{number}`` alone would also match "INK-000001.pdf".
    app.router.add_get("/invoices/{number}.pdf", get_invoice_pdf)
    app.router.add_get("/invoices/{number}.xml", get_invoice_xml)
    app.router.add_get("/invoices/{number}", get_invoice_json)
    app.router.add_get("/credit-notes/{number}.pdf", get_credit_note_pdf)
    app.router.add_get("/credit-notes/{number}", get_credit_note_json)
    app.router.add_get("/openapi.json", get_openapi, name="openapi")
    return app
