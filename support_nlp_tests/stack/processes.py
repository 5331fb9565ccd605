"""Server processes owned by a test: each in its own process group, logged to a file, stopped by its PID."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

STOP_TIMEOUT_S = 20
LOG_TAIL_CHARS = 4000


@dataclass
class ServerProcess:
    name: str
    popen: subprocess.Popen
    log_path: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-LOG_TAIL_CHARS:]

    def exit_status(self) -> int | None:
        """The exit status if the process has ended, else None. The process is left unreaped (WNOWAIT), so its
        PID, which is also its process group id, cannot be reused by another process before `stop` is done."""
        info = os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        return None if info is None else info.si_status

    def assert_running(self) -> None:
        if (status := self.exit_status()) is not None:
            raise RuntimeError(f"{self.name} (pid {self.pid}) exited with {status}:\n{self.log_tail()}")


def start(
    name: str,
    command: Sequence[str],
    log_dir: Path,
    env: Mapping[str, str],
    cwd: Path | None = None,
    user: str | None = None,
) -> ServerProcess:
    """Start `command` as the leader of a new process group, so stopping it also stops what it spawns
    (the code server's gRPC child, run workers, postgres backends)."""
    log_path = log_dir / f"{name}.log"
    with open(log_path, "wb") as log:
        popen = subprocess.Popen(
            list(command),
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # Dropping root (for postgres, which refuses to run as root) needs the group list reset too.
            **({"user": user, "group": user, "extra_groups": []} if user else {}),
        )
    return ServerProcess(name, popen, log_path)


def stop(process: ServerProcess, first_signal: signal.Signals = signal.SIGTERM) -> None:
    """Signal the process group led by `process`, then kill the group if it has not exited in time."""
    signal_group(process, first_signal)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while process.exit_status() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    # The leader is not reaped yet, so the group id still names our group: whatever is left of it (a run worker
    # outliving the code server, a leader that ignored the first signal) is killed before the PID is released.
    signal_group(process, signal.SIGKILL)
    process.popen.wait()


def signal_group(process: ServerProcess, signal_number: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal_number)


@contextlib.contextmanager
def running(process: ServerProcess, first_signal: signal.Signals = signal.SIGTERM) -> Iterator[ServerProcess]:
    try:
        yield process
    finally:
        stop(process, first_signal)


def wait_until(
    condition: Callable[[], object],
    what: str,
    timeout_s: float,
    watched: Sequence[ServerProcess] = (),
    poll_s: float = 0.5,
):
    """Poll `condition` until it returns something truthy (returned), failing early if a watched process died."""
    deadline = time.monotonic() + timeout_s
    while True:
        for process in watched:
            process.assert_running()
        if result := condition():
            return result
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {process.name}:\n{process.log_tail()}" for process in watched)
            raise TimeoutError(f"{what}: not after {timeout_s:.0f} s\n{logs}")
        time.sleep(poll_s)


def free_ports(count: int) -> list[int]:
    """Ports nothing listens on right now; all sockets are held open together so the ports are distinct."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
