"""One IO-manager family for every artifact, on local disk or S3 (a `s3://bucket/prefix` base path).

Tables are Parquet, embeddings and models are `.npz` (arrays plus a JSON header, no pickle).

Partitioned assets exchange `{partition_key: value}` dicts, whatever the number of partitions, so that a
single-run backfill (one run for a whole date range) writes one file per partition instead of paying
Dagster's run start-up once per day. Each file is written atomically: a crash mid-write leaves the
previous version readable.

A stored file that does not decode (truncated, bit-flipped) fails the step with a Failure that names the object, the
asset and the day, and gives the command that rebuilds it; it is not retried, since reading again returns the same
bytes. Parquet pages carry CRC checksums and `.npz` members their zip CRC-32, so a flipped bit in the data is found
on read instead of flowing on as a wrong value.
"""

from __future__ import annotations

import io

import dagster as dg
import pandas as pd
from upath import UPath

from support_nlp.core.artifacts import artifact_from_bytes, artifact_to_bytes
from support_nlp.core.storage import (
    CorruptArtifactError,
    is_local,
    list_names,
    read_decoded,
    storage_errors,
    write_atomically,
)
from support_nlp.resources import ObjectStore

# The code location that the rebuild commands in error messages materialize from.
CODE_LOCATION_MODULE = "support_nlp.definitions"


def rebuild_command(asset: str, partition: str | None) -> str:
    command = f"dagster asset materialize -m {CODE_LOCATION_MODULE} --select {asset}"
    return f"{command} --partition {partition}" if partition else command


def corrupt_artifact_failure(asset_key: dg.AssetKey, partition: str | None, error: CorruptArtifactError) -> dg.Failure:
    asset = asset_key.to_user_string()
    command = rebuild_command(asset, partition)
    stored = f"{asset} of {partition}" if partition else asset
    return dg.Failure(
        description=f"the stored {stored} cannot be read: {error}. Not retried: reading it again returns the same "
        f"bytes. Rebuild it with `{command}`",
        metadata={"asset": asset, "partition": partition or "", "rebuild_command": command},
        allow_retries=False,
    )


class PartitionDictIOManager(dg.UPathIOManager):
    """UPath IO manager whose partitioned values are always `{partition_key: value}` dicts."""

    def serialize(self, obj) -> bytes:
        raise NotImplementedError

    def deserialize(self, data: bytes):
        raise NotImplementedError

    def dump_to_path(self, context: dg.OutputContext, obj, path: UPath) -> None:
        data = self.serialize(obj)
        with storage_errors("write", path):
            write_atomically(path, data)

    def load_from_path(self, context: dg.InputContext, path: UPath):
        return self.load(context, path, partition_key=None)

    def load(self, context: dg.InputContext, path: UPath, partition_key: str | None):
        try:
            return self.read(path)
        except CorruptArtifactError as error:
            raise corrupt_artifact_failure(context.asset_key, partition_key, error) from error

    def read(self, path: UPath):
        return read_decoded(path, self.deserialize)

    def make_directory(self, path: UPath) -> None:
        # Object stores have no directories; s3fs's mkdir would even create a missing bucket.
        if is_local(path):
            super().make_directory(path)

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
        paths = self._get_paths_for_partitions(context)
        if (context.definition_metadata or {}).get("allow_missing_partitions"):
            requested, paths = paths, self.existing(paths)
            if skipped := len(requested) - len(paths):
                context.log.info(
                    f"{context.asset_key.to_user_string()}: loading {len(paths)} materialized partitions, "
                    f"skipped {skipped} never materialized"
                )
        loaded = {}
        for partition_key, path in paths.items():
            try:
                loaded[partition_key] = self.load(context, path, partition_key)
            except FileNotFoundError as error:
                raise FileNotFoundError(
                    f"partition {partition_key} of {context.asset_key.to_user_string()} is not "
                    f"materialized (no {path}); materialize it first"
                ) from error
        return loaded

    def existing(self, paths: dict[str, UPath]) -> dict[str, UPath]:
        """The entries of `paths` whose file exists, found with one listing per folder.

        Training assets ask for every day since the first partition, thousands of them: probing each path
        costs one round trip per day on S3 (minutes), listing costs one per thousand objects.
        """
        names = {str(folder): self.file_names(folder) for folder in {path.parent for path in paths.values()}}
        return {key: path for key, path in paths.items() if path.name in names[str(path.parent)]}

    def file_names(self, folder: UPath) -> set[str]:
        try:
            return set(list_names(folder))
        except (FileNotFoundError, NotADirectoryError):
            return set()

    def remove_partitions(self, asset_key: dg.AssetKey, partition_keys: list[str]) -> list[str]:
        """Delete the stored files of these partitions of `asset_key`; returns the partitions that had one."""
        folder = self._base_path.joinpath(*asset_key.path)
        removed = []
        for partition_key in partition_keys:
            path = self._with_extension(folder / partition_key)
            try:
                with storage_errors("remove", path):
                    path.unlink()
            except FileNotFoundError:
                continue
            removed.append(partition_key)
        return removed


class ParquetIOManager(PartitionDictIOManager):
    extension = ".parquet"

    def serialize(self, obj: pd.DataFrame) -> bytes:
        buffer = io.BytesIO()
        obj.to_parquet(buffer, index=False, write_page_checksum=True)
        return buffer.getvalue()

    def deserialize(self, data: bytes) -> pd.DataFrame:
        return pd.read_parquet(io.BytesIO(data), page_checksum_verification=True)


class ArtifactIOManager(PartitionDictIOManager):
    extension = ".npz"

    def serialize(self, obj) -> bytes:
        return artifact_to_bytes(obj)

    def deserialize(self, data: bytes):
        return artifact_from_bytes(data)


class StorageIOManagerFactory(dg.ConfigurableIOManagerFactory):
    """Where artifacts live: a local folder or `s3://bucket/prefix`, reached through `store`."""

    base_path: str
    store: ObjectStore = ObjectStore()

    def base_upath(self) -> UPath:
        return self.store.location(self.base_path)


class ParquetIOManagerFactory(StorageIOManagerFactory):
    def create_io_manager(self, context) -> ParquetIOManager:
        return ParquetIOManager(base_path=self.base_upath())


class ArtifactIOManagerFactory(StorageIOManagerFactory):
    def create_io_manager(self, context) -> ArtifactIOManager:
        return ArtifactIOManager(base_path=self.base_upath())
