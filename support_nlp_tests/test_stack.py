"""The deployment, tested for real on 127.0.0.1: PostgreSQL (the distribution's package), an S3 server (SeaweedFS),
the code location as a gRPC code server, dagster-webserver and dagster-daemon, configured by deploy/local/dagster.yaml.
Runs are launched through the GraphQL API, a schedule ticks in the daemon, and the UI is checked in headless
Chromium. Also validated here without Docker or AWS: the compose file, the Dockerfile and the deploy/ variants.

Logs of every process and the UI screenshot are kept in test-artifacts/stack/ (git-ignored; CI uploads it).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
import yaml
from dagster._config import process_config
from dagster._core.instance.config import dagster_instance_config
from dagster._core.storage.config import pg_config
from dagster._core.storage.dagster_run import DagsterRun
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG
from dagster._core.workspace.config_schema import process_workspace_config
from dagster._serdes.config_class import ConfigurableClassData
from dagster_aws.ecs import EcsRunLauncher
from dagster_aws.s3.compute_log_manager import S3ComputeLogManager
from dagster_docker import DockerRunLauncher
from dagster_k8s import K8sRunLauncher
from dagster_k8s import launcher as k8s_launcher
from dagster_k8s.job import construct_dagster_k8s_job
from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage
from dagster_postgres.utils import pg_url_from_config

from support_nlp.core.artifacts import artifact_from_bytes
from support_nlp.plots import CJK_FONT_PACKAGE
from support_nlp_tests.conftest import SLICE_DAYS, SLICE_RANGE
from support_nlp_tests.s3_server import REGION, S3Server
from support_nlp_tests.stack.browser import (
    asset_node,
    check_summary,
    headless_chromium,
    open_expanded_asset_graph,
    read_until,
    wait_in_browser,
)
from support_nlp_tests.stack.code_location import EVERY_MINUTE_SCHEDULE
from support_nlp_tests.stack.dagster_stack import REPOSITORY_ROOT, DagsterStack, dagster_stack
from support_nlp_tests.stack.postgres import PostgresServer, postgres
from support_nlp_tests.stack.processes import wait_until
from support_nlp_tests.system_binaries import missing_system_binary

ARTIFACTS = REPOSITORY_ROOT / "test-artifacts" / "stack"
DEPLOY = REPOSITORY_ROOT / "deploy"
VARIANTS = ("local", "docker", "aws", "k8s")
ASSETS = (
    "known_brands",
    "raw_tweets",
    "clean_text",
    "embeddings",
    "cluster_labels",
    "classifier",
    "deployed_model",
    "predictions",
    "category_trends",
    "category_report",
)
DAILY_FILES = {"raw_tweets": "parquet", "clean_text": "parquet", "embeddings": "npz"}
DAILY_ASSETS = {**DAILY_FILES, "predictions": "parquet"}
# The stack's code location splits backfills into runs of this many days (SUPPORT_NLP_BACKFILL_DAYS_PER_RUN).
BACKFILL_DAYS_PER_RUN = 1
# deploy/local/dagster.yaml: runs at once in all, and of them runs of backfills.
MAX_CONCURRENT_RUNS = 3
MAX_CONCURRENT_BACKFILL_RUNS = 2
BACKFILL_TIMEOUT_S = 600
STORAGE_PREFIX = "stack"
COMPUTE_LOG_PREFIX = "dagster/compute-logs"
# Only the QueuedRunCoordinator enqueues; the daemon then starts the run.
QUEUED_THEN_STARTED = [dg.DagsterEventType.RUN_ENQUEUED, dg.DagsterEventType.RUN_STARTING]
RUN_TIMEOUT_S = 300
# The every-minute schedule ticks at the next minute boundary; on a loaded 2-core machine the daemon's first
# evaluation can lag well behind it, so the wait allows several minutes.
TICK_TIMEOUT_S = 300


@dataclass(frozen=True)
class LiveStack:
    dagster: DagsterStack
    s3: S3Server
    env: dict[str, str]


def stack_environment(postgres_server: PostgresServer, s3: S3Server, source: str, home: Path) -> dict[str, str]:
    """The processes' environment: the deployment's variables only, none inherited from whoever runs the tests."""
    inherited = {
        name: value for name, value in os.environ.items() if not name.startswith(("SUPPORT_NLP_", "DAGSTER_", "AWS_"))
    }
    return {
        **inherited,
        **postgres_server.environment(),
        "DAGSTER_COMPUTE_LOG_BUCKET": s3.bucket,
        "SUPPORT_NLP_STORAGE": f"s3://{s3.bucket}/{STORAGE_PREFIX}",
        "SUPPORT_NLP_SOURCE": source,
        "SUPPORT_NLP_HOME": str(home),
        "SUPPORT_NLP_S3_ENDPOINT_URL": s3.endpoint_url,
        "SUPPORT_NLP_S3_REGION": REGION,
        "SUPPORT_NLP_BACKFILL_DAYS_PER_RUN": str(BACKFILL_DAYS_PER_RUN),
        "AWS_ACCESS_KEY_ID": s3.access_key,
        "AWS_SECRET_ACCESS_KEY": s3.secret_key,
    }


@pytest.fixture(scope="module")
def artifacts() -> Path:
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    (ARTIFACTS / "logs").mkdir(parents=True)
    return ARTIFACTS


@pytest.fixture(scope="module")
def live_stack(tmp_path_factory, real_slice_csv, artifacts, s3_server) -> Iterator[LiveStack]:
    """Every server of the deployment, started in order and stopped in reverse order whatever the tests did."""
    root = tmp_path_factory.mktemp("stack")
    logs = artifacts / "logs"
    with contextlib.ExitStack() as stack:
        postgres_server = stack.enter_context(postgres(logs))
        s3 = s3_server
        source_key = "sources/twcs_slice.csv.gz"
        s3.client().upload_file(real_slice_csv, s3.bucket, source_key)
        env = stack_environment(postgres_server, s3, f"s3://{s3.bucket}/{source_key}", root / "support_nlp_home")
        dagster = stack.enter_context(dagster_stack(root, env, logs))
        yield LiveStack(dagster, s3, env)


def run_to_success(stack: LiveStack, run_id: str) -> dict:
    run = stack.dagster.graphql.wait_for_run(run_id, RUN_TIMEOUT_S, stack.dagster.processes)
    assert run["status"] == "SUCCESS", stack.dagster.graphql.error_messages(run_id)
    return run


@pytest.fixture(scope="module")
def training_runs(live_stack) -> dict[str, dict]:
    """features over the slice's days as one run, then training: both launched through GraphQL, as the UI does."""
    graphql = live_stack.dagster.graphql
    first, last = SLICE_RANGE
    features = graphql.launch_run(
        "features", {ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last}
    )
    runs = {"features": run_to_success(live_stack, features)}
    runs["training"] = run_to_success(live_stack, graphql.launch_run("training"))
    return runs


