"""One IO-manager family for every artifact, on local disk or S3 (a `s3://bucket/prefix` base path).

Tables are Parquet, embeddings and models are `.npz` (arrays plus a JSON header, no pickle).

Partitioned assets exchange `{partition_key: value}` dicts, whatever the number of partitions, so that a
single-run backfill (one run for a whole date range) writes one file per partition instead of paying
Dagster's run start-up once per day. Each file is written atomically: a crash mid-write leaves the
previous version readable.
"""

from __future__ import annotations

import io
import os
import pathlib
import uuid

import dagster as dg
import pandas as pd
from upath import UPath

from support_nlp.core.artifacts import artifact_from_bytes, artifact_to_bytes


def write_atomically(path: UPath, data: bytes) -> None:
    """Replace `path` with `data` all at once.

    Locally: write a sibling temp file, fsync, then `os.replace`. On object stores a PUT is already
    all-or-nothing, so the object is written directly.
    """
    if not (isinstance(path, pathlib.Path) or path.protocol in ("file", "local")):
        path.write_bytes(data)
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


class PartitionDictIOManager(dg.UPathIOManager):
    """UPath IO manager whose partitioned values are always `{partition_key: value}` dicts."""

    def serialize(self, obj) -> bytes:
        raise NotImplementedError

    def deserialize(self, data: bytes):
        raise NotImplementedError

    def dump_to_path(self, context: dg.OutputContext, obj, path: UPath) -> None:
        write_atomically(path, self.serialize(obj))

    def load_from_path(self, context: dg.InputContext, path: UPath):
        return self.deserialize(path.read_bytes())

    def handle_output(self, context: dg.OutputContext, obj) -> None:
        if not context.has_asset_partitions:
            super().handle_output(context, obj)
            return
        paths = self._get_paths_for_partitions(context)
        if not isinstance(obj, dict) or set(obj) != set(paths):
            got = sorted(obj) if isinstance(obj, dict) else type(obj).__name__
            raise dg.DagsterInvariantViolationError(
                f"{context.asset_key.to_user_string()} must return one value per partition of the run as "
                f"{{partition_key: value}}; expected keys {sorted(paths)}, got {got}"
            )
        for partition_key, path in paths.items():
            self.make_directory(path.parent)
            self.dump_to_path(context, obj[partition_key], path)
        context.add_output_metadata({"path": dg.MetadataValue.path(str(self._get_path_without_extension(context)))})

    def load_partitions(self, context: dg.InputContext) -> dict:
        """Every requested partition; with `allow_missing_partitions` in the input metadata, the ones that
        were never materialized are skipped (and counted in the log) instead of failing the load."""
        allow_missing = bool((context.definition_metadata or {}).get("allow_missing_partitions"))
        loaded, missing = {}, []
        for partition_key, path in self._get_paths_for_partitions(context).items():
            try:
                loaded[partition_key] = self.load_from_path(context, path)
            except FileNotFoundError as error:
                if not allow_missing:
                    raise FileNotFoundError(
                        f"partition {partition_key} of {context.asset_key.to_user_string()} is not "
                        f"materialized (no {path}); materialize it first"
                    ) from error
                missing.append(partition_key)
        if missing:
            context.log.info(
                f"{context.asset_key.to_user_string()}: loaded {len(loaded)} materialized partitions, "
                f"skipped {len(missing)} never materialized"
            )
        return loaded


class ParquetIOManager(PartitionDictIOManager):
    extension = ".parquet"

    def serialize(self, obj: pd.DataFrame) -> bytes:
        buffer = io.BytesIO()
        obj.to_parquet(buffer, index=False)
        return buffer.getvalue()

    def deserialize(self, data: bytes) -> pd.DataFrame:
        return pd.read_parquet(io.BytesIO(data))


class ArtifactIOManager(PartitionDictIOManager):
    extension = ".npz"

    def serialize(self, obj) -> bytes:
        return artifact_to_bytes(obj)

    def deserialize(self, data: bytes):
        return artifact_from_bytes(data)


class StorageIOManagerFactory(dg.ConfigurableIOManagerFactory):
    """Where artifacts live: a local folder or `s3://bucket/prefix`.

    S3 credentials come from the environment or the instance role only, never from this config.
    """

    base_path: str
    endpoint_url: str | None = None
    region: str | None = None

    def base_upath(self) -> UPath:
        options = {}
        if self.endpoint_url:
            options["endpoint_url"] = self.endpoint_url
        if self.region:
            options["client_kwargs"] = {"region_name": self.region}
        return UPath(self.base_path, **options)


class ParquetIOManagerFactory(StorageIOManagerFactory):
    def create_io_manager(self, context) -> ParquetIOManager:
        return ParquetIOManager(base_path=self.base_upath())


class ArtifactIOManagerFactory(StorageIOManagerFactory):
    def create_io_manager(self, context) -> ArtifactIOManager:
        return ArtifactIOManager(base_path=self.base_upath())
