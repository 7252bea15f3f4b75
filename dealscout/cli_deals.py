"""The CLI's deal commands: `dealscout history` (a listing's prices or a search's comparables, as text and a PNG
chart) and `dealscout destination` (a chat's quiet hours and alert layout)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scout.config import Settings


async def cmd_history(settings: Settings, args: argparse.Namespace) -> int:
    from bot.history import load_history
    from dealscout.cli import cli_actor, open_repository
    from dealscout.parts import build_commands
    from scrapers.registry import build_adapters

    async with open_repository(settings) as repo:
        commands = build_commands(settings, repo, build_adapters(settings))
        history = await load_history(commands, cli_actor(operator=True), args.target)
    print(history.text)
    if args.png:
        path = Path(args.png)
        path.write_bytes(await history.chart())
        print(f"chart written to {path}")
    return 0


async def cmd_destination(settings: Settings, args: argparse.Namespace) -> int:
    from bot.commands import parse_destination
    from bot.describe import describe_destination
    from dealscout.cli import open_repository
    from dealscout.parts import build_commands
    from scrapers.registry import build_adapters

    destination = parse_destination(args.destination)
    async with open_repository(settings) as repo:
        commands = build_commands(settings, repo, build_adapters(settings))
        if args.quiet is not None:
            await commands.set_quiet_hours(destination, args.quiet, args.timezone)
        elif args.timezone is not None:
            current = await commands.destination_settings(destination)
            if current.quiet_hours is None:
                from scout.errors import InputError

                raise InputError("Set the quiet hours with --quiet 22:00-07:00 along with the time zone.",
                                 field="timezone")
            await commands.set_quiet_hours(destination, current.quiet_hours.window, args.timezone)
        if args.layout is not None:
            await commands.set_layout(destination, args.layout)
        settings_now = await commands.destination_settings(destination)
    quiet = str(settings_now.quiet_hours) if settings_now.quiet_hours else "none"
    print(f"{describe_destination(destination)}: quiet hours {quiet}; layout {settings_now.layout.value}")
    return 0


def add_deal_parsers(sub: Any) -> None:
    history = sub.add_parser("history", help="a listing's price history or the prices a search's comparables ask")
    history.add_argument("target", help="a search number (12) or a listing as marketplace:id (ebay:1234567890)")
    history.add_argument("--png", metavar="FILE", help="also draw the chart into this PNG file")
    history.set_defaults(func=cmd_history)

    destination = sub.add_parser("destination", help="a chat's alert preferences: quiet hours and layout")
    destination.add_argument("destination", help="console, discord:<channel id>, telegram:<chat id> or apprise:<URL>")
    destination.add_argument("--quiet", metavar="WINDOW", help="alerts wait in this daily window, e.g. 22:00-07:00; "
                             "off for none")
    destination.add_argument("--timezone", help="the window's time zone, e.g. Europe/Berlin (default UTC)")
    destination.add_argument("--layout", choices=["full", "compact"], help="a card per alert, or one line")
    destination.set_defaults(func=cmd_destination)
