"""`make run`: materialize the whole graph over every day of the configured source, then summarise.

Four runs, launched through the code location of workspace.yaml as `dagster job launch` and the UI launch them, so
each belongs to its job there (`make ui` shows them on the job pages and the overview), and recorded in the
Dagster instance at $DAGSTER_HOME:
1. `features` (raw_tweets, clean_text, embeddings) over the days holding tweets, as one single-run backfill;
2. `training` (cluster_labels, classifier, deployed_model: the pair is deployed when it passes its quality floor);
3. `daily_inference` over the same days, again as one run: as the schedule runs it, so its features steps find
   their work done (the parse and embedding caches) and predictions are added;
4. `trends` (category_trends, category_report): volume per category and day, spike checks, the HTML report.
The runs read the code location's configuration from the environment (SUPPORT_NLP_SOURCE, SUPPORT_NLP_STORAGE, ...).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
import unicodedata
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from support_nlp.core.category_schema import ALL_LANGUAGES, CategoryModel
from support_nlp.core.classifier import ClassifierModel
from support_nlp.core.seeds import overlap_note
from support_nlp.core.twcs import ParsedSource
from support_nlp.day_origins import remove_stale_days
from support_nlp.local_instance import fail_orphaned_runs
from support_nlp.partitions import daily_partitions

WORKSPACE = Path(__file__).resolve().parents[1] / "workspace.yaml"
CODE_LOCATION = "support_nlp"
POLL_SECONDS = 1.0
# A run still queued after this long has no daemon to start it.
MAX_QUEUED_SECONDS = 60
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
    seeds_without_enough_tweets: list[str]


def days_with_data(parsed: ParsedSource) -> tuple[str, str]:
    """First and last partition keys that hold tweets; empty days in between run cheaply as empty."""
    valid = set(daily_partitions.get_partition_keys())
    days = sorted(day for day, count in parsed.rows_per_day.items() if count and day in valid)
    if not parsed.rows_per_day and parsed.summary.rows_quarantined:
        reasons = ", ".join(f"{reason} {n:,}" for reason, n in parsed.summary.quarantined_by_reason.items())
        quarantined = parsed.summary.rows_quarantined
        raise ValueError(
            f"no inbound tweet was kept: {quarantined:,} rows quarantined ({reasons}); see {parsed.quarantine_path}"
        )
    if not days:
        raise ValueError("the source has no inbound tweets inside the partition range; nothing to run")
    return days[0], days[-1]


def launch_and_wait(
    instance: dg.DagsterInstance,
    job: str,
    tags: dict,
    report: Callable[[str], None],
    environment: Mapping[str, str],
    run_config: Mapping | None = None,
) -> dg.DagsterRun:
    """Launch `job` with `dagster job launch` against the workspace and relay its log lines until it finishes.

    `environment` must point DAGSTER_HOME at `instance`: the run is created, and writes its events, there."""
    run_id = str(uuid.uuid4())
    command = [sys.executable, "-m", "dagster", "job", "launch", "-w", str(WORKSPACE), "-l", CODE_LOCATION]
    command += [
        "-j",
        job,
        "--run-id",
        run_id,
        "--tags",
        json.dumps(tags),
        "--config-json",
        json.dumps({**CONSOLE_INFO_LOGS, **(run_config or {})}),
    ]
    # The launcher's code server outlives `dagster job launch` until the run ends, and the command waits for it:
    # the run's log lines are relayed while it runs, not after.
    with tempfile.TemporaryFile("w+") as output:
        launcher = subprocess.Popen(command, env=dict(environment), stdout=output, stderr=subprocess.STDOUT, text=True)
        relayed, launched_at = 0, time.monotonic()
        while True:
            run = instance.get_run_by_id(run_id)
            logs = instance.all_logs(run_id)
            for record in logs[relayed:]:
                if not record.is_dagster_event and record.level >= logging.INFO:
                    report(record.user_message)
            relayed = len(logs)
            if run is not None and run.is_finished:
                launcher.wait()
                return run
            if launcher.poll() and run is None:
                output.seek(0)
                raise RuntimeError(f"`dagster job launch -j {job}` failed:\n{output.read()[-5000:]}")
            if run and run.status == dg.DagsterRunStatus.QUEUED and time.monotonic() - launched_at > MAX_QUEUED_SECONDS:
                launcher.terminate()
                raise RuntimeError(
                    f"run {run_id} of {job} is still queued: this instance queues runs for a daemon. Run "
                    "`dagster-daemon run` beside it, or use an instance that starts runs at once "
                    "(deploy/laptop-dagster.yaml)"
                )
            time.sleep(POLL_SECONDS)


def materializations(instance: dg.DagsterInstance, run_id: str, asset: str) -> list[dg.AssetMaterialization]:
    events = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION).records
    found = [record.event_log_entry.asset_materialization for record in events]
    return [m for m in found if m is not None and m.asset_key == dg.AssetKey(asset)]


def failed_checks(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    events = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION).records
    evaluations = [record.event_log_entry.dagster_event.event_specific_data for record in events]
    return [evaluation.check_name for evaluation in evaluations if not evaluation.passed]


def run_pipeline(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    report: Callable[[str], None] = print,
    environment: Mapping[str, str] | None = None,
    run_config_by_job: Mapping[str, Mapping] | None = None,
) -> PipelineResult:
    """The four runs over the days of `defs`' tweet source; `environment` (default: this process's) configures
    the code location the runs load, so it must name the same source and storage as `defs`; `run_config_by_job`
    adds run config (e.g. `{"training": {"ops": {"classifier": {"config": {...}}}}}`)."""
    environment = {**(os.environ if environment is None else environment), "DAGSTER_HOME": instance.root_directory}
    # The bound resource, its environment variables resolved as in a run.
    parsed = defs.resources["tweet_source"].process_config_and_initialize().parse(report=report)
    first, last = days_with_data(parsed)
    remove_stale_days(defs, instance, parsed, report)
    kept, quarantined = parsed.summary.rows_inbound_kept, parsed.summary.rows_quarantined
    report(f"Source {parsed.summary.source}: {kept:,} inbound tweets ({quarantined:,} quarantined), {first}..{last}")
    day_range = {ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last}
    seconds: dict[str, float] = {}

    def run(name: str, tags: dict) -> str:
        started = time.perf_counter()
        report(f"\n=== {name} ===")
        finished = launch_and_wait(instance, name, tags, report, environment, (run_config_by_job or {}).get(name))
        seconds[name] = round(time.perf_counter() - started, 1)
        succeeded = finished.status == dg.DagsterRunStatus.SUCCESS
        report(f"=== {name}: {finished.status.value} in {seconds[name]:,.1f} s (run {finished.run_id}) ===")
        if not succeeded:
            raise RuntimeError(f"run {finished.run_id} of job {name} failed; open it in the Dagster UI for details")
        return finished.run_id

    run("features", day_range)
    training = run("training", {})
    inference = run("daily_inference", day_range)
    trends = run("trends", {})
    predicted = materializations(instance, inference, "predictions")
    deployed = defs.resources["model_store"].process_config_and_initialize().deployed()
    report_file = materializations(instance, trends, "category_report")[0].metadata["report_file"]
    spikes = materializations(instance, trends, "category_trends")[0].metadata["spikes"]
    return PipelineResult(
        first_day=first,
        last_day=last,
        categories=deployed.categories,
        classifier=deployed.classifier,
        rows_predicted=sum(int(m.metadata["dagster/row_count"].value) for m in predicted),
        predictions_path=str(predicted[0].metadata["path"].value),
        report_path=str(report_file.value),
        spikes=str(spikes.value),
        failed_checks=failed_checks(instance, trends),
        seconds_by_stage=seconds,
        seeds_without_enough_tweets=list(
            materializations(instance, training, "cluster_labels")[0].metadata["seeds_without_enough_tweets"].value
        ),
    )


def padded(text: str, columns: int) -> str:
    """`text` padded to `columns` terminal columns: wide characters (Japanese, Chinese) take two, so padding by
    character count would push a Japanese category's figures out of line."""
    width = sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)
    return text + " " * max(columns - width, 0)


