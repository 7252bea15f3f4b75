"""The REST routes' one mapping of the engine's errors to HTTP: InputError 422 naming the field (FastAPI's own
shape), NotFoundError 404, PermissionDeniedError 403, StorageError 503."""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import HTTPException, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

from scout.errors import InputError, NotFoundError, PermissionDeniedError, StorageError

log = logging.getLogger(__name__)

# InputError.field as the engine names it -> where the API's client gave it. The engine speaks to people ("minimum
# price"); the API's fields are the request's own names.
LOCATIONS: dict[str, tuple[str, ...]] = {
    "search_id": ("path", "search_id"),
    "marketplace": ("path", "key"),
    "marketplaces": ("body", "marketplaces"),
    "interval": ("body", "interval_minutes"),
    "minimum price": ("body", "min_price"),
    "maximum price": ("body", "max_price"),
    "excluded word": ("body", "exclude"),
    "radius": ("body", "radius_km"),
    "destination": ("body", "to"),
}


def refusal(err: InputError, where: tuple[str, ...] | None = None) -> RequestValidationError:
    """An InputError as FastAPI's own 422: [{"type", "loc", "msg", "input"}]."""
    loc = where or LOCATIONS.get(err.field or "", ("body", err.field) if err.field else ("body",))
    return RequestValidationError([{"type": "value_error", "loc": loc, "msg": str(err), "input": None}])


class DomainErrors(APIRoute):
    """An APIRoute whose endpoint's engine errors become their HTTP answers (routers take it as route_class)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def handled(request: Request) -> Response:
            try:
                return await handle(request)
            except NotFoundError as err:
                raise HTTPException(status.HTTP_404_NOT_FOUND, str(err)) from err
            except PermissionDeniedError as err:
                raise HTTPException(status.HTTP_403_FORBIDDEN, str(err)) from err
            except InputError as err:
                raise refusal(err) from err
            except StorageError as err:
                log.warning("%s %s: the database failed: %s", request.method, self.path_format, err)
                raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE,
                                    "The database is unavailable; try again shortly.") from err

        return handled