@dataclass(frozen=True)
class ScheduledRun:
    tick: dict
    run: dict
    partition: str


def first_tick_with_a_run(stack: LiveStack) -> dict | None:
    ticks = stack.dagster.graphql.schedule_state(EVERY_MINUTE_SCHEDULE)["ticks"]
    assert all(tick["status"] != "FAILURE" for tick in ticks), ticks
    return next((tick for tick in reversed(ticks) if tick["status"] == "SUCCESS" and tick["runIds"]), None)


@pytest.fixture(scope="module")
def scheduled_run(live_stack, training_runs) -> ScheduledRun:
    """Start the every-minute copy of the daily schedule once a classifier is stored, and follow its first run."""
    graphql, processes = live_stack.dagster.graphql, live_stack.dagster.processes
    assert graphql.start_schedule(EVERY_MINUTE_SCHEDULE) == "RUNNING"
    tick = wait_until(lambda: first_tick_with_a_run(live_stack), "a schedule tick", TICK_TIMEOUT_S, processes)
    [run_id] = tick["runIds"]
    run = run_to_success(live_stack, run_id)
    tags = {tag["key"]: tag["value"] for tag in run["tags"]}
    return ScheduledRun(tick, run, tags["dagster/partition"])


@pytest.mark.stack
def test_a_materialization_launched_through_graphql_writes_every_asset_to_s3(live_stack, training_runs):
    days = pd.date_range(*SLICE_RANGE).strftime("%Y-%m-%d")
    expected = {f"{STORAGE_PREFIX}/{asset}/{day}.{suffix}" for asset, suffix in DAILY_FILES.items() for day in days}
    expected |= {f"{STORAGE_PREFIX}/cluster_labels.npz", f"{STORAGE_PREFIX}/classifier.npz"}
    assert expected <= live_stack.s3.keys(f"{STORAGE_PREFIX}/")


