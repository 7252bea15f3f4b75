"""The pieces every front end builds from settings: the clock, the user commands and the operator commands.

Kept apart from dealscout.app so that a CLI command builds them without importing the whole service (aiohttp, the
scheduler, the ops server, the chat platforms).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from bot.admin import AdminCommands
from bot.commands import Commands
from scout.config import Settings

if TYPE_CHECKING:
    from scrapers.base import Adapter
    from storage.repo import Repository


def utc_now() -> datetime:
    return datetime.now(UTC)


def configured_platforms(settings: Settings) -> list[str]:
    """The platforms alerts can go to with these settings: the console, Apprise (its URLs carry their own
    credentials) and each chat platform with a token."""
    return ["console", "apprise", *(["discord"] if settings.discord_token else []),
            *(["telegram"] if settings.telegram_token else [])]


def build_commands(settings: Settings, repo: Repository, adapters: Mapping[str, Adapter]) -> Commands:
    return Commands(repo, adapters, clock=utc_now, default_unpriced=settings.unpriced_listings,
                    default_marketplaces=settings.default_marketplaces,
                    held_max_age=timedelta(hours=settings.delivery_held_max_age_hours))


def build_admin(settings: Settings, repo: Repository, adapters: Mapping[str, Adapter], *,
                platforms: Iterable[str] | None = None) -> AdminCommands:
    """Operator commands whose actions are announced to the ops destinations through the outbox, so a running
    service sends them (the CLI's announcements included)."""
    from ops.reporter import OpsOutbox, ops_destinations

    destinations = ops_destinations(settings, configured_platforms(settings) if platforms is None else platforms)
    return AdminCommands(repo, adapters, clock=utc_now,
                         announce=OpsOutbox(repo, destinations, clock=utc_now))
