"""Xero (issue 16): the tenant's own Xero app, OAuth2 connections, tokens refreshed under a row lock, a
per-organisation pacer and the accounting API client. Invoice and purchase-order pushes build on these.

Modules: ``endpoints`` (URLs, the HTTP session), ``errors``, ``identity`` (token endpoint), ``state``
(authorisation state + PKCE), ``oauth`` (authorize URL, code exchange, ``/connections``),
``connections`` (storing, choosing, disconnecting), ``tokens``, ``pacer``, ``client``.
"""
