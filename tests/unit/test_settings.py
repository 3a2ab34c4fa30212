from __future__ import annotations

from pathlib import Path

import pytest

from portal.settings import SettingsError, load_settings

KEY = "k" * 40


def test_defaults_are_sqlite_under_var_and_embedded_redis(tmp_path: Path) -> None:
    settings = load_settings({"SECRET_KEY": KEY}, dotenv=tmp_path / "none")
    assert settings.database_url == "sqlite:///var/portal.sqlite"
    assert settings.database_engine == "sqlite"
    assert settings.sqlite_path == Path("var/portal.sqlite")
    assert settings.redis_url is None
    assert settings.base_url == "http://127.0.0.1:8000"
    assert not settings.is_https


@pytest.mark.parametrize(
    ("var_dir", "url"),
    [
        ("data", "sqlite:///data/portal.sqlite"),
        ("/srv/portal/var", "sqlite:////srv/portal/var/portal.sqlite"),
    ],
)
def test_the_default_database_is_in_var_dir(var_dir: str, url: str, tmp_path: Path) -> None:
    settings = load_settings({"VAR_DIR": var_dir, "SECRET_KEY": KEY}, dotenv=tmp_path / "none")
    assert settings.database_url == url
    assert settings.sqlite_path == Path(var_dir) / "portal.sqlite"
    given = load_settings(
        {"VAR_DIR": var_dir, "SECRET_KEY": KEY, "DATABASE_URL": "sqlite:///x.sqlite"},
        dotenv=tmp_path / "none",
    )
    assert given.sqlite_path == Path("x.sqlite")


def test_sqlite_urls_relative_and_absolute() -> None:
    rel = load_settings({"DATABASE_URL": "sqlite:///data/x.sqlite", "SECRET_KEY": KEY})
    absolute = load_settings({"DATABASE_URL": "sqlite:////srv/x.sqlite", "SECRET_KEY": KEY})
    assert rel.sqlite_path == Path("data/x.sqlite")
    assert absolute.sqlite_path == Path("/srv/x.sqlite")


def test_postgres_url_selects_postgres() -> None:
    settings = load_settings(
        {"DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/test", "SECRET_KEY": KEY}
    )
    assert settings.database_engine == "postgres"
    with pytest.raises(SettingsError):
        _ = settings.sqlite_path


def test_environment_wins_over_dotenv(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text(
        "# comment\nexport BASE_URL='https://portal.example.fr/'\n"
        f'SECRET_KEY="{KEY}"\nSMTP_URL=smtp://from-dotenv\n',
        encoding="utf-8",
    )
    settings = load_settings({"SMTP_URL": "smtp://from-env"}, dotenv=dotenv)
    assert settings.base_url == "https://portal.example.fr"
    assert settings.is_https
    assert settings.secret_key == KEY
    assert settings.smtp_url == "smtp://from-env"


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"DATABASE_URL": "mysql://x"}, "DATABASE_URL"),
        ({"REDIS_URL": "http://x"}, "REDIS_URL"),
        ({"BASE_URL": "ftp://x"}, "BASE_URL"),
        ({"SECRET_KEY": "short"}, "at least 32"),
        ({"BASE_URL": "https://portal.example.fr"}, "SECRET_KEY must be set"),
    ],
)
def test_bad_settings_are_refused_with_the_name(
    tmp_path: Path, environ: dict[str, str], message: str
) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings({"VAR_DIR": str(tmp_path), **environ}, dotenv=tmp_path / "none")


def test_local_secret_key_is_generated_once_and_private(tmp_path: Path) -> None:
    first = load_settings({"VAR_DIR": str(tmp_path)}, dotenv=tmp_path / "none")
    second = load_settings({"VAR_DIR": str(tmp_path)}, dotenv=tmp_path / "none")
    assert len(first.secret_key) >= 32
    assert first.secret_key == second.secret_key
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(
    ("environ", "enabled"),
    [
        ({}, False),
        ({"TEST_CHECKOUT": "1"}, True),
        ({"DEMO": "1"}, True),
        ({"TEST_CHECKOUT": "0"}, False),
    ],
)
def test_the_test_checkout_is_off_unless_asked_for(
    tmp_path: Path, environ: dict[str, str], enabled: bool
) -> None:
    settings = load_settings({"VAR_DIR": str(tmp_path), **environ}, dotenv=tmp_path / "none")
    assert settings.test_checkout is enabled
