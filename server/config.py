"""Every setting Darklaunch reads, parsed once and strictly inside create_app."""

from __future__ import annotations

import enum
import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
INSTANCE = ROOT / "instance"


class ConfigError(RuntimeError):
    """A setting is missing or malformed; start-up stops with this message."""


class Mode(enum.StrEnum):
    PRODUCTION = "production"
    DEVELOPMENT = "development"
    TEST = "test"


class AccessLogMode(enum.StrEnum):
    BACKGROUND = "background"  # written by a writer thread of its own (the default)
    INLINE = "inline"  # written by the request's thread before the response leaves


def parse_bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("true", "1"):
        return True
    if value in ("false", "0"):
        return False
    raise ValueError("expected one of true, false, 1, 0")


def parse_positive_int(raw: str) -> int:
    try:
        value = int(raw.strip())
    except ValueError:
        value = 0
    if value <= 0:
        raise ValueError("expected a whole number above 0")
    return value


def parse_percent(raw: str) -> float:
    try:
        value = float(raw.strip())
    except ValueError:
        value = -1.0
    if not 0 <= value <= 100:  # also false for NaN
        raise ValueError("expected a number from 0 to 100")
    return value


def parse_names(raw: str) -> tuple[str, ...]:
    names = tuple(part.strip() for part in raw.split(",") if part.strip())
    if not names:
        raise ValueError("expected a comma-separated list with at least one name")
    for name in names:
        if not name.replace("-", "").replace("_", "").isalnum():
            raise ValueError(f"{name!r} may hold only letters, digits, '-' and '_'")
    if len(set(names)) != len(names):
        raise ValueError("names must not repeat")
    return names


