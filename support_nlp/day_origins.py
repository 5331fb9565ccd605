"""Where each stored day came from, read from the instance: the days training may use, and removing stale days.

raw_tweets records on every partition it writes the source file, its fingerprint and the day's row count; the
latest record of a day is the origin of everything derived from it (core/source_days.py sorts days by origin).
"""

from __future__ import annotations

from collections.abc import Callable, Collection

import dagster as dg

from support_nlp.core.source_days import DayOrigin, SourceDays, classify_days, describe_days
from support_nlp.core.twcs import ParsedSource

RAW_TWEETS = dg.AssetKey("raw_tweets")
RECORDS_PER_PAGE = 1000


def day_origins(instance: dg.DagsterInstance, days: Collection[str]) -> dict[str, DayOrigin]:
    """The origin of each of `days` that raw_tweets recorded, from its latest materialization of the day."""
    origins: dict[str, DayOrigin] = {}
    remaining, cursor = set(days), None
    while remaining:
        page = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=RAW_TWEETS, asset_partitions=sorted(remaining)),
            limit=RECORDS_PER_PAGE,
            cursor=cursor,
        )
        for record in page.records:
            materialization = record.asset_materialization
            if materialization is None or materialization.partition not in remaining:
                continue
            remaining.discard(materialization.partition)
            metadata = materialization.metadata
            if "source_fingerprint" in metadata:
                origins[materialization.partition] = DayOrigin(
                    source=str(metadata["source"].value),
                    fingerprint=str(metadata["source_fingerprint"].value),
                    rows=int(metadata["dagster/row_count"].value),
                )
        if not page.has_more:
            break
        cursor = page.cursor
    return origins


def sort_days(instance: dg.DagsterInstance, days: Collection[str], parsed: ParsedSource) -> SourceDays:
    summary = parsed.summary
    return classify_days(days, day_origins(instance, days), summary.source, summary.fingerprint, parsed.rows_per_day)


def training_days(context: dg.AssetExecutionContext, days: Collection[str], parsed: ParsedSource) -> SourceDays:
    """The stored `days` sorted by origin, each group training should not take silently logged as a warning;
    train on `.usable`."""
    sorted_days = sort_days(context.instance, days, parsed)
    for warning in sorted_days.warnings(parsed.summary.source):
        context.log.warning(warning)
    return sorted_days


def remove_stale_days(
    defs: dg.Definitions, instance: dg.DagsterInstance, parsed: ParsedSource, report: Callable[[str], None] = print
) -> list[str]:
    """Delete every daily asset's stored partitions of the days the source no longer holds, and record an
    observation on each (`stale_partition_removed`), since Dagster's SQL storages cannot wipe single partitions:
    the partition keeps its materialization in the UI, its Events tab says why its file is gone."""
    source = parsed.summary.source
    stale = sort_days(instance, instance.get_materialized_partitions(RAW_TWEETS), parsed).gone_from_source
    removed: set[str] = set()
    for assets_def in defs.resolve_asset_graph().assets_defs:
        if assets_def.partitions_def is None:
            continue
        for asset_key in assets_def.keys:
            factory = defs.resources[assets_def.get_io_manager_key_for_asset_key(asset_key)]
            for day in factory.process_config_and_initialize().remove_partitions(asset_key, stale):
                instance.report_runless_asset_event(
                    dg.AssetObservation(
                        asset_key,
                        partition=day,
                        description=f"removed: {source} no longer holds this day",
                        metadata={"stale_partition_removed": True, "source": source},
                    )
                )
                removed.add(day)
    if removed:
        report(
            f"Removed the stored partitions of {len(removed)} day(s) no longer in the source: "
            f"{describe_days(sorted(removed))}"
        )
    return sorted(removed)
