"""Settings: every bad value is refused by the settings check with the variable it came from, and a bad .env file
with the line it is on; nothing starts on a value that would overflow later."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from scout.config import SETTINGS, load_settings
from scout.errors import ConfigError


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SCAN_TICK_SECONDS", "inf"),
        ("HTTP_TIMEOUT_SECONDS", "1e309"),
        ("SCAN_LEASE_SECONDS", "nan"),
        ("SCHEDULE_JITTER", "nan"),
        ("CIRCUIT_MAX_WAIT_SECONDS", "1e300"),
        ("DELIVERY_HELD_MAX_AGE_HOURS", "-inf"),
        ("SCAN_BATCH_SIZE", "9" * 5000),
        ("HTTP_MAX_RETRIES", "1e3"),
        ("OPS_HTTP_PORT", "65536"),
        ("OPS_TELEGRAM_CHAT_ID", "9" * 25),
        ("TELEGRAM_OPERATOR_IDS", "1, --2"),
    ],
)
def test_infinite_nan_and_overflowing_values_are_refused_by_name(variable: str, value: str) -> None:
    """Pins SCAN_TICK_SECONDS=inf and HTTP_TIMEOUT_SECONDS=1e309 passing the check as positive numbers (and values
    such as 1e300 seconds that overflow the first date computed from them)."""
    with pytest.raises(ConfigError) as caught:
        load_settings({variable: value}, env_file=None)
    message = str(caught.value)
    assert f"{variable}=" in message and "expected" in message
    assert len(message) < 300  # a 5,000-digit value is quoted in part, not whole


def test_every_default_passes_its_own_check() -> None:
    settings = load_settings({}, env_file=None)
    assert settings.scan_tick_seconds == float(SETTINGS["scan_tick_seconds"].default)


def test_default_marketplaces_must_exist() -> None:
    """Pins DEFAULT_MARKETPLACES=ebay,nosuch being accepted and the unknown key silently dropped from new searches."""
    with pytest.raises(ConfigError, match=r"DEFAULT_MARKETPLACES='ebay,nosuch': unknown marketplace 'nosuch'; "
                                          r"choose from craigslist, ebay"):
        load_settings({"DEFAULT_MARKETPLACES": "ebay,nosuch"}, env_file=None)
    assert load_settings({"DEFAULT_MARKETPLACES": "Vinted, rss"}, env_file=None).default_marketplaces == (
        "vinted", "rss")


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for setting in SETTINGS.values():
        monkeypatch.delenv(setting.env, raising=False)


@pytest.mark.usefixtures("clean_environment")
@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"SCAN_TICK_SECONDS=30\n\nDISCORD_TOKEN=abc\x00def\n", "line 3: holds a NUL byte"),
        (b"SCAN_TICK_SECONDS=30\nDISCORD_TOKEN secret-token-value\n", "line 2: expected NAME=value"),
        (b"# settings\nHTTP_USER_AGENT='unclosed\n", "line 2: expected NAME=value"),
        (b"SCAN_TICK_SECONDS=30\nCRAIGSLIST_SITE=\xff\xfe\n", "line 2: not UTF-8 text"),
    ],
)
def test_a_bad_env_file_is_refused_with_its_line(tmp_path: Path, content: bytes, message: str) -> None:
    """Pins a .env line python-dotenv cannot parse being skipped with a warning (the service then ran without it),
    and a NUL byte ending in a bare ValueError from os.environ."""
    env_file = tmp_path / ".env"
    env_file.write_bytes(content)
    with pytest.raises(ConfigError) as caught:
        load_settings(env_file=str(env_file))
    assert str(caught.value) == f"{env_file} {message}"
    assert "secret-token-value" not in str(caught.value)


@pytest.mark.usefixtures("clean_environment")
def test_an_env_file_sets_what_the_environment_does_not(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("export SCAN_TICK_SECONDS=30\nHTTP_MAX_RETRIES=\"5\"\n# a comment\n\nSCAN_CONCURRENCY=4\n")
    monkeypatch.setenv("SCAN_CONCURRENCY", "2")
    settings = load_settings(env_file=str(env_file))
    assert (settings.scan_tick_seconds, settings.http_max_retries, settings.scan_concurrency) == (30.0, 5, 2)
    assert load_settings(env_file=str(tmp_path / "missing.env")).scan_tick_seconds == 15.0


@pytest.mark.skipif(sys.platform in ("win32", "darwin"), reason="the XDG rule is the one for Linux and other Unixes")
@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"HOME": "/home/ann"}, "/home/ann/.local/share/deal-scout"),
        ({"HOME": "/home/ann", "XDG_DATA_HOME": "/srv/data"}, "/srv/data/deal-scout"),
        ({"HOME": "/home/ann", "XDG_DATA_HOME": "relative/data"}, "/home/ann/.local/share/deal-scout"),
        ({"HOME": "/home/ann", "DEALSCOUT_DATA_DIR": "/var/lib/deal-scout"}, "/var/lib/deal-scout"),
        ({"HOME": "/home/ann", "DEALSCOUT_DATA_DIR": "  "}, "/home/ann/.local/share/deal-scout"),
    ],
)
def test_the_default_data_folder_is_the_users(environ: dict[str, str], expected: str) -> None:
    settings = load_settings(environ, env_file=None)
    assert settings.data_dir == expected
    assert settings.resolved_database_url == f"sqlite:///{expected}/dealscout.db"