def summary(result: PipelineResult) -> str:
    categories = result.categories
    clustered = len(categories.tweet_ids) + len(categories.outlier_ids)
    lines = [
        "\nMessage kinds of the training tweets: "
        + ", ".join(f"{kind} {share:.1%}" for kind, share in categories.message_kinds.items()),
        f"Categories found: {categories.k} in {clustered:,} thread-opening issue messages"
        f" (silhouette on a sample {categories.silhouette:.3f}); {categories.outlier_share:.1%} fit none: other."
        " Largest first:",
    ]
    for c in categories.by_size():
        keyphrases = ", ".join(phrase for phrase, _ in c.keywords[:5])
        language = f"[{c.language_group}] " if c.language_group not in ("en", ALL_LANGUAGES) else ""
        origin = "seed" if c.seed else "new"
        name = padded(language + c.name, 36)
        lines.append(f"  [{c.id:>2}] {origin:<4} {name} {c.size:>7,} tweets {c.share:>6.1%}  ({keyphrases})")
        if note := overlap_note(c):
            lines.append(f"{'':12}{note}: the report says why it is not the seed's and how to make it so")
    seeds = sum(1 for c in categories.categories if c.seed)
    lines.append(
        f"  {seeds} of the categories are the team's seeds (category map), {categories.k - seeds} are new: the report "
        "lists these as suggested categories."
        + (
            f" Seeds with too few tweets, left to discovery: {', '.join(result.seeds_without_enough_tweets)}."
            if result.seeds_without_enough_tweets
            else ""
        )
    )
    m = result.classifier.metrics
    lines += [
        "\nClassifier, agreement with the pseudo-labels on a time-ordered holdout"
        f" (train {m.train_days[0]}..{m.train_days[1]}, score {m.holdout_days[0]}..{m.holdout_days[1]}):",
        f"  accuracy {m.agreement_accuracy:.3f}, macro-F1 {m.agreement_macro_f1:.3f}"
        f" on {m.holdout_rows:,} held-out tweets",
        f"\nPredictions: {result.rows_predicted:,} tweets, {result.first_day}..{result.last_day},"
        f" written under {result.predictions_path}",
        "\nDays on which all traffic or a category spiked (tweets above median + 3 scaled MADs of the 28 days before;"
        " a category's threshold rises with the day's total traffic):",
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
    instance = dg.DagsterInstance.get()
    fail_orphaned_runs(instance)
    result = run_pipeline(defs, instance, report=lambda line: print(line, flush=True))
    print(summary(result))
    print(
        f"\nTotal {time.perf_counter() - started:,.1f} s. Runs are recorded in $DAGSTER_HOME: `make ui` to browse them."
    )


if __name__ == "__main__":
    main()
