"""The REST API's routers, for dealscout.app to add to the API application (Ops.extra_routers)."""

from __future__ import annotations

from fastapi import APIRouter

from api.rest.listings import build_listings_router
from api.rest.marketplaces import build_marketplaces_router
from api.rest.parts import RestParts
from api.rest.searches import build_searches_router

__all__ = ["RestParts", "build_rest_routers"]


def build_rest_routers(parts: RestParts) -> list[APIRouter]:
    return [build_searches_router(parts), build_listings_router(parts), build_marketplaces_router(parts)]
