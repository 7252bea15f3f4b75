"""Apprise destination URLs: which are accepted, how they are checked when saved, and how they are shown redacted."""

from __future__ import annotations

import logging
import re
from urllib.parse import parse_qsl, urlsplit

from scout.errors import InputError
from scrapers.netguard import host_name_problem, host_problem, literal_address

# searches.target and alert_outbox.target are VARCHAR(128) (see bot.commands.MAX_KEY_LENGTH), and the outbox row
# needs the whole URL to send: a longer one could not be stored on PostgreSQL.
MAX_URL_LENGTH = 128
# Schemes whose URL host is the server Apprise connects to (self-hosted services and generic webhooks).
HOSTED_SCHEMES = frozenset({
    "json", "jsons", "xml", "xmls", "form", "forms", "ntfy", "ntfys", "gotify", "gotifys", "matrix", "matrixs",
    "mmost", "mmosts", "rocket", "rockets", "apprise", "apprises",
})
# Schemes of hosted services with a fixed public API; the URL's "host" is a token, a topic or an id.
SERVICE_SCHEMES = frozenset({
    "tgram", "slack", "discord", "pover", "pbul", "msteams", "gchat", "opsgenie", "pagerduty", "ifttt", "join",
})
# Only services Apprise reaches over HTTP(S) through requests: the send guard (bot.apprise.guard) checks each of
# their connections. E-mail (SMTP), MQTT, XMPP, IRC, syslog and desktop notifications open connections (or local
# files and programs) the guard cannot see, so their schemes are refused.
ALLOWED_SCHEMES = HOSTED_SCHEMES | SERVICE_SCHEMES
HIDDEN = "***"
_SCHEME = re.compile(r"^([a-z][a-z0-9+.-]*)://", re.IGNORECASE)
_CONTROL_OR_SPACE = re.compile(r"[\x00-\x20\x7f]")
EXAMPLE = "ntfys://ntfy.sh/your-topic"


class _DropAll(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return False


_APPRISE_LOGS_OFF = _DropAll()


def quiet_apprise_logs() -> None:
    """Apprise's own log lines name topics, tokens and URLs, at every level; the notifier reports each outcome
    itself, redacted. A filter, not a level: Apprise lowers its logger's level while it captures a call's lines."""
    logging.getLogger("apprise").addFilter(_APPRISE_LOGS_OFF)  # adding it again keeps one


def _network_host(scheme: str, host: str) -> bool:
    """Whether the URL's host is a server name or address (shown and checked), not a token or a topic."""
    return scheme in HOSTED_SCHEMES and ("." in host or literal_address(host) is not None or host == "localhost")


def redact_apprise_url(url: str) -> str:
    """The URL with every secret hidden: scheme, a network host and port, the path's shape and the query's keys.

    `jsons://user:pw@hooks.example/a/b?token=x` -> `jsons://***@hooks.example/***/***?token=***`.
    """
    matched = _SCHEME.match(url.strip())
    if matched is None:
        return "(an unreadable URL)"
    scheme = matched.group(1).lower()[:20]
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname or ""
        port = parts.port
    except ValueError:  # a token with a colon where a port would be (tgram://123:ABC/...): hide all of it
        return f"{scheme}://{HIDDEN}"
    users = f"{HIDDEN}@" if parts.username is not None or parts.password is not None else ""
    shown_host = host if _network_host(scheme, host) else (HIDDEN if host else "")
    if shown_host and port is not None:
        shown_host += f":{port}"
    path = "/".join(HIDDEN if segment else "" for segment in parts.path.split("/"))
    query = "&".join(f"{key[:20]}={HIDDEN}" for key, _ in parse_qsl(parts.query, keep_blank_values=True))
    return (f"{scheme}://{users}{shown_host}{path}" + (f"?{query}" if query else "")
            + (f"#{HIDDEN}" if parts.fragment else ""))


def check_apprise_url(raw: str, *, check_host: bool = True) -> str:
    """An Apprise URL this service can store and send to, as given; raises InputError with a redacted message.

    `check_host`: refuse a network host that is an internal name or a non-public address (when saved). At send time
    the guard judges the addresses actually connected to instead.
    """
    text = raw.strip()
    if not text:
        raise InputError(f"An Apprise destination needs a URL, as in apprise:{EXAMPLE}.", field="destination")
    if len(text) > MAX_URL_LENGTH:
        raise InputError(f"The Apprise URL is {len(text)} characters long; the limit is {MAX_URL_LENGTH}.",
                         field="destination")
    if _CONTROL_OR_SPACE.search(text):
        raise InputError("The Apprise URL contains spaces or control characters.", field="destination")
    scheme = _SCHEME.match(text)
    if scheme is None:
        raise InputError(f"That is not an Apprise URL: it should look like apprise:{EXAMPLE}.", field="destination")
    name = scheme.group(1).lower()
    if name not in ALLOWED_SCHEMES:
        raise InputError(f"Apprise URLs starting with {name[:20]}:// are not accepted here. Use one of: "
                         f"{', '.join(sorted(ALLOWED_SCHEMES))}.", field="destination")
    shown = redact_apprise_url(text)
    import apprise  # only saving or sending an Apprise destination needs it (a CLI start stays quick)

    quiet_apprise_logs()
    if apprise.Apprise.instantiate(text) is None:
        raise InputError(f"Apprise does not recognise {shown}: check it against Apprise's documentation of "
                         f"{name}://.", field="destination")
    if check_host:
        host = urlsplit(text).hostname or ""
        if _network_host(name, host):
            problem = host_name_problem(host) or host_problem(host)
            if problem:
                raise InputError(f"The Apprise URL {shown} points at {problem}; only public addresses are allowed.",
                                 field="destination")
    return text
