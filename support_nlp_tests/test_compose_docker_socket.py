"""In docker-compose.yaml only the daemon, which launches runs, gets the Docker socket (root on the host)."""

import shutil

import yaml

from support_nlp_tests.test_stack import REPOSITORY_ROOT, compose, load_variant

DOCKER_SOCKET = "/var/run/docker.sock"


def test_only_the_daemon_mounts_the_docker_socket(tmp_path):
    env_file = tmp_path / ".env"
    shutil.copy(REPOSITORY_ROOT / ".env.example", env_file)
    resolved = compose(env_file, "config")
    assert resolved.returncode == 0, resolved.stderr
    services = yaml.safe_load(resolved.stdout)["services"]
    with_socket = {name for name, service in services.items() if DOCKER_SOCKET in str(service.get("volumes", []))}
    assert with_socket == {"daemon"}
    assert {name for name, service in services.items() if service.get("group_add")} == {"daemon"}
    # The webserver needs none: it queues the runs it is asked for, and the daemon's launcher starts them.
    instance = load_variant("docker")
    assert instance["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert instance["run_launcher"]["class"] == "DockerRunLauncher"


def test_the_operations_guide_says_what_the_socket_grants():
    security = (REPOSITORY_ROOT / "docs" / "operations.md").read_text().split("## Security", 1)[1]
    assert DOCKER_SOCKET in security and "root on the host" in security
