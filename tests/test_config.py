"""Settings are parsed once and strictly; every one is documented; secrets never print."""

from __future__ import annotations

import ipaddress
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from server import config, create_app
from server.config import ROOT, SETTINGS, AccessLogMode, ConfigError, Mode, Setting, parse

DEV = {"DARKLAUNCH_ENV": "development"}
STRONG_KEY = "Zq8-vR2pLx7Tn4Wc9Hk3Ms6Ya1Df5Gj0Eb"  # 34 bytes, many different characters
PROD = {"SECRET_KEY": STRONG_KEY, "DARKLAUNCH_BASE_URL": "https://darklaunch.example.com"}


def parse_error(environ: dict[str, str]) -> str:
    with pytest.raises(ConfigError) as caught:
        parse(environ)
    return str(caught.value)


def test_defaults_are_production_and_documented_values() -> None:
    values = parse(PROD)
    assert values["MODE"] is Mode.PRODUCTION
    assert values["ENVIRONMENTS"] == ("development", "production")
    assert values["REFRESH_MS"] == 500
    assert values["MAX_CONTENT_LENGTH"] == 1_048_576
    assert values["LOGIN_FAILURES_PER_MINUTE"] == 10
    assert values["TRUSTED_PROXIES"] == ()
    assert values["LOG_LEVEL"] == "INFO"
    assert values["DATABASE_URL"] == f"sqlite:///{ROOT / 'instance' / 'darklaunch.db'}"


def test_every_setting_is_read_from_its_variable() -> None:
    assert len({s.env for s in SETTINGS}) == len(SETTINGS)
    assert len({s.key for s in SETTINGS}) == len(SETTINGS)
    for setting in SETTINGS:
        if setting.default is not None:
            setting.parse(setting.default)  # every default passes its own parser


@pytest.mark.parametrize("raw", ["true", "TRUE", "1", " true "])
def test_booleans_accept_true_and_1(raw: str) -> None:
    assert config.parse_bool(raw) is True


@pytest.mark.parametrize("raw", ["false", "False", "0"])
def test_booleans_accept_false_and_0(raw: str) -> None:
    assert config.parse_bool(raw) is False


@pytest.mark.parametrize("raw", ["yes", "no", "on", "off", "", "2", "t"])
def test_booleans_refuse_anything_else(raw: str) -> None:
    with pytest.raises(ValueError, match="true, false, 1, 0"):
        config.parse_bool(raw)
    for setting in SETTINGS:
        if setting.parse is config.parse_bool:
            assert setting.env in parse_error({**DEV, setting.env: raw})


@pytest.mark.parametrize("raw", ["abc", "", "0", "-5", "1.5", "10ms"])
def test_counts_must_be_whole_numbers_above_zero(raw: str) -> None:
    message = parse_error({**DEV, "DARKLAUNCH_REFRESH_MS": raw})
    assert message.startswith("DARKLAUNCH_REFRESH_MS=")
    assert "expected a whole number above 0" in message


@pytest.mark.parametrize("raw", ["staging", "prod", "", "Production "])
def test_unknown_mode_is_refused(raw: str) -> None:
    if raw.strip().lower() == "production":
        assert parse({**PROD, "DARKLAUNCH_ENV": raw})["MODE"] is Mode.PRODUCTION
        return
    assert "expected production, development or test" in parse_error({"DARKLAUNCH_ENV": raw})


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("", "at least one name"),
        ("dev,dev", "must not repeat"),
        ("dev,pro duction", "letters, digits"),
    ],
)
def test_environment_names_are_checked(raw: str, problem: str) -> None:
    assert problem in parse_error({**DEV, "DARKLAUNCH_ENVIRONMENTS": raw})


def test_environment_names_keep_their_order() -> None:
    values = parse({**DEV, "DARKLAUNCH_ENVIRONMENTS": " staging, production ,qa_2"})
    assert values["ENVIRONMENTS"] == ("staging", "production", "qa_2")


