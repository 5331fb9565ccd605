"""The local Dagster instance that `make` creates in $DAGSTER_HOME (SQLite storage), and the runs a kill left behind.

`make` runs `python -m support_nlp.local_instance $DAGSTER_HOME deploy/laptop-dagster.yaml` under a file lock when
$DAGSTER_HOME/dagster.yaml is missing or older than that file. Dagster creates its SQLite tables on first use, and
two processes doing that at once (two `make run` on a fresh home) collide ("table snapshots already exists");
creating them here, once, and publishing dagster.yaml only afterwards means every later process finds them.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path

import dagster as dg
from dagster._core.storage.runs import SqliteRunStorage

CONFIG_FILE = "dagster.yaml"


def create_instance(home: Path, instance_config: Path) -> None:
    """Create the instance's storage, then its dagster.yaml (a copy of `instance_config`); does nothing when that
    copy is already there. Not safe to run twice at once by itself: `make` holds a lock around it."""
    config = home / CONFIG_FILE
    wanted = instance_config.read_text()
    if config.exists() and config.read_text() == wanted:
        return
    home.mkdir(parents=True, exist_ok=True)
    staged = home / f".{CONFIG_FILE}.tmp-{os.getpid()}"
    staged.write_text(wanted)
    try:
        instance = dg.DagsterInstance.from_config(str(home), config_filename=staged.name)
        # Opening each storage creates its tables.
        instance.get_runs(limit=1)
        instance.all_instigator_state()
        instance.get_asset_keys()
        instance.dispose()
        os.replace(staged, config)
    finally:
        staged.unlink(missing_ok=True)


def process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        return True
    return True


def fail_orphaned_runs(instance: dg.DagsterInstance, report: Callable[[str], None] = print) -> list[str]:
    """Mark FAILURE every STARTED run whose process no longer exists, and return their ids.

    A run that executes in its own process (`make run`, `dagster asset materialize`) and is killed never reports an
    end, and no daemon watches it: it would show STARTED forever. The process that started a run is the pid on its
    RUN_START event. A pid reused by a later process hides an orphan until the next check after that one ends.
    Only a SQLite instance is checked: it lives on this host, so its pids are this host's. A shared instance
    (Postgres) records pids of other hosts and containers, and its daemon monitors its runs.
    """
    if not isinstance(instance.run_storage, SqliteRunStorage):
        return []
    orphans = []
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])):
        started = instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.RUN_START, limit=1).records
        pid = started[0].event_log_entry.dagster_event.pid if started else None
        if pid is None or process_exists(pid):
            continue
        instance.report_run_failed(run, f"the run's process (pid {pid}) ended without reporting an end: killed")
        orphans.append(run.run_id)
    if orphans:
        report(f"Marked {len(orphans)} run(s) whose process was killed as failed: {', '.join(orphans)}")
    return orphans


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("home", type=Path, help="the instance folder, $DAGSTER_HOME")
    parser.add_argument("instance_config", type=Path, help="the dagster.yaml to install (deploy/laptop-dagster.yaml)")
    args = parser.parse_args(argv)
    create_instance(args.home, args.instance_config)


if __name__ == "__main__":
    main()
