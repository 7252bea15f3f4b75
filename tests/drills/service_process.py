"""The real service as a child process for the kill drills: settings from the environment, pointed at local fakes.

    DEALSCOUT_DRILL_RESOLVE='{"www.ebay.com": "http://127.0.0.1:PORT"}'   # marketplace host -> fake base URL
    DEALSCOUT_DRILL_DISCORD_API=http://127.0.0.1:PORT/api/v10            # discord.http.Route.BASE
    python -m tests.drills.service_process

Everything else (tokens, TELEGRAM_API_URL, the database) is the service's own configuration, read by load_settings;
a .env file is ignored, so a developer's real tokens can never reach a drill.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

import discord

from dealscout.app import run_service
from dealscout.cli import configure_logging
from scout.config import load_settings
from scout.errors import ConfigError, DealScoutError

RESOLVE_ENV = "DEALSCOUT_DRILL_RESOLVE"
DISCORD_API_ENV = "DEALSCOUT_DRILL_DISCORD_API"


def main() -> int:
    try:
        settings = load_settings(env_file=None)
        resolve = json.loads(os.environ.get(RESOLVE_ENV) or "{}")
    except (ConfigError, ValueError) as err:
        print(f"service_process: {err}", file=sys.stderr)
        return 2
    if not isinstance(resolve, dict):
        print(f"service_process: {RESOLVE_ENV} must be a JSON object of host -> base URL", file=sys.stderr)
        return 2
    if os.environ.get(DISCORD_API_ENV):
        discord.http.Route.BASE = os.environ[DISCORD_API_ENV]
    configure_logging(settings.log_level)  # as `dealscout run` does
    try:
        asyncio.run(run_service(settings, resolve=resolve))
    except DealScoutError as err:
        print(f"service_process: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
