"""A button's stamp: the moment by which its search existed, exact to the millisecond and never earlier."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.buttons import POSTED_AT_SLACK, encode_stamp, existed_by, latest_creation, parse_stamp
from scout.models import Destination, SavedSearch, SearchSpec, SearchStatus

MADE = datetime(2026, 11, 28, 12, 0, 0, 123456, tzinfo=UTC)


def search(created_at: datetime) -> SavedSearch:
    return SavedSearch(id=1, owner="u", destination=Destination("console", "main"),
                       spec=SearchSpec(query="lego", marketplaces=("ebay",), check_interval_minutes=5),
                       status=SearchStatus.ACTIVE, created_at=created_at, next_run_at=created_at)


@pytest.mark.parametrize("moment", [MADE, MADE.replace(microsecond=123000), datetime(1970, 1, 1, tzinfo=UTC),
                                    datetime(2500, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)])
def test_a_stamp_names_the_moment_rounded_up_to_the_millisecond(moment: datetime) -> None:
    back = parse_stamp(encode_stamp(moment))
    assert back is not None and moment <= back < moment + timedelta(milliseconds=1)
    assert existed_by(search(moment), back)


@pytest.mark.parametrize("text", [None, "", "xyz", "1A", "-1", "fffffffffffff"])
def test_anything_else_is_no_stamp(text: str | None) -> None:
    assert parse_stamp(text) is None


def test_a_button_is_judged_by_its_stamp_else_by_when_its_message_was_posted() -> None:
    posted = MADE + timedelta(hours=1)
    assert latest_creation(MADE, posted) == MADE
    assert latest_creation(None, posted) == posted + POSTED_AT_SLACK
    assert latest_creation(None, None) is None
    assert existed_by(search(MADE), MADE) and not existed_by(search(MADE + timedelta(microseconds=1)), MADE)
    assert existed_by(search(MADE), None)
