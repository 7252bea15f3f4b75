"""The Telegram front end: builds and runs the PTB Application (polling or webhook) beside the scout's scheduler."""

from __future__ import annotations

import asyncio
import html
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from telegram import BotCommand
from telegram.error import InvalidToken, TelegramError
from telegram.ext import Application, BaseUpdateProcessor

from bot.admin import AdminCommands
from bot.commands import Commands
from bot.telegram.handlers import BOT_COMMANDS, PLATFORM, TelegramHandlers
from bot.telegram.notifier import TelegramNotifier
from bot.telegram.webhook import DEFAULT_PATH, build_webhook_routes
from scout.config import Settings
from scout.errors import ConfigError
from scout.models import Destination, SavedSearch

log = logging.getLogger(__name__)

ALLOWED_UPDATES = ("message", "callback_query")
# Long-poll this long per getUpdates call (Telegram allows up to 50 s).
POLL_TIMEOUT_SECONDS = 10.0
# Updates of different chats are handled side by side, so a reply waiting on one chat's flood limit holds up no
# other chat; updates of one chat stay in order (the guided /add depends on that).
MAX_CONCURRENT_UPDATES = 64
# httpx logs every request URL, and the URL holds the bot token; PTB's Bot logs request parameters at DEBUG,
# including the webhook secret and users' messages.
_QUIET_LOGGERS = {"httpx": logging.WARNING, "httpcore": logging.WARNING, "telegram.Bot": logging.INFO,
                  "telegram.ext.ExtBot": logging.INFO}


def quiet_http_logs() -> None:
    """Keep the token and the webhook secret out of the logs, whatever LOG_LEVEL says."""
    for name, level in _QUIET_LOGGERS.items():
        logger = logging.getLogger(name)
        # The logger's own level, not the effective one: a root set to DEBUG later must not reopen it.
        if logger.level < level:
            logger.setLevel(level)


class PerChatUpdateProcessor(BaseUpdateProcessor):
    """Runs updates of different chats concurrently and those of one chat one after another, in arrival order."""

    def __init__(self, max_concurrent_updates: int = MAX_CONCURRENT_UPDATES) -> None:
        super().__init__(max_concurrent_updates)
        self._locks: dict[int, asyncio.Lock] = {}
        self._users: dict[int, int] = {}

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        chat = getattr(getattr(update, "effective_chat", None), "id", 0)
        lock = self._locks.setdefault(chat, asyncio.Lock())
        self._users[chat] = self._users.get(chat, 0) + 1
        try:
            async with lock:
                await coroutine
        finally:
            self._users[chat] -= 1
            if not self._users[chat]:
                del self._users[chat], self._locks[chat]

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None


class TelegramFrontEnd:
    """scout.app.FrontEnd for Telegram. `routes` holds the webhook endpoint in webhook mode (empty when polling)."""

    platform = PLATFORM

    def __init__(
        self,
        settings: Settings,
        commands: Commands,
        *,
        clock: Callable[[], datetime],
        admin: AdminCommands | None = None,
        notifier: TelegramNotifier | None = None,
        poll_timeout: float = POLL_TIMEOUT_SECONDS,
    ) -> None:
        quiet_http_logs()
        if not settings.telegram_token:
            raise ConfigError("TELEGRAM_TOKEN is empty: the Telegram front end needs a bot token from @BotFather")
        self._settings = settings
        self._poll_timeout = poll_timeout
        self.notifier = notifier or TelegramNotifier()
        self.notifier.set_marketplace_names({key: adapter.name for key, adapter in commands.adapters.items()})
        admin = admin or AdminCommands(commands.repo, commands.adapters, clock=clock)
        self.handlers = TelegramHandlers(commands, admin, self.notifier, operator_ids=settings.telegram_operator_ids)
        self.application: Application | None = None
        self.webhook_mode = settings.telegram_mode == "webhook"
        path = urlsplit(settings.telegram_webhook_url or "").path if self.webhook_mode else ""
        self.webhook_path = path if path not in ("", "/") else DEFAULT_PATH
        self.routes: list[web.RouteDef] = build_webhook_routes(
            self.webhook_path, settings.telegram_webhook_secret, lambda: self.application
        ) if self.webhook_mode else []

    def build_application(self) -> Application:
        builder = (
            Application.builder()
            .token(self._settings.telegram_token or "")
            .base_url(self._settings.telegram_api_url)
            .job_queue(None)  # the scout's one scheduler runs everything
            .concurrent_updates(PerChatUpdateProcessor())
        )
        if self.webhook_mode:
            builder = builder.updater(None)  # updates arrive through `routes`, on the app's aiohttp server
        application = builder.build()
        self.handlers.install(application)
        return application

    async def start(self) -> None:
        application = self.build_application()
        try:
            await application.initialize()
        except InvalidToken as err:
            raise ConfigError("TELEGRAM_TOKEN was refused by Telegram: check it with @BotFather") from err
        self.application = application
        try:
            await application.bot.set_my_commands([BotCommand(name, text) for name, text in BOT_COMMANDS])
        except TelegramError as err:
            # The menu is a convenience; commands work without it.
            log.warning("could not register the Telegram command menu: %s", err)
        self.notifier.attach(application.bot)
        await application.start()
        if self.webhook_mode:
            await application.bot.set_webhook(self._settings.telegram_webhook_url or "",
                                              secret_token=self._settings.telegram_webhook_secret,
                                              allowed_updates=list(ALLOWED_UPDATES))
            log.info("Telegram webhook set; updates arrive at %s", self.webhook_path)
        else:
            assert application.updater is not None
            await application.updater.start_polling(timeout=self._poll_timeout,
                                                    allowed_updates=list(ALLOWED_UPDATES))
            log.info("Telegram long polling started as @%s", application.bot.username)

    async def stop(self) -> None:
        application, self.application = self.application, None
        self.notifier.attach(None)
        if application is None:
            return
        if application.updater is not None and application.updater.running:
            await application.updater.stop()
        if application.running:
            await application.stop()
        await application.shutdown()

    async def destination_gone(self, destination: Destination, reason: str, searches: list[SavedSearch]) -> None:
        """Tell each owner privately which searches were paused and why, when they have a chat with the bot."""
        owners: dict[str, list[SavedSearch]] = {}
        for search in searches:
            owners.setdefault(search.owner, []).append(search)
        for owner, theirs in owners.items():
            # Owners are Telegram user ids; their private chat has the same id. The gone chat itself is no use.
            if not owner.isdigit() or owner == destination.target or self.notifier.bot is None:
                continue
            names = ", ".join(f"#{s.id} \u201c{html.escape(s.query, quote=False)}\u201d" for s in theirs)
            text = (f"I can no longer post in chat {html.escape(destination.target)} "
                    f"({html.escape(reason, quote=False)}), so I paused your searches there: {names}.\n"
                    "Add me back to that chat, then /resume them there.")
            try:
                await self.notifier.send_text(int(owner), text)
            except TelegramError as err:
                log.info("could not tell a search owner privately: %s", err)


def build_telegram_front_end(settings: Settings, commands: Commands, *, clock: Callable[[], datetime],
                             admin: AdminCommands | None = None) -> TelegramFrontEnd:
    """What scout.app.build_front_ends calls when TELEGRAM_TOKEN is set."""
    notifier = TelegramNotifier(ops_chat_id=settings.ops_telegram_chat_id)
    return TelegramFrontEnd(settings, commands, clock=clock, admin=admin, notifier=notifier)
