"""What the REST routers are built from: the engine's commands, the repository, the key check and the clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from api.auth import KeyCheck, Requirement, requires
from bot.admin import AdminCommands
from bot.commands import Commands
from storage.repo import Repository

V1 = "/api/v1"
# Every route that takes a key can answer these as well.
AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "No API key, or one that is unknown or revoked"},
    403: {"description": "The key's scope does not allow this"},
}


@dataclass
class RestParts:
    commands: Commands
    admin: AdminCommands
    repo: Repository
    clock: Callable[[], datetime]
    keys: KeyCheck = field(init=False)

    def __post_init__(self) -> None:
        self.keys = KeyCheck(self.repo, self.clock)

    def requires(self, scope: str) -> Requirement:
        return requires(self.keys, scope)
