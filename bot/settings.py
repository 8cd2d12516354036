"""Every setting of InvoiceBot, read from the environment or a ``.env`` file.

Nothing else in the code reads ``os.environ``. Secrets are ``SecretStr`` so they
never show up in reprs or logs.
"""

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    invoicebot_data_dir: Path = Field(default=Path("./invoicebot-data"))
    database_url: str = ""
    host: str = "0.0.0.0"
    port: int = Field(default=3000, ge=1, le=65535)
    feed_max_body_bytes: int = Field(default=1_048_576, ge=1024, le=64 * 1_048_576)
    # Scheduler lease: renewed every third of it while a run is live; a crashed replica's runs wait about this long.
    # What `serve` runs (bot.app): all, web (HTTP only) or worker (scheduler + outboxes); `serve --role` wins.
    serve_role: Literal["all", "web", "worker"] = "all"
    scheduler_lease_seconds: int = Field(default=60, ge=1, le=3600)
    # PDF render processes of a serve that runs workers (all, worker): about one per core the database leaves free.
    render_workers: int = Field(default=2, ge=1, le=64)
    # XML export upload lease: a file claimed by a worker that died is uploaded again this much later.
    xml_upload_lease_seconds: int = Field(default=900, ge=1, le=86400)

    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_api_url: str = "https://slack.com/api/"

    smtp_host: str = ""
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_username: str = ""
    smtp_password: SecretStr | None = None
    smtp_security: Literal["none", "starttls", "tls"] = "starttls"
    # SMTP connections a serve that runs workers sends on side by side (each sends its share of the deliveries).
    smtp_connections: int = Field(default=2, ge=1, le=16)
    mail_from: str = "invoices@invoicebot.local"
    outbox_dir: Path | None = None
    # Comma-separated base64 keys (32 bytes each), newest first: see invoicing.secrets and .env.example.
    invoicebot_secret_key: SecretStr | None = None

    # Xero (issue 16): the service's external base URL (the OAuth redirect URI is PUBLIC_URL + /xero/callback)
    # and Xero's three base URLs (tests point them at a local fake).
    public_url: str = ""
    xero_login_url: str = "https://login.xero.com"
    xero_identity_url: str = "https://identity.xero.com"
    xero_api_url: str = "https://api.xero.com"
    # Seconds one Xero request may take (token refreshes hold the connection's row lock that long at most).
    xero_timeout_seconds: float = Field(default=20.0, gt=0, le=300)

    @field_validator("database_url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        if value and not value.startswith(("sqlite://", "postgres://", "postgresql://", "asyncpg://")):
            raise ValueError("must start with sqlite://, postgres:// or postgresql://")
        return value

    @field_validator("outbox_dir", "slack_bot_token", "slack_signing_secret", "slack_app_token", "smtp_password",
                     "invoicebot_secret_key", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        """``KEY=`` in .env means "not set", as in .env.example."""
        return None if value == "" else value

    @field_validator("public_url", "xero_login_url", "xero_identity_url", "xero_api_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if value and not value.startswith(("https://", "http://")):
            raise ValueError("must be an http(s):// URL")
        return value.rstrip("/")

    @property
    def data_dir(self) -> Path:
        return self.invoicebot_data_dir

    def resolved_database_url(self) -> str:
        """``DATABASE_URL``, or the embedded SQLite file under the data dir."""
        if self.database_url:
            return self.database_url
        return f"sqlite://{(self.data_dir / 'invoicebot.db').resolve()}"

    def resolved_outbox_dir(self) -> Path:
        return self.outbox_dir or self.data_dir / "outbox"
