"""GET /status: the public status page, served without a key, from a reading shared by every request within a
few seconds (a flood costs the database one reading per SNAPSHOT_SECONDS)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from api.status.reading import load_readings
from api.status.render import render_status_page, render_unavailable_page
from api.status.view import build_status_view
from ops.health import SNAPSHOT_SECONDS, Snapshot
from scout.ports import STORAGE_ERRORS
from scrapers.base import Adapter
from storage.repo import Repository

log = logging.getLogger(__name__)

STATUS = "/status"
# Browsers and proxies may keep the page as long as the server does.
CACHE_CONTROL = f"public, max-age={SNAPSHOT_SECONDS:.0f}"


def build_status_router(repo: Repository, adapters: Mapping[str, Adapter], *, clock: Callable[[], datetime],
                        max_age: float = SNAPSHOT_SECONDS) -> APIRouter:
    """The status page of the marketplaces `adapters` names, in their order."""
    names = {key: adapter.name for key, adapter in adapters.items()}

    async def read() -> tuple[int, bytes]:
        now = clock()
        try:
            view = build_status_view(await load_readings(repo, now=now), names)
        except STORAGE_ERRORS as err:
            # Kept like a good reading: a flood while the database is down does not queue up on it.
            log.warning("the status page could not read the database (%s)", type(err).__name__)
            return 503, render_unavailable_page(now).encode()
        return 200, render_status_page(view).encode()

    page = Snapshot(read, max_age=max_age)
    router = APIRouter(tags=["status"])

    @router.get(STATUS, response_class=HTMLResponse, summary="The public status page (HTML): marketplaces, alert "
                "delivery, the week's incidents and maintenance notices")
    async def status_page() -> Response:
        code, body = await page.get()
        return HTMLResponse(body, status_code=code, headers={"Cache-Control": CACHE_CONTROL})

    router.add_api_route(STATUS, status_page, methods=["HEAD"], include_in_schema=False)
    return router
