"""`make run`: materialize the whole graph over every day of the configured source, then summarise.

Four runs, recorded in the Dagster instance at $DAGSTER_HOME so `make ui` shows them afterwards:
1. `features` (raw_tweets, clean_text, embeddings) over the days holding tweets, as one single-run backfill;
2. `training` (cluster_labels, classifier);
3. `daily_inference`'s `predictions` over the same days, again as one run;
4. `trends` (category_trends, category_report): volume per category and day, spike checks, the HTML report.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass

import dagster as dg
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from support_nlp.core.categories import CategoryModel
from support_nlp.core.classifier import ClassifierModel
from support_nlp.partitions import daily_partitions

# Dagster's console logger prints every DEBUG engine event; progress lines are INFO.
CONSOLE_INFO_LOGS = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}


@dataclass
class PipelineResult:
    first_day: str
    last_day: str
    categories: CategoryModel
    classifier: ClassifierModel
    rows_predicted: int
    predictions_path: str
    report_path: str
    spikes: str
    failed_checks: list[str]
    seconds_by_stage: dict[str, float]


def days_with_data(rows_per_day: dict[str, int]) -> tuple[str, str]:
    """First and last partition keys that hold tweets; empty days in between run cheaply as empty."""
    valid = set(daily_partitions.get_partition_keys())
    days = sorted(day for day, count in rows_per_day.items() if count and day in valid)
    if not days:
        raise ValueError("the source has no inbound tweets inside the partition range; nothing to run")
    return days[0], days[-1]


def run_pipeline(
    defs: dg.Definitions, instance: dg.DagsterInstance, report: Callable[[str], None] = print
) -> PipelineResult:
    parsed = defs.resources["tweet_source"].parse(report=report)
    first, last = days_with_data(parsed.rows_per_day)
    kept, quarantined = parsed.summary["rows_inbound_kept"], parsed.summary["rows_quarantined"]
    report(f"Source {parsed.summary['source']}: {kept:,} inbound tweets ({quarantined:,} quarantined), {first}..{last}")
    day_range = {ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last}
    seconds: dict[str, float] = {}

    def run(name: str, tags: dict, **kwargs) -> dg.ExecuteInProcessResult:
        started = time.perf_counter()
        report(f"\n=== {name} ===")
        result = defs.resolve_job_def(name).execute_in_process(
            run_config=CONSOLE_INFO_LOGS, instance=instance, tags=tags, raise_on_error=False, **kwargs
        )
        seconds[name] = round(time.perf_counter() - started, 1)
        report(f"=== {name}: {'SUCCESS' if result.success else 'FAILURE'} in {seconds[name]:,.1f} s ===")
        if not result.success:
            raise RuntimeError(f"run {result.run_id} of job {name} failed; open it in the Dagster UI for details")
        return result

    run("features", day_range)
    training = run("training", {})
    inference = run("daily_inference", day_range, asset_selection=[dg.AssetKey("predictions")])
    trends = run("trends", {})
    report = trends.asset_materializations_for_node("category_report")[0].metadata
    trend = trends.asset_materializations_for_node("category_trends")[0].metadata
    materializations = [
        event.event_specific_data.materialization
        for event in inference.get_asset_materialization_events()
        if event.asset_key == dg.AssetKey("predictions")
    ]
    return PipelineResult(
        first_day=first,
        last_day=last,
        categories=training.asset_value("cluster_labels"),
        classifier=training.asset_value("classifier"),
        rows_predicted=sum(int(m.metadata["dagster/row_count"].value) for m in materializations),
        predictions_path=str(materializations[0].metadata["path"].value),
        report_path=str(report["report_file"].value),
        spikes=str(trend["spikes"].value),
        failed_checks=[e.check_name for e in trends.get_asset_check_evaluations() if not e.passed],
        seconds_by_stage=seconds,
    )


def summary(result: PipelineResult) -> str:
    categories = result.categories
    lines = [f"\nCategories found: {categories.k} (silhouette on a sample {categories.silhouette:.3f}), largest first:"]
    for c in sorted(categories.categories, key=lambda c: -c["size"]):
        keyphrases = ", ".join(phrase for phrase, _ in c["keywords"][:5])
        lines.append(f"  [{c['id']:>2}] {c['name']:<32} {c['size']:>7,} tweets {c['share']:>6.1%}  ({keyphrases})")
    m = result.classifier.metrics
    lines += [
        "\nClassifier, agreement with the pseudo-labels on a time-ordered holdout"
        f" (train {m['train_days'][0]}..{m['train_days'][1]}, score {m['holdout_days'][0]}..{m['holdout_days'][1]}):",
        f"  accuracy {m['agreement_accuracy']:.3f}, macro-F1 {m['agreement_macro_f1']:.3f}"
        f" on {m['holdout_rows']:,} held-out tweets",
        f"\nPredictions: {result.rows_predicted:,} tweets, {result.first_day}..{result.last_day},"
        f" written under {result.predictions_path}",
        "\nDays on which a category spiked (tweets above median + 3 scaled MADs of the 28 days before):",
        result.spikes,
        "Warnings on the newest day: " + (", ".join(result.failed_checks) or "none"),
        f"\nThe category report: {result.report_path}",
        "Seconds per run: " + ", ".join(f"{name} {s:,.1f}" for name, s in result.seconds_by_stage.items()),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args(argv)
    from support_nlp.definitions import defs

    started = time.perf_counter()
    result = run_pipeline(defs, dg.DagsterInstance.get(), report=lambda line: print(line, flush=True))
    print(summary(result))
    print(
        f"\nTotal {time.perf_counter() - started:,.1f} s. Runs are recorded in $DAGSTER_HOME: `make ui` to browse them."
    )


if __name__ == "__main__":
    main()
