"""Quiet hours: a daily window, in a chat's own time zone, when its alerts wait. Pure; the standard library's zoneinfo
knows the zones and their daylight-saving shifts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo


@dataclass(frozen=True, slots=True)
class QuietHours:
    """A daily window, in a chat's own time zone, when its alerts wait; it may wrap past midnight."""

    start: int  # minutes after midnight
    end: int
    timezone: str = "UTC"

    def covers(self, moment: datetime) -> bool:
        local = moment.astimezone(ZoneInfo(self.timezone))
        minute = local.hour * 60 + local.minute
        if self.start < self.end:
            return self.start <= minute < self.end
        return minute >= self.start or minute < self.end

    @property
    def window(self) -> str:
        """The window as it is typed: "22:00-07:00"."""
        return f"{_hhmm(self.start)}-{_hhmm(self.end)}"

    def __str__(self) -> str:
        return f"{_hhmm(self.start)}\u2013{_hhmm(self.end)} {self.timezone}"


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"