def parse_networks(raw: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(
        ipaddress.ip_network(part.strip(), strict=False) for part in raw.split(",") if part.strip()
    )


def parse_origins(raw: str) -> tuple[str, ...]:
    origins = tuple(part.strip().rstrip("/") for part in raw.split(",") if part.strip())
    for origin in origins:
        if origin == "*":
            continue
        scheme, sep, host = origin.partition("://")
        if scheme not in ("http", "https") or not sep or not host or "/" in host:
            raise ValueError(f"{origin!r} is not an origin like https://app.example.com, or *")
    return origins


def parse_mode(raw: str) -> Mode:
    try:
        return Mode(raw.strip().lower())
    except ValueError:
        raise ValueError("expected production, development or test") from None


def parse_secret_list(raw: str) -> tuple[str, ...]:
    """Comma-separated secrets (several while one is being rotated); blanks are dropped."""
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def parse_text(raw: str) -> str:
    return raw


def parse_base_url(raw: str) -> str:
    """Empty, or an absolute http(s) address; kept without a trailing slash for joining paths."""
    from urllib.parse import urlsplit

    value = raw.strip().rstrip("/")
    if not value:
        return ""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ValueError("expected an address like https://darklaunch.example.com (or empty)")
    return value


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def parse_log_level(raw: str) -> str:
    value = raw.strip().upper()
    if value not in LOG_LEVELS:
        raise ValueError(f"expected one of {', '.join(LOG_LEVELS)}")
    return value


def parse_access_log(raw: str) -> AccessLogMode:
    try:
        return AccessLogMode(raw.strip().lower())
    except ValueError:
        raise ValueError("expected background or inline") from None


def parse_database_url(raw: str) -> str:
    """Accept SQLite and PostgreSQL URLs; `postgres://` (as hosting platforms write it) is psycopg.

    Error messages never repeat the URL: it usually holds a password.
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    text = raw.strip()
    try:
        url = make_url(text)
    except ArgumentError:
        raise ValueError(
            "expected sqlite:///PATH or postgresql+psycopg://USER:PASSWORD@HOST:PORT/DATABASE"
        ) from None
    if url.drivername in ("postgres", "postgresql"):
        return url.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    if url.drivername not in ("sqlite", "sqlite+pysqlite", "postgresql+psycopg"):
        raise ValueError(
            f"the {url.drivername!r} driver is not supported; use sqlite:///PATH or "
            "postgresql+psycopg://..."
        )
    return text


def parse_line(raw: str) -> str:
    value = " ".join(raw.split())
    if not value:
        raise ValueError("expected some text")
    return value


def parse_optional_name(raw: str) -> str:
    if not raw.strip():
        return ""
    names = parse_names(raw)
    if len(names) != 1:
        raise ValueError("expected exactly one name")
    return names[0]


_HEADER_NAME = re.compile(r"[A-Za-z0-9-]{1,64}")


def parse_optional_header(raw: str) -> str:
    name = raw.strip()
    if name and not _HEADER_NAME.fullmatch(name):
        raise ValueError("expected an HTTP header name (letters, digits and -)")
    return name


def parse_header(raw: str) -> str:
    name = parse_optional_header(raw)
    if not name:
        raise ValueError("expected an HTTP header name")
    return name


def parse_list(raw: str) -> tuple[str, ...]:
    """Comma-separated values (group names may hold spaces or slashes); empty gives none."""
    return tuple(dict.fromkeys(part.strip() for part in raw.split(",") if part.strip()))


def parse_domains(raw: str) -> tuple[str, ...]:
    domains = tuple(d.lower().lstrip("@") for d in parse_list(raw))
    for domain in domains:
        if "." not in domain or not re.fullmatch(r"[a-z0-9.-]+", domain):
            raise ValueError(f"{domain!r} is not an email domain like example.com")
    return domains


def parse_role_map(raw: str) -> tuple[tuple[str, str], ...]:
    """`group:role,...` in order; each role one of Darklaunch's roles."""
    from server.access import Role

    pairs: list[tuple[str, str]] = []
    for part in parse_list(raw):
        group, sep, role = part.rpartition(":")
        role = role.strip().lower()
        if not sep or not group.strip():
            raise ValueError(f"{part!r} is not group:role")
        if role not in Role.__members__.values():
            raise ValueError(f"{role!r} is not one of: {', '.join(r.value for r in Role)}")
        pairs.append((group.strip(), role))
    return tuple(pairs)


def parse_optional_email(raw: str) -> str:
    value = raw.strip().lower()
    if value and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", value):
        raise ValueError("expected an email address (or empty)")
    return value


SECRET_KEY_MIN_BYTES = 32
SECRET_KEY_MIN_DISTINCT = 8  # `aaaa...` or `abab...` is long but guessable


def secret_key_problem(key: str) -> str | None:
    """Why `key` is too weak to sign production sessions (None when it is fine).

    The message never repeats the key.
    """
    if len(key.encode()) < SECRET_KEY_MIN_BYTES:
        return f"it is shorter than {SECRET_KEY_MIN_BYTES} bytes"
    if len(set(key)) < SECRET_KEY_MIN_DISTINCT:
        return f"it has fewer than {SECRET_KEY_MIN_DISTINCT} different characters"
    return None


@dataclass(frozen=True)
class Setting:
    """One environment variable: its key in app.config, parser, default and meaning."""

    env: str
    key: str
    parse: Callable[[str], Any]
    default: str | None
    help: str
    secret: bool = False
    required_in_production: bool = False


# The README's configuration table lists exactly these (a test compares them).
SETTINGS: tuple[Setting, ...] = (
    Setting(
        "DARKLAUNCH_ENV",
        "MODE",
        parse_mode,
        "production",
        "`production`, `development` or `test`. Production demands a strong `SECRET_KEY` and "
        "`DARKLAUNCH_BASE_URL`, closes `/metrics` without `DARKLAUNCH_METRICS_TOKEN`, and "
        "sets Secure cookies and HSTS.",
    ),
    Setting(
        "SECRET_KEY",
        "SECRET_KEY",
        parse_text,
        None,
        "Signs sessions, CSRF tokens and preview-pass cookies. Required in production: at "
        f"least {SECRET_KEY_MIN_BYTES} bytes with at least {SECRET_KEY_MIN_DISTINCT} different "
        "characters.",
        secret=True,
        required_in_production=True,
    ),
    Setting(
        "DATABASE_URL",
        "DATABASE_URL",
        parse_database_url,
        f"sqlite:///{INSTANCE / 'darklaunch.db'}",
        "SQLAlchemy URL. SQLite (WAL mode) by default; "
        "`postgresql+psycopg://user@host/db` for several instances "
        "(`postgres://` and `postgresql://` mean the same).",
        secret=True,  # usually carries the database password
    ),
    Setting(
        "DARKLAUNCH_ENVIRONMENTS",
        "ENVIRONMENTS",
        parse_names,
        "development,production",
        "Flag environments, in display order.",
    ),
    Setting(
        "DARKLAUNCH_REFRESH_MS",
        "REFRESH_MS",
        parse_positive_int,
        "500",
        "How often (ms) each worker's background updater checks the database revision for "
        "changes: the only way on SQLite, the fallback behind `LISTEN/NOTIFY` on PostgreSQL.",
    ),
    Setting(
        "DARKLAUNCH_DB_STATEMENT_TIMEOUT_MS",
        "DB_STATEMENT_TIMEOUT_MS",
        parse_positive_int,
        "5000",
        "PostgreSQL: `statement_timeout` of every statement the server runs; the server also "
        "stops waiting for any one answer from the database 1 s after it and drops that "
        "connection (a frozen database cannot enforce its own timeout).",
    ),
    Setting(
        "DARKLAUNCH_DB_TRANSACTION_TIMEOUT_MS",
        "DB_TRANSACTION_TIMEOUT_MS",
        parse_positive_int,
        "10000",
        "PostgreSQL: a request's transaction open longer than this is rolled back instead of "
        "committed (503), and a session idle inside a transaction this long is ended "
        "(`idle_in_transaction_session_timeout`).",
    ),
    Setting(
        "DARKLAUNCH_BASE_URL",
        "BASE_URL",
        parse_base_url,
        "",
        "Public address of this server (used in feeds and preview links). Required in "
        "production; elsewhere empty means the request's own host.",
        required_in_production=True,
    ),
    Setting(
        "DARKLAUNCH_SITE_URL",
        "SITE_URL",
        parse_text,
        "",
        "Public address the output of `darklaunch site build` is served from; the exported "
        "changelog feeds need it for absolute links (empty: they are left out).",
    ),
    Setting(
        "DARKLAUNCH_MAX_BODY_BYTES",
        "MAX_CONTENT_LENGTH",
        parse_positive_int,
        "1048576",
        "Largest request body accepted; larger bodies get 413.",
    ),
    Setting(
        "DARKLAUNCH_LOGIN_FAILURES_PER_MINUTE",
        "LOGIN_FAILURES_PER_MINUTE",
        parse_positive_int,
        "10",
        "Password checks allowed per client address (IPv6: per /64) per minute before 429; "
        "successful sign-ins do not count.",
    ),
    Setting(
        "DARKLAUNCH_LOGIN_FAILURES_PER_ACCOUNT",
        "LOGIN_FAILURES_PER_ACCOUNT",
        parse_positive_int,
        "20",
        "Password checks allowed per account (email) per minute from all addresses together "
        "before 429; successful sign-ins do not count.",
    ),
    Setting(
        "DARKLAUNCH_TRUSTED_PROXIES",
        "TRUSTED_PROXIES",
        parse_networks,
        "",
        "Comma-separated addresses or CIDR ranges whose `X-Forwarded-For` is believed.",
    ),
    Setting(
        "DARKLAUNCH_FRONTEND_ORIGINS",
        "FRONTEND_ORIGINS",
        parse_origins,
        "*",
        "Web origins whose browsers may call the frontend API and OFREP (CORS), "
        "comma-separated; `*` for any, empty for none.",
    ),
    Setting(
        "DARKLAUNCH_GATE_URI_HEADER",
        "GATE_URI_HEADER",
        parse_header,
        "X-Original-URI",
        "The one request header forward-auth reads the original URI from; your proxy must "
        "always set it itself (`X-Original-URI` for nginx and Caddy, `X-Forwarded-Uri` for "
        "Traefik). No other header is consulted.",
    ),
    Setting(
        "DARKLAUNCH_GATE_USER_HEADER",
        "GATE_USER_HEADER",
        parse_optional_header,
        "",
        "Header carrying the signed-in user id that a trusted proxy sets for gate audiences "
        "of named users, e.g. `X-Forwarded-User`; empty ignores every identity header. Name "
        "it only if the proxy always overwrites it.",
    ),
    Setting(
        "DARKLAUNCH_GATE_ENV",
        "GATE_ENV",
        parse_optional_name,
        "",
        "The flag environment whose `site.open` flag decides whether the public may pass the "
        "gate: one of `DARKLAUNCH_ENVIRONMENTS`. Empty means `production`, or the last "
        "environment when there is no `production`.",
    ),
    Setting(
        "DARKLAUNCH_GATE_RETRY_AFTER",
        "GATE_RETRY_AFTER",
        parse_positive_int,
        "3600",
        "Seconds sent in `Retry-After` with the closed page.",
    ),
    Setting(
        "DARKLAUNCH_GATE_TITLE",
        "GATE_TITLE",
        parse_line,
        "Coming soon",
        "Heading of the closed page visitors see while the gate is closed.",
    ),
    Setting(
        "DARKLAUNCH_GATE_MESSAGE",
        "GATE_MESSAGE",
        parse_line,
        "We are putting the finishing touches on something new. Please check back soon.",
        "Text under the heading of the closed page.",
    ),
    Setting(
        "DARKLAUNCH_COVERAGE_TARGET",
        "COVERAGE_TARGET",
        parse_percent,
        "80",
        "Line coverage target in percent; deploy reports show coverage below it in red.",
    ),
    Setting(
        "DARKLAUNCH_LOG_LEVEL",
        "LOG_LEVEL",
        parse_log_level,
        "INFO",
        "Level of the JSON logs on standard error: DEBUG, INFO, WARNING, ERROR or CRITICAL.",
    ),
    Setting(
        "DARKLAUNCH_ACCESS_LOG",
        "ACCESS_LOG",
        parse_access_log,
        "background",
        "`background` writes each request's JSON access line from a thread of its own, after "
        "the response (a killed process loses the last few lines; a clean stop writes them "
        "all); `inline` writes it before the response leaves.",
    ),
    Setting(
        "DARKLAUNCH_METRICS_TOKEN",
        "METRICS_TOKEN",
        parse_text,
        "",
        "When set, `GET /metrics` demands `Authorization: Bearer <this value>`. Empty leaves "
        "it open in development and test, and closed (401) in production.",
        secret=True,
    ),
    Setting(
        "DARKLAUNCH_WEBHOOKS_ALLOW_PRIVATE",
        "WEBHOOKS_ALLOW_PRIVATE",
        parse_bool,
        "false",
        "`true` lets webhooks call private, loopback, link-local and unspecified addresses "
        "(a receiver inside your own network). Off, such URLs are refused at delivery "
        "(SSRF guard, see docs/webhooks.md).",
    ),
    Setting(
        "DARKLAUNCH_OIDC_ISSUER",
        "OIDC_ISSUER",
        parse_base_url,
        "",
        "OpenID Connect issuer URL (its `/.well-known/openid-configuration` is read at the first "
        'sign-in). Set, /login offers "Sign in with `DARKLAUNCH_OIDC_NAME`". See docs/accounts.md.',
    ),
    Setting(
        "DARKLAUNCH_OIDC_CLIENT_ID",
        "OIDC_CLIENT_ID",
        parse_text,
        "",
        "The client id registered at the provider (required with `DARKLAUNCH_OIDC_ISSUER`).",
    ),
    Setting(
        "DARKLAUNCH_OIDC_CLIENT_SECRET",
        "OIDC_CLIENT_SECRET",
        parse_text,
        "",
        "The client secret registered at the provider (never logged).",
        secret=True,
    ),
    Setting(
        "DARKLAUNCH_OIDC_NAME",
        "OIDC_NAME",
        parse_line,
        "SSO",
        'The provider\'s name on the sign-in button: "Sign in with <name>".',
    ),
    Setting(
        "DARKLAUNCH_OIDC_SCOPES",
        "OIDC_SCOPES",
        parse_line,
        "openid email profile",
        "Scopes asked for; add the one your provider needs for the role claim (e.g. `groups`).",
    ),
    Setting(
        "DARKLAUNCH_OIDC_ROLE_CLAIM",
        "OIDC_ROLE_CLAIM",
        parse_line,
        "groups",
        "The ID-token (or userinfo) claim holding the user's groups: a list or one string.",
    ),
    Setting(
        "DARKLAUNCH_OIDC_ROLE_MAP",
        "OIDC_ROLE_MAP",
        parse_role_map,
        "",
        "`group:role,...`, e.g. `darklaunch-admins:admin,devs:developer`; the strongest role "
        "among the user's groups wins, re-evaluated at every sign-in.",
    ),
    Setting(
        "DARKLAUNCH_OIDC_INVITED_ONLY",
        "OIDC_INVITED_ONLY",
        parse_bool,
        "false",
        "`true`: only people an admin added first (same email) may sign in with the provider; "
        "`false`: a first sign-in creates the user.",
    ),
    Setting(
        "DARKLAUNCH_OIDC_ONLY",
        "OIDC_ONLY",
        parse_bool,
        "false",
        "`true`: password sign-in is refused for everyone but `DARKLAUNCH_BREAK_GLASS_EMAIL`, "
        "who also needs a TOTP code.",
    ),
    Setting(
        "DARKLAUNCH_BREAK_GLASS_EMAIL",
        "BREAK_GLASS_EMAIL",
        parse_optional_email,
        "",
        "The one admin who may still sign in with a password (and a TOTP code) when "
        "`DARKLAUNCH_OIDC_ONLY` is true.",
    ),
    Setting(
        "DARKLAUNCH_OIDC_GATE_GROUPS",
        "OIDC_GATE_GROUPS",
        parse_list,
        "",
        "Provider groups whose members pass the closed gate as team, without a Darklaunch role.",
    ),
    Setting(
        "DARKLAUNCH_OIDC_GATE_DOMAINS",
        "OIDC_GATE_DOMAINS",
        parse_domains,
        "",
        "Email domains (verified by the provider) whose people pass the closed gate as team, "
        "without a Darklaunch role.",
    ),
    Setting(
        "DARKLAUNCH_GATE_SITE_URL",
        "GATE_SITE_URL",
        parse_base_url,
        "",
        "Public address of the site the gate protects through a proxy (forward-auth), e.g. "
        "`https://www.example.com`: its `/gate/login` offers single sign-on with the redirect "
        "URI this + `/gate/login/oidc/callback`. Empty: the request's own host, except in "
        "production, where the site's sign-in then offers passwords only.",
    ),
    Setting(
        "DARKLAUNCH_OFREP_EVENT_STREAMS",
        "OFREP_EVENT_STREAMS",
        parse_bool,
        "false",
        "`true` lists an `eventStreams` SSE connection in OFREP bulk answers, served by the "
        "stream process; turn it on once the proxy routes `/ofrep/v1/event-stream` to it "
        "(docs/deployment.md).",
    ),
    Setting(
        "DARKLAUNCH_PAGERDUTY_SECRET",
        "PAGERDUTY_SECRETS",
        parse_secret_list,
        "",
        "Signing secret of a PagerDuty v3 webhook subscription; turns on "
        "`POST /api/incidents/pagerduty`. Several, comma-separated, while rotating. Empty: the "
        "receiver refuses every request (see docs/incidents.md).",
        secret=True,
    ),
    Setting(
        "DARKLAUNCH_PAGERDUTY_ENVIRONMENT",
        "PAGERDUTY_ENVIRONMENT",
        parse_text,
        "",
        "The environment PagerDuty incidents are opened in. Empty: `production` when it is one "
        "of `DARKLAUNCH_ENVIRONMENTS`, else the last one.",
    ),
)


_HOW_TO_SET = {
    "SECRET_KEY": "Set it to a long random value, e.g. "
    "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`.",
    # Links in feeds and preview links must not come from a client's Host header.
    "DARKLAUNCH_BASE_URL": "Set it to the address people reach this server at, e.g. "
    "https://darklaunch.example.com; links in feeds and previews are built from it, never from "
    "a request's Host header.",
}


def parse(environ: Mapping[str, str], overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Parse every setting from `environ`; `overrides` (tests) replace parsed values by key."""
    overrides = dict(overrides or {})
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        if setting.key in overrides:
            values[setting.key] = overrides.pop(setting.key)
            continue
        raw = environ.get(setting.env)
        if raw is None or (raw == "" and setting.default is None):
            values[setting.key] = (
                None if setting.default is None else setting.parse(setting.default)
            )
            continue
        try:
            values[setting.key] = setting.parse(raw)
        except ValueError as exc:
            shown = "<hidden>" if setting.secret else repr(raw)
            raise ConfigError(f"{setting.env}={shown} is not valid: {exc}") from None
    values.update(overrides)
    mode = values["MODE"]
    if mode is Mode.PRODUCTION and values["SECRET_KEY"]:
        problem = secret_key_problem(values["SECRET_KEY"])
        if problem is not None:
            raise ConfigError(
                f"SECRET_KEY is too weak for production: {problem}. {_HOW_TO_SET['SECRET_KEY']}"
            )
    for setting in SETTINGS:
        if setting.required_in_production and mode is Mode.PRODUCTION and not values[setting.key]:
            raise ConfigError(
                f"{setting.env} is required in production (DARKLAUNCH_ENV is production "
                f"unless set otherwise). {_HOW_TO_SET[setting.env]}"
            )
    environments = values["ENVIRONMENTS"]
    if not values["GATE_ENV"]:
        values["GATE_ENV"] = "production" if "production" in environments else environments[-1]
    elif values["GATE_ENV"] not in environments:
        raise ConfigError(
            f"DARKLAUNCH_GATE_ENV={values['GATE_ENV']!r} is not one of "
            f"DARKLAUNCH_ENVIRONMENTS ({', '.join(environments)})."
        )
    if values["OIDC_ISSUER"] and not values["OIDC_CLIENT_ID"]:
        raise ConfigError("DARKLAUNCH_OIDC_CLIENT_ID is required with DARKLAUNCH_OIDC_ISSUER.")
    if values["OIDC_ONLY"] and not values["OIDC_ISSUER"]:
        raise ConfigError("DARKLAUNCH_OIDC_ONLY needs DARKLAUNCH_OIDC_ISSUER.")
    if not values["PAGERDUTY_ENVIRONMENT"]:
        values["PAGERDUTY_ENVIRONMENT"] = (
            "production" if "production" in environments else environments[-1]
        )
    elif values["PAGERDUTY_ENVIRONMENT"] not in environments:
        raise ConfigError(
            f"DARKLAUNCH_PAGERDUTY_ENVIRONMENT={values['PAGERDUTY_ENVIRONMENT']!r} is not one of "
            f"DARKLAUNCH_ENVIRONMENTS ({', '.join(environments)})."
        )
    if not values.get("SECRET_KEY"):
        # development and test get a per-process random key: never a built-in secret
        import secrets

        values["SECRET_KEY"] = secrets.token_urlsafe(48)
    return values
