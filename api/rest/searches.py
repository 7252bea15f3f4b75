"""/api/v1/searches: list, create, read, update, delete, pause, resume and run now, and a search's recent alerts;
each through bot.commands, as the CLI and the bots do."""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations, which name local types.
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Response, status

from api.auth import Caller
from api.rest.errors import DomainErrors, refusal
from api.rest.models import AlertOut, PauseBody, SearchCreate, SearchOut, SearchPage, SearchUpdate
from api.rest.parts import AUTH_RESPONSES, V1, RestParts
from bot.commands import parse_destination
from scout.errors import InputError
from scout.models import Destination, SearchStatus

PER_PAGE = 50
# A page of searches is built in one request's memory: past this, page through.
PER_PAGE_MAX = 200
ALERTS_DEFAULT = 20
ALERTS_MAX = 100
# Chat destinations are reachable by the bot, not owned by whoever names them: see _check_destination.
CHAT_PLATFORMS = ("discord", "telegram")
SearchId = Annotated[int, "the search's id"]


def build_searches_router(parts: RestParts) -> APIRouter:
    router = APIRouter(prefix=f"{V1}/searches", tags=["searches"], route_class=DomainErrors,
                       responses=AUTH_RESPONSES)
    commands, repo = parts.commands, parts.repo
    names = commands.adapters  # a search describes its marketplaces by name
    Reader = Annotated[Caller, Depends(parts.requires("read"))]
    Writer = Annotated[Caller, Depends(parts.requires("write"))]

    async def check_destination(caller: Caller, destination: Destination) -> None:
        """Console and Apprise destinations are anyone's (an Apprise URL carries its own credentials); a Discord
        channel or Telegram chat only where the key's owner already has a search, made there through the bot, or
        for an admin key: the bot reaches chats that are not the caller's to fill."""
        if caller.is_admin or destination.platform not in CHAT_PLATFORMS:
            return
        if not await repo.load_searches(owner=caller.owner, platform=destination.platform,
                                        target=destination.target, limit=1):
            raise InputError(f"This key may send alerts to a {destination.platform} chat only where its owner already "
                             "has a search; use console or apprise:<URL>, or an admin key.", field="destination")

    @router.get("", summary="Searches, a page at a time, oldest first")
    async def list_searches(
        caller: Reader,
        page: Annotated[int, Query(ge=1)] = 1,
        per_page: Annotated[int, Query(ge=1, le=PER_PAGE_MAX)] = PER_PAGE,
        owner: Annotated[str | None, Query(description="Only this owner's (a key that is not admin sees only "
                                           "its own owner's)")] = None,
        status_: Annotated[SearchStatus | None, Query(alias="status")] = None,
        marketplace: Annotated[str | None, Query(description="Only searches on this marketplace")] = None,
    ) -> SearchPage:
        if owner is not None and owner != caller.owner and not caller.is_admin:
            raise HTTPException(status.HTTP_403_FORBIDDEN, "This key sees only its own owner's searches.")
        if marketplace is not None and marketplace not in commands.adapters:
            raise refusal(InputError(f"Unknown marketplace {marketplace[:40]!r}. Choose from: "
                                     f"{', '.join(sorted(commands.adapters))}."), ("query", "marketplace"))
        shown_owner = owner if caller.is_admin else caller.owner
        found, total = await repo.page_searches(owner=shown_owner, status=status_, marketplace=marketplace,
                                                limit=per_page, offset=(page - 1) * per_page)
        return SearchPage(items=[SearchOut.of(s, names) for s in found], page=page, per_page=per_page, total=total,
                          pages=-(-total // per_page))

    @router.post("", status_code=status.HTTP_201_CREATED, summary="Save a search; it is due at once",
                 responses={422: {"description": "Refused, naming the field and why; nothing is saved"}})
    async def create_search(body: SearchCreate, caller: Writer, response: Response) -> SearchOut:
        fields = body.model_dump(exclude={"to"})
        commands.build_search_spec(**fields)  # the search's own fields are refused before its destination
        destination = parse_destination(body.to)
        await check_destination(caller, destination)
        search = await commands.add_search(caller.actor, destination, **fields)
        response.headers["Location"] = f"{V1}/searches/{search.id}"
        return SearchOut.of(search, names)

    @router.get("/{search_id}", summary="One search")
    async def read_search(search_id: SearchId, caller: Reader) -> SearchOut:
        return SearchOut.of(await commands.show_search(caller.actor, search_id), names)

    @router.patch("/{search_id}", summary="Change some of a search's fields",
                  responses={422: {"description": "Refused, naming the field and why; nothing changes"}})
    async def update_search(search_id: SearchId, body: SearchUpdate, caller: Writer) -> SearchOut:
        return SearchOut.of(await commands.edit_search(caller.actor, search_id, **body.changes()), names)

    @router.delete("/{search_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Remove a search")
    async def delete_search(search_id: SearchId, caller: Writer) -> Response:
        await commands.remove_search(caller.actor, search_id)
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    @router.post("/{search_id}/pause", summary="Stop checking a search")
    async def pause_search(search_id: SearchId, caller: Writer, body: PauseBody | None = None) -> SearchOut:
        reason = body.reason if body is not None else None
        return SearchOut.of(await commands.pause_search(caller.actor, search_id, reason=reason), names)

    @router.post("/{search_id}/resume", summary="Check a paused search again; alerts it held go out")
    async def resume_search(search_id: SearchId, caller: Writer) -> SearchOut:
        return SearchOut.of(await commands.resume_search(caller.actor, search_id), names)

    @router.post("/{search_id}/run", summary="Make a search due now",
                 responses={409: {"description": "The search is paused"},
                            429: {"description": "It ran within its marketplaces' minimum interval; see Retry-After"}})
    async def run_search(search_id: SearchId, caller: Writer) -> SearchOut:
        search = await commands.show_search(caller.actor, search_id)
        if search.status is SearchStatus.PAUSED:
            raise HTTPException(status.HTTP_409_CONFLICT, f"Search #{search.id} is paused; resume it first.")
        now = parts.clock()
        # Each marketplace's minimum interval is its politeness limit: running now may not cut under it.
        floor = timedelta(minutes=max((commands.adapters[m].min_interval_minutes for m in search.spec.marketplaces
                                       if m in commands.adapters), default=0))
        if search.last_run_at is not None and now - search.last_run_at < floor:
            wait = int((search.last_run_at + floor - now).total_seconds()) + 1
            raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS,
                                f"Search #{search.id} ran less than {floor.seconds // 60} min ago; it can run again "
                                f"in {wait} s.", headers={"Retry-After": str(wait)})
        if search.next_run_at > now:
            search = await repo.update_search(search.id, now=now, next_run_at=now)
        return SearchOut.of(search, names)

    @router.get("/{search_id}/alerts", summary="A search's newest alerts, newest first")
    async def search_alerts(search_id: SearchId, caller: Reader,
                            limit: Annotated[int, Query(ge=1, le=ALERTS_MAX)] = ALERTS_DEFAULT) -> list[AlertOut]:
        search = await commands.show_search(caller.actor, search_id)
        return [AlertOut.of(alert) for alert in await repo.load_search_alerts(search.id, limit=limit)]

    return router
