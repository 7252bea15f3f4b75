"""Apprise delivery: alerts to any service an Apprise URL names, paced per destination, each connection guarded,
failures as values."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from collections.abc import Awaitable, Callable, Hashable, Mapping

import apprise

from bot.apprise.guard import ConnectGuard, SendRecord, guarded
from bot.apprise.render import RenderedMessage, render_alert, render_digest, render_notice
from bot.apprise.urls import check_apprise_url, quiet_apprise_logs, redact_apprise_url
from scout.delivery import DeliveryResult
from scout.errors import InputError
from scout.models import Alert, Destination, Notice
from scout.pacing import Pacer, Rate

log = logging.getLogger(__name__)

# One message every 5 s per destination, no burst. The services differ and most do not say: ntfy's default server
# limits refill one request every 5 s after a burst (docs.ntfy.sh/config, "Rate limiting"), Slack takes about one
# message a second per webhook, Discord webhooks 5 per 2 s. The slowest published refill is the safe one; a
# destination falling behind gets digests instead (see SOON_SECONDS).
DESTINATION_LIMIT = Rate(1, 5.0)
# Every Apprise send holds a worker thread for up to SEND_TIMEOUT_SECONDS: this caps them all together.
OVERALL_LIMIT = Rate(10, 1.0)
WORKER_THREADS = 4
# Apprise's own limit for one whole send (connect, redirects not followed, answer); a slower service is retried.
SEND_TIMEOUT_SECONDS = 30.0
# More alerts than can go out one by one within this long are folded into digests of up to DIGEST_SIZE.
SOON_SECONDS = 30.0
DIGEST_SIZE = 10
# A 429 without Retry-After: come back after this long. A Retry-After above the cap is read as the cap.
RATE_LIMITED_WAIT = 60.0
MAX_RETRY_AFTER = 3600.0
# A send that timed out may have been delivered: resend only after this long.
TIMED_OUT_COOLDOWN = 60.0
# HTTP answers that mean the URL itself is wrong (bad token, unknown topic or webhook): retrying cannot help.
_GONE_STATUSES = frozenset({401, 403, 404, 410})


def retry_after_seconds(value: str | None) -> float:
    try:
        seconds = float(value) if value is not None else RATE_LIMITED_WAIT
    except ValueError:  # an HTTP date: rare from these services, and the default wait is as good
        seconds = RATE_LIMITED_WAIT
    return min(MAX_RETRY_AFTER, max(0.0, seconds))


def judge(delivered: bool, timed_out: bool, record: SendRecord) -> DeliveryResult:
    """What one Apprise send came to, from Apprise's verdict and what the guard saw on the wire."""
    if record.refused:
        return DeliveryResult.gone(record.refused)
    if delivered:
        return DeliveryResult.ok()
    if timed_out:
        return DeliveryResult.retry("the service did not answer in time; it may have been delivered",
                                    retry_after=TIMED_OUT_COOLDOWN)
    if not record.answers:
        return DeliveryResult.retry("the service could not be reached")
    status, retry_after = record.answers[-1]
    if status == 429:
        return DeliveryResult.retry("the service is rate limiting us (HTTP 429)", retry_after_seconds(retry_after))
    if status >= 500:
        return DeliveryResult.retry(f"the service failed (HTTP {status})")
    if status in _GONE_STATUSES:
        return DeliveryResult.gone(f"the service refused us (HTTP {status}): check the URL's token or topic")
    if 300 <= status < 400:
        return DeliveryResult.gone(f"the service answered with a redirect (HTTP {status}), which is not followed")
    if status >= 400:
        return DeliveryResult.dead(f"the service refused the message (HTTP {status})")
    return DeliveryResult.retry(f"the service did not take the message (HTTP {status})")


class AppriseNotifier:
    """Sends alerts to Apprise URLs. Implements scout.delivery.DigestNotifier."""

    platform = "apprise"

    def __init__(
        self,
        *,
        guard: ConnectGuard | None = None,
        per_destination: Rate = DESTINATION_LIMIT,
        overall: Rate = OVERALL_LIMIT,
        soon_seconds: float = SOON_SECONDS,
        digest_size: int = DIGEST_SIZE,
        send_timeout_seconds: float = SEND_TIMEOUT_SECONDS,
        marketplace_names: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        quiet_apprise_logs()
        self._guard = guard or ConnectGuard()
        self._rate = per_destination
        self._pacer = Pacer(global_rate=overall, clock=clock, sleep=sleep)
        self._soon = soon_seconds
        self.digest_size = digest_size
        self._timeout = send_timeout_seconds
        self._names = dict(marketplace_names or {})
        # Apprise sends block: they run in threads of their own, so a slow service never holds up the event loop
        # or the default executor (which resolves the scrapers' host names).
        self._threads = concurrent.futures.ThreadPoolExecutor(WORKER_THREADS, thread_name_prefix="apprise")
        # Redirects are not followed by the plugins that honour this; the guard checks the hops of any that do not.
        self._asset = apprise.AppriseAsset(http_redirects=False)

    def set_marketplace_names(self, marketplace_names: Mapping[str, str]) -> None:
        self._names = dict(marketplace_names)

    def close(self) -> None:
        self._threads.shutdown(wait=False, cancel_futures=True)

    def _limits(self, destination: Destination) -> list[tuple[Hashable, Rate]]:
        return [(("apprise", destination.target), self._rate)]

    def wants_digest(self, destination: Destination, waiting: int) -> bool:
        return self._pacer.delay(self._limits(destination)) + (waiting - 1) * self._rate.per_seconds > self._soon

    async def send_alert(self, destination: Destination, alert: Alert) -> DeliveryResult:
        return await self._deliver(destination, render_alert(alert, marketplace_names=self._names))

    async def send_digest(self, destination: Destination, alerts: list[Alert]) -> DeliveryResult:
        return await self._deliver(destination, render_digest(alerts, marketplace_names=self._names))

    async def send_notice(self, destination: Destination, notice: Notice) -> DeliveryResult:
        return await self._deliver(destination, render_notice(notice))

    async def _deliver(self, destination: Destination, message: RenderedMessage) -> DeliveryResult:
        try:
            # The host is judged on the addresses connected to (the guard), not here.
            url = check_apprise_url(destination.target, check_host=False)
        except InputError as err:
            return DeliveryResult.gone(str(err))
        await self._pacer.acquire(self._limits(destination))
        loop = asyncio.get_running_loop()
        result = await loop.run_in_executor(self._threads, self._send, url, message)
        if not result.delivered:
            log.warning("Apprise send to %s failed: %s", redact_apprise_url(url), result.error)
        return result

    def _send(self, url: str, message: RenderedMessage) -> DeliveryResult:
        """One blocking Apprise send, in a worker thread."""
        try:
            with guarded(self._guard) as record:
                sender = apprise.Apprise(asset=self._asset)
                if not sender.add(url):
                    return DeliveryResult.gone("Apprise does not recognise this URL")
                outcome = sender.notify(body=message.body, title=message.title,
                                        body_format=apprise.NotifyFormat.TEXT, timeout=self._timeout)
            timed_out = outcome.status is apprise.AppriseResultStatus.TIMEOUT
            return judge(bool(outcome), timed_out, record)
        except Exception as err:  # noqa: BLE001 - a plugin bug must not stop the batch; its text may hold the URL
            log.error("Apprise raised %s while sending to %s", type(err).__name__, redact_apprise_url(url))
            return DeliveryResult.retry(f"Apprise failed: {type(err).__name__}")
