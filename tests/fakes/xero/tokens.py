"""Xero's OAuth2 token rules: authorization codes with PKCE, rotating refresh tokens, access tokens.

The rules modelled (Xero's documentation):
- an authorization code is single use and lives 5 minutes; its PKCE ``code_challenge`` (S256 only) must
  match ``base64url(sha256(code_verifier))``;
- an access token lives 30 minutes (``expires_in: 1800``) and carries the granted scopes;
- a refresh token is only issued when ``offline_access`` was granted; every refresh returns a NEW refresh
  token; a used one keeps working for 30 minutes after its first use (the grace for a lost response) and
  is ``invalid_grant`` afterwards; an unused one expires 60 days after it was issued;
- revoking a refresh token ends the whole grant: its refresh and access tokens and the user's connections
  to the app.
Access tokens are JWT-shaped (header.claims.signature, HMAC-signed with a per-fake key) so a client may
read ``exp``, ``scope`` and ``authentication_event_id`` as it would from Xero's tokens; the fake itself
looks them up, so a forged or revoked token is refused.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

CODE_LIFETIME = timedelta(minutes=5)
ACCESS_LIFETIME = timedelta(minutes=30)
REFRESH_GRACE = timedelta(minutes=30)
REFRESH_LIFETIME = timedelta(days=60)


class TokenError(Exception):
    """An OAuth2 error answer (``{"error": code}``, 400)."""

    def __init__(self, code: str, description: str = "") -> None:
        super().__init__(code)
        self.code = code
        self.description = description


@dataclass
class Code:
    client_id: str
    redirect_uri: str
    user: str
    scopes: tuple[str, ...]
    challenge: str | None
    auth_event_id: str
    issued: datetime
    used: bool = False


@dataclass
class Grant:
    id: str
    client_id: str
    user: str
    scopes: tuple[str, ...]
    auth_event_id: str
    revoked: bool = False


@dataclass
class RefreshToken:
    grant: Grant
    issued: datetime
    first_used: datetime | None = None


@dataclass
class AccessToken:
    grant: Grant
    expires: datetime


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def s256(verifier: str) -> str:
    return b64url(hashlib.sha256(verifier.encode("ascii")).digest())


@dataclass
class TokenBook:
    """Every code and token the fake issued, and the rules for using them."""

    key: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    codes: dict[str, Code] = field(default_factory=dict)
    refresh_tokens: dict[str, RefreshToken] = field(default_factory=dict)
    access_tokens: dict[str, AccessToken] = field(default_factory=dict)

    def issue_code(self, code: Code) -> str:
        value = secrets.token_urlsafe(32)
        self.codes[value] = code
        return value

    def redeem_code(self, value: str, *, client_id: str, redirect_uri: str, verifier: str | None,
                    now: datetime) -> Grant:
        code = self.codes.get(value)
        if code is None or code.client_id != client_id:
            raise TokenError("invalid_grant", "unknown authorization code")
        if code.used:
            raise TokenError("invalid_grant", "authorization code already used")
        if now - code.issued > CODE_LIFETIME:
            raise TokenError("invalid_grant", "authorization code expired")
        if redirect_uri != code.redirect_uri:
            raise TokenError("invalid_grant", "redirect_uri does not match the authorize request")
        if code.challenge is not None:
            if not verifier or not hmac.compare_digest(s256(verifier), code.challenge):
                raise TokenError("invalid_grant", "code_verifier does not match the code_challenge")
        code.used = True
        return Grant(id=secrets.token_hex(8), client_id=client_id, user=code.user, scopes=code.scopes,
                     auth_event_id=code.auth_event_id)

    def refresh(self, value: str, *, client_id: str, now: datetime) -> Grant:
        token = self.refresh_tokens.get(value)
        if token is None or token.grant.client_id != client_id or token.grant.revoked:
            raise TokenError("invalid_grant")
        if token.first_used is None:
            if now - token.issued > REFRESH_LIFETIME:
                raise TokenError("invalid_grant")
            token.first_used = now
        elif now - token.first_used > REFRESH_GRACE:
            raise TokenError("invalid_grant")
        return token.grant

    def tokens_for(self, grant: Grant, *, now: datetime) -> dict[str, Any]:
        """The token endpoint's answer for a grant: a new access token and, with offline_access, refresh token."""
        expires = now + ACCESS_LIFETIME
        claims = {
            "nbf": int(now.timestamp()), "exp": int(expires.timestamp()), "iss": "https://identity.xero.com",
            "aud": "https://identity.xero.com/resources", "client_id": grant.client_id, "sub": grant.user,
            "auth_time": int(now.timestamp()), "xero_userid": grant.user, "jti": secrets.token_hex(16),
            "authentication_event_id": grant.auth_event_id, "scope": list(grant.scopes),
        }
        access = self._jwt(claims)
        self.access_tokens[access] = AccessToken(grant, expires)
        answer: dict[str, Any] = {"access_token": access, "expires_in": int(ACCESS_LIFETIME.total_seconds()),
                                  "token_type": "Bearer", "scope": " ".join(grant.scopes)}
        if "offline_access" in grant.scopes:
            refresh = secrets.token_urlsafe(32)
            self.refresh_tokens[refresh] = RefreshToken(grant, now)
            answer["refresh_token"] = refresh
        if "openid" in grant.scopes:
            answer["id_token"] = self._jwt({
                "nbf": claims["nbf"], "exp": claims["exp"], "iss": claims["iss"], "aud": grant.client_id,
                "sub": grant.user, "xero_userid": grant.user, "preferred_username": f"{grant.user}@example.com",
                "email": f"{grant.user}@example.com", "given_name": grant.user, "family_name": "Test",
            })
        return answer

    def revoke(self, value: str, *, client_id: str) -> Grant | None:
        """Revoke the grant a refresh token of this client belongs to; None if it is not one (RFC 7009: 200)."""
        holder = self.refresh_tokens.get(value)
        if holder is None or holder.grant.client_id != client_id:
            return None
        holder.grant.revoked = True
        return holder.grant

    def access(self, value: str) -> AccessToken | None:
        token = self.access_tokens.get(value)
        return None if token is None or token.grant.revoked else token

    def _jwt(self, claims: dict[str, Any]) -> str:
        header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        payload = b64url(json.dumps(claims, separators=(",", ":")).encode())
        signature = hmac.new(self.key, f"{header}.{payload}".encode(), hashlib.sha256).digest()
        return f"{header}.{payload}.{b64url(signature)}"