@pytest.mark.stack
def test_runs_are_queued_and_recorded_in_postgres(live_stack, training_runs, monkeypatch):
    """The instance the daemon and webserver use, loaded here from the same dagster.yaml: Postgres storage holds the
    runs launched over GraphQL, each enqueued by the QueuedRunCoordinator and started by the daemon."""
    for name, value in live_stack.env.items():
        monkeypatch.setenv(name, value)
    with dg.DagsterInstance.from_config(str(live_stack.dagster.dagster_home)) as instance:
        assert isinstance(instance.run_storage, PostgresRunStorage)
        assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
        assert isinstance(instance.schedule_storage, PostgresScheduleStorage)
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == MAX_CONCURRENT_RUNS
        assert (
            instance.run_monitoring_enabled and instance.run_retries_enabled and instance.run_retries_max_retries == 2
        )
        assert not instance.telemetry_enabled
        assert isinstance(instance.compute_log_manager, S3ComputeLogManager)
        for run in training_runs.values():
            stored = instance.get_run_by_id(run["runId"])
            assert stored is not None and stored.status == dg.DagsterRunStatus.SUCCESS
            records = instance.get_records_for_run(run["runId"], of_type=set(QUEUED_THEN_STARTED)).records
            assert [record.event_log_entry.dagster_event_type for record in records] == QUEUED_THEN_STARTED


@pytest.mark.stack
def test_step_logs_are_uploaded_to_s3(live_stack, training_runs):
    for run in training_runs.values():
        assert live_stack.s3.keys(f"{COMPUTE_LOG_PREFIX}/storage/{run['runId']}/"), run["jobName"]


@pytest.mark.stack
def test_the_daily_schedule_ticks_and_produces_a_predictions_partition(live_stack, scheduled_run):
    tick_time = datetime.fromtimestamp(scheduled_run.tick["timestamp"], UTC)
    # The production schedule runs the day that ended before the tick.
    assert scheduled_run.partition == (tick_time - timedelta(days=1)).strftime("%Y-%m-%d")
    assert scheduled_run.run["jobName"] == "daily_inference"
    launched = live_stack.dagster.graphql.runs_with_tag("dagster/schedule_name", EVERY_MINUTE_SCHEDULE)
    assert [run["runId"] for run in launched] == [scheduled_run.run["runId"]]
    materialized = live_stack.dagster.graphql.materialized_partitions("predictions", [scheduled_run.partition])
    assert [event["runId"] for event in materialized] == [scheduled_run.run["runId"]]
    stored = live_stack.s3.read(f"{STORAGE_PREFIX}/predictions/{scheduled_run.partition}.parquet")
    # A day long after the sample's tweets: classified, and empty.
    assert pd.read_parquet(io.BytesIO(stored)).empty


def expected_check_summary(node: dict) -> str:
    """What the asset graph should say about a node's checks, from the checks' results in the API."""
    executions = [check["executionForLatestMaterialization"] for check in node["assetChecksOrError"]["checks"]]
    passed = sum(execution is not None and execution["status"] == "SUCCEEDED" for execution in executions)
    return f"{passed} / {len(executions)} Passed"


@pytest.mark.stack
def test_the_ui_shows_the_asset_graph_with_check_results(live_stack, scheduled_run, artifacts, tmp_path):
    nodes = live_stack.dagster.graphql.asset_nodes()
    assert set(nodes) == set(ASSETS)
    checked = [asset for asset in ASSETS if nodes[asset]["assetChecksOrError"]["checks"]]
    assert set(checked) == set(ASSETS) - {"deployed_model", "category_report"}
    expected = {asset: expected_check_summary(nodes[asset]) for asset in checked}
    with headless_chromium(tmp_path / "chromium-profile", artifacts / "logs") as driver:
        open_expanded_asset_graph(
            driver, live_stack.dagster.webserver_url, {node["groupName"] for node in nodes.values()}
        )
        try:
            for asset in ASSETS:
                wait_in_browser(driver, lambda d, asset=asset: asset_node(d, asset), f"asset node {asset}")
        except TimeoutError:
            driver.save_screenshot(str(artifacts / "asset_graph_timeout.png"))
            raise
        shown = read_until(driver, lambda d: {asset: check_summary(d, asset) for asset in checked}, expected)
        screenshot = artifacts / "asset_graph.png"
        assert driver.save_screenshot(str(screenshot))
    assert shown == expected
    assert screenshot.stat().st_size > 10_000


