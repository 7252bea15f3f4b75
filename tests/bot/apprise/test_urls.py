"""Apprise destinations: accepted, refused with a clear message, and never shown with their secrets."""

from __future__ import annotations

import pytest

from bot.apprise.urls import MAX_URL_LENGTH, check_apprise_url, redact_apprise_url
from bot.commands import parse_destination
from bot.describe import describe_destination
from scout.errors import InputError
from scout.models import Destination

SECRETS = ("s3cret", "hunter2", "tok3n", "mytopic", "123456:ABC")


def test_an_apprise_url_is_a_destination_stored_as_given() -> None:
    assert parse_destination("apprise:ntfys://ntfy.sh/mytopic") == Destination("apprise", "ntfys://ntfy.sh/mytopic")
    assert parse_destination("  Apprise:tgram://123456:ABC/-100123 ") == Destination("apprise",
                                                                                    "tgram://123456:ABC/-100123")


@pytest.mark.parametrize(("text", "message"), [
    ("apprise:", "needs a URL"),
    ("apprise:not a url", "spaces or control characters"),
    ("apprise:ntfy.sh/mytopic", "not an Apprise URL"),
    ("apprise:json://", "Apprise does not recognise json://"),
    ("apprise:foo://bar/s3cret", "Apprise URLs starting with foo:// are not accepted"),
    ("apprise:file:///etc/passwd", "starting with file://"),
    ("apprise:mailto://me:hunter2@gmail.com", "starting with mailto://"),
    ("apprise:json://" + "a" * 10_000, f"10007 characters long; the limit is {MAX_URL_LENGTH}"),
    ("apprise:json://127.0.0.1:8080/tok3n", "json://127.0.0.1:8080/*** points at a loopback address (127.0.0.1)"),
    ("apprise:jsons://me:hunter2@10.1.2.3/hook", "points at a private address (10.1.2.3)"),
    ("apprise:ntfy://[::1]/mytopic", "loopback address"),
    ("apprise:gotifys://169.254.169.254/tok3n", "link-local address"),
    ("apprise:json://printer.lan/tok3n", "the internal host name 'printer.lan'"),
    ("apprise:json://alerts.localhost/tok3n", "internal host name"),
    ("aprise:jsons://me:hunter2@hooks.example/s3cret", "Unknown destination platform 'aprise'"),
])
def test_bad_apprise_destinations_are_refused_without_echoing_secrets(text: str, message: str) -> None:
    with pytest.raises(InputError) as refused:
        parse_destination(text)
    assert message in str(refused.value)
    assert not any(secret in str(refused.value) for secret in SECRETS)


@pytest.mark.parametrize("url", [
    "ntfys://ntfy.sh/mytopic", "ntfy://mytopic", "jsons://hooks.example.com/a/b", "slack://T1/B2/C3/#chan",
    "pover://ukey@token", "matrixs://me:pw@matrix.example/!room", "tgram://123456:ABC/-100123",
    "discord://1234/abcd", "gotifys://push.example/token", "forms://hooks.example/x?priority=high",
])
def test_common_services_are_accepted(url: str) -> None:
    assert check_apprise_url(url) == url


@pytest.mark.parametrize(("url", "shown"), [
    ("ntfys://ntfy.sh/mytopic", "ntfys://ntfy.sh/***"),
    ("ntfy://mytopic", "ntfy://***"),
    ("jsons://user:hunter2@hooks.example.com:8443/a/s3cret?token=tok3n&x=", "jsons://***@hooks.example.com:8443/***/***?token=***&x=***"),
    ("tgram://123456:ABC/-100123", "tgram://***"),
    ("slack://T1/B2/C3/#chan", "slack://***/***/***/#***"),
    ("pover://ukey@tok3n", "pover://***@***"),
    ("matrixs://me:hunter2@matrix.example/!room", "matrixs://***@matrix.example/***"),
    ("no url at all s3cret", "(an unreadable URL)"),
])
def test_an_apprise_url_is_shown_redacted(url: str, shown: str) -> None:
    assert redact_apprise_url(url) == shown
    assert describe_destination(Destination("apprise", url)) == f"apprise:{shown}"


def test_other_destinations_are_shown_as_they_are() -> None:
    assert describe_destination(Destination("telegram", "-100123")) == "telegram:-100123"
    assert describe_destination(Destination("console", "main")) == "console:main"
