"""/api/v1/marketplaces (state, circuit, budget; pause, resume and back off through bot.admin, audited and announced
to the ops channel) and /api/v1/summary (the flat figures dashboard widgets read)."""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations, which name local types.
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends

from api.auth import Caller
from api.rest.errors import DomainErrors
from api.rest.models import Health, MarketplaceOut, OperatorActionOut, PauseBody, SummaryOut
from api.rest.parts import AUTH_RESPONSES, V1, RestParts
from ops.health import Snapshot, percentile
from scout.circuit import CircuitState
from scout.models import MarketplaceState

DAY = timedelta(days=1)


def marketplace_health(state: MarketplaceState | None) -> Health:
    """paused, blocked (circuit not closed, or the last fetch refused), failing (fetches failing in a row), or
    healthy: the same reading the detailed health and the marketplace thresholds make of a state."""
    if state is None:
        return "healthy"
    if state.paused:
        return "paused"
    if state.circuit.state is not CircuitState.CLOSED or (state.consecutive_failures and
                                                         state.last_status == "blocked"):
        return "blocked"
    return "failing" if state.consecutive_failures else "healthy"


def build_marketplaces_router(parts: RestParts) -> APIRouter:
    router = APIRouter(prefix=V1, route_class=DomainErrors, responses=AUTH_RESPONSES)
    adapters, repo, admin = parts.commands.adapters, parts.repo, parts.admin
    Reader = Annotated[Caller, Depends(parts.requires("read"))]
    Operator = Annotated[Caller, Depends(parts.requires("admin"))]

    @router.get("/marketplaces", tags=["marketplaces"], summary="Every marketplace: state, circuit, request budget")
    async def list_marketplaces(caller: Reader) -> list[MarketplaceOut]:
        states = await repo.load_marketplace_states()
        shown = []
        for key, adapter in sorted(adapters.items()):
            state = states.get(key)
            shown.append(MarketplaceOut(
                key=key, name=adapter.name, state="paused" if state and state.paused else "active",
                health=marketplace_health(state), paused_reason=state.reason if state and state.paused else None,
                circuit=state.circuit.state.value if state else CircuitState.CLOSED.value,
                circuit_open_until=state.circuit.open_until if state else None,
                last_status=state.last_status if state else None,
                last_success_at=state.last_success_at if state else None,
                last_failure_at=state.last_failure_at if state else None,
                last_error=state.last_error if state else None,
                consecutive_failures=state.consecutive_failures if state else 0,
                min_interval_minutes=adapter.min_interval_minutes, requests_per_minute=adapter.requests_per_minute,
                usage=adapter.usage()))
        return shown

    @router.post("/marketplaces/{key}/pause", tags=["marketplaces"],
                 summary="Pause a marketplace: its searches wait (admin keys; audited, told to the ops channel)")
    async def pause_marketplace(key: str, caller: Operator, body: PauseBody | None = None) -> OperatorActionOut:
        message = await admin.pause_marketplace(caller.operator, key, body.reason if body else None)
        return OperatorActionOut(marketplace=key.strip().lower(), message=message)

    @router.post("/marketplaces/{key}/resume", tags=["marketplaces"],
                 summary="Resume a marketplace and probe an open circuit at once (admin keys; audited)")
    async def resume_marketplace(key: str, caller: Operator) -> OperatorActionOut:
        return OperatorActionOut(marketplace=key.strip().lower(),
                                 message=await admin.resume_marketplace(caller.operator, key))

    @router.post("/marketplaces/{key}/backoff", tags=["marketplaces"],
                 summary="Double its active searches' intervals, up to 2 h: the runbook's remedy (admin keys; audited)")
    async def back_off_marketplace(key: str, caller: Operator) -> OperatorActionOut:
        return OperatorActionOut(marketplace=key.strip().lower(),
                                 message=await admin.back_off_marketplace(caller.operator, key))

    async def read_summary() -> SummaryOut:
        now = parts.clock()
        snapshot = await repo.load_ops_snapshot(now=now)
        outbox = await repo.outbox_summary(count_sent=False)
        states = await repo.load_marketplace_states()
        health = [marketplace_health(states.get(key)) for key in adapters]
        return SummaryOut(
            time=now, active_searches=snapshot.searches_by_status.get("active", 0),
            paused_searches=snapshot.searches_by_status.get("paused", 0), stale_searches=snapshot.stale_searches,
            alerts_last_24h=await repo.count_alerts_since(now - DAY),
            marketplaces_healthy=health.count("healthy"), marketplaces_failing=health.count("failing"),
            marketplaces_blocked=health.count("blocked"), marketplaces_paused=health.count("paused"),
            outbox_backlog=outbox.pending, outbox_dead=outbox.dead,
            outbox_oldest_seconds=round((now - outbox.oldest_pending_at).total_seconds(), 1)
            if outbox.oldest_pending_at else 0.0,
            # As the alert-lag threshold reads it (ops.health.HealthChecker.figures).
            alert_lag_p95_seconds=round(percentile(snapshot.recent_lags, 0.95) or 0.0, 3),
        )

    # Dashboards poll: every request within a few seconds shares one reading, as the detailed health does.
    summary = Snapshot(read_summary)

    @router.get("/summary", tags=["summary"], summary="Service-wide figures for dashboard widgets")
    async def get_summary(caller: Reader) -> SummaryOut:
        return await summary.get()

    return router
