"""Who a REST request speaks for: its API key (Authorization: Bearer, or X-API-Key), checked against the stored
hash, and whether the key's scope lets it use the route (401 without a valid key, 403 with too small a scope)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Depends, HTTPException, status
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from api.rest.tokens import SCOPES, key_matches, read_key_id
from bot.commands import Actor
from scout.errors import StorageError
from storage.repo import Repository

log = logging.getLogger(__name__)

BEARER = HTTPBearer(
    auto_error=False, scheme_name="bearerKey", bearerFormat="dsk_<id>_<secret>",
    description="An API key from `dealscout apikey create`, as `Authorization: Bearer <key>`.")
HEADER = APIKeyHeader(
    name="X-API-Key", auto_error=False, scheme_name="apiKeyHeader",
    description="The same API key, in the X-API-Key header instead.")
# Each scope can do what those before it can: read < write < admin.
RANK = {scope: rank for rank, scope in enumerate(SCOPES)}
# What a client is told for any key that does not open the API: no hint whether it exists or was revoked.
NOT_AUTHENTICATED = "A valid API key is required: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'."
CHALLENGE = {"WWW-Authenticate": "Bearer"}


@dataclass(frozen=True, slots=True)
class Caller:
    """The key a request came with: its owner (whose searches it sees) and its scope."""

    key_id: str
    owner: str
    scope: str

    @property
    def is_admin(self) -> bool:
        return self.scope == "admin"

    def may(self, scope: str) -> bool:
        return RANK[self.scope] >= RANK[scope]

    @property
    def actor(self) -> Actor:
        """The key's owner, as the search commands know owners; an admin key manages everyone's searches."""
        return Actor(self.owner, is_admin=self.is_admin)

    @property
    def operator(self) -> Actor:
        """An admin key as an operator: the audit log and the ops channel name its owner and the key used."""
        return Actor(f"{self.owner} (API key {self.key_id})", is_admin=True, is_operator=True)


class KeyCheck:
    """Finds the stored key a request presents and records its use."""

    def __init__(self, repo: Repository, clock: Callable[[], datetime]) -> None:
        self._repo = repo
        self._clock = clock

    async def identify(self, presented: str | None) -> Caller:
        key = (presented or "").strip()
        key_id = read_key_id(key)
        if key_id is None:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, NOT_AUTHENTICATED, headers=CHALLENGE)
        try:
            stored = await self._repo.load_api_key(key_id)
        except StorageError as err:
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "The database is unavailable.") from err
        if stored is None or stored.revoked or not key_matches(key, stored.key_hash):
            log.info("refused an API key with id %s (%s)", key_id,
                     "unknown" if stored is None else "revoked" if stored.revoked else "wrong secret")
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, NOT_AUTHENTICATED, headers=CHALLENGE)
        try:
            await self._repo.touch_api_key(key_id, now=self._clock())
        except StorageError:
            log.warning("could not record the use of API key %s", key_id)  # serving the request matters more
        return Caller(stored.key_id, stored.owner, stored.scope)


Requirement = Callable[..., Awaitable[Caller]]


def requires(check: KeyCheck, scope: str) -> Requirement:
    """A dependency giving the request's Caller when its key is valid (else 401) and of `scope` or above (else 403).

    Both ways of sending the key are security schemes of their own, so the OpenAPI document offers either."""
    if scope not in RANK:
        raise ValueError(f"unknown scope {scope!r}")

    async def caller(bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)],
                     header: Annotated[str | None, Depends(HEADER)]) -> Caller:
        found = await check.identify(bearer.credentials if bearer is not None else header)
        if not found.may(scope):
            raise HTTPException(status.HTTP_403_FORBIDDEN,
                                f"This key's scope is {found.scope}; this needs a {scope} key.")
        return found

    return caller
