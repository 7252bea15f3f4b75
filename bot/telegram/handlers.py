"""Telegram commands and alert buttons: each update becomes a bot.commands call and one clear reply."""

from __future__ import annotations

import html
import logging
from collections.abc import Awaitable, Callable, Collection
from datetime import datetime
from typing import Any

from telegram import ForceReply, Update
from telegram.constants import ChatMemberStatus, ChatType
from telegram.error import BadRequest, TelegramError
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, ContextTypes, MessageHandler, filters

from bot.admin import AdminCommands
from bot.buttons import existed_by, latest_creation
from bot.commands import Actor, Commands
from bot.describe import describe_outcomes
from bot.telegram.deal_handlers import DealHandlers
from bot.telegram.grammar import EXAMPLE, parse_edit_line, parse_search_line
from bot.telegram.guided import command_args, for_another_bot, install_guided_add
from bot.telegram.notifier import TelegramNotifier, to_markup
from bot.telegram.render import (
    build_alert_keyboard,
    parse_callback_data,
    render_deals,
    render_lines,
    render_search_detail,
)
from scout.errors import InputError, PermissionDeniedError
from scout.models import Destination, SavedSearch, SearchStatus

log = logging.getLogger(__name__)

PLATFORM = "telegram"
# What clients show in the command menu (setMyCommands); /admin stays out of it, as only operators use it.
BOT_COMMANDS = (
    ("add", "Save a search: /add rtx 3080 -broken <500 @ebay"),
    ("list", "The searches in this chat"),
    ("show", "One search: /show 12"),
    ("edit", "Change a search: /edit 12 <400 every 30m"),
    ("pause", "Pause a search: /pause 12"),
    ("resume", "Resume a search: /resume 12"),
    ("remove", "Remove a search: /remove 12"),
    ("deals", "Latest deals of a search: /deals 12"),
    ("snooze", "No alerts from a search for a while: /snooze 12 2h"),
    ("history", "Prices a search or listing saw, as a chart: /history 12"),
    ("quiet", "Quiet hours for this chat: /quiet 22:00-07:00 Europe/Berlin"),
    ("layout", "Alerts in this chat as cards or one line: /layout compact"),
    ("help", "What Deal Scout does, with examples"),
    ("cancel", "Stop a guided /add"),
)
ADMIN_USAGE = ("Operator commands: /admin status · /admin failures [hours] · /admin pause &lt;marketplace&gt; "
               "[reason] · /admin resume &lt;marketplace&gt; · /admin backoff &lt;marketplace&gt;")
ONLY_NEW = filters.UpdateType.MESSAGE  # an edited "/add ..." must not add a second search

Reply = tuple[str, Any]
Action = Callable[[Update, ContextTypes.DEFAULT_TYPE, str], Awaitable[Reply]]


def help_text(marketplaces: Collection[str]) -> str:
    return (
        "<b>Deal Scout</b> watches second-hand marketplaces and posts new listings that match your searches "
        "here, with a photo and a link.\n\n"
        f"<b>Save a search in one line</b>\n<code>{html.escape(EXAMPLE)}</code>\n"
        "• words: what to look for\n• <code>-broken</code>: leave out listings with that word\n"
        "• <code>&lt;500</code> / <code>&gt;100</code>: price at most / at least\n"
        f"• <code>@ebay,craigslist</code>: where to look (default: all of {', '.join(sorted(marketplaces))})\n"
        "• <code>every 10m</code>, <code>every 2h</code>: how often (default: as often as allowed)\n"
        "• <code>near sfbay</code>: a Craigslist area\n"
        "• <code>no ads</code>: leave out listings marked sponsored\n"
        "• <code>deal:good</code>, <code>deal:great</code>: only listings priced well below similar ones "
        "(<code>deal:any</code>: every match)\n"
        "• <code>drop:15%</code>: tell me when a listing's price falls that much (default 10%; "
        "<code>drops:off</code>: never)\n"
        "• <code>seller:-name</code>: leave out a seller (<code>seller:any</code> takes them back); "
        "<code>rating:98</code>: sellers rated 98% or better\n"
        "Or paste a marketplace search address: "
        "<code>/add https://www.ebay.com/sch/i.html?_nkw=lego every 30m</code>\n"
        "Or send /add alone and I will ask step by step.\n\n"
        "<b>Then</b>\n/list: the searches in this chat\n/show 12: one search\n"
        "/edit 12 &lt;400 every 30m: change it (what you give replaces what was there)\n"
        "/pause 12, /resume 12, /remove 12\n/deals 12: what it found lately\n"
        "/snooze 12 2h: no alerts from it for a while, though it keeps checking (/snooze 12 off)\n"
        "/history 12: the prices it has seen, as a chart (/history ebay:1234567890: one listing)\n\n"
        "<b>This chat</b>\n/quiet 22:00-07:00 Europe/Berlin: hold alerts back overnight (/quiet off)\n"
        "/layout compact: one line per alert (/layout full: cards)\n\n"
        "Every alert has buttons to open the listing and to pause or remove its search. In groups anyone can add "
        "a search; only its owner or a group admin can change it, and only group admins set quiet hours and the "
        "layout."
    )


