"""Prometheus metrics: one registry per service, fed by the engine's observer hooks and refreshed from storage."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector, generate_latest

from scout.models import Alert, FetchOutcome

# Seconds; alert lag spans a scan interval (minutes) up to a long outage (hours).
LAG_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 21600)
SCRAPE_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80)


class Metrics:
    """Every metric the service exports. Labels are marketplaces, platforms and outcomes: never a chat or user id."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        ProcessCollector(registry=r)  # process_resident_memory_bytes and friends
        # The runbook greps the metrics endpoint for this name (section 1).
        self.http_request_duration = Histogram(
            "http_request_duration_seconds", "HTTP requests served by the ops API", ["method", "route", "status"],
            registry=r)
        self.scrape_requests = Counter(
            "dealscout_scrape_requests_total",
            "Marketplace fetches by outcome (success, partial, empty, blocked, failed)",
            ["marketplace", "outcome"], registry=r)
        self.scrape_duration = Histogram(
            "dealscout_scrape_duration_seconds", "Time of one marketplace fetch and parse", ["marketplace"],
            buckets=SCRAPE_BUCKETS, registry=r)
        self.listings_found = Counter(
            "dealscout_listings_found_total", "Listings seen in marketplace results", ["marketplace"], registry=r)
        self.rows_lost = Counter(
            "dealscout_result_rows_lost_total",
            "Result rows of marketplace pages that could not be read as listings (a layout change shows here first)",
            ["marketplace"], registry=r)
        self.alerts_delivered = Counter(
            "dealscout_alerts_delivered_total", "Alerts delivered", ["platform"], registry=r)
        self.alerts_failed = Counter(
            "dealscout_alerts_failed_total",
            "Sends that did not go through, by what happened next: wait (a rate limit), retry, held (the chat "
            "refuses the bot), dead",
            ["platform", "result"], registry=r)
        self.alert_lag = Histogram(
            "dealscout_alert_lag_seconds", "From a listing being found to its alert being delivered", ["platform"],
            buckets=LAG_BUCKETS, registry=r)
        self.outbox_pending = Gauge("dealscout_outbox_pending", "Alerts waiting to be sent", registry=r)
        self.outbox_dead = Gauge("dealscout_outbox_dead", "Alerts given up on", registry=r)
        self.outbox_oldest_age = Gauge(
            "dealscout_outbox_oldest_pending_age_seconds", "Age of the oldest alert waiting to be sent", registry=r)
        self.scheduler_lag = Gauge(
            "dealscout_scheduler_lag_seconds", "How late the oldest due search is", registry=r)
        self.failed_tasks = Gauge(
            "dealscout_failed_tasks_last_hour", "Blocked or failed marketplace fetches in the last hour", registry=r)
        self.circuit_open = Gauge(
            "dealscout_marketplace_circuit_open", "1 while a marketplace's circuit is open or probing",
            ["marketplace"], registry=r)
        self.marketplace_paused = Gauge(
            "dealscout_marketplace_paused", "1 while an operator has paused a marketplace", ["marketplace"],
            registry=r)
        self.searches = Gauge("dealscout_searches", "Saved searches by status", ["status"], registry=r)
        self.stale_searches = Gauge(
            "dealscout_stale_searches", "Active searches with no successful scan for three intervals", registry=r)
        # The runbook's resource thresholds, as the service measures them (fractions of 1).
        self.db_connections_ratio = Gauge(
            "dealscout_db_connections_ratio", "PostgreSQL connections in use / max_connections", registry=r)
        self.memory_ratio = Gauge(
            "dealscout_memory_ratio", "Resident memory / the memory the process may use", registry=r)
        self.disk_ratio = Gauge("dealscout_disk_ratio", "Used / total space of the data directory's disk", registry=r)
        # A leader's broker (dealscout leader): the Celery queue the runbook watches, and the workers that answer.
        self.queue_depth = Gauge("dealscout_celery_queue_depth", "Tasks waiting on the Celery queue", ["queue"],
                                 registry=r)
        self.workers_alive = Gauge("dealscout_celery_workers_alive", "Celery workers that answer a ping", registry=r)

    def set_figures(self, figures: dict[str, float | None]) -> None:
        """Export the threshold figures that no other metric carries."""
        for gauge, key in ((self.db_connections_ratio, "db_connections"), (self.memory_ratio, "memory"),
                           (self.disk_ratio, "disk"), (self.stale_searches, "stale_searches")):
            value = figures.get(key)
            if value is not None:
                gauge.set(value)

    def set_queue(self, depth: int | None, workers: int | None) -> None:
        if depth is not None:
            self.queue_depth.labels("celery").set(depth)
        if workers is not None:
            self.workers_alive.set(workers)

    # --- the engine's observer hooks ---------------------------------------------------------------------------

    def fetch_done(self, fetch: FetchOutcome) -> None:
        self.scrape_requests.labels(fetch.marketplace, fetch.status).inc()
        self.scrape_duration.labels(fetch.marketplace).observe(fetch.duration_ms / 1000)
        self.listings_found.labels(fetch.marketplace).inc(len(fetch.listings))
        if fetch.rows_lost:
            self.rows_lost.labels(fetch.marketplace).inc(fetch.rows_lost)

    def alerts_sent(self, platform: str, alerts: Iterable[Alert], now: datetime) -> None:
        count = 0
        for alert in alerts:
            count += 1
            if alert.queued_at is not None:
                self.alert_lag.labels(platform).observe(max(0.0, (now - alert.queued_at).total_seconds()))
        self.alerts_delivered.labels(platform).inc(count)

    def alerts_not_sent(self, platform: str, count: int, result: str) -> None:
        self.alerts_failed.labels(platform, result).inc(count)

    def render(self) -> bytes:
        return generate_latest(self.registry)
