"""Where Xero is, and the one HTTP session every Xero call goes through.

The three base URLs are settings (``XERO_LOGIN_URL``, ``XERO_IDENTITY_URL``, ``XERO_API_URL``; tests point
all of them at the fake Xero); the paths are Xero's own and fixed here. Every call has a timeout
(``XeroHttp.timeout``), so nothing waits for Xero forever.
"""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp

from invoicing.clock import Clock, utc_now
from invoicing.secrets import SecretBox

LOGIN_URL = "https://login.xero.com"
IDENTITY_URL = "https://identity.xero.com"
API_URL = "https://api.xero.com"
#: Where Xero sends the browser back to, under ``PUBLIC_URL``.
CALLBACK_PATH = "/xero/callback"


@dataclass(frozen=True)
class XeroUrls:
    """Base URLs (no trailing slash needed) and the service's own callback URL."""

    login: str = LOGIN_URL
    identity: str = IDENTITY_URL
    api: str = API_URL
    #: ``PUBLIC_URL`` + ``/xero/callback``: must be registered as the app's redirect URI at Xero.
    redirect_uri: str = ""

    @property
    def authorize(self) -> str:
        return self.login.rstrip("/") + "/identity/connect/authorize"

    @property
    def token(self) -> str:
        return self.identity.rstrip("/") + "/connect/token"

    @property
    def revocation(self) -> str:
        return self.identity.rstrip("/") + "/connect/revocation"

    @property
    def connections(self) -> str:
        return self.api.rstrip("/") + "/connections"

    def accounting(self, path: str) -> str:
        """``/api.xro/2.0/<path>`` (``path`` such as ``Invoices`` or ``Contacts/ACME``)."""
        return self.api.rstrip("/") + "/api.xro/2.0/" + path.lstrip("/")


def redirect_uri(public_url: str) -> str:
    """The callback URL Xero redirects to: ``PUBLIC_URL`` + ``/xero/callback``."""
    return public_url.rstrip("/") + CALLBACK_PATH if public_url else ""


@dataclass(frozen=True)
class XeroHttp:
    """An open ``aiohttp`` session with Xero's URLs and the timeout of one request (seconds)."""

    session: aiohttp.ClientSession
    urls: XeroUrls
    timeout: float = 20.0

    @property
    def client_timeout(self) -> aiohttp.ClientTimeout:
        return aiohttp.ClientTimeout(total=self.timeout, connect=min(self.timeout, 10.0))


@dataclass(frozen=True)
class XeroEnv:
    """What Xero code needs from the composition root: the secret box, the HTTP side and the clock.

    ``configured`` is False until ``PUBLIC_URL`` is set (no redirect URI, no connection)."""

    box: SecretBox
    http: XeroHttp
    clock: Clock = utc_now

    @property
    def configured(self) -> bool:
        return bool(self.http.urls.redirect_uri)
