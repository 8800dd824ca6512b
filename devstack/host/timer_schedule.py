"""Timer schedules: 6-field NCRONTAB (seconds first) or a `hh:mm:ss` interval, in a time zone."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from devstack.errors import SettingError
from devstack.host.host_config import parse_timespan

NCRONTAB_FIELDS = 6


@dataclass(frozen=True)
class TimerSchedule:
    """When a timer fires; `next_after` is strict (never returns `moment` itself)."""

    expression: str
    zone: tzinfo = UTC
    interval: timedelta | None = None

    def next_after(self, moment: datetime) -> datetime:
        if self.interval is not None:
            return moment + self.interval
        local = moment.astimezone(self.zone)
        following: datetime = croniter(self.expression, local, second_at_beginning=True).get_next(
            datetime
        )
        return following.astimezone(UTC)

    def typical_interval(self, around: datetime) -> timedelta:
        """The gap between two consecutive occurrences (decides the useMonitor default)."""
        first = self.next_after(around)
        return self.next_after(first) - first


def schedule_time_zone(settings: Mapping[str, str] | None = None) -> tzinfo:
    """WEBSITE_TIME_ZONE (an IANA name on Linux) or UTC."""
    source = os.environ if settings is None else settings
    name = source.get("WEBSITE_TIME_ZONE")
    if not name:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as e:
        msg = f"WEBSITE_TIME_ZONE {name!r} is not an IANA time zone name (e.g. Europe/Paris)"
        raise SettingError(msg) from e


def parse_schedule(text: str, zone: tzinfo = UTC) -> TimerSchedule:
    """Parse a timer trigger schedule the way the runtime accepts it."""
    expression = text.strip()
    if ":" in expression and " " not in expression:
        interval = parse_timespan(expression)
        if interval <= timedelta(0):
            msg = f"timer interval {text!r} must be positive"
            raise SettingError(msg)
        return TimerSchedule(expression=expression, zone=zone, interval=interval)
    fields = expression.split()
    if len(fields) != NCRONTAB_FIELDS or not croniter.is_valid(
        expression, second_at_beginning=True
    ):
        msg = (
            f"timer schedule {text!r} is not a 6-field NCRONTAB expression "
            "'{second} {minute} {hour} {day} {month} {day-of-week}' nor an hh:mm:ss interval"
        )
        raise SettingError(msg)
    return TimerSchedule(expression=expression, zone=zone)
