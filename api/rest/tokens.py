"""API keys as text: minting one, reading its public id back out of it, and the hash that is stored instead of it.

Only the SHA-256 of a key is stored. A slow password hash (bcrypt, scrypt, Argon2) exists to make guessing a
human-chosen password expensive; a key here is 256 bits from the operating system's CSPRNG, so there is nothing
to guess: finding a key from its hash is a 2**256 search whichever hash guards it, and a salt adds nothing when no
two keys are alike. A fast hash keeps checking a key to microseconds on every request.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

# "dsk_" marks a Deal Scout key wherever one leaks (a log, a repository), so secret scanners can be taught it.
PREFIX = "dsk"
ID_BYTES = 6  # 12 hex characters: the public id, unique among a service's keys (a clash is minted again)
SECRET_BYTES = 32  # 256 bits of randomness
SCOPES = ("read", "write", "admin")
_KEY = re.compile(rf"^{PREFIX}_([0-9a-f]{{{2 * ID_BYTES}}})_([A-Za-z0-9_-]{{43}})$")


@dataclass(frozen=True, slots=True)
class MintedKey:
    key_id: str
    key: str  # shown once, never stored
    key_hash: str


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def mint_key() -> MintedKey:
    key_id = secrets.token_hex(ID_BYTES)
    key = f"{PREFIX}_{key_id}_{secrets.token_urlsafe(SECRET_BYTES)}"
    return MintedKey(key_id, key, hash_key(key))


def read_key_id(key: str) -> str | None:
    """The public id of a well-formed key; None for anything else."""
    found = _KEY.match(key)
    return found.group(1) if found else None


def key_matches(key: str, key_hash: str) -> bool:
    """Whether `key` is the key `key_hash` was made from, in time that does not depend on where they differ."""
    return hmac.compare_digest(hash_key(key), key_hash)
