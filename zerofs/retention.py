"""Retention policies: which dated items to keep, with restic forget's semantics.

Used by gc (commits) and prune (snapshot directories). Pure functions of the
items' times and the policy; nothing here reads or writes a repository.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from zerofs.errors import UsageError

K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True, slots=True)
class Retention:
    """Which commits to keep; all None/0 means keep every commit."""

    keep_last: int = 0
    keep_within: str | None = None
    keep_hourly: int = 0
    keep_daily: int = 0
    keep_weekly: int = 0
    keep_monthly: int = 0
    keep_yearly: int = 0

    def describe(self) -> str:
        """The rules in words, for a commit message: ``last 3, within 30d, daily 7`` (empty: keep everything)."""
        rules = [("last", self.keep_last), ("within", self.keep_within), ("hourly", self.keep_hourly)]
        rules += [("daily", self.keep_daily), ("weekly", self.keep_weekly), ("monthly", self.keep_monthly)]
        rules += [("yearly", self.keep_yearly)]
        return ", ".join(f"{name} {value}" for name, value in rules if value)

    @property
    def keeps_everything(self) -> bool:
        """True when no rule was given."""
        return not (
            self.keep_last
            or self.keep_within
            or self.keep_hourly
            or self.keep_daily
            or self.keep_weekly
            or self.keep_monthly
            or self.keep_yearly
        )


# ASCII digits only, nothing around them: " 30d" or an Arabic-Indic digit is a typo, not a duration.
_DURATION = re.compile(r"(?:([0-9]+)y)?(?:([0-9]+)m)?(?:([0-9]+)w)?(?:([0-9]+)d)?(?:([0-9]+)h)?")


def parse_duration(text: str) -> tuple[int, int, int, int, int]:
    """Parse restic-style ``1y2m3w4d5h`` into (years, months, weeks, days, hours).

    Raises:
        UsageError: empty, zero, or not of that form.
    """
    match = _DURATION.fullmatch(text)
    if match is None or not any(match.groups()):
        raise UsageError(f"invalid duration {text!r}: use a combination like 30d, 2w, 6m, 1y2m or 12h")
    parts = tuple(int(g) if g else 0 for g in match.groups())
    if not any(parts):
        raise UsageError(f"invalid duration {text!r}: it must be longer than zero")
    years, months, weeks, days, hours = parts
    return years, months, weeks, days, hours


def _minus(moment: datetime.datetime, duration: tuple[int, int, int, int, int]) -> datetime.datetime:
    years, months, weeks, days, hours = duration
    month_index = moment.year * 12 + (moment.month - 1) - years * 12 - months
    year, month = divmod(month_index, 12)
    day = min(moment.day, _days_in_month(year, month + 1))
    shifted = moment.replace(year=year, month=month + 1, day=day)
    return shifted - datetime.timedelta(weeks=weeks, days=days, hours=hours)


def _days_in_month(year: int, month: int) -> int:
    first_next = datetime.date(year + month // 12, month % 12 + 1, 1)
    return (first_next - datetime.timedelta(days=1)).day


def select_kept(items: Sequence[tuple[K, int]], policy: Retention) -> set[K]:
    """Return the keys of the dated items ``policy`` keeps (``items``: (key, time ns), newest first).

    Semantics are restic's ``forget``: ``keep_last`` keeps the N newest;
    ``keep_within`` keeps every item within the duration of the newest;
    ``keep_hourly`` (daily, weekly, monthly, yearly) keeps the newest item
    of each of the last N hours (days, ...) that have items, in local time,
    ISO weeks. The newest item is always kept; no option keeps everything.
    """
    if not items:
        return set()
    if policy.keeps_everything:
        return {key for key, _ in items}
    kept = {items[0][0]}
    kept.update(key for key, _ in items[: policy.keep_last])
    if policy.keep_within:
        newest = _local(items[0][1])
        try:
            cutoff: datetime.datetime | None = _minus(newest, parse_duration(policy.keep_within))
        except (ValueError, OverflowError):  # before the year 1 (keep within 9999y): everything is within
            cutoff = None
        kept.update(key for key, time_ns in items if cutoff is None or _local(time_ns) >= cutoff)
    buckets: list[tuple[int, Callable[[datetime.datetime], tuple[int, ...]]]] = [
        (policy.keep_hourly, lambda t: (t.year, t.month, t.day, t.hour)),
        (policy.keep_daily, lambda t: (t.year, t.month, t.day)),
        (policy.keep_weekly, lambda t: tuple(t.isocalendar())[:2]),
        (policy.keep_monthly, lambda t: (t.year, t.month)),
        (policy.keep_yearly, lambda t: (t.year,)),
    ]
    for count, bucket_of in buckets:
        seen: set[tuple[int, ...]] = set()
        for key, time_ns in items:
            if len(seen) >= count:
                break
            bucket = bucket_of(_local(time_ns))
            if bucket not in seen:
                seen.add(bucket)
                kept.add(key)
    return kept


def _local(time_ns: int) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(time_ns / 1e9).astimezone()
