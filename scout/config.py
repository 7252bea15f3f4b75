"""Settings from the environment (and an optional .env file), validated at start with messages that name the variable."""

from __future__ import annotations

import io
import math
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scout.errors import ConfigError

if TYPE_CHECKING:
    from scout.deals import DealPolicy
from scout.models import UnpricedRule

# The largest value a duration setting accepts: past it a typo (an extra zero, 1e309) would overflow the dates and
# timers it feeds, or stall the service for longer than anyone means.
HOUR_SECONDS = 3600
DAY_SECONDS = 24 * HOUR_SECONDS
WEEK_SECONDS = 7 * DAY_SECONDS
YEAR_HOURS = 365 * 24
# Chat ids are signed 64-bit integers on both platforms (Discord snowflakes, Telegram chat ids).
ID_LIMIT = 2**63
# The folder name under the user's data directory.
APP_DIR = "deal-scout"
# How much of a bad value a message quotes: enough to recognise it, never a wall of text.
SHOWN_CHARS = 60


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")


def _positive(most: float) -> Callable[[str], float]:
    """A finite number above 0 and at most `most` (inf, nan and 1e309, which a float reads as inf, are refused)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and 0 < value <= most):
            raise ValueError(f"expected a number above 0 and at most {most:g}")
        return value

    return parse


def whole_number(least: int, most: int) -> Callable[[str], int]:
    """A whole number from `least` to `most`."""

    def parse(text: str) -> int:
        text = text.strip()
        # int() reads up to 4300 digits; anything past 20 is out of range anyway.
        value = int(text) if len(text) <= 20 and text.lstrip("+-").isdigit() else None
        if value is None or not least <= value <= most:
            raise ValueError(f"expected a whole number from {least} to {most}")
        return value

    return parse


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 <= value < 1:  # also refuses nan and inf
        raise ValueError("expected a fraction from 0 up to (not including) 1")
    return value


def _unpriced(text: str) -> UnpricedRule:
    return UnpricedRule(text.strip().lower())


def _optional(text: str) -> str | None:
    return text.strip() or None


def _optional_id(text: str) -> int | None:
    """A Discord snowflake or a Telegram chat id (group chats are negative), or None when empty."""
    text = text.strip()
    if not text:
        return None
    return _chat_id(text)


def _id_list(text: str) -> frozenset[int]:
    ids = [part.strip() for part in text.replace(" ", ",").split(",") if part.strip()]
    try:
        return frozenset(_chat_id(part) for part in ids)
    except ValueError:
        raise ValueError("expected numeric ids separated by commas") from None


def _chat_id(text: str) -> int:
    digits = text.removeprefix("-")
    if not digits.isdigit() or len(digits) > 19 or abs(int(text)) >= ID_LIMIT:
        raise ValueError("expected a numeric id")
    return int(text)


def _thresholds(text: str) -> str:
    if text.strip():
        from ops.thresholds import parse_overrides

        parse_overrides(text)
    return text.strip()


def _key_list(text: str) -> tuple[str, ...]:
    keys = tuple(dict.fromkeys(part.strip().lower() for part in text.split(",") if part.strip()))
    if not keys:
        raise ValueError("expected at least one marketplace key")
    return keys


def _telegram_mode(text: str) -> str:
    mode = text.strip().lower()
    if mode not in ("polling", "webhook"):
        raise ValueError("expected polling or webhook")
    return mode


@dataclass(frozen=True)
class Setting:
    env: str
    default: str
    parse: Callable[[str], Any]
    help: str
    secret: bool = False


# One row per setting: the README's configuration reference is this table.
SETTINGS: dict[str, Setting] = {
    "data_dir": Setting(
        "DEALSCOUT_DATA_DIR", "", str.strip,
        "Folder for the embedded SQLite database. Empty: the user's data folder, $XDG_DATA_HOME/deal-scout "
        "(~/.local/share/deal-scout; ~/Library/Application Support/deal-scout on macOS, "
        "%LOCALAPPDATA%\\deal-scout on Windows), the same wherever the service or the CLI is started."),
    "database_url": Setting(
        "DATABASE_URL", "", str,
        "Database URL. Empty: SQLite at DEALSCOUT_DATA_DIR/dealscout.db. PostgreSQL: postgresql://user:pass@host/db.",
        secret=True,
    ),
    "log_level": Setting("LOG_LEVEL", "INFO", str.upper, "Logging level: DEBUG, INFO, WARNING or ERROR."),
    "scan_tick_seconds": Setting(
        "SCAN_TICK_SECONDS", "15", _positive(DAY_SECONDS), "How often the scheduler looks for searches that are due."),
    "scan_batch_size": Setting(
        "SCAN_BATCH_SIZE", "100", whole_number(1, 10_000),
        "Most searches one scan pass takes from the database at once."),
    "scan_concurrency": Setting(
        "SCAN_CONCURRENCY", "8", whole_number(1, 1000),
        "Marketplace fetches in flight at once (per-host limits still apply)."),
    "scan_lease_seconds": Setting(
        "SCAN_LEASE_SECONDS", "300", _positive(DAY_SECONDS),
        "How long a scan holds a search; a search held by a scan that died is free again after this."),
    "schedule_jitter": Setting(
        "SCHEDULE_JITTER", "0.1", _fraction,
        "Random spread added to each search's next run, as a fraction of its interval, so searches do not bunch up."),
    "default_marketplaces": Setting(
        "DEFAULT_MARKETPLACES", "ebay,craigslist", _key_list,
        "Marketplaces a new search uses when it names none (comma-separated keys; see `dealscout marketplaces`)."),
    "baseline_first_scan": Setting(
        "BASELINE_FIRST_SCAN", "true", _bool,
        "A new search's first scan records what is already listed and sends nothing; false sends it all."),
    "deal_window_days": Setting(
        "DEAL_WINDOW_DAYS", "90", whole_number(1, 3650),
        "How far back the comparable listings a deal is judged against go, in days."),
    "deal_min_comparables": Setting(
        "DEAL_MIN_COMPARABLES", "15", whole_number(3, 5000),
        "Comparable listings a deal verdict needs to be sure; below it alerts say low confidence."),
    "unpriced_listings": Setting(
        "UNPRICED_LISTINGS", "include", _unpriced,
        "Default for new searches with a price range: include or exclude listings that show no comparable price."),
    "delivery_tick_seconds": Setting(
        "DELIVERY_TICK_SECONDS", "2", _positive(DAY_SECONDS), "How often the outbox is checked for alerts to send."),
    "delivery_max_attempts": Setting(
        "DELIVERY_MAX_ATTEMPTS", "8", whole_number(1, 1000), "Attempts before an alert is marked dead with its last error."),
    "delivery_backoff_seconds": Setting(
        "DELIVERY_BACKOFF_SECONDS", "5", _positive(DAY_SECONDS), "First retry delay of a failed alert; doubles each attempt."),
    "delivery_backoff_max_seconds": Setting(
        "DELIVERY_BACKOFF_MAX_SECONDS", "900", _positive(WEEK_SECONDS), "Longest wait between two attempts of one alert."),
    "delivery_held_max_age_hours": Setting(
        "DELIVERY_HELD_MAX_AGE_HOURS", "6", _positive(YEAR_HOURS),
        "Alerts held while a chat refused the bot are sent when its search resumes; older ones become one summary."),
    "http_user_agent": Setting(
        "HTTP_USER_AGENT", "DealScout/0.1 (personal deal alerts; honours robots.txt)", str,
        "User-Agent sent to marketplaces."),
    "http_timeout_seconds": Setting(
        "HTTP_TIMEOUT_SECONDS", "20", _positive(HOUR_SECONDS), "Total time allowed for one marketplace request."),
    "http_max_retries": Setting(
        "HTTP_MAX_RETRIES", "3", whole_number(0, 10), "Retries of a request after a 429, a 5xx or a connection error."),
    "http_proxy": Setting(
        "HTTP_PROXY_URL", "", _optional,
        "Proxy for marketplace requests (http://user:pass@host:port); it must refuse private addresses (README: A proxy).",
        secret=True),
    "respect_robots": Setting("RESPECT_ROBOTS_TXT", "true", _bool, "Honour each marketplace's robots.txt."),
    "circuit_failure_threshold": Setting(
        "CIRCUIT_FAILURE_THRESHOLD", "5", whole_number(1, 1000),
        "Blocked or failed fetches in a row that open a marketplace's circuit (its searches wait)."),
    "circuit_base_wait_seconds": Setting(
        "CIRCUIT_BASE_WAIT_SECONDS", "300", _positive(DAY_SECONDS),
        "First wait of an open circuit before one probe fetch; doubles each time the probe fails."),
    "circuit_max_wait_seconds": Setting(
        "CIRCUIT_MAX_WAIT_SECONDS", "21600", _positive(WEEK_SECONDS), "Longest wait of an open circuit."),
    "ops_http_host": Setting("OPS_HTTP_HOST", "127.0.0.1", str, "Address the ops API (health, metrics) listens on."),
    "ops_http_port": Setting("OPS_HTTP_PORT", "8080", whole_number(0, 65535), "Port of the ops API; 0 picks a free one."),
    "api_docs": Setting(
        "API_DOCS", "true", _bool,
        "Serve the API's interactive docs at /docs and its schema at /openapi.json; turn off in production."),
    "ops_evaluate_seconds": Setting(
        "OPS_EVALUATE_SECONDS", "60", _positive(DAY_SECONDS), "How often the alert thresholds are evaluated."),
    "ops_repeat_critical_minutes": Setting(
        "OPS_REPEAT_CRITICAL_MINUTES", "30", _positive(WEEK_SECONDS / 60),
        "A state that stays critical is repeated to the ops channel this often."),
    "ops_daily_summary_hour": Setting(
        "OPS_DAILY_SUMMARY_HOUR", "8", whole_number(0, 23), "Hour (UTC) of the daily summary in the ops channel."),
    "ops_thresholds": Setting(
        "OPS_THRESHOLDS", "", _thresholds,
        "Threshold overrides as name=warning/critical, comma-separated (e.g. queue_depth=500/2000); "
        "defaults are the runbook's table."),
    "ops_discord_channel_id": Setting(
        "OPS_DISCORD_CHANNEL_ID", "", _optional_id, "Discord channel that hears ops messages; empty: none."),
    "ops_telegram_chat_id": Setting(
        "OPS_TELEGRAM_CHAT_ID", "", _optional_id, "Telegram chat that hears ops messages; empty: none."),
    "ebay_domain": Setting("EBAY_DOMAIN", "www.ebay.com", str, "eBay site to search (www.ebay.co.uk, www.ebay.de, ...)."),
    "ebay_client_id": Setting(
        "EBAY_CLIENT_ID", "", _optional,
        "eBay API Client ID; with EBAY_CLIENT_SECRET, eBay is searched through its official Browse API, not its pages.",
        secret=True),
    "ebay_client_secret": Setting("EBAY_CLIENT_SECRET", "", _optional, "eBay API Client Secret.", secret=True),
    "ebay_marketplace_id": Setting(
        "EBAY_MARKETPLACE_ID", "EBAY_US", str.upper, "eBay marketplace the Browse API searches (EBAY_US, EBAY_GB, ...)."),
    "ebay_api_daily_calls": Setting(
        "EBAY_API_DAILY_CALLS", "5000", whole_number(1, 10_000_000),
        "Browse API calls allowed per UTC day (eBay's default quota: 5000); past it eBay reports blocked until midnight."),
    "facebook_location": Setting(
        "FACEBOOK_LOCATION", "", _optional,
        "Facebook Marketplace place for searches without a location (nyc, a location id, or lat,lon); empty: by IP."),
    "vinted_domain": Setting(
        "VINTED_DOMAIN", "www.vinted.fr", str, "Vinted country site to search (www.vinted.fr, www.vinted.pl, ...)."),
    "craigslist_site": Setting(
        "CRAIGSLIST_SITE", "sfbay", str, "Craigslist site used when a search names no location (sfbay, newyork, ...)."),
    "reddit_subreddits": Setting(
        "REDDIT_SUBREDDITS", "buildapcsales+gamedeals", str,
        "Subreddits the reddit marketplace reads when a search names none, joined by '+'."),
    "celery_broker_url": Setting(
        "CELERY_BROKER_URL", "", _optional,
        "Celery broker for `dealscout leader` and `dealscout worker` (redis://host:6379/0, or amqp:// for "
        "RabbitMQ). Not used by `dealscout run`.", secret=True),
    "redis_url": Setting(
        "REDIS_URL", "", _optional,
        "Redis that holds the request budgets of marketplaces and chat platforms shared by every process. Empty: "
        "the broker's URL when it is Redis; `dealscout run` alone keeps its budgets in memory.", secret=True),
    "worker_concurrency": Setting(
        "WORKER_CONCURRENCY", "4", whole_number(1, 64),
        "Tasks a `dealscout worker` runs at once (one process each, each with its own event loop)."),
    "worker_metrics_port": Setting(
        "WORKER_METRICS_PORT", "9100", whole_number(0, 65535),
        "Port a `dealscout worker` serves its Prometheus metrics on; 0: none."),
    "leader_poll_seconds": Setting(
        "LEADER_POLL_SECONDS", "5", _positive(HOUR_SECONDS),
        "How often a standby `dealscout leader` tries to take over the leadership."),
    "discord_token": Setting("DISCORD_TOKEN", "", _optional, "Discord bot token; empty: no Discord.", secret=True),
    "discord_guild_id": Setting(
        "DISCORD_GUILD_ID", "", _optional_id,
        "Sync slash commands to this one server only (instant, for development); empty: globally."),
    "discord_manager_role": Setting(
        "DISCORD_MANAGER_ROLE", "", _optional,
        "Role (name or id) whose members manage everyone's searches in a server; empty: members with Manage Server."),
    "discord_operator_ids": Setting(
        "DISCORD_OPERATOR_IDS", "", _id_list, "Discord user ids allowed to run /admin commands, comma-separated."),
    "telegram_token": Setting("TELEGRAM_TOKEN", "", _optional, "Telegram bot token; empty: no Telegram.", secret=True),
    "telegram_api_url": Setting(
        "TELEGRAM_API_URL", "https://api.telegram.org/bot", str,
        "Bot API base URL (change it for a self-hosted Bot API server)."),
    "telegram_mode": Setting(
        "TELEGRAM_MODE", "polling", _telegram_mode, "How updates arrive: polling, or webhook (for production)."),
    "telegram_webhook_url": Setting(
        "TELEGRAM_WEBHOOK_URL", "", _optional, "Public HTTPS URL Telegram posts updates to, in webhook mode."),
    "telegram_webhook_secret": Setting(
        "TELEGRAM_WEBHOOK_SECRET", "", _optional,
        "Secret Telegram sends in X-Telegram-Bot-Api-Secret-Token with each webhook update.", secret=True),
    "telegram_operator_ids": Setting(
        "TELEGRAM_OPERATOR_IDS", "", _id_list, "Telegram user ids allowed to run /admin commands, comma-separated."),
}


@dataclass(frozen=True)
class Settings:
    data_dir: str
    database_url: str
    log_level: str
    scan_tick_seconds: float
    scan_batch_size: int
    scan_concurrency: int
    scan_lease_seconds: float
    schedule_jitter: float
    baseline_first_scan: bool
    deal_window_days: int
    deal_min_comparables: int
    default_marketplaces: tuple[str, ...]
    unpriced_listings: UnpricedRule
    delivery_tick_seconds: float
    delivery_max_attempts: int
    delivery_backoff_seconds: float
    delivery_backoff_max_seconds: float
    delivery_held_max_age_hours: float
    http_user_agent: str
    http_timeout_seconds: float
    http_max_retries: int
    http_proxy: str | None
    respect_robots: bool
    ops_http_host: str
    ops_http_port: int
    api_docs: bool
    ops_evaluate_seconds: float
    ops_repeat_critical_minutes: float
    ops_daily_summary_hour: int
    ops_thresholds: str
    ops_discord_channel_id: int | None
    ops_telegram_chat_id: int | None
    circuit_failure_threshold: int
    circuit_base_wait_seconds: float
    circuit_max_wait_seconds: float
    ebay_domain: str
    ebay_client_id: str | None
    ebay_client_secret: str | None
    ebay_marketplace_id: str
    ebay_api_daily_calls: int
    facebook_location: str | None
    vinted_domain: str
    craigslist_site: str
    reddit_subreddits: str
    celery_broker_url: str | None
    redis_url: str | None
    worker_concurrency: int
    worker_metrics_port: int
    leader_poll_seconds: float
    discord_token: str | None
    discord_guild_id: int | None
    discord_manager_role: str | None
    discord_operator_ids: frozenset[int]
    telegram_token: str | None
    telegram_api_url: str
    telegram_mode: str
    telegram_webhook_url: str | None
    telegram_webhook_secret: str | None
    telegram_operator_ids: frozenset[int]

    def __repr__(self) -> str:
        shown = {
            f.name: ("***" if SETTINGS[f.name].secret and getattr(self, f.name) else getattr(self, f.name))
            for f in fields(self)
        }
        return f"Settings({shown})"

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{Path(self.data_dir).expanduser() / 'dealscout.db'}"


def load_settings(environ: Mapping[str, str] | None = None, *, env_file: str | None = ".env") -> Settings:
    """Read every setting; one ConfigError lists every bad variable at once.

    Without `environ`, the process environment is read, over the variables of `env_file` when it exists.
    """
    if environ is None:
        environ = {**read_env_file(Path(env_file)), **os.environ} if env_file else os.environ
    values: dict[str, Any] = {}
    problems: list[str] = []
    for name, setting in SETTINGS.items():
        raw = environ.get(setting.env, setting.default)
        try:
            values[name] = setting.parse(raw)
        except ValueError as err:
            shown = "(hidden)" if setting.secret else _shown(raw)
            problems.append(f"{setting.env}={shown}: {err}")
    if values.get("log_level") not in (None, "DEBUG", "INFO", "WARNING", "ERROR"):
        problems.append(f"LOG_LEVEL={_shown(values['log_level'])}: expected DEBUG, INFO, WARNING or ERROR")
    if values.get("telegram_mode") == "webhook" and not (
        values.get("telegram_webhook_url") and values.get("telegram_webhook_secret")
    ):
        problems.append("TELEGRAM_MODE=webhook needs TELEGRAM_WEBHOOK_URL and TELEGRAM_WEBHOOK_SECRET")
    values["data_dir"] = values.get("data_dir") or str(default_data_dir(environ))
    if not problems:
        problems.extend(_marketplace_problems(Settings(**values)))
    if problems:
        raise ConfigError("invalid settings:\n  " + "\n  ".join(problems))
    return Settings(**values)


def default_data_dir(environ: Mapping[str, str]) -> Path:
    """The user's data folder for Deal Scout: the XDG base directory rule, or the platform's own on macOS and
    Windows. Not the working directory: the service and the CLI must find one database wherever they start."""
    home = Path(environ.get("HOME") or Path.home())
    if sys.platform == "win32":
        base = Path(environ.get("LOCALAPPDATA") or home / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = home / "Library" / "Application Support"
    else:
        xdg = environ.get("XDG_DATA_HOME", "")
        base = Path(xdg) if os.path.isabs(xdg) else home / ".local" / "share"  # the rule ignores a relative path
    return base / APP_DIR


def _shown(raw: str) -> str:
    return repr(raw if len(raw) <= SHOWN_CHARS else raw[:SHOWN_CHARS] + "\u2026")


def _marketplace_problems(settings: Settings) -> list[str]:
    """What the marketplace settings get wrong: the adapters check their own (eBay domain, Craigslist site, ...),
    and DEFAULT_MARKETPLACES must name marketplaces that exist."""
    from scrapers.registry import build_adapters  # the registry imports this module

    try:
        known = build_adapters(settings)
    except ConfigError as err:
        return [str(err)]
    unknown = [key for key in settings.default_marketplaces if key not in known]
    if not unknown:
        return []
    problem = (f"DEFAULT_MARKETPLACES={_shown(','.join(settings.default_marketplaces))}: unknown marketplace "
               f"{', '.join(map(_shown, unknown))}; choose from {', '.join(sorted(known))}")
    return [problem]


def read_env_file(path: Path) -> dict[str, str]:
    """The variables a .env file sets (none when there is no file). A file that is not UTF-8 text, holds a NUL byte
    or a line that is not `NAME=value` is refused with the line, so a typo never passes unnoticed."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as err:
        raise ConfigError(f"cannot read {path}: {err.strerror}") from None
    nul = raw.find(b"\0")
    if nul >= 0:
        raise ConfigError(f"{path} line {_line_at(raw, nul)}: holds a NUL byte")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path} line {_line_at(raw, err.start)}: not UTF-8 text") from None
    from dotenv import dotenv_values
    from dotenv.parser import parse_stream

    for binding in parse_stream(io.StringIO(text)):
        if binding.error:  # the line itself is not quoted: it may hold a token
            raise ConfigError(f"{path} line {binding.original.line}: expected NAME=value")
    return {key: value for key, value in dotenv_values(stream=io.StringIO(text)).items() if value is not None}


def _line_at(data: bytes, index: int) -> int:
    return data.count(b"\n", 0, index) + 1


def deal_policy(settings: Settings) -> DealPolicy:
    """How deals are judged, from the DEAL_* settings."""
    from scout.deals import DealPolicy  # loaded where deals are judged, not by every command that reads settings

    return DealPolicy(window_days=settings.deal_window_days, min_comparables=settings.deal_min_comparables)
