"""Shared fixtures: slices of the bundled *real* twcs sample (support_nlp/data/twcs_sample.csv.gz)."""

import csv
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from support_nlp.benchmarks import quality
from support_nlp.core.twcs import BUNDLED_SAMPLE, CREATED_AT_FORMAT
from support_nlp.definitions import build_definitions, build_resources
from support_nlp.pipeline import run_pipeline
from support_nlp_tests.s3_server import S3Server, seaweedfs

LAPTOP_INSTANCE_CONFIG = Path(__file__).resolve().parents[1] / "deploy" / "laptop-dagster.yaml"
# Three consecutive days, a gap day (2017-11-07) with no tweets in the slice, then one more day.
SLICE_DAYS = ["2017-11-04", "2017-11-05", "2017-11-06", "2017-11-08"]
SLICE_RANGE = ("2017-11-04", "2017-11-08")
# Real tweets dated before the partition range start (2017-10-01): counted, never silently dropped.
OUT_OF_RANGE_TWEET_IDS = 2


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory) -> Iterator[S3Server]:
    """One SeaweedFS for the whole run; each user keeps to its own prefix of the bucket."""
    with seaweedfs(tmp_path_factory.mktemp("seaweedfs")) as server:
        yield server


@pytest.fixture(scope="session")
def bundled_sample() -> pd.DataFrame:
    return pd.read_csv(BUNDLED_SAMPLE, dtype=str, keep_default_na=False)


@pytest.fixture(scope="session")
def real_inbound(bundled_sample) -> pd.DataFrame:
    inbound = bundled_sample[bundled_sample["inbound"] == "True"].copy()
    inbound["day"] = pd.to_datetime(inbound["created_at"], format=CREATED_AT_FORMAT, utc=True).dt.strftime("%Y-%m-%d")
    return inbound


@pytest.fixture(scope="session")
def real_slice_csv(tmp_path_factory, bundled_sample, real_inbound) -> str:
    """A twcs.csv.gz of the real inbound tweets of SLICE_DAYS, two real pre-range tweets, and every brand
    reply of the sample (so thread brands resolve as they do on the full file)."""
    chosen = real_inbound[real_inbound["day"].isin(SLICE_DAYS)]
    stragglers = real_inbound[real_inbound["day"] < "2017-10-01"].head(OUT_OF_RANGE_TWEET_IDS)
    outbound = bundled_sample[bundled_sample["inbound"] == "False"]
    rows = pd.concat([chosen, stragglers]).drop(columns="day")
    path = tmp_path_factory.mktemp("source") / "twcs_slice.csv.gz"
    pd.concat([rows, outbound]).to_csv(path, index=False, quoting=csv.QUOTE_ALL)
    return str(path)


@pytest.fixture(scope="session")
def slice_inbound_count(real_inbound) -> int:
    return int(real_inbound["day"].isin(SLICE_DAYS).sum())


@pytest.fixture(scope="session")
def banking_subset(tmp_path_factory) -> quality.PreparedSet:
    """The 480 real BANKING77 test queries of its first 12 intents, cleaned and embedded (the benchmarks' tests)."""
    banking = quality.EVALUATION_SETS["banking77"]()
    keep = np.isin(banking.labels, sorted(set(banking.labels))[:12])
    subset = quality.LabelledSet(
        "banking77_12", [t for t, k in zip(banking.texts, keep, strict=True) if k], banking.labels[keep], ["bank"] * 480
    )
    return quality.prepare(subset, quality.BUNDLED_MODEL_NAME, tmp_path_factory.mktemp("cache"))


def slice_definitions(home, source: str) -> dg.Definitions:
    return build_definitions(
        build_resources(storage=str(home / "storage"), source=source, cache_dir=str(home / "cache"))
    )


@dataclass(frozen=True)
class LocalDeployment:
    """`make run`'s setting in a temporary folder: definitions, a laptop instance, and the environment that points
    the code location its runs load at the same source and storage."""

    defs: dg.Definitions
    instance: dg.DagsterInstance
    environment: dict[str, str]


def local_deployment(home: Path, source: str) -> LocalDeployment:
    (home / "dagster_home").mkdir()
    shutil.copy(LAPTOP_INSTANCE_CONFIG, home / "dagster_home" / "dagster.yaml")
    environment = {
        **os.environ,
        "SUPPORT_NLP_HOME": str(home),
        "SUPPORT_NLP_STORAGE": str(home / "storage"),
        "SUPPORT_NLP_SOURCE": source,
    }
    instance = dg.DagsterInstance.local_temp(str(home / "dagster_home"))
    return LocalDeployment(slice_definitions(home, source), instance, environment)


@pytest.fixture(scope="session")
def pipeline_run(tmp_path_factory, real_slice_csv):
    """`make run`'s code path over the real slice, uninterrupted, into a temporary folder and Dagster instance:
    its runs are launched through the code location, configured by the environment as a deployment is."""
    home = tmp_path_factory.mktemp("support_nlp")
    deployment = local_deployment(home, real_slice_csv)
    lines: list[str] = []
    result = run_pipeline(deployment.defs, deployment.instance, report=lines.append, environment=deployment.environment)
    return home / "storage", deployment.instance, result, lines


# Fixtures that run `make run`'s pipeline: its runs are launched through the code location in subprocesses.
PIPELINE_FIXTURES = {"pipeline_run", "s3_pipeline_run"}


def pytest_collection_modifyitems(items):
    """Tests that need a whole pipeline run belong to the e2e tier (`make check` leaves them to `make test`)."""
    for item in items:
        if PIPELINE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.e2e)
