"""What a search's buttons carry besides its id: a moment by which that search existed, and the check of it.

Until searches.id was AUTOINCREMENT, SQLite gave a removed search's id to the next new search, so the Pause button of
an old alert could name somebody's newer search. A button acts only on a search created by the moment it carries; a
button made before buttons carried one is judged by when its message was posted.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from scout.models import SavedSearch

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)
# Hex milliseconds since 1970: 11 digits last until the year 2527, and keep a button's data short (Telegram allows
# 64 bytes of callback_data, Discord 100 characters of custom_id).
STAMP_PATTERN = "[0-9a-f]{1,11}"
_STAMP = re.compile(STAMP_PATTERN)
# A message's date comes from the platform's clock, not ours, and Telegram gives it in whole seconds.
POSTED_AT_SLACK = timedelta(seconds=5)


def encode_stamp(moment: datetime) -> str:
    """`moment` as a stamp, rounded up to the millisecond: a search created at `moment` existed by its stamp."""
    return format(-((EPOCH - moment) // _MILLISECOND), "x")


def parse_stamp(text: str | None) -> datetime | None:
    """The moment a stamp stands for; None for no stamp (a button made before they carried one)."""
    if not text or not _STAMP.fullmatch(text):
        return None
    return EPOCH + int(text, 16) * _MILLISECOND


def latest_creation(stamp: datetime | None, posted_at: datetime | None) -> datetime | None:
    """The latest moment a button's search can have been created: the button's stamp, else when its message was
    posted; None when neither is known (a message the platform no longer shows us)."""
    if stamp is not None:
        return stamp
    return posted_at + POSTED_AT_SLACK if posted_at is not None else None


def existed_by(search: SavedSearch, moment: datetime | None) -> bool:
    """Whether `search` is the one a button was made for: it existed by the button's moment (None: no button)."""
    return moment is None or search.created_at <= moment