class TelegramHandlers:
    """Registers the handlers on a PTB Application; holds no per-user state, so a restart loses nothing."""

    def __init__(self, commands: Commands, admin: AdminCommands, notifier: TelegramNotifier, *,
                 operator_ids: Collection[int]) -> None:
        self.commands = commands
        self.admin = admin
        self.notifier = notifier
        self.operator_ids = frozenset(operator_ids)
        self.deal = DealHandlers(self)

    def install(self, application: Application) -> None:
        application.add_handler(MessageHandler(filters.StatusUpdate.MIGRATE, self.on_migrate))
        install_guided_add(application, self)
        simple: dict[str, Action] = {
            "start": self.start, "help": self.help, "list": self.list_here, "show": self.show, "edit": self.edit,
            "pause": self.pause, "resume": self.resume, "remove": self.remove, "deals": self.deals,
            "admin": self.admin_command, "cancel": self.nothing_to_cancel,
        }
        for name, action in simple.items():
            application.add_handler(CommandHandler(name, self.guard(action), filters=ONLY_NEW))
        for name, callback in self.deal.callbacks().items():
            application.add_handler(CommandHandler(name, callback, filters=ONLY_NEW))
        application.add_handler(CallbackQueryHandler(self.on_button))
        application.add_handler(MessageHandler(filters.COMMAND & ONLY_NEW, self.on_unknown_command))
        application.add_handler(MessageHandler(filters.ChatType.PRIVATE & ONLY_NEW, self.on_chatter))
        application.add_error_handler(self.on_error)

    # --- plumbing -------------------------------------------------------------------------------------------

    def guard(self, action: Action) -> Callable[[Update, ContextTypes.DEFAULT_TYPE], Awaitable[None]]:
        """Run a command; an InputError becomes the reply, so every bad input gets a clear answer."""

        async def handle(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
            if not await self.usable(update):
                return
            try:
                text, markup = await action(update, context, command_args(update))
            except InputError as err:
                text, markup = html.escape(str(err), quote=False), None
            await self.reply(update, text, markup)

        return handle

    async def usable(self, update: Update) -> bool:
        """Messages we can answer: from a person (or a group's anonymous admin) in a chat."""
        if update.effective_chat is None or update.effective_message is None:
            return False
        if update.effective_chat.type == ChatType.CHANNEL:
            return False
        if update.effective_user is None:
            await self.reply(update, "I cannot tell who sent that, so I did nothing.")
            return False
        return True

    async def reply(self, update: Update, text: str, markup: Any = None, *, ask: bool = False) -> None:
        chat, message = update.effective_chat, update.effective_message
        assert chat is not None
        in_group = chat.type != ChatType.PRIVATE
        if ask:
            # In a group in privacy mode the bot only hears replies to its own messages: ask for one.
            markup = ForceReply(selective=True)
        await self.notifier.send_text(chat.id, text, reply_markup=markup,
                                      reply_to=message.message_id if in_group and message else None)

    def actor(self, update: Update, *, admin: bool = False) -> Actor:
        user = update.effective_user
        assert user is not None
        return Actor(str(user.id), is_admin=admin, is_operator=user.id in self.operator_ids)

    @staticmethod
    def here(update: Update) -> str:
        assert update.effective_chat is not None
        return str(update.effective_chat.id)

    async def search_here(self, here: str, raw: str, existed_at: datetime | None = None) -> SavedSearch | None:
        """The search numbered `raw` if its alerts come to this chat (or it was made here), else None; for a button,
        also None when the search was created after `existed_at` (see bot.buttons).

        Searches follow a group that became a supergroup (repo.move_destination changes the target, not the
        scope), so "here" is the scope or the target.
        """
        text = raw.strip().lstrip("#")
        if not text.isdigit() or not 0 < int(text) < 2**31:
            return None
        search = await self.commands.repo.load_search(int(text))
        if search is None or search.destination.platform != PLATFORM or not existed_by(search, existed_at):
            return None
        return search if here in (search.scope, search.destination.target) else None

    async def read(self, update: Update, fn: Callable[..., Awaitable[Any]], raw: str, **kwargs: Any) -> Any:
        """A read-only command: anyone in a chat may look at the searches whose alerts they see there."""
        here = self.here(update)
        search = await self.search_here(here, raw)
        return await fn(self.actor(update, admin=True), raw, scope=search.scope if search else here, **kwargs)

    async def change(self, update: Update, context: ContextTypes.DEFAULT_TYPE, fn: Callable[..., Awaitable[Any]],
                     raw: str, **kwargs: Any) -> Any:
        """A change: the owner may; in a private chat its user may; in a group, a group admin may."""
        chat, user = update.effective_chat, update.effective_user
        assert chat is not None and user is not None
        here = self.here(update)
        search = await self.search_here(here, raw, kwargs.get("existed_at"))
        actor = self.actor(update, admin=chat.type == ChatType.PRIVATE)
        if search is not None and search.owner != actor.id and not actor.is_admin:
            if not await self.is_group_admin(update, context):
                raise PermissionDeniedError(f"Only the owner of search #{search.id} or a group admin can change it.")
            actor = self.actor(update, admin=True)
        return await fn(actor, raw, scope=search.scope if search else here, **kwargs)

    async def is_group_admin(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> bool:
        chat, user, message = update.effective_chat, update.effective_user, update.message
        assert chat is not None and user is not None
        if message is not None and message.sender_chat is not None and message.sender_chat.id == chat.id:
            return True  # an anonymous admin posts as the group itself
        try:
            member = await context.bot.get_chat_member(chat.id, user.id)
        except TelegramError as err:
            log.warning("could not check a group member's status: %s", err)
            return False
        return member.status in (ChatMemberStatus.OWNER, ChatMemberStatus.ADMINISTRATOR)

    def describe(self, search: SavedSearch, paused: dict[str, str] | None = None) -> str:
        return html.escape(self.commands.describe(search, paused), quote=False)

    def keyboard(self, search: SavedSearch) -> Any:
        return to_markup(build_alert_keyboard(search.id, None, existed_at=search.created_at,
                                              paused=search.status is SearchStatus.PAUSED))

    # --- commands -------------------------------------------------------------------------------------------

    async def start(self, update: Update, context: ContextTypes.DEFAULT_TYPE, args: str) -> Reply:
        return (("Hello! I post new second-hand listings that match your searches.\n"
                 "Try: <code>/add nintendo switch &lt;200</code>, or /help for everything I understand."), None)

    async def help(self, update: Update, context: ContextTypes.DEFAULT_TYPE, args: str) -> Reply:
        return help_text(self.commands.adapters), None

    async def save(self, update: Update, fields: dict[str, Any]) -> Reply:
        here = self.here(update)
        fields.setdefault("query", "")
        search = await self.commands.add_search(self.actor(update), Destination(PLATFORM, here), scope=here,
                                                **fields)
        return ((f"Saved {self.describe(search)}.\nNew matches will be posted here. Change it with "
                 f"/edit {search.id}, stop it with /pause {search.id}."), self.keyboard(search))

    async def add_line(self, update: Update, line: str) -> Reply:
        """`/add <words>`, or `/add <search address> [<words>]`: what follows an address changes what it says."""
        parsed = parse_search_line(line)
        if parsed.url is None:
            return await self.save(update, parsed.fields())
        fields, ignored = self.commands.search_from_url(parsed.url, **parsed.fields())
        text, markup = await self.save(update, fields)
        if ignored:
            text += "\n" + html.escape(f"Not kept from the address (a saved search cannot filter by them): "
                                       f"{', '.join(ignored)}.", quote=False)
        return text, markup

    async def list_here(self, update: Update, context: ContextTypes.DEFAULT_TYPE, args: str) -> Reply:
        here = self.here(update)
        mine = await self.commands.list_searches(self.actor(update, admin=True), platform=PLATFORM, scope=here,
                                                 everyone=True)
        moved = await self.commands.repo.load_searches(platform=PLATFORM, target=here)
        searches = sorted({s.id: s for s in [*mine, *moved]}.values(), key=lambda s: s.id)
        if not searches:
            return f"No searches in this chat yet. Add one: <code>{html.escape(EXAMPLE)}</code>", None
        paused = await self.commands.paused_marketplaces()
        lines = [self.commands.describe(s, paused) for s in searches]
        return render_lines(f"{len(searches)} searches here", lines, more="\u2026 and {n} more (see /show N)"), None

    async def show(self, update: Update, context: ContextTypes.DEFAULT_TYPE, args: str) -> Reply:
        search = await self.read(update, self.commands.show_search, need_id(args, "show"))
        description = self.commands.describe(search, await self.commands.paused_marketplaces())
        outcomes = describe_outcomes(search, self.commands.adapters, now=self.commands.now())
        return render_search_detail(description, outcomes), self.keyboard(search)

    async def deals(self, update: Update, context: ContextTypes.DEFAULT_TYPE, args: str) -> Reply:
        raw = need_id(args, "deals")
        found = await self.read(update, self.commands.recent_deals, raw)
        return render_deals(int(raw.strip().lstrip("#")), found), None

    async def edit(self, update: Update, context: ContextTypes.DEFAULT_TYPE, args: str) -> Reply:
        raw, line = parse_edit_line(args)
        search = await self.change(update, context, self.commands.edit_search, raw, **line.fields())
        return f"Changed: {self.describe(search)}.", self.keyboard(search)

    async def pause(self, update: Update, context: ContextTypes.DEFAULT_TYPE, args: str) -> Reply:
        search = await self.change(update, context, self.commands.pause_search, need_id(args, "pause"),
                                   reason=paused_by(update))
        return f"Paused {self.describe(search)}. /resume {search.id} to start it again.", self.keyboard(search)

    async def resume(self, update: Update, context: ContextTypes.DEFAULT_TYPE, args: str) -> Reply:
        search = await self.change(update, context, self.commands.resume_search, need_id(args, "resume"))
        return f"Resumed {self.describe(search)}.", self.keyboard(search)

    async def remove(self, update: Update, context: ContextTypes.DEFAULT_TYPE, args: str) -> Reply:
        search = await self.change(update, context, self.commands.remove_search, need_id(args, "remove"))
        return f"Removed search #{search.id} \u201c{html.escape(search.query, quote=False)}\u201d.", None

    async def admin_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE, args: str) -> Reply:
        actor = self.actor(update)
        sub, _, rest = args.partition(" ")
        rest = rest.strip()
        match sub.lower():
            case "status":
                text = await self.admin.status(actor)
            case "failures":
                if rest and not rest.isdigit():
                    raise InputError("Give the hours as a whole number, as in /admin failures 6.")
                text = await self.admin.recent_failures(actor, hours=max(1, min(int(rest or 1), 168)))
            case "pause":
                market, _, reason = rest.partition(" ")
                text = await self.admin.pause_marketplace(actor, market, reason or None)
            case "resume":
                text = await self.admin.resume_marketplace(actor, rest)
            case "backoff":
                text = await self.admin.back_off_marketplace(actor, rest)
            case _:
                return ADMIN_USAGE, None
        return html.escape(text, quote=False), None

    async def nothing_to_cancel(self, update: Update, context: ContextTypes.DEFAULT_TYPE, args: str) -> Reply:
        return "There is nothing to cancel.", None

    # --- buttons, service messages and everything else ------------------------------------------------------

    async def on_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None
        pressed = parse_callback_data(query.data)
        if pressed is None or update.effective_chat is None:
            await query.answer("This button does not work any more.")
            return
        action, search_id = pressed.action, pressed.search_id
        # A button without a stamp is judged by its message's date; a message we are no longer shown has none.
        message = query.message
        posted = message.date if message is not None and message.is_accessible else None
        existed_at = latest_creation(pressed.stamp, posted)
        if existed_at is None:
            await query.answer(f"This button is too old to tell which search it was for: send /{action} "
                               f"{search_id} instead.", show_alert=True)
            return
        fn = {"pause": self.commands.pause_search, "resume": self.commands.resume_search,
              "remove": self.commands.remove_search}[action]
        extra = {"reason": paused_by(update)} if action == "pause" else {}
        try:
            search = await self.change(update, context, fn, str(search_id), existed_at=existed_at, **extra)
        except InputError as err:
            await query.answer(str(err)[:200], show_alert=True)
            return
        done = {"pause": "paused", "resume": "resumed", "remove": "removed"}[action]
        await query.answer(f"Search #{search_id} {done}.")
        markup = getattr(message, "reply_markup", None)
        url = next((b.url for row in (markup.inline_keyboard if markup else ()) for b in row if b.url), None)
        keyboard = build_alert_keyboard(search_id, url, existed_at=search.created_at,
                                        paused=search.status is SearchStatus.PAUSED,
                                        removed=action == "remove")
        try:
            await query.edit_message_reply_markup(to_markup(keyboard))
        except BadRequest as err:
            # The message is too old to edit, or already shows this keyboard: the action itself is done.
            log.info("could not update an alert's buttons: %s", err.message)

    async def on_migrate(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A group became a supergroup: its searches and pending alerts follow it at once."""
        message = update.effective_message
        if message is None:
            return
        old, new = (message.chat_id, message.migrate_to_chat_id) if message.migrate_to_chat_id \
            else (message.migrate_from_chat_id, message.chat_id)
        if old and new:
            await self.commands.repo.move_destination(Destination(PLATFORM, str(old)), Destination(PLATFORM, str(new)))
            log.info("a Telegram group became a supergroup; its searches moved with it")

    async def on_unknown_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if not await self.usable(update):
            return
        if for_another_bot(update, context.bot.username):
            return  # meant for another bot in this group
        name = (update.effective_message.text or "/").split()[0][1:].partition("@")[0]  # type: ignore[union-attr]
        await self.reply(update, f"I don't know /{html.escape(name[:40], quote=False)}. "
                                 "Send /help to see what I understand.")

    async def on_chatter(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if await self.usable(update):
            await self.reply(update, "I only understand commands. Send /help to see them, or /add to save a search.")

    async def on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        """The handler guard: log, and tell the user something went wrong rather than staying silent."""
        log.error("a Telegram update could not be handled", exc_info=context.error)
        if not isinstance(update, Update) or isinstance(context.error, TelegramError):
            return  # the reply itself failed; a second one would fail the same way
        try:
            if update.callback_query is not None:
                await update.callback_query.answer("Sorry, that went wrong on my side. Please try again later.")
            elif update.effective_chat is not None and update.effective_message is not None:
                await self.reply(update, "Sorry, that went wrong on my side. Please try again in a minute.")
        except TelegramError as err:
            log.warning("could not tell the user about the failure: %s", err)


def need_id(args: str, verb: str) -> str:
    if not args.split():
        raise InputError(f"Which search? Send /{verb} 12 (see /list for the numbers).", field="search_id")
    return args.split()[0]


def paused_by(update: Update) -> str | None:
    user = update.effective_user
    # Usernames are [A-Za-z0-9_] only; display names can hold anything, so they stay out of the stored reason.
    return f"paused by @{user.username}" if user is not None and user.username else None
