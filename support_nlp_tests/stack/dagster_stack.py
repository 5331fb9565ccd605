"""The Dagster side of the stack: the code location as a gRPC code server, the webserver and the daemon, all on
127.0.0.1 and sharing one instance (deploy/local/dagster.yaml) whose storage is the test's PostgreSQL."""

from __future__ import annotations

import contextlib
import shutil
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import requests
import yaml
from dagster import deserialize_value
from dagster._core.errors import DagsterUserCodeUnreachableError
from dagster._grpc.client import DagsterGrpcClient
from dagster._utils.error import SerializableErrorInfo

from support_nlp_tests.stack.graphql import DagsterGraphQL
from support_nlp_tests.stack.processes import ServerProcess, free_ports, running, start, wait_until

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
INSTANCE_CONFIG = REPOSITORY_ROOT / "deploy" / "local" / "dagster.yaml"
CODE_LOCATION_MODULE = "support_nlp_tests.stack.code_location"
LOCATION_NAME = "support_nlp"
# Importing torch and sentence-transformers dominates each process's start on two cores.
STARTUP_TIMEOUT_S = 180


@dataclass(frozen=True)
class DagsterStack:
    webserver_url: str
    graphql: DagsterGraphQL
    dagster_home: Path
    processes: tuple[ServerProcess, ...]


def dagster_command(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def code_server_loaded(port: int) -> bool:
    """True once the code server serves the location; raises its load error if the code failed to load."""
    try:
        reply = deserialize_value(DagsterGrpcClient(port=port, host="127.0.0.1").list_repositories())
    except DagsterUserCodeUnreachableError:
        return False
    if isinstance(reply, SerializableErrorInfo):
        raise RuntimeError(f"the code location failed to load:\n{reply.to_string()}")
    return True


def webserver_answers(url: str) -> bool:
    try:
        return requests.get(f"{url}/server_info", timeout=5).ok
    except requests.ConnectionError:
        return False


@contextlib.contextmanager
def dagster_stack(root: Path, env: Mapping[str, str], log_dir: Path) -> Iterator[DagsterStack]:
    """Serve the code location, then start the webserver and daemon against it; stop all three on exit.

    The webserver and daemon start once the code server serves: started earlier, they would record the location
    as unreachable."""
    dagster_home = root / "dagster_home"
    dagster_home.mkdir()
    shutil.copy(INSTANCE_CONFIG, dagster_home / "dagster.yaml")
    code_port, webserver_port = free_ports(2)
    workspace = root / "workspace.yaml"
    workspace.write_text(
        yaml.safe_dump(
            {"load_from": [{"grpc_server": {"host": "127.0.0.1", "port": code_port, "location_name": LOCATION_NAME}}]}
        )
    )
    env = {**env, "DAGSTER_HOME": str(dagster_home)}
    url = f"http://127.0.0.1:{webserver_port}"
    graphql = DagsterGraphQL(url, LOCATION_NAME)

    with contextlib.ExitStack() as stack:
        code_server = stack.enter_context(
            running(
                start(
                    "code_server",
                    [dagster_command("dagster"), "code-server", "start", "-h", "127.0.0.1", "-p", str(code_port)]
                    + ["-m", CODE_LOCATION_MODULE, "--location-name", LOCATION_NAME],
                    log_dir,
                    env,
                    cwd=REPOSITORY_ROOT,
                )
            )
        )
        wait_until(lambda: code_server_loaded(code_port), "code server serving", STARTUP_TIMEOUT_S, [code_server])
        webserver = stack.enter_context(
            running(
                start(
                    "webserver",
                    [dagster_command("dagster-webserver"), "-h", "127.0.0.1", "-p", str(webserver_port)]
                    + ["-w", str(workspace)],
                    log_dir,
                    env,
                    cwd=root,
                )
            )
        )
        daemon_command = [dagster_command("dagster-daemon"), "run", "-w", str(workspace)]
        daemon = stack.enter_context(running(start("daemon", daemon_command, log_dir, env, cwd=root)))
        processes = (code_server, webserver, daemon)
        wait_until(lambda: webserver_answers(url), "webserver answering", STARTUP_TIMEOUT_S, processes)
        wait_until(graphql.location_loaded, "code location loaded in the webserver", STARTUP_TIMEOUT_S, processes)
        wait_until(lambda: not graphql.unhealthy_daemons(), "every daemon healthy", STARTUP_TIMEOUT_S, processes)
        yield DagsterStack(url, graphql, dagster_home, processes)
