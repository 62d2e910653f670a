"""Settings from the environment, validated once at start-up.

Every setting is listed in `.env.example` with a safe development default.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from typing import Any

from limits import parse_many

from helpdesk.services.validation import normalize_email

DEFAULT_SECRET_KEY = "dev-insecure-change-me"  # noqa: S105 - the sentinel production refuses


class ConfigError(RuntimeError):
    """Raised when the settings cannot run the app safely."""


def _bool(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from exc


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from exc


@dataclass
class Settings:
    """Typed view of the environment."""

    env: str = "development"
    secret_key: str = DEFAULT_SECRET_KEY
    database_url: str = ""
    redis_url: str = ""
    ratelimit_storage_uri: str = ""
    ratelimit_enabled: bool = True
    login_limit_ip: str = "20 per minute"
    login_limit_account: str = "5 per minute;30 per hour"
    secret_key_fallbacks: str = ""
    password_reset_minutes: int = 60
    reset_limit_ip: str = "10 per hour"
    reset_limit_account: str = "3 per hour"
    password_limit_user: str = "5 per 15 minutes"  # noqa: S105 - a rate, not a secret
    api_limit_token: str = "600 per minute"  # noqa: S105 - a rate, not a secret
    user_limit: str = "1200 per minute"
    proxy_hops: int = 0
    page_size: int = 25
    session_cookie_secure: bool = False
    base_url: str = "http://127.0.0.1:5000"
    smtp_url: str = ""
    mail_from: str = "support@helpdesk.localhost"
    webhook_allowed_networks: str = ""
    webhook_timeout: int = 10
    metrics_token: str = ""
    log_format: str = "json"
    log_level: str = "INFO"
    sentry_dsn: str = ""
    sentry_traces_sample_rate: float = 0.0
    release: str = ""
    reply_address: str = ""
    inbound_email_secret: str = ""
    inbound_max_bytes: int = 30 * 1024 * 1024
    access_link_days: int = 30
    link_limit_ip: str = "30 per minute"
    request_limit_ip: str = "10 per hour"
    request_limit_address: str = "5 per hour"
    inbound_limit_ip: str = "600 per minute"
    storage: str = "disk"
    storage_dir: str = ""
    s3_endpoint: str = ""
    s3_access_key: str = ""
    s3_secret_key: str = ""
    s3_bucket: str = "helpdesk"
    s3_region: str = "us-east-1"
    s3_quarantine_bucket: str = ""
    clamd_url: str = ""
    attachment_max_bytes: int = 25 * 1024 * 1024
    attachment_max_files: int = 10
    attachment_max_ticket_bytes: int = 200 * 1024 * 1024
    download_url_ttl: int = 60
    uploads_enabled: bool = True
    downloads_enabled: bool = True
    flag_cache_seconds: int = 5
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_env(cls) -> Settings:
        """Read settings from os.environ."""
        env = os.environ.get("HELPDESK_ENV", "development")
        if env == "production" and not _bool(os.environ.get("SESSION_COOKIE_SECURE"), True):
            raise ConfigError("SESSION_COOKIE_SECURE cannot be turned off in production")
        return cls(
            env=env,
            secret_key=os.environ.get("SECRET_KEY", DEFAULT_SECRET_KEY),
            database_url=os.environ.get("DATABASE_URL", ""),
            redis_url=os.environ.get("REDIS_URL", ""),
            ratelimit_storage_uri=os.environ.get("RATELIMIT_STORAGE_URI", ""),
            ratelimit_enabled=_bool(os.environ.get("RATELIMIT_ENABLED"), True),
            login_limit_ip=os.environ.get("LOGIN_LIMIT_IP", "20 per minute"),
            login_limit_account=os.environ.get("LOGIN_LIMIT_ACCOUNT", "5 per minute;30 per hour"),
            secret_key_fallbacks=os.environ.get("SECRET_KEY_FALLBACKS", ""),
            password_reset_minutes=_int("PASSWORD_RESET_MINUTES", 60),
            reset_limit_ip=os.environ.get("RESET_LIMIT_IP", "10 per hour"),
            reset_limit_account=os.environ.get("RESET_LIMIT_ACCOUNT", "3 per hour"),
            password_limit_user=os.environ.get("PASSWORD_LIMIT_USER", "5 per 15 minutes"),
            api_limit_token=os.environ.get("API_LIMIT_TOKEN", "600 per minute"),
            user_limit=os.environ.get("USER_LIMIT", "1200 per minute"),
            proxy_hops=_int("PROXY_HOPS", 0),
            page_size=_int("PAGE_SIZE", 25),
            session_cookie_secure=_bool(
                os.environ.get("SESSION_COOKIE_SECURE"), env == "production"
            ),
            base_url=os.environ.get("BASE_URL", "http://127.0.0.1:5000"),
            smtp_url=os.environ.get("SMTP_URL", ""),
            mail_from=os.environ.get("MAIL_FROM", "support@helpdesk.localhost"),
            webhook_allowed_networks=os.environ.get("WEBHOOK_ALLOWED_NETWORKS", ""),
            webhook_timeout=_int("WEBHOOK_TIMEOUT", 10),
            metrics_token=os.environ.get("METRICS_TOKEN", ""),
            log_format=os.environ.get("LOG_FORMAT", "json").strip().lower() or "json",
            log_level=os.environ.get("LOG_LEVEL", "INFO").strip().upper() or "INFO",
            sentry_dsn=os.environ.get("SENTRY_DSN", "").strip(),
            sentry_traces_sample_rate=_float("SENTRY_TRACES_SAMPLE_RATE", 0.0),
            release=os.environ.get("HELPDESK_RELEASE", "").strip(),
            reply_address=os.environ.get("REPLY_ADDRESS", ""),
            inbound_email_secret=os.environ.get("INBOUND_EMAIL_SECRET", ""),
            inbound_max_bytes=_int("INBOUND_MAX_BYTES", 30 * 1024 * 1024),
            access_link_days=_int("ACCESS_LINK_DAYS", 30),
            link_limit_ip=os.environ.get("LINK_LIMIT_IP", "30 per minute"),
            request_limit_ip=os.environ.get("REQUEST_LIMIT_IP", "10 per hour"),
            request_limit_address=os.environ.get("REQUEST_LIMIT_ADDRESS", "5 per hour"),
            inbound_limit_ip=os.environ.get("INBOUND_LIMIT_IP", "600 per minute"),
            storage=os.environ.get("STORAGE", "disk"),
            storage_dir=os.environ.get("STORAGE_DIR", ""),
            s3_endpoint=os.environ.get("S3_ENDPOINT", ""),
            s3_access_key=os.environ.get("S3_ACCESS_KEY", ""),
            s3_secret_key=os.environ.get("S3_SECRET_KEY", ""),
            s3_bucket=os.environ.get("S3_BUCKET", "helpdesk"),
            s3_region=os.environ.get("S3_REGION", "us-east-1"),
            s3_quarantine_bucket=os.environ.get("S3_QUARANTINE_BUCKET", ""),
            clamd_url=os.environ.get("CLAMD_URL", ""),
            attachment_max_bytes=_int("ATTACHMENT_MAX_BYTES", 25 * 1024 * 1024),
            attachment_max_files=_int("ATTACHMENT_MAX_FILES", 10),
            attachment_max_ticket_bytes=_int("ATTACHMENT_MAX_TICKET_BYTES", 200 * 1024 * 1024),
            download_url_ttl=_int("DOWNLOAD_URL_TTL", 60),
            uploads_enabled=_bool(os.environ.get("UPLOADS_ENABLED"), True),
            downloads_enabled=_bool(os.environ.get("DOWNLOADS_ENABLED"), True),
            flag_cache_seconds=_int("FLAG_CACHE_SECONDS", 5),
        )

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    def validate(self) -> None:
        """Refuse settings that would run the app unsafely or not at all."""
        if self.env not in {"development", "test", "production"}:
            raise ConfigError("HELPDESK_ENV must be development, test or production")
        if not self.database_url:
            raise ConfigError("DATABASE_URL is not set (make run starts an embedded one)")
        if not self.redis_url:
            raise ConfigError("REDIS_URL is not set (make run starts an embedded one)")
        if self.is_production:
            if not self.secret_key or self.secret_key == DEFAULT_SECRET_KEY:
                raise ConfigError("SECRET_KEY must be set to a random value in production")
            if len(self.secret_key) < 32:
                raise ConfigError("SECRET_KEY must be at least 32 characters in production")
        if self.page_size < 1 or self.page_size > 200:
            raise ConfigError("PAGE_SIZE must be between 1 and 200")
        if self.proxy_hops < 0:
            raise ConfigError("PROXY_HOPS must not be negative")
        if not self.base_url.startswith(("http://", "https://")):
            raise ConfigError("BASE_URL must start with http:// or https://")
        if self.smtp_url and not self.smtp_url.startswith(("smtp://", "smtps://")):
            raise ConfigError("SMTP_URL must start with smtp:// or smtps://")
        if normalize_email(self.mail_from) is None:  # the mail transport refuses it otherwise
            raise ConfigError(
                f"MAIL_FROM must be a full email address like support@example.com, got "
                f"{self.mail_from!r}"
            )
        for spec in filter(None, (x.strip() for x in self.webhook_allowed_networks.split(","))):
            try:
                ipaddress.ip_network(spec, strict=False)
            except ValueError as exc:
                raise ConfigError(
                    f"WEBHOOK_ALLOWED_NETWORKS: {spec!r} is not a network like 127.0.0.0/8"
                ) from exc
        if self.reply_address and self.reply_address.count("{token}") != 1:
            raise ConfigError("REPLY_ADDRESS must contain {token} once, e.g. support+{token}@x.com")
        if self.is_production and self.inbound_email_secret and len(self.inbound_email_secret) < 24:
            raise ConfigError("INBOUND_EMAIL_SECRET must be at least 24 characters in production")
        if not 1 <= self.access_link_days <= 365:
            raise ConfigError("ACCESS_LINK_DAYS must be between 1 and 365")
        if not 1024 <= self.inbound_max_bytes <= 100 * 1024 * 1024:
            raise ConfigError("INBOUND_MAX_BYTES must be between 1 KiB and 100 MiB")
        self._validate_attachments()
        self._validate_auth()
        self._validate_observability()
        if not 1 <= self.webhook_timeout <= 60:
            raise ConfigError("WEBHOOK_TIMEOUT must be between 1 and 60 seconds")
        if not 0 <= self.flag_cache_seconds <= 60:
            raise ConfigError("FLAG_CACHE_SECONDS must be between 0 and 60")

    def _validate_observability(self) -> None:
        if self.log_format not in {"json", "text"}:
            raise ConfigError("LOG_FORMAT must be json or text")
        if self.log_level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ConfigError("LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR")
        if self.sentry_dsn and not self.sentry_dsn.startswith(("https://", "http://")):
            raise ConfigError("SENTRY_DSN must look like https://<key>@<host>/<project>")
        if not 0.0 <= self.sentry_traces_sample_rate <= 1.0:
            raise ConfigError("SENTRY_TRACES_SAMPLE_RATE must be between 0 and 1")

    @property
    def fallback_keys(self) -> list[str]:
        """SECRET_KEY_FALLBACKS as a list: old keys still accepted for signed cookies."""
        return [key.strip() for key in self.secret_key_fallbacks.split(",") if key.strip()]

    def _validate_auth(self) -> None:
        if self.is_production and any(
            len(key) < 32 or key == DEFAULT_SECRET_KEY for key in self.fallback_keys
        ):
            raise ConfigError("each SECRET_KEY_FALLBACKS key must be 32+ random characters")
        if not 5 <= self.password_reset_minutes <= 24 * 60:
            raise ConfigError("PASSWORD_RESET_MINUTES must be between 5 and 1440")
        for name in ("LOGIN_LIMIT_IP", "LOGIN_LIMIT_ACCOUNT", "RESET_LIMIT_IP",
                     "RESET_LIMIT_ACCOUNT", "PASSWORD_LIMIT_USER", "API_LIMIT_TOKEN", "USER_LIMIT",
                     "LINK_LIMIT_IP", "REQUEST_LIMIT_IP", "REQUEST_LIMIT_ADDRESS",
                     "INBOUND_LIMIT_IP"):  # fmt: skip
            value = str(getattr(self, name.lower()))
            try:
                parse_many(value)
            except ValueError as exc:
                raise ConfigError(
                    f"{name} must look like '20 per minute' or '5 per minute;30 per hour', "
                    f"got {value!r}"
                ) from exc

    def _validate_attachments(self) -> None:
        if self.storage not in {"disk", "s3"}:
            raise ConfigError("STORAGE must be disk or s3")
        if self.storage == "s3":
            missing = [name for name, value in (("S3_ENDPOINT", self.s3_endpoint),
                       ("S3_ACCESS_KEY", self.s3_access_key), ("S3_SECRET_KEY", self.s3_secret_key),
                       ("S3_BUCKET", self.s3_bucket)) if not value]  # fmt: skip
            if missing:
                raise ConfigError(f"STORAGE=s3 needs {', '.join(missing)}")
            if not self.s3_endpoint.startswith(("http://", "https://")):
                raise ConfigError("S3_ENDPOINT must look like http://host:port or https://host")
        if self.clamd_url and not self.clamd_url.startswith(("tcp://", "unix://")):
            raise ConfigError("CLAMD_URL must be tcp://host:port or unix:///path/to/socket")
        if self.is_production and not self.clamd_url:
            raise ConfigError("CLAMD_URL must be set in production: attachments are scanned")
        if not 1 <= self.attachment_max_bytes <= 1024**3:
            raise ConfigError("ATTACHMENT_MAX_BYTES must be between 1 byte and 1 GiB")
        if not 1 <= self.attachment_max_files <= 100:
            raise ConfigError("ATTACHMENT_MAX_FILES must be between 1 and 100")
        if self.attachment_max_ticket_bytes < self.attachment_max_bytes:
            raise ConfigError("ATTACHMENT_MAX_TICKET_BYTES must be at least ATTACHMENT_MAX_BYTES")
        if not 1 <= self.download_url_ttl <= 300:
            raise ConfigError("DOWNLOAD_URL_TTL must be between 1 and 300 seconds")

    def flask_config(self) -> dict[str, Any]:
        """Translate into Flask / extension config keys."""
        return {
            "SECRET_KEY": self.secret_key,
            "HELPDESK_ENV": self.env,
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "RATELIMIT_STORAGE_URI": self.ratelimit_storage_uri or _limits_uri(self.redis_url),
            "RATELIMIT_ENABLED": self.ratelimit_enabled,
            "RATELIMIT_HEADERS_ENABLED": True,
            "LOGIN_LIMIT_IP": self.login_limit_ip,
            "LOGIN_LIMIT_ACCOUNT": self.login_limit_account,
            "SECRET_KEY_FALLBACKS": self.fallback_keys,
            "PASSWORD_RESET_MINUTES": self.password_reset_minutes,
            "RESET_LIMIT_IP": self.reset_limit_ip,
            "RESET_LIMIT_ACCOUNT": self.reset_limit_account,
            "PASSWORD_LIMIT_USER": self.password_limit_user,
            "API_LIMIT_TOKEN": self.api_limit_token,
            "USER_LIMIT": self.user_limit,
            "PROXY_HOPS": self.proxy_hops,
            "PAGE_SIZE": self.page_size,
            **self._cookie_config(),
            "WTF_CSRF_TIME_LIMIT": None,
            "WTF_CSRF_HEADERS": ["X-CSRFToken", "X-CSRF-Token"],
            "MAX_CONTENT_LENGTH": 2 * 1024 * 1024,
            "BASE_URL": self.base_url.rstrip("/"),
            "SMTP_URL": self.smtp_url,
            "MAIL_FROM": self.mail_from,
            "WEBHOOK_ALLOWED_NETWORKS": self.webhook_allowed_networks,
            "WEBHOOK_TIMEOUT": self.webhook_timeout,
            "METRICS_TOKEN": self.metrics_token,
            "LOG_FORMAT": self.log_format,
            "SENTRY_DSN": self.sentry_dsn,
            "REPLY_ADDRESS": self.reply_address or _plus_address(self.mail_from),
            "INBOUND_EMAIL_SECRET": self.inbound_email_secret,
            "INBOUND_MAX_BYTES": self.inbound_max_bytes,
            "ACCESS_LINK_DAYS": self.access_link_days,
            "LINK_LIMIT_IP": self.link_limit_ip,
            "REQUEST_LIMIT_IP": self.request_limit_ip,
            "REQUEST_LIMIT_ADDRESS": self.request_limit_address,
            "INBOUND_LIMIT_IP": self.inbound_limit_ip,
            "STORAGE": self.storage,
            "STORAGE_DIR": self.storage_dir,
            "S3_ENDPOINT": self.s3_endpoint,
            "S3_ACCESS_KEY": self.s3_access_key,
            "S3_SECRET_KEY": self.s3_secret_key,
            "S3_BUCKET": self.s3_bucket,
            "S3_REGION": self.s3_region,
            "S3_QUARANTINE_BUCKET": self.s3_quarantine_bucket,
            "CLAMD_URL": self.clamd_url,
            "ATTACHMENT_MAX_BYTES": self.attachment_max_bytes,
            "ATTACHMENT_MAX_FILES": self.attachment_max_files,
            "ATTACHMENT_MAX_TICKET_BYTES": self.attachment_max_ticket_bytes,
            "DOWNLOAD_URL_TTL": self.download_url_ttl,
            "UPLOADS_ENABLED": self.uploads_enabled,
            "DOWNLOADS_ENABLED": self.downloads_enabled,
            "FLAG_CACHE_SECONDS": self.flag_cache_seconds,
            **self.extra,
        }

    def _cookie_config(self) -> dict[str, Any]:
        # Production cookies are always Secure and carry the __Host- prefix: the browser then
        # refuses them unless they are Secure, host-only (no Domain) and Path=/.
        secure = self.session_cookie_secure or self.is_production
        prefix = "__Host-" if secure else ""
        return {
            "SESSION_COOKIE_NAME": f"{prefix}session",
            "SESSION_COOKIE_HTTPONLY": True,
            "SESSION_COOKIE_SAMESITE": "Lax",
            "SESSION_COOKIE_SECURE": secure,
            "SESSION_COOKIE_PATH": "/",
            "SESSION_COOKIE_DOMAIN": None,
            "REMEMBER_COOKIE_NAME": f"{prefix}remember",
            "REMEMBER_COOKIE_HTTPONLY": True,
            "REMEMBER_COOKIE_SAMESITE": "Lax",
            "REMEMBER_COOKIE_SECURE": secure,
            "REMEMBER_COOKIE_PATH": "/",
            "REMEMBER_COOKIE_DOMAIN": None,
        }


def _limits_uri(redis_url: str) -> str:
    """Storage URI for flask-limiter (the `limits` library spells unix sockets differently)."""
    if redis_url.startswith("unix://"):
        return "redis+unix://" + redis_url[len("unix://") :]
    return redis_url


def _plus_address(mail_from: str) -> str:
    """The default reply address: MAIL_FROM with a plus-part, e.g. support+{token}@x.com."""
    local, _, domain = mail_from.rpartition("@")
    return f"{local}+{{token}}@{domain}"
