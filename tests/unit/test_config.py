from __future__ import annotations

import pytest

from helpdesk.config import DEFAULT_SECRET_KEY, ConfigError, Settings


def _settings(**kw: object) -> Settings:
    base: dict[str, object] = {"database_url": "postgresql+psycopg://x/y", "redis_url": "redis://x"}
    base.update(kw)
    return Settings(**base)  # type: ignore[arg-type]


def test_production_refuses_default_or_missing_secret() -> None:
    for secret in (DEFAULT_SECRET_KEY, "", "short"):
        with pytest.raises(ConfigError, match="SECRET_KEY"):
            _settings(env="production", secret_key=secret).validate()
    _settings(env="production", secret_key="x" * 40, clamd_url="tcp://127.0.0.1:3310").validate()


def test_development_accepts_default_secret() -> None:
    _settings(env="development").validate()


def test_missing_urls_are_named() -> None:
    with pytest.raises(ConfigError, match="DATABASE_URL"):
        _settings(database_url="").validate()
    with pytest.raises(ConfigError, match="REDIS_URL"):
        _settings(redis_url="").validate()


def test_bad_integer_in_env_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAGE_SIZE", "lots")
    with pytest.raises(ConfigError, match="PAGE_SIZE"):
        Settings.from_env()


def test_unix_socket_redis_maps_to_limits_uri() -> None:
    cfg = _settings(redis_url="unix:///tmp/r.sock").flask_config()
    assert cfg["RATELIMIT_STORAGE_URI"] == "redis+unix:///tmp/r.sock"


def test_bad_webhook_networks_are_refused_at_start_up() -> None:
    with pytest.raises(ConfigError, match="WEBHOOK_ALLOWED_NETWORKS: 'loopback'"):
        _settings(webhook_allowed_networks="127.0.0.0/8, loopback").validate()
    _settings(webhook_allowed_networks="127.0.0.0/8, ::1/128").validate()


def test_production_requires_virus_scanning_and_storage_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match="CLAMD_URL must be set in production"):
        _settings(env="production", secret_key="x" * 40).validate()
    with pytest.raises(ConfigError, match="STORAGE=s3 needs S3_ENDPOINT, S3_ACCESS_KEY"):
        _settings(storage="s3").validate()
    with pytest.raises(ConfigError, match="CLAMD_URL must be tcp://"):
        _settings(clamd_url="clamd.local:3310").validate()
    with pytest.raises(ConfigError, match="STORAGE must be disk or s3"):
        _settings(storage="ftp").validate()


def test_mail_from_must_be_an_address_the_mail_transport_accepts() -> None:
    """Regression: the default helpdesk@localhost made every email delivery dead at once."""
    with pytest.raises(ConfigError, match="MAIL_FROM must be a full email address"):
        _settings(mail_from="helpdesk@localhost").validate()
    _settings().validate()  # the default is a valid address
    assert Settings().mail_from == "support@helpdesk.localhost"
