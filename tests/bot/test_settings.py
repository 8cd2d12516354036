"""Settings: every key is documented in .env.example, and the example itself is valid."""

from pathlib import Path

import pytest
from pydantic import ValidationError

from bot.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def example_keys() -> dict[str, str]:
    pairs = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            pairs[key] = value
    return pairs


def test_every_setting_is_in_env_example_and_nothing_else():
    assert set(example_keys()) == {name.upper() for name in Settings.model_fields}


def test_the_example_file_is_a_valid_configuration(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = Settings(**{k.lower(): v for k, v in example_keys().items()})
    assert settings.resolved_database_url().startswith("sqlite://")
    assert settings.resolved_outbox_dir() == settings.data_dir / "outbox"
    assert settings.smtp_password is None


def test_secrets_never_show_in_reprs():
    settings = Settings(smtp_password="hunter2", slack_bot_token="xoxb-secret")
    assert "hunter2" not in repr(settings) and "xoxb-secret" not in str(settings.model_dump())


@pytest.mark.parametrize(("key", "value"), [("port", "0"), ("smtp_security", "ssl"), ("database_url", "mysql://x")])
def test_bad_settings_are_refused(key, value):
    with pytest.raises(ValidationError):
        Settings(**{key: value})
