"""Xero's official OpenAPI documents, loaded once per process, and request validation against them.

The files in ``spec/`` are copied unchanged from github.com/XeroAPI/Xero-OpenAPI (see ``spec/README.md``).
openapi-core refuses to load ``xero_accounting.yaml`` as published: 23 boolean properties declare a
*string* default (``default: 'false'``), which is not a valid OpenAPI 3.0 document. ``_patch`` turns
those defaults into booleans in the in-memory copy; nothing else is changed, so every path, parameter
and body schema (Invoices, CreditNotes, PurchaseOrders, Contacts …) is validated as Xero publishes it.

Xero treats literal path segments case-insensitively (the identity spec says ``/Connections``, Xero's
documentation and SDKs call ``/connections``); ``canonical_path`` maps a request path onto the spec's
spelling before validation, parameters untouched.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]
from openapi_core import OpenAPI
from openapi_core.datatypes import RequestParameters

SPEC_DIR = Path(__file__).parent / "spec"
ACCOUNTING_FILE = SPEC_DIR / "xero_accounting.yaml"
IDENTITY_FILE = SPEC_DIR / "xero-identity.yaml"
#: The host every request is validated as (the specs' ``servers``); the fake's own host is irrelevant.
XERO_HOST = "https://api.xero.com"


def _patch(node: Any) -> int:
    """Make string defaults of boolean schemas booleans (the only construct openapi-core rejects)."""
    patched = 0
    if isinstance(node, dict):
        if node.get("type") == "boolean" and isinstance(node.get("default"), str):
            node["default"] = node["default"].strip().lower() == "true"
            patched += 1
        for value in node.values():
            patched += _patch(value)
    elif isinstance(node, list):
        for value in node:
            patched += _patch(value)
    return patched


def _load(path: Path) -> tuple[OpenAPI, dict[str, str]]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with path.open("rb") as handle:
        document = yaml.load(handle, Loader=loader)
    _patch(document)
    spellings: dict[str, str] = {}
    for template in document["paths"]:
        for segment in template.split("/"):
            if segment and not segment.startswith("{"):
                spellings.setdefault(segment.lower(), segment)
    return OpenAPI.from_dict(document), spellings


@functools.cache
def accounting() -> Spec:
    """The Accounting API (``/api.xro/2.0/…``)."""
    return Spec(*_load(ACCOUNTING_FILE))


@functools.cache
def identity() -> Spec:
    """The identity API: ``/Connections`` (the token endpoints are not in any published spec)."""
    return Spec(*_load(IDENTITY_FILE))


@dataclass
class _Request:
    """openapi-core's request protocol over what the fake already read from aiohttp."""

    host_url: str
    path: str
    method: str
    parameters: RequestParameters
    content_type: str
    body: bytes | None


@dataclass
class _Response:
    """openapi-core's response protocol."""

    data: bytes
    status_code: int
    content_type: str
    headers: Mapping[str, str]


@dataclass(frozen=True)
class Spec:
    api: OpenAPI
    #: lower-case literal path segment → the spelling in the spec
    spellings: dict[str, str]

    def canonical_path(self, path: str) -> str:
        return "/".join(self.spellings.get(segment.lower(), segment) for segment in path.split("/"))

    def request_errors(self, *, method: str, path: str, query: Mapping[str, str], headers: Mapping[str, str],
                       body: bytes | None, content_type: str) -> list[str]:
        """Every way the request departs from the spec, as readable messages ([] = valid)."""
        request = self._request(method, path, query, headers, body, content_type)
        with warnings.catch_warnings():
            # OAuth2 security schemes are not checked by openapi-core ("Unsupported scheme type");
            # the fake checks bearer tokens and scopes itself.
            warnings.simplefilter("ignore", UserWarning)
            return [_describe(error) for error in self.api.iter_request_errors(request)]

    def response_errors(self, *, method: str, path: str, query: Mapping[str, str], headers: Mapping[str, str],
                        body: bytes | None, content_type: str, status: int, answer: bytes,
                        answer_type: str) -> list[str]:
        """How the fake's own answer departs from the spec's response schema (the fake checking itself)."""
        request = self._request(method, path, query, headers, body, content_type)
        response = _Response(data=answer, status_code=status, content_type=answer_type, headers={})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return [_describe(error) for error in self.api.iter_response_errors(request, response)]

    def _request(self, method: str, path: str, query: Mapping[str, str], headers: Mapping[str, str],
                 body: bytes | None, content_type: str) -> _Request:
        return _Request(
            host_url=XERO_HOST,
            path=self.canonical_path(path),
            method=method.lower(),
            parameters=RequestParameters(query=query, header=headers, cookie={}),
            content_type=content_type,
            body=body or None,
        )


def _describe(error: BaseException) -> str:
    text = str(error)
    parts = [f"{type(error).__name__}: {text if len(text) <= 200 else text[:200] + '…'}"]
    cause = error.__cause__
    while cause is not None:
        schema_errors = getattr(cause, "schema_errors", None)
        if schema_errors:
            parts.extend(f"{'/'.join(str(p) for p in e.absolute_path) or '<body>'}: {e.message}"
                         for e in schema_errors)
        else:
            parts.append(str(cause))
        cause = cause.__cause__
    return " | ".join(parts)
