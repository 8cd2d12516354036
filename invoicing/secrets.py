"""Secrets at rest: what the integrations must store (SFTP private keys and passwords, Xero client
secrets and tokens) is sealed with AES-256-GCM (``cryptography``) under ``INVOICEBOT_SECRET_KEY``.

What a caller may rely on:

* ``SecretBox.seal(plaintext, purpose=…)`` returns text safe to store in a column; ``open`` gives the
  plaintext back only for the same ``purpose`` (authenticated as associated data), so a sealed
  value copied to another row or tenant (``"xml:tenant:3:password"`` → ``"…:4:…"``) does not open.
  Any change to the stored text fails too (``SecretUnreadable``), never a wrong plaintext.
* No key configured → ``SecretsUnavailable`` on ``seal`` *and* ``open``: the service refuses to store
  a secret rather than storing it in clear.
* Rotation: the setting is a comma-separated list, newest first. New values are sealed with the first
  key; each stored value names its key (an 8-hex id, a hash of the key, not the key), so every listed
  key still opens what it sealed. ``needs_reseal`` says a value is under an older key.
* Keys and plaintexts are never in a repr, an error message or a log line.

Format: ``v1:<key id>:<base64url(nonce ‖ ciphertext ‖ tag)>``; a 96-bit random nonce per seal.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import sys

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from invoicing.errors import InvoiceBotError

_VERSION = "v1"
_NONCE = 12


class SecretsUnavailable(InvoiceBotError):
    """No ``INVOICEBOT_SECRET_KEY``: nothing secret can be stored or read."""


class SecretUnreadable(InvoiceBotError):
    """A stored secret that no configured key opens (other purpose, changed text, key removed)."""


def new_key() -> str:
    """A fresh key for ``INVOICEBOT_SECRET_KEY`` (32 random bytes, base64)."""
    return base64.b64encode(AESGCM.generate_key(bit_length=256)).decode()


def _key_id(key: bytes) -> str:
    return hashlib.sha256(b"invoicebot-secret-key:" + key).hexdigest()[:8]


def _parse_keys(setting: str) -> list[bytes]:
    keys: list[bytes] = []
    for position, text in enumerate(part.strip() for part in setting.split(",") if part.strip()):
        try:
            key = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise SecretsUnavailable(f"INVOICEBOT_SECRET_KEY entry {position + 1} is not base64; generate one "
                                     "with `python -m invoicing.secrets`") from None
        if len(key) != 32:
            raise SecretsUnavailable(f"INVOICEBOT_SECRET_KEY entry {position + 1} is {len(key)} bytes, not 32; "
                                     "generate one with `python -m invoicing.secrets`")
        keys.append(key)
    return keys


class SecretBox:
    """Seals and opens secrets with the configured keys (``setting``: the raw setting, may be empty)."""

    def __init__(self, setting: str | None) -> None:
        keys = _parse_keys(setting or "")
        self._keys = {_key_id(k): AESGCM(k) for k in keys}
        self._current = _key_id(keys[0]) if keys else None

    def __repr__(self) -> str:  # never the keys
        return f"SecretBox(keys={len(self._keys)})"

    @property
    def configured(self) -> bool:
        return self._current is not None

    def seal(self, plaintext: str, *, purpose: str) -> str:
        if self._current is None:
            raise SecretsUnavailable("Secrets cannot be stored: INVOICEBOT_SECRET_KEY is not set (see .env.example); "
                                     "nothing was saved.")
        nonce = os.urandom(_NONCE)
        sealed = self._keys[self._current].encrypt(nonce, plaintext.encode("utf-8"), purpose.encode("utf-8"))
        return f"{_VERSION}:{self._current}:{base64.urlsafe_b64encode(nonce + sealed).decode()}"

    def open(self, stored: str, *, purpose: str) -> str:
        if self._current is None:
            raise SecretsUnavailable("Stored secrets cannot be read: INVOICEBOT_SECRET_KEY is not set.")
        version, key_id, body = (stored.split(":", 2) + ["", ""])[:3]
        cipher = self._keys.get(key_id)
        if version != _VERSION or cipher is None:
            raise SecretUnreadable("A stored secret was sealed with a key that is not configured; set it again.")
        try:
            raw = base64.urlsafe_b64decode(body.encode())
            return cipher.decrypt(raw[:_NONCE], raw[_NONCE:], purpose.encode("utf-8")).decode("utf-8")
        except (InvalidTag, binascii.Error, ValueError):
            raise SecretUnreadable("A stored secret does not open (changed, or stored for something else); "
                                   "set it again.") from None

    def needs_reseal(self, stored: str) -> bool:
        """Whether ``stored`` is under an older key than the current one (re-seal it on the next write)."""
        return stored.split(":", 2)[1:2] != [self._current]


if __name__ == "__main__":  # `python -m invoicing.secrets` prints a new key
    sys.stdout.write(new_key() + "\n")
