"""Operator commands shared by every front end: pause, resume and back off a marketplace, status, recent failures."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta

from bot.commands import MAX_REASON_LENGTH, Actor, clean_text
from scout.errors import InputError, PermissionDeniedError
from scrapers.base import Adapter
from storage.repo import Repository

# The runbook's rate-limit remedy doubles intervals for searches under two hours (section 3).
BACKOFF_FACTOR = 2
BACKOFF_CAP_MINUTES = 120

Announce = Callable[[str], Awaitable[None]]


class AdminCommands:
    """What an operator can do to the service. Every action is audited and echoed to the ops channel."""

    def __init__(
        self,
        repo: Repository,
        adapters: Mapping[str, Adapter],
        *,
        clock: Callable[[], datetime],
        announce: Announce | None = None,
    ) -> None:
        self.repo = repo
        self.adapters = adapters
        self._clock = clock
        self._announce = announce

    def set_announcer(self, announce: Announce) -> None:
        self._announce = announce

    async def pause_marketplace(self, actor: Actor, key: str, reason: str | None) -> str:
        self._check(actor)
        adapter = self._adapter(key)
        why = clean_text(reason or "", field="reason", limit=MAX_REASON_LENGTH) or "paused by an operator"
        await self.repo.set_marketplace_status(adapter.key, status="paused", reason=why, actor=actor.id,
                                               now=self._clock())
        return await self._done(f"{adapter.name} paused by {actor.id}: {why}. Its searches are skipped until resumed.")

    async def resume_marketplace(self, actor: Actor, key: str) -> str:
        self._check(actor)
        adapter = self._adapter(key)
        await self.repo.set_marketplace_status(adapter.key, status="active", reason=None, actor=actor.id,
                                               now=self._clock())
        return await self._done(f"{adapter.name} resumed by {actor.id}.")

    async def back_off_marketplace(self, actor: Actor, key: str) -> str:
        """Double the check interval of the marketplace's active searches, up to two hours (runbook section 3)."""
        self._check(actor)
        adapter = self._adapter(key)
        now = self._clock()
        changed = await self.repo.scale_intervals(adapter.key, factor=BACKOFF_FACTOR, cap_minutes=BACKOFF_CAP_MINUTES,
                                                  now=now)
        await self.repo.add_audit(actor=actor.id, action="marketplace.backoff", target=adapter.key,
                                  detail=f"{changed} searches", now=now)
        return await self._done(
            f"{adapter.name}: {actor.id} doubled the check interval of {changed} active searches "
            f"(capped at {BACKOFF_CAP_MINUTES} min)."
        )

    async def status(self, actor: Actor) -> str:
        self._check(actor)
        states = await self.repo.load_marketplace_states()
        outbox = await self.repo.outbox_summary()
        now = self._clock()
        lines = [f"Deal Scout status at {now:%Y-%m-%d %H:%M} UTC"]
        for key, adapter in sorted(self.adapters.items()):
            state = states.get(key)
            usage = adapter.usage()
            extra = f"; {usage}" if usage else ""
            if state is None:
                lines.append(f"- {adapter.name}: active, not scanned yet{extra}")
                continue
            head = f"paused ({state.reason})" if state.paused else "active"
            last_ok = f"{state.last_success_at:%H:%M}" if state.last_success_at else "never"
            tail = f", last result {state.last_status}" if state.last_status else ""
            if state.consecutive_failures:
                tail += f", {state.consecutive_failures} failures in a row ({state.last_error})"
            lines.append(f"- {adapter.name}: {head}, last success {last_ok}{tail}{extra}")
        oldest = f", oldest waiting {int((now - outbox.oldest_pending_at).total_seconds())} s" \
            if outbox.oldest_pending_at else ""
        lines.append(f"Outbox: {outbox.pending} pending{oldest}, {outbox.dead} dead, {outbox.sent} sent")
        return "\n".join(lines)

    async def recent_failures(self, actor: Actor, *, hours: int = 1) -> str:
        """The runbook's task_logs diagnosis (section 3), summarised: outcomes per marketplace and top errors."""
        self._check(actor)
        since = self._clock() - timedelta(hours=hours)
        summary = await self.repo.load_failure_summary(since=since)
        if not summary.fetches:
            return f"No marketplace fetches in the last {hours} h."
        lines = [f"Fetches in the last {hours} h:"]
        for (market, status), count in sorted(summary.fetches.items()):
            lines.append(f"- {market} {status}: {count}")
        if summary.errors:
            lines.append("Most frequent errors:")
            for market, error, count in summary.errors:
                lines.append(f"- {market}: {error or '(no text)'} \u00d7{count}")
        for market, count in sorted(summary.circuit_openings.items()):
            lines.append(f"{market}'s circuit opened {count} time{'' if count == 1 else 's'}.")
        return "\n".join(lines)

    def _check(self, actor: Actor) -> None:
        if not actor.is_operator:
            raise PermissionDeniedError("Only Deal Scout operators can run admin commands.")

    def _adapter(self, key: str) -> Adapter:
        adapter = self.adapters.get(key.strip().lower())
        if adapter is None:
            raise InputError(f"Unknown marketplace {key[:40]!r}. Choose from: {', '.join(sorted(self.adapters))}.",
                             field="marketplace")
        return adapter

    async def _done(self, message: str) -> str:
        if self._announce is not None:
            await self._announce(message)
        return message
