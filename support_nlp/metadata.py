"""Shared helpers for assets: splitting frames into partitions and building UI metadata."""

from __future__ import annotations

import dagster as dg
import pandas as pd

PREVIEW_ROWS = 10


def split_by_day(frame: pd.DataFrame, days: list[str]) -> dict[str, pd.DataFrame]:
    """One frame per partition key; days with no rows get an empty frame with the same columns."""
    groups = dict(tuple(frame.groupby("day", sort=False))) if len(frame) else {}
    return {day: groups.get(day, frame.iloc[0:0]).reset_index(drop=True) for day in days}


def concat_days(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    ordered = [frames[day] for day in sorted(frames)]
    return pd.concat(ordered, ignore_index=True) if ordered else pd.DataFrame()


def preview_table(frame: pd.DataFrame, columns: list[str], rows: int = PREVIEW_ROWS) -> dg.MetadataValue:
    head = frame[columns].head(rows)
    return dg.MetadataValue.table(
        records=[dg.TableRecord({c: _plain(v) for c, v in record.items()}) for record in head.to_dict("records")],
        schema=dg.TableSchema(columns=[dg.TableColumn(c, str(frame[c].dtype)) for c in columns]),
    )


def _plain(value):
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    if pd.isna(value):
        return None
    return str(value)


def share_markdown(values: pd.Series, heading: str, top: int = 10) -> dg.MetadataValue:
    """Counts and shares of the most common values, the rest folded into one row."""
    counts = values.value_counts()
    if len(counts) > top:
        counts = pd.concat([counts.head(top), pd.Series({f"({len(counts) - top} more)": counts.iloc[top:].sum()})])
    table = pd.DataFrame({heading: counts.index, "tweets": counts.to_numpy()})
    table["share"] = (table["tweets"] / max(len(values), 1)).map("{:.1%}".format)
    return dg.MetadataValue.md(table.to_markdown(index=False))


def add_per_partition_metadata(context: dg.AssetExecutionContext, frames: dict, describe) -> None:
    """Attach `describe(value)` to each partition's own materialization (several in a single-run backfill)."""
    for partition_key, value in frames.items():
        context.add_asset_metadata(describe(value), partition_key=partition_key)


def record_run_totals(context: dg.AssetExecutionContext, totals: dict[str, int | float]) -> None:
    """Totals over every day a run covers belong to the run: logged and set as its tags (`support_nlp/<asset>.<key>`)
    rather than returned as metadata, which a single-run backfill repeats on every day's page."""
    asset = context.asset_key.to_user_string()
    readable = {key: f"{value:,}" for key, value in totals.items()}
    context.log.info(f"{asset} run totals: " + ", ".join(f"{key} {value}" for key, value in readable.items()))
    context.instance.add_run_tags(context.run_id, {f"support_nlp/{asset}.{key}": v for key, v in readable.items()})


def check_specs(asset: str, checks: dict[str, str], blocking: tuple[str, ...] = ()) -> list[dg.AssetCheckSpec]:
    """Specs of the checks an asset returns with its materialization; `checks` maps name to description.

    The specs are deliberately not partitioned: a single-run backfill evaluates each check once over all
    the run's days (per-day values are in the metadata), and partitioned specs would leave every other day's
    check planned but never evaluated.
    """
    return [
        dg.AssetCheckSpec(name, asset=asset, description=description, blocking=name in blocking)
        for name, description in checks.items()
    ]


def fitted_days_label(day: str, fitted_days: tuple[str, str]) -> str:
    """Whether a day's predictions are in-sample: figures like confidence are optimistic on days the model learned."""
    first, last = fitted_days
    if first <= day <= last:
        return "in-sample: the deployed classifier was fitted on this day's tweets"
    return f"out-of-time: after the classifier's training days ({first}..{last})"
