"""The instance `make` creates: two runs at once on a fresh home, run monitoring on, killed runs marked failed."""

import os
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg

from support_nlp.local_instance import fail_orphaned_runs

REPO = Path(__file__).resolve().parents[1]

# A run of a one-asset job against the instance in $DAGSTER_HOME; with an argument it reports that it started, then
# waits there until killed.
RUN_SCRIPT = """
import sys, time
from pathlib import Path
import dagster as dg

@dg.asset
def synthetic_step() -> None:
    if len(sys.argv) > 1:
        Path(sys.argv[1]).touch()
        time.sleep(600)

assert dg.materialize([synthetic_step], instance=dg.DagsterInstance.get()).success
"""


def environment(home: Path) -> dict[str, str]:
    return {**os.environ, "DAGSTER_HOME": str(home), "PYTHONPATH": str(REPO)}


def make_instance(home: Path) -> subprocess.Popen:
    """`make`'s rule for $(DAGSTER_HOME)/dagster.yaml, with this interpreter's environment.

    `-o .venv/.installed`: the interpreter is installed already; in a checkout without its own .venv (a git
    worktree) make would otherwise `pip install -e` that checkout into this interpreter's environment."""
    return subprocess.Popen(
        [
            "make",
            "--no-print-directory",
            "-o",
            ".venv/.installed",
            f"DAGSTER_HOME={home}",
            f"BIN={Path(sys.executable).parent}",
            f"{home}/dagster.yaml",
        ],
        cwd=REPO,
        env=environment(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def start_run(home: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", RUN_SCRIPT, *args],
        env=environment(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(process: subprocess.Popen) -> str:
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 0, output
    return output


def test_two_runs_at_once_on_a_fresh_home(tmp_path):
    home = tmp_path / "dagster_home"
    for make in [make_instance(home), make_instance(home)]:
        finish(make)
    runs = [start_run(home), start_run(home)]
    for run in runs:
        finish(run)
    instance = dg.DagsterInstance.from_config(str(home))
    assert len(instance.get_runs()) == 2
    assert all(run.status == dg.DagsterRunStatus.SUCCESS for run in instance.get_runs())
    assert instance.run_monitoring_enabled
    assert sorted(path.name for path in home.iterdir() if path.name.startswith(".dagster.yaml")) == []


def wait_for(path: Path, process: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert process.poll() is None, process.communicate()[0]
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.2)


def test_a_killed_run_is_marked_failed_and_a_live_one_is_not(tmp_path):
    home = tmp_path / "dagster_home"
    finish(make_instance(home))
    killed, live = start_run(home, str(tmp_path / "killed_started")), start_run(home, str(tmp_path / "live_started"))
    try:
        wait_for(tmp_path / "killed_started", killed)
        wait_for(tmp_path / "live_started", live)
        killed.kill()
        killed.wait()
        instance = dg.DagsterInstance.from_config(str(home))
        assert {run.status for run in instance.get_runs()} == {dg.DagsterRunStatus.STARTED}

        reports: list[str] = []
        [orphan] = fail_orphaned_runs(instance, report=reports.append)
        status = {run.run_id: run.status for run in instance.get_runs()}
        assert status.pop(orphan) == dg.DagsterRunStatus.FAILURE
        assert list(status.values()) == [dg.DagsterRunStatus.STARTED]
        assert orphan in reports[0]
        assert fail_orphaned_runs(instance, report=reports.append) == []
    finally:
        live.kill()
        killed.kill()