def daily_outputs(s3: S3Server, days: list[str]) -> dict[tuple[str, str], pd.DataFrame]:
    """Every daily asset's stored value per day; embeddings as a frame of tweet ids, encoder and each vector's bytes
    (compared bit for bit)."""
    outputs = {}
    for asset, suffix in DAILY_ASSETS.items():
        for day in days:
            stored = s3.read(f"{STORAGE_PREFIX}/{asset}/{day}.{suffix}")
            if suffix == "parquet":
                outputs[asset, day] = pd.read_parquet(io.BytesIO(stored))
            else:
                batch = artifact_from_bytes(stored)
                outputs[asset, day] = pd.DataFrame(
                    {
                        "tweet_id": batch.tweet_ids,
                        "encoder": batch.model,
                        "vector": [row.tobytes() for row in batch.vectors],
                    }
                )
    return outputs


def most_runs_at_once(runs: list[dict]) -> int:
    """The largest number of the runs that were running at the same moment, from their start and end times."""
    edges = sorted([(run["startTime"], 1) for run in runs] + [(run["endTime"], -1) for run in runs])
    running_now, most = 0, 0
    for _, change in edges:  # at equal times an end sorts first: runs that only touch do not overlap
        running_now += change
        most = max(most, running_now)
    return most


def days_of(run: dict) -> tuple[str, str]:
    """The first and last day a run covers: a range of days, or a single day."""
    tags = {tag["key"]: tag["value"] for tag in run["tags"]}
    if ASSET_PARTITION_RANGE_START_TAG in tags:
        return tags[ASSET_PARTITION_RANGE_START_TAG], tags[ASSET_PARTITION_RANGE_END_TAG]
    return tags["dagster/partition"], tags["dagster/partition"]


def delete_prefix(s3: S3Server, prefix: str) -> None:
    for key in s3.keys(prefix):
        s3.client().delete_object(Bucket=s3.bucket, Key=key)


@dataclass(frozen=True)
class Backfill:
    reference: dict[tuple[str, str], pd.DataFrame]
    runs: list[dict]
    outputs: dict[tuple[str, str], pd.DataFrame]


@pytest.fixture(scope="module")
def multi_run_backfill(live_stack, training_runs, artifacts) -> Backfill:
    """The daily chain over the slice's days twice: as one run, then, with those outputs and the embedding cache
    deleted, as a backfill of the same assets and days that Dagster splits into one run per day."""
    graphql, processes = live_stack.dagster.graphql, live_stack.dagster.processes
    days = SLICE_DAYS
    first, last = SLICE_RANGE
    reference_id = graphql.launch_run(
        "daily_inference", {ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last}
    )
    reference_run = run_to_success(live_stack, reference_id)
    reference = daily_outputs(live_stack.s3, days)
    for asset, suffix in DAILY_ASSETS.items():
        for day in days:
            live_stack.s3.client().delete_object(
                Bucket=live_stack.s3.bucket, Key=f"{STORAGE_PREFIX}/{asset}/{day}.{suffix}"
            )
    # A cold cache: the backfill's runs embed every text again and write the cache side by side.
    delete_prefix(live_stack.s3, f"{STORAGE_PREFIX}/embedding_cache/")
    backfill_id = graphql.launch_asset_backfill(list(DAILY_ASSETS), days)
    backfill = graphql.wait_for_backfill(backfill_id, BACKFILL_TIMEOUT_S, processes)
    runs = graphql.runs_with_tag("dagster/backfill", backfill_id)
    assert backfill["status"] in ("COMPLETED", "COMPLETED_SUCCESS"), (backfill, runs)
    result = Backfill(reference, runs, daily_outputs(live_stack.s3, days))
    figures = {
        "runs": len(runs),
        "most_runs_at_once": most_runs_at_once(runs),
        "backfill_wall_s": round(max(r["endTime"] for r in runs) - min(r["startTime"] for r in runs), 1),
        "one_run_wall_s": round(reference_run["endTime"] - reference_run["startTime"], 1),
        "days": len(days),
    }
    # The figures docs/performance.md records for the multi-run backfill.
    print(f"multi-run backfill on the stack: {figures}")
    (artifacts / "multi_run_backfill.json").write_text(json.dumps(figures, indent=1))
    return result


