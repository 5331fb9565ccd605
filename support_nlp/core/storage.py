"""Writing and reading artifacts on local disk or an object store (`s3://...`) through UPath/fsspec.

Shared by the IO managers and the embedding cache, so both replace files atomically and report failures the same
way: a StorageError that names the object and the endpoint.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import uuid
from collections.abc import Callable, Iterator
from typing import TypeVar

import fsspec.utils
from upath import UPath

T = TypeVar("T")

# botocore waits 60 s to connect and makes 5 attempts by default: minutes before a dead endpoint is reported.
DEFAULT_S3_CONNECT_TIMEOUT_S = 5.0
DEFAULT_S3_MAX_ATTEMPTS = 3


def s3_storage_options(
    url: str,
    endpoint_url: str | None = None,
    region: str | None = None,
    max_attempts: int = DEFAULT_S3_MAX_ATTEMPTS,
    connect_timeout_s: float = DEFAULT_S3_CONNECT_TIMEOUT_S,
) -> dict:
    """fsspec options for reaching `url` when it is an `s3://` URI; none for any other location.

    Credentials are deliberately not an option: s3fs takes them from the environment or the instance role.
    """
    if fsspec.utils.get_protocol(url) != "s3":
        return {}
    options: dict = {
        "config_kwargs": {
            "connect_timeout": connect_timeout_s,
            "retries": {"max_attempts": max_attempts, "mode": "standard"},
        }
    }
    if endpoint_url:
        options["endpoint_url"] = endpoint_url
    if region:
        options["client_kwargs"] = {"region_name": region}
    return options


class StorageError(OSError):
    """An artifact could not be written or read; the message names the object and the endpoint."""


class CorruptArtifactError(ValueError):
    """Stored bytes that do not decode (truncated, bit-flipped, or another format under the name); the message names
    the object. Unlike a StorageError it is permanent: reading again returns the same bytes."""


def is_local(path: UPath) -> bool:
    return path.protocol in ("", "file", "local")


def describe_location(path: UPath) -> str:
    if is_local(path):
        return str(path)
    endpoint = path.storage_options.get("endpoint_url") or "the default endpoint"
    return f"{path} at {endpoint}"


@contextlib.contextmanager
def storage_errors(action: str, path: UPath) -> Iterator[None]:
    """Re-raise storage failures (bad credentials, unreachable endpoint, ...) as a StorageError naming the object.

    "Not there" passes through unchanged: FileNotFoundError is how Dagster and `load_partitions` recognise a
    partition that was never materialized, and listing an S3 prefix with no objects raises NotADirectoryError;
    both must stay distinguishable from a store that cannot be reached.
    """
    try:
        yield
    except (FileNotFoundError, NotADirectoryError):
        raise
    except Exception as error:
        raise StorageError(f"could not {action} {describe_location(path)}: {type(error).__name__}: {error}") from error


@contextlib.contextmanager
def decoding(path: UPath) -> Iterator[None]:
    """Re-raise any failure to decode the bytes read from `path` as a CorruptArtifactError naming it.

    Decoders fail in their own words (BadZipFile, ArrowInvalid, EOFError, KeyError on a missing array, ...), none
    of which says which object was being decoded.
    """
    try:
        yield
    except Exception as error:
        raise CorruptArtifactError(f"{describe_location(path)} is corrupt: {type(error).__name__}: {error}") from error


def read_decoded(path: UPath, decode: Callable[[bytes], T]) -> T:
    """`decode` of the bytes stored at `path`: a StorageError if they cannot be read, a CorruptArtifactError if they
    do not decode, FileNotFoundError if there are none."""
    with storage_errors("read", path):
        data = path.read_bytes()
    with decoding(path):
        return decode(data)


def write_atomically(path: UPath, data: bytes) -> None:
    """Replace `path` with `data` all at once.

    Locally: write a sibling temp file, fsync, then `os.replace`. On object stores `pipe_file` sends one PUT, or
    for large values a multipart upload that s3fs aborts on failure; either way the object is replaced whole or
    not at all. (Writing through an open s3fs file would not do: closing it after an error commits what it has.)
    """
    if not is_local(path):
        path.fs.pipe_file(path.path, data)
        return
    path = pathlib.Path(path.path)
    temp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex}")
    try:
        with open(temp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)


def write_file(path: UPath, data: bytes) -> None:
    """`write_atomically`, creating a local file's folder first; failures as a StorageError naming the object."""
    with storage_errors("write", path):
        if is_local(path):
            pathlib.Path(path.path).parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, data)


def list_names(folder: UPath) -> list[str]:
    """The names in `folder`, sorted, listed afresh: s3fs caches listings for the life of the filesystem object,
    and other processes (runs, people landing files) write there too. A missing folder raises FileNotFoundError
    (or NotADirectoryError), as the callers each mean something different by it."""
    with storage_errors("list", folder):
        listing = folder.fs.ls(folder.path, detail=False, refresh=True)
    return sorted(entry.rstrip("/").rsplit("/", 1)[-1] for entry in listing)
