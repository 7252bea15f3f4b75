"""A chat platform's connection as health reports it, and the background task that keeps a front end connecting."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

from scout.errors import ConfigError

log = logging.getLogger(__name__)

ConnectionState = Literal["connecting", "connected", "down"]
# Errors shown in health are cut to this length: enough for the exception's own words, not a page of HTML.
ERROR_LENGTH = 300
# How long start() waits for the first try to connect or fail before leaving it to the background.
FIRST_TRY_WAIT_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class Connection:
    """Where a platform's connection stands, since when (UTC), and why not, in words safe to show (no token)."""

    state: ConnectionState
    since: datetime
    error: str | None = None

    @property
    def connected(self) -> bool:
        return self.state == "connected"


@dataclass(frozen=True, slots=True)
class Backoff:
    """Capped exponential waits between connection tries: first_seconds, twice that, ... at most max_seconds."""

    first_seconds: float = 1.0
    # One try a minute at worst: a platform that comes back is used within a minute, and a Discord gateway that
    # keeps failing after IDENTIFY stays well inside the 1,000 identifies a day that Discord allows a bot.
    max_seconds: float = 60.0

    def delay(self, failures: int) -> float:
        """The wait after the `failures`-th failure in a row (1 for the first)."""
        return min(self.max_seconds, self.first_seconds * 2.0 ** min(max(0, failures - 1), 32))


def describe_error(error: BaseException, *secrets: str) -> str:
    """The error's type and words, with every secret blanked, cut to ERROR_LENGTH."""
    text = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text[:ERROR_LENGTH]


class ConnectionTracker:
    """One platform's Connection, moved by its front end; each change of state is logged once, not every retry."""

    def __init__(self, name: str, *, clock: Callable[[], datetime]) -> None:
        self.name = name  # as people write it: "Discord", "Telegram"
        self._clock = clock
        self.current = Connection("connecting", clock())
        self.times_connected = 0
        self._stopped = False
        self._changed = asyncio.Event()

    def mark_connected(self) -> None:
        if self._move("connected", None):
            self.times_connected += 1
            log.info("%s connected", self.name)

    def mark_retrying(self, error: str, *, exc_info: BaseException | None = None) -> None:
        """Not connected, and trying again: a failed try, or a connection that dropped."""
        if self._move("connecting", error):
            log.warning("%s is not connected (%s); trying again in the background", self.name, error,
                        exc_info=exc_info)

    def mark_down(self, error: str) -> None:
        """Not connected, and not trying: the platform refused our credentials."""
        if self._move("down", error):
            log.error("%s is down: %s", self.name, error)

    def mark_stopped(self) -> None:
        """Final: a stopped front end is down whatever its platform's libraries report while they wind down."""
        changed = self._move("down", "stopped")
        self._stopped = True
        if changed:
            log.info("%s stopped", self.name)

    async def wait_for(self, state: ConnectionState) -> Connection:
        while self.current.state != state:
            await self._changed.wait()
        return self.current

    async def wait_for_change(self) -> Connection:
        """Until the state or the presence of an error changes (the first failure of a try counts)."""
        await self._changed.wait()
        return self.current

    def _move(self, state: ConnectionState, error: str | None) -> bool:
        """Record the new state; True when it is a change worth a log line (a new error text alone is not)."""
        previous = self.current
        if self._stopped:
            return False
        if (state, error is None) == (previous.state, previous.error is None):
            if error != previous.error:
                self.current = replace(previous, error=error)
            return False
        self.current = Connection(state, self._clock(), error)
        # Wake every waiter once; later waits use a fresh event.
        self._changed.set()
        self._changed = asyncio.Event()
        return True


class Connector:
    """Runs a front end's `connect` in a background task until it returns, retrying failures with capped backoff.

    `connect` raises ConfigError when the platform refuses our credentials (no retry can help: the platform is
    reported down with the ConfigError's advice), one of `expected` for network trouble, and returns only once
    connected for good (a front end whose connection is a long-running loop raises when that loop ends). Anything
    else is a bug: logged with its traceback when it first happens, and retried the same way. A try that got
    connected starts the backoff afresh.
    """

    def __init__(self, tracker: ConnectionTracker, connect: Callable[[], Awaitable[None]], *,
                 expected: tuple[type[BaseException], ...], secrets: tuple[str, ...] = (),
                 backoff: Backoff | None = None,
                 sleep: Callable[[float], Awaitable[object]] = asyncio.sleep) -> None:
        self.tracker = tracker
        self.backoff = backoff or Backoff()
        self._connect = connect
        self._expected = expected
        self._secrets = secrets
        self._sleep = sleep
        self._task: asyncio.Task[None] | None = None
        self.refused: ConfigError | None = None

    async def start(self, *, first_try_wait: float = FIRST_TRY_WAIT_SECONDS) -> None:
        """Start trying; return once the first try connected or failed (or after `first_try_wait` seconds).

        Raises the ConfigError when the first try learned that our credentials are refused.
        """
        if self._task is not None:
            return
        self._task = asyncio.create_task(self._run(), name=f"{self.tracker.name.lower()}-connect")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.tracker.wait_for_change(), first_try_wait)
        if self.refused is not None:
            raise self.refused

    async def stop(self) -> None:
        """Cancel the tries in flight, whatever the state; the platform is then down ("stopped")."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.tracker.mark_stopped()

    async def _run(self) -> None:
        failures = 0
        while True:
            connected_before = self.tracker.times_connected
            unexpected: BaseException | None = None
            try:
                await self._connect()
                return
            except ConfigError as err:
                self.refused = err
                self.tracker.mark_down(str(err))
                return
            except self._expected as err:
                error = describe_error(err, *self._secrets)
            except Exception as err:  # noqa: BLE001 - the background task's guard: report it, keep trying
                error, unexpected = describe_error(err, *self._secrets), err
            failures = 1 if self.tracker.times_connected != connected_before else failures + 1
            self.tracker.mark_retrying(error, exc_info=unexpected)
            await self._sleep(self.backoff.delay(failures))
