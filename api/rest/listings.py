"""/api/v1/listings/{id}: a stored listing and its price history."""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations, which name local types.
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, status

from api.auth import Caller
from api.rest.errors import DomainErrors
from api.rest.models import ListingOut
from api.rest.parts import AUTH_RESPONSES, V1, RestParts


def build_listings_router(parts: RestParts) -> APIRouter:
    router = APIRouter(prefix=f"{V1}/listings", tags=["listings"], route_class=DomainErrors,
                       responses=AUTH_RESPONSES)
    Reader = Annotated[Caller, Depends(parts.requires("read"))]

    @router.get("/{listing_id}", summary="A listing and every price it was seen at",
                responses={404: {"description": "No such listing, or none of the owner's searches matched it"}})
    async def read_listing(listing_id: int, caller: Reader) -> ListingOut:
        # A key that is not admin sees listings its owner's searches matched: which listings are stored tells
        # what other people look for.
        found = None
        if 0 < listing_id < 2**31:  # the column is an INTEGER
            found = await parts.repo.load_listing(listing_id, matched_for=None if caller.is_admin else caller.owner)
        if found is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"There is no listing #{listing_id} for this key.")
        return ListingOut.of(found)

    return router