@pytest.mark.stack
def test_a_backfill_runs_as_several_runs_at_once_under_the_queue_limits(multi_run_backfill):
    runs = multi_run_backfill.runs
    assert all(run["status"] == "SUCCESS" for run in runs), runs
    assert len(runs) == len(SLICE_DAYS) // BACKFILL_DAYS_PER_RUN >= 4
    assert sorted(days_of(run) for run in runs) == [(day, day) for day in SLICE_DAYS]
    assert 2 <= most_runs_at_once(runs) <= MAX_CONCURRENT_BACKFILL_RUNS


@pytest.mark.stack
def test_a_multi_run_backfill_writes_what_one_run_writes(multi_run_backfill):
    assert multi_run_backfill.outputs.keys() == multi_run_backfill.reference.keys()
    for key, reference in multi_run_backfill.reference.items():
        pd.testing.assert_frame_equal(multi_run_backfill.outputs[key], reference, obj=str(key))


@pytest.mark.stack
def test_a_multi_run_backfill_loses_and_repeats_no_row(multi_run_backfill, real_inbound, live_stack):
    outputs = multi_run_backfill.outputs
    days = sorted({day for _, day in outputs})
    slice_ids = real_inbound.loc[real_inbound["day"].isin(SLICE_DAYS), "tweet_id"].astype("int64")
    raw_ids = pd.concat([outputs["raw_tweets", day]["tweet_id"] for day in days])
    assert raw_ids.is_unique and set(raw_ids) == set(slice_ids)
    for day, clean in zip(days, (outputs["clean_text", day] for day in days), strict=True):
        embedded = clean.loc[~clean["is_empty"], "tweet_id"].tolist()
        assert outputs["embeddings", day]["tweet_id"].tolist() == embedded
        assert outputs["predictions", day]["tweet_id"].tolist() == embedded
    # Each day of each asset was written by exactly one run of the backfill.
    backfill_runs = {run["runId"] for run in multi_run_backfill.runs}
    for asset in DAILY_ASSETS:
        events = live_stack.dagster.graphql.materialized_partitions(asset, days)
        by_backfill = sorted(event["partition"] for event in events if event["runId"] in backfill_runs)
        assert by_backfill == days, asset


# ---------------------------------------------------------------------------------- deploy/*/dagster.yaml


def referenced_env_vars(config) -> set[str]:
    if isinstance(config, dict):
        if set(config) == {"env"}:
            return {config["env"]}
        return set().union(*(referenced_env_vars(value) for value in config.values()))
    if isinstance(config, list):
        return set().union(*(referenced_env_vars(value) for value in config))
    return set()


def placeholder(name: str) -> str:
    """A value of the right shape for a setting read from the environment."""
    for suffix, value in {
        "_PORT": "5432",
        "_URL": "http://s3.example.internal:8333",
        "_REGION": "eu-west-1",
        "_ARN": "arn:aws:iam::123456789012:role/support-nlp",
    }.items():
        if name.endswith(suffix):
            return value
    return f"placeholder-{name.lower()}"


def load_variant(variant: str) -> dict:
    return yaml.safe_load((DEPLOY / variant / "dagster.yaml").read_text())


@pytest.fixture
def deployment_env(monkeypatch):
    """Placeholders for every variable the deploy variants read, plus the region boto3 clients need."""
    for variant in VARIANTS:
        for name in referenced_env_vars(load_variant(variant)):
            monkeypatch.setenv(name, placeholder(name))
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")


def instantiate(section: dict):
    """Build the configured class exactly as DagsterInstance does: config checked against the class's schema,
    environment variables resolved, the constructor run."""
    return ConfigurableClassData(
        section["module"], section["class"], yaml.safe_dump(section.get("config", {}))
    ).rehydrate(as_type=object)


