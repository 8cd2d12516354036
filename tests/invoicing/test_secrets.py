"""Secrets at rest: sealed with AES-256-GCM under INVOICEBOT_SECRET_KEY, bound to their purpose, rotatable."""

from __future__ import annotations

import base64
import subprocess
import sys

import pytest

from bot.settings import Settings
from invoicing.secrets import SecretBox, SecretsUnavailable, SecretUnreadable, new_key

KEY, OLD = new_key(), new_key()
PURPOSE = "xml:tenant:3:password"


def test_a_sealed_secret_opens_for_its_purpose_and_never_shows_in_clear():
    box = SecretBox(KEY)
    stored = box.seal("s3cr3t pässword", purpose=PURPOSE)
    assert "s3cr3t" not in stored and stored.startswith("v1:")
    assert box.open(stored, purpose=PURPOSE) == "s3cr3t pässword"
    assert stored != box.seal("s3cr3t pässword", purpose=PURPOSE)  # a fresh nonce every time
    assert KEY not in repr(box)


def test_a_value_copied_to_another_row_or_changed_does_not_open():
    box = SecretBox(KEY)
    stored = box.seal("hunter2", purpose=PURPOSE)
    with pytest.raises(SecretUnreadable):
        box.open(stored, purpose="xml:tenant:4:password")
    # one bit of the ciphertext changed (flipping a base64 character could hit only padding bits)
    version, key_id, body = stored.split(":", 2)
    raw = bytearray(base64.urlsafe_b64decode(body))
    raw[len(raw) // 2] ^= 0x01
    flipped = f"{version}:{key_id}:{base64.urlsafe_b64encode(bytes(raw)).decode()}"
    with pytest.raises(SecretUnreadable):
        box.open(flipped, purpose=PURPOSE)
    with pytest.raises(SecretUnreadable):
        box.open("not a sealed value", purpose=PURPOSE)


def test_without_a_key_nothing_is_stored_or_read():
    box = SecretBox(None)
    assert not box.configured
    with pytest.raises(SecretsUnavailable, match="INVOICEBOT_SECRET_KEY is not set"):
        box.seal("x", purpose=PURPOSE)
    with pytest.raises(SecretsUnavailable):
        box.open(SecretBox(KEY).seal("x", purpose=PURPOSE), purpose=PURPOSE)


# Fixed ids: the keys are random per process, and xdist workers must collect the same test names.
@pytest.mark.parametrize("setting", ["not-base64!", "c2hvcnQ=", f"{KEY},zz"], ids=["not-base64", "short", "second"])
def test_a_malformed_key_is_a_clear_error_naming_the_entry_not_the_key(setting: str):
    with pytest.raises(SecretsUnavailable) as refused:
        SecretBox(setting)
    assert "entry" in refused.value.message and KEY not in refused.value.message


def test_rotation_seals_with_the_newest_key_and_still_opens_the_old_ones():
    before = SecretBox(OLD).seal("token", purpose=PURPOSE)
    rotated = SecretBox(f"{KEY}, {OLD}")
    assert rotated.open(before, purpose=PURPOSE) == "token" and rotated.needs_reseal(before)
    after = rotated.seal("token", purpose=PURPOSE)
    assert not rotated.needs_reseal(after)
    with pytest.raises(SecretUnreadable, match="not configured"):
        SecretBox(OLD).open(after, purpose=PURPOSE)  # the old key alone cannot read the new value


def test_the_setting_is_secret_and_empty_means_unset(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("INVOICEBOT_SECRET_KEY", KEY)
    settings = Settings(_env_file=None)
    assert settings.invoicebot_secret_key is not None and KEY not in repr(settings)
    monkeypatch.setenv("INVOICEBOT_SECRET_KEY", "")
    assert Settings(_env_file=None).invoicebot_secret_key is None


def test_python_m_invoicing_secrets_prints_a_usable_key():
    printed = subprocess.run([sys.executable, "-m", "invoicing.secrets"], capture_output=True, text=True,
                             check=True).stdout.strip()
    box = SecretBox(printed)
    assert box.open(box.seal("ok", purpose="p"), purpose="p") == "ok"
