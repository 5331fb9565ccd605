"""Idempotence and crash safety: re-runs give identical outputs; a killed run recovers completely."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from support_nlp_tests.conftest import LAPTOP_INSTANCE_CONFIG, SLICE_DAYS, slice_definitions


def read_days(storage: Path, asset: str) -> pd.DataFrame:
    return pd.concat(
        [pd.read_parquet(path).assign(partition=path.stem) for path in sorted((storage / asset).glob("*.parquet"))],
        ignore_index=True,
    )


def test_rematerializing_a_partition_gives_identical_outputs(pipeline_run, real_slice_csv):
    storage, instance, _, _ = pipeline_run
    before = {asset: read_days(storage, asset) for asset in ("raw_tweets", "clean_text", "predictions")}
    defs = slice_definitions(storage.parent, real_slice_csv)
    result = defs.resolve_job_def("daily_inference").execute_in_process(instance=instance, partition_key=SLICE_DAYS[1])
    assert result.success
    for asset, frame in before.items():
        assert_frame_equal(read_days(storage, asset), frame, check_exact=True, obj=asset)


def wait_for(condition, timeout_s: float, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert process.poll() is None, f"pipeline exited early with {process.returncode}"
        assert time.monotonic() < deadline, "timed out waiting for the pipeline to reach the kill point"
        time.sleep(0.2)


@pytest.mark.e2e
def test_a_killed_run_reexecuted_gives_complete_identical_outputs(tmp_path, real_slice_csv, pipeline_run):
    reference_storage = pipeline_run[0]
    home = tmp_path / "home"
    env = {
        **os.environ,
        "SUPPORT_NLP_SOURCE": real_slice_csv,
        "SUPPORT_NLP_HOME": str(home),
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
    }
    (tmp_path / "dagster_home").mkdir()
    shutil.copy(LAPTOP_INSTANCE_CONFIG, tmp_path / "dagster_home" / "dagster.yaml")
    command = [sys.executable, "-m", "support_nlp.pipeline"]
    # Own process group, so the kill takes the whole process tree down at once, as a crash would.
    process = subprocess.Popen(command, env=env, start_new_session=True, stdout=subprocess.DEVNULL)
    try:
        # Kill mid-run, once clean_text is being written. How far the run got by then depends on the CPU and the
        # load, so the test asserts only that it was cut short and that the re-run makes everything whole.
        wait_for(lambda: any((home / "storage" / "clean_text").glob("*.parquet")), 300, process)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == -signal.SIGKILL, "the pipeline finished before it could be killed"

    completed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]

    for asset in ("raw_tweets", "clean_text", "predictions"):
        rerun = read_days(home / "storage", asset)
        assert rerun["tweet_id"].is_unique, asset
        assert_frame_equal(rerun, read_days(reference_storage, asset), check_exact=True, obj=asset)
    instance = dg.DagsterInstance.from_config(str(tmp_path / "dagster_home"))
    assert {run.status for run in instance.get_runs()} >= {dg.DagsterRunStatus.SUCCESS}