@pytest.mark.parametrize("variant", VARIANTS)
def test_deploy_variant_is_a_valid_instance_config(variant, deployment_env):
    config, _ = dagster_instance_config(str(DEPLOY / variant))
    storage = process_config(pg_config(), config["storage"]["postgres"])
    assert storage.success, storage.errors
    assert pg_url_from_config(storage.value).startswith("postgresql+psycopg2://")
    assert type(instantiate(config["run_coordinator"])).__name__ == "QueuedRunCoordinator"
    assert isinstance(instantiate(config["compute_logs"]), S3ComputeLogManager)
    assert config["telemetry"] == {"enabled": False} and config["nux"] == {"enabled": False}
    assert config["run_monitoring"]["enabled"] and config["run_retries"]["enabled"]


def test_each_variant_launches_runs_its_own_way(deployment_env):
    launchers = {variant: load_variant(variant).get("run_launcher") for variant in VARIANTS}
    # One host: the code server starts each run as a process (Dagster's default launcher).
    assert launchers["local"] is None
    assert isinstance(instantiate(launchers["docker"]), DockerRunLauncher)
    ecs = instantiate(launchers["aws"])
    assert isinstance(ecs, EcsRunLauncher)
    assert ecs.task_definition_dict["requires_compatibilities"] == ["FARGATE"]
    assert [secret["name"] for secret in ecs.secrets] == ["DAGSTER_PG_PASSWORD"]
    # The password reaches run tasks from Secrets Manager only, never as a plain environment variable.
    assert "DAGSTER_PG_PASSWORD" not in ecs.env_vars


def kubernetes_run_pod(launcher: K8sRunLauncher, tags: dict[str, str]):
    """The pod spec of the Job the launcher would create for a run with `tags`."""
    run = DagsterRun(job_name="features", run_id="0" * 32, tags=tags)
    context = launcher.get_container_context_for_run(run)
    job = construct_dagster_k8s_job(
        job_config=context.get_k8s_job_config(job_image="support-nlp:test", run_launcher=launcher),
        args=["dagster", "api", "execute_run"],
        job_name="dagster-run-test",
        component="run_worker",
        user_defined_k8s_config=context.run_k8s_config,
    )
    return job.spec.template.spec


def test_the_kubernetes_variant_runs_each_run_as_a_job_and_gpu_tags_reach_the_pod(deployment_env, monkeypatch):
    # No cluster here: the launcher would read the in-cluster service account; everything else is constructed.
    monkeypatch.setattr(k8s_launcher, "load_kubernetes_config", lambda **kwargs: None)
    launcher = instantiate(load_variant("k8s")["run_launcher"])
    assert isinstance(launcher, K8sRunLauncher)
    cpu_pod = kubernetes_run_pod(launcher, {})
    [container] = cpu_pod.containers
    # The password reaches run pods from a Kubernetes secret only.
    [password] = [variable for variable in container.env if variable.name == "DAGSTER_PG_PASSWORD"]
    assert password.value is None and password.value_from.secret_key_ref.name == launcher.postgres_password_secret
    assert "nvidia.com/gpu" not in (container.resources.limits or {}) and not cpu_pod.node_selector
    gpu_tags = yaml.safe_load((DEPLOY / "k8s" / "gpu-run-tags.yaml").read_text())
    gpu_pod = kubernetes_run_pod(launcher, {key: json.dumps(value) for key, value in gpu_tags.items()})
    [gpu_container] = gpu_pod.containers
    assert gpu_container.resources.limits["nvidia.com/gpu"] == "1"
    assert gpu_pod.node_selector and [toleration.key for toleration in gpu_pod.tolerations] == ["nvidia.com/gpu"]
    misspelt = {"dagster-k8s/config": json.dumps({"container_confg": {}})}
    with pytest.raises(dg.DagsterInvalidConfigError, match="container_confg"):
        kubernetes_run_pod(launcher, misspelt)


def test_a_misspelt_setting_is_rejected(tmp_path, deployment_env):
    config = load_variant("aws")
    config["run_retries"]["max_retry"] = config["run_retries"].pop("max_retries")
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(dg.DagsterInvalidConfigError, match="max_retry"):
        dagster_instance_config(str(tmp_path))
    launcher = load_variant("aws")["run_launcher"]
    launcher["config"]["task_definiton"] = launcher["config"].pop("task_definition")
    with pytest.raises(dg.DagsterInvalidConfigError, match="task_definiton"):
        instantiate(launcher)


