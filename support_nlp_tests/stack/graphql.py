"""The few calls the stack test makes to the webserver's GraphQL API, the same API the UI uses."""

from __future__ import annotations

import time
from collections.abc import Sequence

import requests

from support_nlp_tests.stack.processes import ServerProcess

REPOSITORY = "__repository__"
FINISHED_RUN_STATUSES = {"SUCCESS", "FAILURE", "CANCELED"}
FINISHED_BACKFILL_STATUSES = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}

LAUNCH_RUN = """
mutation LaunchRun($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on Error { message }
  }
}"""

RUN = """
query Run($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run { runId status jobName startTime endTime tags { key value } }
    ... on Error { message }
  }
}"""

RUN_FAILURE_EVENTS = """
query RunFailures($runId: ID!) {
  logsForRun(runId: $runId) {
    ... on EventConnection { events { __typename ... on MessageEvent { message level } } }
  }
}"""

START_SCHEDULE = """
mutation StartSchedule($selector: ScheduleSelector!) {
  startSchedule(scheduleSelector: $selector) {
    __typename
    ... on ScheduleStateResult { scheduleState { status } }
    ... on Error { message }
  }
}"""

SCHEDULE_STATE = """
query ScheduleState($selector: ScheduleSelector!) {
  scheduleOrError(scheduleSelector: $selector) {
    __typename
    ... on Schedule { scheduleState { status ticks(limit: 10) { timestamp status runIds error { message } } } }
    ... on Error { message }
  }
}"""

RUNS_WITH_TAG = """
query RunsWithTag($key: String!, $value: String!) {
  runsOrError(filter: {tags: [{key: $key, value: $value}]}) {
    ... on Runs { results { runId status startTime endTime tags { key value } } }
  }
}"""

LAUNCH_BACKFILL = """
mutation LaunchBackfill($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on Error { message }
  }
}"""

BACKFILL = """
query Backfill($backfillId: String!) {
  partitionBackfillOrError(backfillId: $backfillId) {
    __typename
    ... on PartitionBackfill { id status error { message } }
    ... on Error { message }
  }
}"""

ASSET_NODES = """
query AssetNodes {
  assetNodes {
    assetKey { path }
    groupName
    assetChecksOrError {
      ... on AssetChecks { checks { name executionForLatestMaterialization { status } } }
    }
  }
}"""

MATERIALIZED_PARTITIONS = """
query Materialized($path: [String!]!, $partitions: [String!]) {
  assetOrError(assetKey: {path: $path}) {
    ... on Asset { assetMaterializations(partitions: $partitions) { partition runId } }
  }
}"""

DAEMON_HEALTH = """
query DaemonHealth {
  instance { daemonHealth { allDaemonStatuses { daemonType required healthy } } }
}"""

LOCATION_STATUS = """
query Locations {
  workspaceOrError {
    ... on Workspace {
      locationEntries { name loadStatus locationOrLoadError { __typename ... on PythonError { message } } }
    }
  }
}"""


class GraphQLError(RuntimeError):
    pass


