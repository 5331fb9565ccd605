"""Which stored days the current source still backs: what training may use, and what is stale.

Each stored day was ingested from one source file in one version (its content fingerprint). When the configured
source changes, stored days fall into groups: days the current version was ingested from; days ingested from an
earlier version of the same file that it still holds (usable, but their rows may have changed); days of other files
(day files dropped in the landing area); days with no record of their origin; and days the same file no longer
holds — stale, their predictions describe tweets the source has dropped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class DayOrigin:
    """The source file and the version of it that a day was last ingested from, and how many tweets it had."""

    source: str
    fingerprint: str
    rows: int


@dataclass(frozen=True)
class SourceDays:
    current_version: list[str] = field(default_factory=list)
    earlier_version: list[str] = field(default_factory=list)
    other_sources: list[str] = field(default_factory=list)
    unknown_origin: list[str] = field(default_factory=list)
    gone_from_source: list[str] = field(default_factory=list)

    @property
    def usable(self) -> list[str]:
        """Every day but those the source no longer holds."""
        return sorted(self.current_version + self.earlier_version + self.other_sources + self.unknown_origin)

    def summary(self) -> dict[str, str]:
        return {group: describe_days(days) for group, days in vars(self).items() if days}

    def warnings(self, source: str) -> list[str]:
        notes = {
            "gone_from_source": f"no longer in {source}: not used, their stored partitions are stale",
            "earlier_version": f"ingested from an earlier version of {source}: re-materialize them to pick up changes",
            "other_sources": f"ingested from other files than {source} (landed day files, a former source): used",
            "unknown_origin": "of unknown origin (no raw_tweets materialization recorded)",
        }
        return [
            f"{len(days)} day(s) {note}: {describe_days(days)}"
            for name, note in notes.items()
            if (days := getattr(self, name))
        ]


def describe_days(days: list[str], shown: int = 10) -> str:
    listed = ", ".join(days[:shown])
    return listed + (f" and {len(days) - shown} more" if len(days) > shown else "")


def classify_days(
    days: Iterable[str],
    origins: Mapping[str, DayOrigin],
    source: str,
    fingerprint: str,
    source_rows_per_day: Mapping[str, int],
) -> SourceDays:
    """Sort stored `days` by their `origins` against the current `source` version and the days it holds."""
    groups: dict[str, list[str]] = {name: [] for name in SourceDays.__dataclass_fields__}
    for day in sorted(days):
        origin = origins.get(day)
        if origin is None:
            group = "unknown_origin"
        elif origin.source != source:
            group = "other_sources"
        elif origin.rows and not source_rows_per_day.get(day):
            group = "gone_from_source"
        elif origin.fingerprint == fingerprint:
            group = "current_version"
        else:
            group = "earlier_version"
        groups[group].append(day)
    return SourceDays(**groups)
