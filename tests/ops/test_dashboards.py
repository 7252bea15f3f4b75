"""The Grafana dashboard and the Prometheus rules only use metrics the service exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from dealscout.worker import TaskMetrics
from ops.metrics import Metrics
from scout.models import FetchOutcome

OPS = Path(__file__).resolve().parents[2] / "ops"
METRIC = re.compile(r"\b(?:dealscout_[a-z_]+|http_request_duration_seconds_[a-z]+|process_[a-z_]+)\b")


def exported() -> set[str]:
    metrics = Metrics()
    # Touch each labelled family once so its samples appear.
    metrics.fetch_done(FetchOutcome("ebay", "q", "success", 10))
    metrics.fetch_done(FetchOutcome("ebay", "q", "partial", 10, rows_lost=2))
    metrics.alerts_sent("console", [], now=None)  # type: ignore[arg-type]
    metrics.alerts_not_sent("console", 1, "retry")
    metrics.http_request_duration.labels("GET", "/health", "200").observe(0.01)
    metrics.alert_lag.labels("console").observe(1)
    metrics.circuit_open.labels("ebay").set(0)
    metrics.marketplace_paused.labels("ebay").set(0)
    metrics.searches.labels("active").set(1)
    metrics.set_queue(3, 2)
    names = set()
    for family in text_string_to_metric_families(metrics.render().decode()):
        names.update(sample.name for sample in family.samples)
    # The workers' own metrics (dealscout worker serves them).
    tasks = TaskMetrics()
    tasks.runs.labels("run_search_task", "done").inc()
    tasks.duration.labels("run_search_task").observe(0.5)
    for family in text_string_to_metric_families(generate_latest(tasks.registry).decode()):
        names.update(sample.name for sample in family.samples)
    return names


def used_in(text: str) -> set[str]:
    return set(METRIC.findall(text))


def test_the_dashboard_uses_only_exported_metrics() -> None:
    dashboard = json.loads((OPS / "grafana-dashboard.json").read_text())
    exprs = " ".join(t["expr"] for p in dashboard["panels"] for t in p.get("targets", []))
    used = used_in(exprs)
    assert used, "the dashboard queries no metric"
    assert used <= exported(), sorted(used - exported())
    rows = [p["title"] for p in dashboard["panels"] if p["type"] == "row"]
    assert rows == ["API Overview", "Scraping", "Alerts", "System Resources", "Celery"]


def test_the_alert_rules_use_only_exported_metrics_and_mirror_the_thresholds() -> None:
    text = (OPS / "prometheus-rules.yml").read_text()
    exprs = [line.split("expr:", 1)[1].strip() for line in text.splitlines() if line.strip().startswith("expr:")]
    assert len(exprs) == text.count("- alert:")
    used = used_in(" ".join(exprs))
    assert used <= exported(), sorted(used - exported())
    joined = "\n".join(exprs)
    for bound in ("> 1\n", "> 3\n", "> 0.01", "> 0.05", "> 1000", "> 5000", "> 0.80", "> 0.95", "> 50", "> 200"):
        assert bound in joined + "\n", bound


def test_result_rows_a_parser_lost_are_counted_per_marketplace() -> None:
    metrics = Metrics()
    metrics.fetch_done(FetchOutcome("ebay", "q", "partial", 10, rows_lost=2))
    metrics.fetch_done(FetchOutcome("ebay", "q", "success", 10))
    assert metrics.registry.get_sample_value("dealscout_result_rows_lost_total", {"marketplace": "ebay"}) == 2
    assert metrics.registry.get_sample_value("dealscout_scrape_requests_total",
                                             {"marketplace": "ebay", "outcome": "partial"}) == 1
