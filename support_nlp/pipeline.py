"""`make run`: materialize the whole graph over every day of the configured source, then summarise.

Three runs, recorded in the Dagster instance at $DAGSTER_HOME so `make ui` shows them afterwards:
1. `features` over the range of days holding tweets, as one single-run backfill;
2. `training` (cluster_labels, classifier);
3. `predictions` over the same range, again as one run.
"""

from __future__ import annotations

import argparse
import sys
import time

import dagster as dg
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from support_nlp.definitions import defs
from support_nlp.partitions import daily_partitions


def days_with_data(rows_per_day: dict[str, int]) -> tuple[str, str]:
    """First and last partition keys that hold tweets; empty days in between run cheaply as empty."""
    valid = set(daily_partitions.get_partition_keys())
    days = sorted(day for day, count in rows_per_day.items() if count and day in valid)
    if not days:
        raise SystemExit("the source has no inbound tweets inside the partition range; nothing to run")
    return days[0], days[-1]


def run_job(name: str, instance: dg.DagsterInstance, tags: dict | None = None, **kwargs):
    started = time.perf_counter()
    print(f"\n=== {name} ===", flush=True)
    result = defs.resolve_job_def(name).execute_in_process(instance=instance, tags=tags or {}, **kwargs)
    print(f"=== {name}: {'SUCCESS' if result.success else 'FAILURE'} in {time.perf_counter() - started:,.1f} s ===")
    if not result.success:
        raise SystemExit(f"run {result.run_id} of {name} failed; see `make ui` for details")
    return result


def summarise(training, inference, first: str, last: str) -> str:
    categories = training.asset_value("cluster_labels")
    model = training.asset_value("classifier")
    lines = [f"\nCategories found: {categories.k} (silhouette on a sample {categories.silhouette:.3f})"]
    for c in sorted(categories.categories, key=lambda c: -c["size"]):
        keywords = ", ".join(word for word, _ in c["keywords"][:6])
        lines.append(f"  [{c['id']:>2}] {c['name']:<40} {c['size']:>6,} tweets  keywords: {keywords}")
    m = model.metrics
    lines += [
        "\nClassifier (agreement with pseudo-labels on a time-ordered holdout,"
        f" train {m['train_days'][0]}..{m['train_days'][1]}, score {m['holdout_days'][0]}..{m['holdout_days'][1]}):",
        f"  accuracy {m['agreement_accuracy']:.3f}, macro-F1 {m['agreement_macro_f1']:.3f}"
        f" on {m['holdout_rows']:,} held-out tweets",
    ]
    materializations = [
        event.event_specific_data.materialization
        for event in inference.get_asset_materialization_events()
        if event.asset_key == dg.AssetKey("predictions")
    ]
    predicted = sum(int(mat.metadata["dagster/row_count"].value) for mat in materializations)
    location = materializations[0].metadata["path"].value if materializations else "?"
    lines.append(f"\nPredictions: {predicted:,} tweets over {first}..{last}, written under {location}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.parse_args(argv)
    started = time.perf_counter()
    instance = dg.DagsterInstance.get()
    parsed = defs.resources["tweet_source"].parse(report=print)
    first, last = days_with_data(parsed.rows_per_day)
    print(f"Source {parsed.summary['source']}: {parsed.summary['inbound_rows']:,} inbound tweets, days {first}..{last}")
    day_range = {ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last}
    run_job("features", instance, day_range)
    training = run_job("training", instance)
    inference = run_job(
        "daily_inference",
        instance,
        day_range,
        asset_selection=[dg.AssetKey("predictions")],
    )
    print(summarise(training, inference, first, last))
    print(f"\nTotal {time.perf_counter() - started:,.1f} s. Runs are in the Dagster instance: `make ui` to browse.")


if __name__ == "__main__":
    sys.exit(main())