def test_trusted_proxies_are_networks() -> None:
    values = parse({**DEV, "DARKLAUNCH_TRUSTED_PROXIES": "10.0.0.0/8, 127.0.0.1,::1"})
    assert values["TRUSTED_PROXIES"] == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("127.0.0.1/32"),
        ipaddress.ip_network("::1/128"),
    )
    assert "DARKLAUNCH_TRUSTED_PROXIES" in parse_error(
        {**DEV, "DARKLAUNCH_TRUSTED_PROXIES": "proxy.internal"}
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("", ""),
        ("https://darklaunch.example.com/", "https://darklaunch.example.com"),
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000"),
        ("https://example.com/darklaunch/", "https://example.com/darklaunch"),
    ],
)
def test_base_url_is_an_absolute_address_without_trailing_slash(raw: str, expected: str) -> None:
    assert parse({**DEV, "DARKLAUNCH_BASE_URL": raw})["BASE_URL"] == expected


@pytest.mark.parametrize("raw", ["darklaunch.example.com", "ftp://x", "https://", "https://a/?q=1"])
def test_base_url_without_scheme_or_host_is_refused(raw: str) -> None:
    assert "expected an address like" in parse_error({**DEV, "DARKLAUNCH_BASE_URL": raw})


def test_log_level_is_a_known_level() -> None:
    assert parse({**DEV, "DARKLAUNCH_LOG_LEVEL": "debug"})["LOG_LEVEL"] == "DEBUG"
    assert "expected one of DEBUG" in parse_error({**DEV, "DARKLAUNCH_LOG_LEVEL": "verbose"})


def test_percent_parser_bounds() -> None:
    assert config.parse_percent("80") == 80.0
    for raw in ("101", "-1", "nan", "eighty"):
        with pytest.raises(ValueError, match="from 0 to 100"):
            config.parse_percent(raw)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            "postgres://app:pw@db.internal:5432/dl",
            "postgresql+psycopg://app:pw@db.internal:5432/dl",
        ),
        ("postgresql://app@db/dl", "postgresql+psycopg://app@db/dl"),
        ("postgresql+psycopg://app@db/dl", "postgresql+psycopg://app@db/dl"),
        ("sqlite:////var/lib/darklaunch.db", "sqlite:////var/lib/darklaunch.db"),
    ],
)
def test_database_urls_from_hosting_platforms_use_psycopg(raw: str, expected: str) -> None:
    assert parse({**DEV, "DATABASE_URL": raw})["DATABASE_URL"] == expected


@pytest.mark.parametrize(
    "raw", ["mysql://root:hunter2@db/dl", "hunter2", "postgresql+psycopg2://u:hunter2@h/d"]
)
def test_bad_database_url_is_refused_without_repeating_it(raw: str) -> None:
    message = parse_error({**DEV, "DATABASE_URL": raw})
    assert message.startswith("DATABASE_URL=<hidden> is not valid")
    assert "hunter2" not in message


def test_secret_settings_never_print_their_value(monkeypatch: pytest.MonkeyPatch) -> None:
    strict_secret = Setting(
        "DARKLAUNCH_TEST_SECRET", "TEST_SECRET", config.parse_positive_int, "1", "x", secret=True
    )
    monkeypatch.setattr(config, "SETTINGS", (*SETTINGS, strict_secret))
    message = parse_error({**DEV, "DARKLAUNCH_TEST_SECRET": "hunter2"})
    assert "hunter2" not in message
    assert "DARKLAUNCH_TEST_SECRET=<hidden>" in message
    # Non-secret values are repeated, so a typo is easy to spot.
    assert "'fast'" in parse_error({**DEV, "DARKLAUNCH_REFRESH_MS": "fast"})


@pytest.mark.parametrize("secret_key", [None, ""])
def test_production_without_secret_key_stops_start_up(
    monkeypatch: pytest.MonkeyPatch, secret_key: str | None
) -> None:
    monkeypatch.delenv("DARKLAUNCH_ENV", raising=False)
    if secret_key is None:
        monkeypatch.delenv("SECRET_KEY", raising=False)
    else:
        monkeypatch.setenv("SECRET_KEY", secret_key)
    with pytest.raises(ConfigError, match="SECRET_KEY is required in production"):
        create_app()


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        ("hunter2", "shorter than 32 bytes"),
        ("Zq8-vR2pLx7Tn4Wc9Hk3Ms6Ya1D", "shorter than 32 bytes"),  # 27 bytes
        ("a" * 64, "fewer than 8 different characters"),
        ("ab" * 32, "fewer than 8 different characters"),
        ("0123456" * 10, "fewer than 8 different characters"),
    ],
)
def test_production_refuses_a_weak_secret_key_without_printing_it(key: str, problem: str) -> None:
    message = parse_error({**PROD, "SECRET_KEY": key})
    assert message.startswith("SECRET_KEY is too weak for production: ")
    assert problem in message
    assert key not in message
    assert "secrets.token_urlsafe" in message  # says how to make a good one