def test_variants_share_the_platform_settings():
    """Only the run launcher, the concurrency limits and the log store differ by where Dagster runs."""
    local, *others = (load_variant(variant) for variant in VARIANTS)
    shared = ("run_coordinator", "run_monitoring", "run_retries", "retention", "telemetry", "nux")
    for other in others:
        assert {key: other[key] for key in shared} == {key: local[key] for key in shared}
        database = {key: value for key, value in other["storage"]["postgres"]["postgres_db"].items() if key != "params"}
        assert database == local["storage"]["postgres"]["postgres_db"]


# ---------------------------------------------------------------------------------- docker-compose.yaml


def compose(env_file: Path, *args: str) -> subprocess.CompletedProcess:
    """Debian's docker-compose on this repository's compose file; no Docker engine is needed to resolve it."""
    if shutil.which("docker-compose") is None:
        missing_system_binary("docker-compose", "run `make system-deps` (Debian package docker-compose)")
    return subprocess.run(
        ["docker-compose", "--env-file", str(env_file), "--file", str(REPOSITORY_ROOT / "docker-compose.yaml"), *args],
        cwd=REPOSITORY_ROOT,
        # Only the env file may supply settings: the test must not pass because of the caller's environment.
        env={"PATH": os.environ["PATH"]},
        capture_output=True,
        text=True,
    )


@pytest.fixture(scope="module")
def example_env(tmp_path_factory) -> Path:
    env_file = tmp_path_factory.mktemp("compose") / ".env"
    shutil.copy(REPOSITORY_ROOT / ".env.example", env_file)
    return env_file


@pytest.fixture(scope="module")
def resolved_compose(example_env) -> dict:
    resolved = compose(example_env, "config")
    assert resolved.returncode == 0, resolved.stderr
    return yaml.safe_load(resolved.stdout)


def test_compose_defines_the_stack(resolved_compose):
    services = resolved_compose["services"]
    assert set(services) == {"postgres", "s3", "code_location", "webserver", "daemon"}
    assert services["postgres"]["healthcheck"]["test"]
    assert services["code_location"]["depends_on"]["postgres"] == {"condition": "service_healthy"}
    assert "code-server" in services["code_location"]["command"]
    assert services["webserver"]["ports"] == ["127.0.0.1:3000:3000/tcp"]
    assert services["daemon"]["command"][:2] == ["dagster-daemon", "run"]
    # Every published port is bound to the host's loopback only.
    published = [port for service in services.values() for port in service.get("ports", [])]
    assert all(port.startswith("127.0.0.1:") for port in published)


def test_compose_takes_credentials_from_the_env_file_only(resolved_compose, example_env, tmp_path):
    """Every secret in docker-compose.yaml is a required substitution from `.env`: nothing to leak in the file,
    and no stack starts with a forgotten password."""
    raw = yaml.safe_load((REPOSITORY_ROOT / "docker-compose.yaml").read_text())
    secrets = {
        (service, name): value
        for service, settings in raw["services"].items()
        for name, value in settings.get("environment", {}).items()
        if re.search("PASSWORD|SECRET", name)
    }
    assert {service for service, _ in secrets} == set(raw["services"])
    assert all(re.fullmatch(r"\$\{[A-Z_]+:\?[^}]+\}", value) for value in secrets.values()), secrets
    example = dict(line.split("=", 1) for line in example_env.read_text().splitlines() if re.match(r"^[A-Z_]+=", line))
    daemon = resolved_compose["services"]["daemon"]["environment"]
    assert daemon["DAGSTER_PG_PASSWORD"] == example["DAGSTER_PG_PASSWORD"]
    assert daemon["AWS_SECRET_ACCESS_KEY"] == example["AWS_SECRET_ACCESS_KEY"]
    empty = tmp_path / "empty.env"
    empty.write_text("")
    refused = compose(empty, "config", "-q")
    assert refused.returncode != 0 and "in .env" in refused.stderr


def test_env_file_is_git_ignored():
    ignored = subprocess.run(["git", "check-ignore", "--quiet", ".env"], cwd=REPOSITORY_ROOT)
    assert ignored.returncode == 0, ".env must be listed in .gitignore: it holds the deployment's credentials"