class DagsterGraphQL:
    def __init__(self, webserver_url: str, location: str):
        self.url = f"{webserver_url}/graphql"
        self.location = location

    def query(self, document: str, **variables) -> dict:
        response = requests.post(self.url, json={"query": document, "variables": variables}, timeout=60)
        response.raise_for_status()
        body = response.json()
        if body.get("errors"):
            raise GraphQLError(str(body["errors"]))
        return body["data"]

    def job_selector(self, job_name: str) -> dict:
        return {"repositoryLocationName": self.location, "repositoryName": REPOSITORY, "jobName": job_name}

    def launch_run(self, job_name: str, tags: dict[str, str] | None = None) -> str:
        params = {
            "selector": self.job_selector(job_name),
            "executionMetadata": {"tags": [{"key": key, "value": value} for key, value in (tags or {}).items()]},
        }
        result = self.query(LAUNCH_RUN, params=params)["launchRun"]
        if result["__typename"] != "LaunchRunSuccess":
            raise GraphQLError(f"launching {job_name}: {result}")
        return result["run"]["runId"]

    def run(self, run_id: str) -> dict:
        return self.query(RUN, runId=run_id)["runOrError"]

    def wait_for_run(self, run_id: str, timeout_s: float, watched: Sequence[ServerProcess] = ()) -> dict:
        """The run once finished; fails with the run's error messages if it did not succeed."""
        deadline = time.monotonic() + timeout_s
        while (run := self.run(run_id))["status"] not in FINISHED_RUN_STATUSES:
            for process in watched:
                process.assert_running()
            if time.monotonic() > deadline:
                raise TimeoutError(f"run {run_id} of {run['jobName']} still {run['status']} after {timeout_s:.0f} s")
            time.sleep(1)
        return run

    def error_messages(self, run_id: str) -> list[str]:
        events = self.query(RUN_FAILURE_EVENTS, runId=run_id)["logsForRun"]["events"]
        return [event["message"] for event in events if event.get("level") in ("ERROR", "CRITICAL")]

    def launch_asset_backfill(self, assets: Sequence[str], partitions: Sequence[str]) -> str:
        """Backfill `partitions` of `assets`, as the UI's Materialize over a date range does; returns its id."""
        params = {"assetSelection": [{"path": [asset]} for asset in assets], "partitionNames": list(partitions)}
        result = self.query(LAUNCH_BACKFILL, params=params)["launchPartitionBackfill"]
        if result["__typename"] != "LaunchBackfillSuccess":
            raise GraphQLError(f"launching a backfill of {assets}: {result}")
        return result["backfillId"]

    def wait_for_backfill(self, backfill_id: str, timeout_s: float, watched: Sequence[ServerProcess] = ()) -> dict:
        """The backfill once every run it requested has finished."""
        deadline = time.monotonic() + timeout_s
        while (backfill := self.query(BACKFILL, backfillId=backfill_id)["partitionBackfillOrError"])[
            "status"
        ] not in FINISHED_BACKFILL_STATUSES:
            for process in watched:
                process.assert_running()
            if time.monotonic() > deadline:
                raise TimeoutError(f"backfill {backfill_id} still {backfill['status']} after {timeout_s:.0f} s")
            time.sleep(1)
        return backfill

    def schedule_selector(self, schedule_name: str) -> dict:
        return {"repositoryLocationName": self.location, "repositoryName": REPOSITORY, "scheduleName": schedule_name}

    def start_schedule(self, schedule_name: str) -> str:
        result = self.query(START_SCHEDULE, selector=self.schedule_selector(schedule_name))["startSchedule"]
        if result["__typename"] != "ScheduleStateResult":
            raise GraphQLError(f"starting {schedule_name}: {result}")
        return result["scheduleState"]["status"]

    def schedule_state(self, schedule_name: str) -> dict:
        """The schedule's status and latest ticks (newest first)."""
        result = self.query(SCHEDULE_STATE, selector=self.schedule_selector(schedule_name))["scheduleOrError"]
        if result["__typename"] != "Schedule":
            raise GraphQLError(f"schedule {schedule_name}: {result}")
        return result["scheduleState"]

    def runs_with_tag(self, key: str, value: str) -> list[dict]:
        return self.query(RUNS_WITH_TAG, key=key, value=value)["runsOrError"]["results"]

    def asset_nodes(self) -> dict[str, dict]:
        return {"/".join(node["assetKey"]["path"]): node for node in self.query(ASSET_NODES)["assetNodes"]}

    def materialized_partitions(self, asset: str, partitions: list[str]) -> list[dict]:
        found = self.query(MATERIALIZED_PARTITIONS, path=[asset], partitions=partitions)["assetOrError"]
        return found.get("assetMaterializations", [])

    def location_loaded(self) -> bool:
        entries = self.query(LOCATION_STATUS)["workspaceOrError"]["locationEntries"]
        entry = next((entry for entry in entries if entry["name"] == self.location), None)
        if entry and entry["locationOrLoadError"] and entry["locationOrLoadError"]["__typename"] == "PythonError":
            raise GraphQLError(f"code location {self.location} failed to load: {entry['locationOrLoadError']}")
        return bool(entry and entry["loadStatus"] == "LOADED" and entry["locationOrLoadError"])

    def unhealthy_daemons(self) -> list[str]:
        statuses = self.query(DAEMON_HEALTH)["instance"]["daemonHealth"]["allDaemonStatuses"]
        return [status["daemonType"] for status in statuses if status["required"] and not status["healthy"]]