@pytest.mark.parametrize("key", [STRONG_KEY, "0123456789abcdef" * 4, "é" * 8 + "abcdefgh" * 4])
def test_production_accepts_a_strong_secret_key(key: str) -> None:
    assert parse({**PROD, "SECRET_KEY": key})["SECRET_KEY"] == key


def test_weak_secret_keys_are_fine_outside_production() -> None:
    for mode in ("development", "test"):
        assert parse({"DARKLAUNCH_ENV": mode, "SECRET_KEY": "a"})["SECRET_KEY"] == "a"


def test_production_requires_the_base_url() -> None:
    message = parse_error({"SECRET_KEY": STRONG_KEY})
    assert message.startswith("DARKLAUNCH_BASE_URL is required in production")
    assert "Host header" in message
    assert parse(PROD)["BASE_URL"] == "https://darklaunch.example.com"
    assert parse(DEV)["BASE_URL"] == ""  # elsewhere the request's host still serves


def test_production_app_without_a_base_url_does_not_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DARKLAUNCH_ENV", raising=False)
    monkeypatch.delenv("DARKLAUNCH_BASE_URL", raising=False)
    monkeypatch.setenv("SECRET_KEY", STRONG_KEY)
    with pytest.raises(ConfigError, match="DARKLAUNCH_BASE_URL is required in production"):
        create_app()


def test_cli_reports_a_bad_setting_without_a_traceback(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DARKLAUNCH_ENV")}
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'never.db'}"
    result = subprocess.run(
        [sys.executable, "-c", "from server.cli import main; main()", "db", "upgrade"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("darklaunch: SECRET_KEY is required in production")
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "never.db").exists()


def test_development_without_secret_key_gets_a_random_one() -> None:
    first, second = parse(DEV)["SECRET_KEY"], parse(DEV)["SECRET_KEY"]
    assert first != second and len(first) >= 40


def test_overrides_replace_parsed_values() -> None:
    values = parse({**DEV, "DARKLAUNCH_REFRESH_MS": "nonsense"}, {"REFRESH_MS": 5, "EXTRA": 1})
    assert values["REFRESH_MS"] == 5
    assert values["EXTRA"] == 1


def readme_settings() -> dict[str, str]:
    """Variable → default from the README's configuration table."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Configuration", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, str] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("|") or len(cells) != 3 or set(cells[0]) <= {"-", " ", ":"}:
            continue
        if cells[0] == "Variable":
            assert cells == ["Variable", "Default", "Meaning"]
            continue
        name = re.fullmatch(r"`([A-Z0-9_]+)`", cells[0])
        assert name, f"README configuration row without a `VARIABLE`: {line}"
        assert name.group(1) not in rows, f"{name.group(1)} is listed twice"
        rows[name.group(1)] = cells[1]
    return rows


def documented_default(setting: Setting) -> str:
    if setting.default is None:
        return "(none)"
    if setting.default == "":
        return "(empty)"
    return f"`{setting.default.replace(str(ROOT) + '/', '')}`"


def test_readme_configuration_table_lists_exactly_the_settings() -> None:
    rows = readme_settings()
    assert sorted(rows) == sorted(s.env for s in SETTINGS)
    for setting in SETTINGS:
        assert rows[setting.env] == documented_default(setting), setting.env


def test_access_lines_are_written_in_the_background_unless_asked_inline() -> None:
    assert parse(DEV)["ACCESS_LOG"] is AccessLogMode.BACKGROUND
    assert parse({**DEV, "DARKLAUNCH_ACCESS_LOG": " Inline "})["ACCESS_LOG"] is AccessLogMode.INLINE
    with pytest.raises(ConfigError, match="DARKLAUNCH_ACCESS_LOG"):
        parse({**DEV, "DARKLAUNCH_ACCESS_LOG": "async"})
