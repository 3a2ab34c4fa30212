"""Settings read from the environment, then from `.env` in the working directory.

Real environment variables win over `.env`. Every setting is documented in the README.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlparse

DEFAULT_BASE_URL = "http://127.0.0.1:8000"


class SettingsError(ValueError):
    """A setting is missing or malformed; the message says which and why."""


def _read_dotenv(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        key = key.strip().removeprefix("export ").strip()
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[key] = value
    return values


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str = "sqlite:///var/portal.sqlite"
    redis_url: str | None = None
    secret_key: str = ""
    base_url: str = DEFAULT_BASE_URL
    stripe_secret_key: str | None = None
    stripe_webhook_secret: str | None = None
    stripe_api_base: str | None = None
    smtp_url: str | None = None
    debug: bool = False
    demo: bool = False  # `portal run --demo`: the emails written are shown at /outbox
    test_checkout: bool = False  # TEST_CHECKOUT=1 or DEMO=1: the labelled test checkout
    var_dir: Path = Path("var")
    trusted_proxies: frozenset[str] = frozenset()
    calendars_allow_private: bool = False  # read calendar addresses on private networks

    @property
    def is_https(self) -> bool:
        return urlparse(self.base_url).scheme == "https"

    @property
    def host(self) -> str:
        return urlparse(self.base_url).hostname or "127.0.0.1"

    @property
    def test_checkout_open(self) -> bool:
        """The test checkout takes (pretend) payments: asked for, and no Stripe key set."""
        return self.test_checkout and not self.stripe_secret_key

    @property
    def webhook_secret(self) -> str:
        """STRIPE_WEBHOOK_SECRET; without it (local runs, tests), one derived from SECRET_KEY
        that the test checkout signs its events with."""
        if self.stripe_webhook_secret:
            return self.stripe_webhook_secret
        digest = hmac.new(self.secret_key.encode(), b"stripe-webhook", hashlib.sha256)
        return "whsec_local_" + digest.hexdigest()

    @property
    def database_engine(self) -> str:
        return (
            "postgres"
            if self.database_url.startswith(("postgres://", "postgresql://"))
            else "sqlite"
        )

    @property
    def sqlite_path(self) -> Path:
        """The SQLite file named by DATABASE_URL, SQLAlchemy style (three or four slashes)."""
        if self.database_engine != "sqlite":
            raise SettingsError("DATABASE_URL does not name a SQLite database")
        path = self.database_url.removeprefix("sqlite:///")
        return Path(path)


def _secret_key(var_dir: Path, given: str | None, base_url: str) -> str:
    if given:
        if len(given) < 32:
            raise SettingsError("SECRET_KEY must be at least 32 characters long")
        return given
    if urlparse(base_url).scheme == "https":
        raise SettingsError("SECRET_KEY must be set when BASE_URL is https (production)")
    # Local runs: a random key kept under var/ so sessions survive a restart.
    key_file = var_dir / "secret_key"
    if key_file.is_file():
        key = key_file.read_text(encoding="utf-8").strip()
        if len(key) >= 32:
            return key
    var_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as f:  # private from its creation
        f.write(key)
    key_file.chmod(0o600)
    return key


def load_settings(environ: dict[str, str] | None = None, dotenv: Path = Path(".env")) -> Settings:
    env = {**_read_dotenv(dotenv), **(environ if environ is not None else os.environ)}

    def get(name: str) -> str | None:
        value = env.get(name, "").strip()
        return value or None

    var_dir = Path(get("VAR_DIR") or "var")
    # SQLAlchemy style: three slashes, then the path (a fourth slash when it is absolute).
    database_url = get("DATABASE_URL") or f"sqlite:///{var_dir / 'portal.sqlite'}"
    if not database_url.startswith(("sqlite:///", "postgres://", "postgresql://")):
        raise SettingsError(
            "DATABASE_URL must start with sqlite:/// or postgresql:// "
            f"(got {database_url.split(':', 1)[0]!r})"
        )
    redis_url = get("REDIS_URL")
    if redis_url and not redis_url.startswith(("redis://", "rediss://", "unix://")):
        raise SettingsError("REDIS_URL must start with redis://, rediss:// or unix://")
    base_url = (get("BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
    if urlparse(base_url).scheme not in ("http", "https"):
        raise SettingsError("BASE_URL must be an http:// or https:// address")

    def flag(name: str) -> bool:
        return (get(name) or "").lower() in ("1", "true", "yes", "on")

    return Settings(
        database_url=database_url,
        redis_url=redis_url,
        secret_key=_secret_key(var_dir, get("SECRET_KEY"), base_url),
        base_url=base_url,
        stripe_secret_key=get("STRIPE_SECRET_KEY"),
        stripe_webhook_secret=get("STRIPE_WEBHOOK_SECRET"),
        stripe_api_base=get("STRIPE_API_BASE"),
        smtp_url=get("SMTP_URL"),
        debug=flag("DEBUG"),
        demo=flag("DEMO"),
        test_checkout=flag("TEST_CHECKOUT") or flag("DEMO"),
        var_dir=var_dir,
        trusted_proxies=frozenset(
            p.strip() for p in (get("TRUSTED_PROXIES") or "").split(",") if p.strip()
        ),
        calendars_allow_private=flag("CALENDARS_ALLOW_PRIVATE"),
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
