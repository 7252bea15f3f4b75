"""The Telegram front end: builds and runs the PTB Application (polling or webhook) beside the scout's scheduler."""

from __future__ import annotations

import asyncio
import html
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter
from telegram import Bot, BotCommand
from telegram.error import BadRequest, InvalidToken, TelegramError
from telegram.ext import Application, BaseUpdateProcessor
from telegram.request import HTTPXRequest

from bot.admin import AdminCommands
from bot.commands import Commands
from bot.connection import Backoff, Connection, ConnectionState, ConnectionTracker, Connector, describe_error
from bot.telegram.handlers import BOT_COMMANDS, PLATFORM, TelegramHandlers
from bot.telegram.notifier import TelegramNotifier
from bot.telegram.webhook import DEFAULT_PATH, build_webhook_router
from scout.config import Settings
from scout.errors import ConfigError
from scout.models import Destination, SavedSearch

log = logging.getLogger(__name__)

TOKEN_REFUSED = "TELEGRAM_TOKEN was refused by Telegram: check it with @BotFather"
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


class PollingRequest(HTTPXRequest):
    """The HTTP client of long polling, telling the tracker how each getUpdates went.

    While nobody writes to the bot, a poll that keeps failing is the only sign that Telegram no longer reaches us.
    """

    def __init__(self, tracker: ConnectionTracker, token: str) -> None:
        super().__init__(connection_pool_size=1)  # what PTB gives getUpdates by default
        self._tracker = tracker
        self._token = token

    async def do_request(self, *args: Any, **kwargs: Any) -> tuple[int, bytes]:
        try:
            code, payload = await super().do_request(*args, **kwargs)
        except TelegramError as err:
            self._tracker.mark_retrying(describe_error(err, self._token))
            raise
        if code == HTTPStatus.OK:
            self._tracker.mark_connected()
        elif code in (HTTPStatus.UNAUTHORIZED, HTTPStatus.NOT_FOUND):
            self._tracker.mark_down(TOKEN_REFUSED)  # PTB stops polling for good on this answer
        else:
            self._tracker.mark_retrying(f"getUpdates answered {code}")
        return code, payload


class TelegramFrontEnd:
    """dealscout.app.FrontEnd for Telegram. `routers` holds the webhook endpoint in webhook mode (empty when polling),
    for the app's API to serve."""

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
        backoff: Backoff | None = None,
    ) -> None:
        """`backoff`: the waits between connection tries (tests make them short)."""
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
        self._menu_set = False
        self._connector = Connector(
            ConnectionTracker("Telegram", clock=clock), self._connect, expected=(TelegramError,),
            secrets=(settings.telegram_token, settings.telegram_webhook_secret or ""), backoff=backoff)
        self.webhook_mode = settings.telegram_mode == "webhook"
        path = urlsplit(settings.telegram_webhook_url or "").path if self.webhook_mode else ""
        self.webhook_path = path if path not in ("", "/") else DEFAULT_PATH
        self.routers: list[APIRouter] = [build_webhook_router(
            self.webhook_path, settings.telegram_webhook_secret, lambda: self.application
        )] if self.webhook_mode else []

    def build_application(self) -> Application:
        builder = (
            Application.builder()
            .token(self._settings.telegram_token or "")
            .base_url(self._settings.telegram_api_url)
            .job_queue(None)  # the scout's one scheduler runs everything
            .concurrent_updates(PerChatUpdateProcessor())
        )
        if self.webhook_mode:
            builder = builder.updater(None)  # updates arrive through `routers`, on the app's API server
        else:
            builder = builder.get_updates_request(PollingRequest(self._connector.tracker,
                                                                 self._settings.telegram_token or ""))
        application = builder.build()
        self.handlers.install(application)
        return application

    @property
    def connection(self) -> Connection:
        """Connected once getMe answered and polling runs (or the webhook is set), while polls keep answering."""
        return self._connector.tracker.current

    async def wait_for_connection(self, state: ConnectionState = "connected") -> Connection:
        return await self._connector.tracker.wait_for(state)

    async def start(self) -> None:
        """Connect in the background; returns once connected, once the first try failed, or after a few seconds.

        Raises ConfigError when Telegram refuses the token. Telegram being unreachable is no error here: the front
        end keeps trying, alerts wait in the outbox meanwhile, and `connection` says how that goes.
        """
        if self.application is None:
            self.application = self.build_application()
        await self._connector.start()

    async def _connect(self) -> None:
        """One try, going on from where the last one stopped: getMe, the command menu, then polling or webhook."""
        application = self.application
        assert application is not None, "start() builds the application"
        try:
            await application.initialize()
            # Alerts wait in the outbox until here: the notifier answers "not connected yet" without a bot.
            self.notifier.attach(application.bot)
            await self._set_command_menu(application.bot)
            if not application.running:
                await application.start()
            if self.webhook_mode:
                await application.bot.set_webhook(self._settings.telegram_webhook_url or "",
                                                  secret_token=self._settings.telegram_webhook_secret,
                                                  allowed_updates=list(ALLOWED_UPDATES))
                log.info("Telegram webhook set; updates arrive at %s", self.webhook_path)
            else:
                assert application.updater is not None
                await application.updater.start_polling(timeout=self._poll_timeout,
                                                        allowed_updates=list(ALLOWED_UPDATES),
                                                        error_callback=_reported_by_polling_request)
                log.info("Telegram long polling started as @%s", application.bot.username)
        except InvalidToken:
            # Not chained: PTB's message quotes the token, and a logged traceback would show it.
            raise ConfigError(TOKEN_REFUSED) from None
        self._connector.tracker.mark_connected()

    async def _set_command_menu(self, bot: Bot) -> None:
        if self._menu_set:
            return
        try:
            await bot.set_my_commands([BotCommand(name, text) for name, text in BOT_COMMANDS])
        except BadRequest as err:
            # Telegram refused the menu itself, so asking again will not help; commands work without it.
            # Network trouble is raised instead: the try is repeated.
            log.warning("could not register the Telegram command menu: %s", err)
        self._menu_set = True

    async def stop(self) -> None:
        """Works in every state: never connected, still trying, or connected."""
        await self._connector.stop()
        application, self.application = self.application, None
        self.notifier.attach(None)
        if application is None:
            return
        if application.updater is not None and application.updater.running:
            await application.updater.stop()
        if application.running:
            await application.stop()
        await application.shutdown()
        # shutdown() skips an application whose getMe never answered, and with it the bot's HTTP clients.
        await application.bot.shutdown()

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


def _reported_by_polling_request(error: TelegramError) -> None:
    """PTB's default logs a traceback for every failed poll; PollingRequest reports the state change once."""


def build_telegram_front_end(settings: Settings, commands: Commands, *, clock: Callable[[], datetime],
                             admin: AdminCommands | None = None) -> TelegramFrontEnd:
    """What dealscout.app.build_front_ends calls when TELEGRAM_TOKEN is set."""
    return TelegramFrontEnd(settings, commands, clock=clock, admin=admin)