def test_docker_launcher_matches_the_compose_stack(resolved_compose, deployment_env):
    launcher = load_variant("docker")["run_launcher"]["config"]
    assert resolved_compose["networks"][launcher["network"]]["name"] == launcher["network"]
    for volume in launcher["container_kwargs"]["volumes"]:
        name = volume.split(":")[0]
        assert resolved_compose["volumes"][name]["name"] == name
    # The launcher copies these from the daemon's environment into every run container; a missing one fails runs.
    assert set(launcher["env_vars"]) <= set(resolved_compose["services"]["daemon"]["environment"])
    code_location = resolved_compose["services"]["code_location"]
    assert code_location["environment"]["DAGSTER_CURRENT_IMAGE"] == code_location["image"]


def test_the_docker_workspace_points_at_the_compose_code_location(resolved_compose, monkeypatch):
    services = resolved_compose["services"]
    for name, value in services["webserver"]["environment"].items():
        monkeypatch.setenv(name, value)
    workspace = process_workspace_config(yaml.safe_load((REPOSITORY_ROOT / "workspace.docker.yaml").read_text()))
    assert workspace.success, workspace.errors
    [location] = workspace.value["load_from"]
    server = location["grpc_server"]
    command = services[server["host"]]["command"]
    assert command[command.index("-p") + 1] == str(server["port"])
    assert command[command.index("--location-name") + 1] == server["location_name"]


# ---------------------------------------------------------------------------------- Dockerfile


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (REPOSITORY_ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def test_dockerfile_builds_one_non_root_image_from_files_that_exist():
    instructions = dockerfile_instructions()
    assert re.fullmatch(r"python:3\.11-slim(-\w+)?", instructions[0][1])
    users = [argument for keyword, argument in instructions if keyword == "USER"]
    assert users and users[-1] not in ("root", "0")
    build_args = dict(argument.split("=", 1) for keyword, argument in instructions if keyword == "ARG")
    for variant in VARIANTS[1:]:
        for keyword, argument in instructions:
            if keyword == "COPY":
                *sources, _ = argument.replace("${DAGSTER_DEPLOYMENT}", variant).split()
                assert all((REPOSITORY_ROOT / source).exists() for source in sources), argument
    assert build_args["DAGSTER_DEPLOYMENT"] in VARIANTS
    assert build_args["TORCH_INDEX_URL"].endswith("/whl/cpu")
    # The extras the image installs exist: pip only warns about an unknown extra, and the image would lack
    # dagster-postgres and dagster-docker.
    extras = tomllib.loads((REPOSITORY_ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    installs = [argument for keyword, argument in instructions if keyword == "RUN" and "pip install" in argument]
    requested = {extra for argument in installs for extra in re.findall(r'"\.\[([\w,-]+)\]"', argument)}
    assert requested == {"deploy"} and requested <= set(extras)
    assert all("-c constraints.txt" in argument for argument in installs)  # the lock make install uses
    # The plots' CJK fallback font (support_nlp/plots.py): without it Japanese category names draw as boxes.
    assert any(keyword == "RUN" and CJK_FONT_PACKAGE in argument.split() for keyword, argument in instructions)


# ---------------------------------------------------------------------------------- .github/workflows


def make_targets_in_workflows() -> set[str]:
    targets = set()
    for workflow in (REPOSITORY_ROOT / ".github" / "workflows").glob("*.yml"):
        for job in yaml.safe_load(workflow.read_text())["jobs"].values():
            for step in job["steps"]:
                for command in re.findall(r"\bmake((?: +[a-z][\w-]*)+)", step.get("run", "")):
                    targets |= set(command.split())
    return targets


def test_workflows_call_the_makefile_targets():
    """CI, retraining and the image build run what developers run: Makefile targets, which must exist."""
    targets = make_targets_in_workflows()
    assert {"validate", "materialize-day", "retrain", "image"} <= targets
    for target in sorted(targets):
        dry_run = subprocess.run(["make", "--dry-run", target], cwd=REPOSITORY_ROOT, capture_output=True, text=True)
        assert dry_run.returncode == 0, f"make {target}: {dry_run.stderr}"
    ci_steps = [
        step.get("run", "")
        for step in yaml.safe_load((REPOSITORY_ROOT / ".github/workflows/ci.yml").read_text())["jobs"]["test"]["steps"]
    ]
    assert ".ci/run" in ci_steps
