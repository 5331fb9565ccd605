"""Atomic writes, pickle-free artifacts, and the partition-dict IO managers inside real Dagster runs."""

import io
import json
import os
import pathlib
import warnings
from dataclasses import replace

import dagster as dg
import numpy as np
import pandas as pd
import pytest
from upath import UPath

from support_nlp.core import storage
from support_nlp.core.artifacts import HEADER_KEY, artifact_from_bytes, artifact_to_bytes
from support_nlp.core.categories import ClusteringConfig, fit_categories
from support_nlp.core.category_schema import ALL_LANGUAGES, CategoryModel
from support_nlp.core.classifier import ClassifierConfig, ClassifierModel, train_classifier
from support_nlp.core.embedding import EmbeddingBatch
from support_nlp.core.encoders import BUNDLED_MODEL_NAME
from support_nlp.core.storage import write_atomically
from support_nlp.io_managers import ArtifactIOManagerFactory, ParquetIOManagerFactory
from support_nlp_tests.test_categories import real_training_set

RANGE_DAYS = ["2024-01-01", "2024-01-02", "2024-01-03"]
# One run for the whole range, as a single-run backfill launches it.
RANGE_TAGS = {
    "dagster/asset_partition_range_start": RANGE_DAYS[0],
    "dagster/asset_partition_range_end": RANGE_DAYS[-1],
}


# --------------------------------------------------------------------------------------- atomic writes


def leftovers(folder: pathlib.Path, keep: str) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name != keep)


def test_write_atomically_writes_and_replaces(tmp_path):
    target = UPath(tmp_path) / "table.parquet"
    write_atomically(target, b"first version")
    assert pathlib.Path(tmp_path / "table.parquet").read_bytes() == b"first version"
    write_atomically(target, b"second")
    assert pathlib.Path(tmp_path / "table.parquet").read_bytes() == b"second"
    assert leftovers(tmp_path, "table.parquet") == []


def test_failed_fsync_keeps_the_previous_content(tmp_path, monkeypatch):
    target = UPath(tmp_path) / "model.npz"
    write_atomically(target, b"previous content")

    def failing_fsync(fd):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="disk full"):
        write_atomically(target, b"new content that never lands")
    assert (tmp_path / "model.npz").read_bytes() == b"previous content"
    assert leftovers(tmp_path, "model.npz") == []


def test_crash_after_partial_write_keeps_the_previous_content(tmp_path, monkeypatch):
    target = UPath(tmp_path) / "model.npz"
    write_atomically(target, b"previous content")
    written: list[str] = []

    class HalfWriter(io.FileIO):
        def write(self, data):
            written.append(self.name)
            super().write(data[: len(data) // 2])
            raise OSError("killed mid-write")

    def half_open(path, mode="r", *args, **kwargs):
        return HalfWriter(path, mode.replace("b", ""))

    monkeypatch.setattr(storage, "open", half_open, raising=False)
    with pytest.raises(OSError, match="killed mid-write"):
        write_atomically(target, b"0123456789" * 100)
    assert written and pathlib.Path(written[0]).name != "model.npz"  # the partial data went to a temp file
    assert (tmp_path / "model.npz").read_bytes() == b"previous content"
    assert leftovers(tmp_path, "model.npz") == []


# ------------------------------------------------------------------------------------------- artifacts


@pytest.fixture(scope="module")
def real_set(real_slice_csv) -> tuple[pd.DataFrame, np.ndarray]:
    """Real cleaned tweets of 4 days and their embeddings (shared with test_categories, encoded once)."""
    return real_training_set(real_slice_csv)


def assert_round_trip(artifact):
    data = artifact_to_bytes(artifact)
    loaded = artifact_from_bytes(data)
    assert type(loaded) is type(artifact)
    arrays, meta = artifact.to_arrays()
    loaded_arrays, loaded_meta = loaded.to_arrays()
    assert set(loaded_arrays) == set(arrays)
    for name, array in arrays.items():
        np.testing.assert_array_equal(loaded_arrays[name], array)
        assert loaded_arrays[name].dtype == np.asarray(array).dtype, name
    # Metadata is stored as JSON: equal as JSON (tuples come back as lists).
    assert json.dumps(loaded_meta, sort_keys=True) == json.dumps(meta, sort_keys=True)
    return loaded


def test_embedding_batch_round_trip(real_set):
    tweets, vectors = real_set
    tweet_ids = tweets["tweet_id"].to_numpy()
    loaded = assert_round_trip(EmbeddingBatch(tweet_ids, vectors, BUNDLED_MODEL_NAME))
    assert loaded.model == BUNDLED_MODEL_NAME and loaded.vectors.dtype == np.float32


def test_category_and_classifier_models_round_trip(real_set):
    tweets, vectors = real_set
    tweet_ids, days = tweets["tweet_id"].to_numpy(), tweets["day"].to_numpy()
    categories = fit_categories(vectors, tweet_ids, tweets, ClusteringConfig(k=4), BUNDLED_MODEL_NAME)
    loaded = assert_round_trip(categories)
    assert isinstance(loaded, CategoryModel) and loaded.k == 4 and loaded.names == categories.names
    assert loaded.categories == categories.categories  # typed: keyphrase pairs and texts come back as tuples

    # A model stored before the category map, per-language clustering and seed overlaps lacks their fields: it
    # still loads.
    arrays, meta = categories.to_arrays()
    later_fields = ("generated_name", "named_by", "merged_into", "language_group")
    later_fields += ("overlapping_seed", "overlapping_seed_share")
    earlier_categories = [{k: v for k, v in c.items() if k not in later_fields} for c in meta["categories"]]
    earlier = load_with_header(arrays, "CategoryModel", {**meta, "categories": earlier_categories})
    assert earlier.names == categories.names
    assert all(c.generated_name == c.name and c.language_group == ALL_LANGUAGES for c in earlier.categories)
    assert all(c.overlapping_seed is None and c.overlapping_seed_share == 0 for c in earlier.categories)
    np.testing.assert_array_equal(loaded.project(vectors), categories.project(vectors))

    # Categories label the tweets they keep (not "other"), by tweet id.
    labelled = np.isin(tweet_ids, categories.tweet_ids)
    labels = pd.Series(categories.labels, index=categories.tweet_ids).loc[tweet_ids[labelled]].to_numpy()
    classifier = train_classifier(
        vectors[labelled], labels, days[labelled], categories.names, BUNDLED_MODEL_NAME, ClassifierConfig()
    )
    loaded = assert_round_trip(classifier)
    assert isinstance(loaded, ClassifierModel) and loaded.metrics == classifier.metrics
    assert loaded.category_shares == classifier.category_shares
    pd.testing.assert_frame_equal(loaded.predict(vectors, 0.3), classifier.predict(vectors, 0.3))

    # A classifier stored before its metrics were typed kept the training mix inside them, and one stored before
    # training was capped recorded no fitted rows (it fitted every training row): both still load.
    arrays, meta = classifier.to_arrays()
    earlier_metrics = {k: v for k, v in meta["metrics"].items() if k != "fitted_rows"}
    earlier_meta = {**meta, "metrics": {**earlier_metrics, "category_shares": meta.pop("category_shares")}}
    earlier = load_with_header(arrays, "ClassifierModel", earlier_meta)
    assert earlier.metrics == replace(classifier.metrics, fitted_rows=classifier.metrics.train_rows)
    assert earlier.category_shares == classifier.category_shares


def load_with_header(arrays: dict, type_name: str, meta: dict):
    """An artifact as stored with the given JSON header, loaded back."""
    header = json.dumps({"type": type_name, "meta": meta})
    return artifact_from_bytes(npz_bytes(**{HEADER_KEY: np.array(header)}, **arrays))


def npz_bytes(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def test_unknown_artifact_types_are_refused():
    header = json.dumps({"type": "dict", "meta": {}})
    with pytest.raises(TypeError, match="unknown artifact type 'dict'"):
        artifact_from_bytes(npz_bytes(**{HEADER_KEY: np.array(header)}, values=np.arange(3)))
    with pytest.raises(TypeError, match="cannot store dict"):
        artifact_to_bytes({"not": "an artifact"})


def test_object_arrays_are_never_unpickled():
    header = json.dumps({"type": "EmbeddingBatch", "meta": {"model": BUNDLED_MODEL_NAME}})
    data = npz_bytes(
        **{HEADER_KEY: np.array(header)},
        tweet_ids=np.array([1, 2], dtype=object),
        vectors=np.zeros((2, 3), np.float32),
    )
    with pytest.raises(ValueError, match="allow_pickle"):
        artifact_from_bytes(data)


# ------------------------------------------------------------------------- IO managers in Dagster runs

DAILY = dg.DailyPartitionsDefinition(start_date="2024-01-01")


def synthetic_day_frame(day: str, version: int = 1) -> pd.DataFrame:
    """Synthetic rows for the IO-manager tests: content identifies the day and the write."""
    return pd.DataFrame({"day": [day, day], "value": [version, version * 10]})


# Single-run backfills are deliberate (as in support_nlp.partitions); Dagster flags the parameter as beta.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Parameter `backfill_policy`", category=dg.BetaWarning)

    @dg.asset(partitions_def=DAILY, backfill_policy=dg.BackfillPolicy.single_run())
    def synthetic_daily(context: dg.AssetExecutionContext) -> dict[str, pd.DataFrame]:
        version = int(context.run.tags.get("version", "1"))
        return {key: synthetic_day_frame(key, version) for key in context.partition_keys}

    @dg.asset(partitions_def=DAILY, backfill_policy=dg.BackfillPolicy.single_run())
    def synthetic_daily_not_a_dict(context: dg.AssetExecutionContext) -> pd.DataFrame:
        return synthetic_day_frame(context.partition_keys[0])


@dg.asset(ins={"synthetic_daily": dg.AssetIn(metadata={"allow_missing_partitions": True})})
def synthetic_all_days(synthetic_daily: dict[str, pd.DataFrame]) -> pd.DataFrame:
    return pd.DataFrame(
        {"days": sorted(synthetic_daily), "rows": [len(synthetic_daily[d]) for d in sorted(synthetic_daily)]}
    )


@dg.asset(ins={"synthetic_daily": dg.AssetIn()})
def synthetic_all_days_strict(synthetic_daily: dict[str, pd.DataFrame]) -> pd.DataFrame:
    return pd.concat(synthetic_daily.values())


@dg.asset(io_manager_key="artifact_io_manager")
def synthetic_embeddings() -> EmbeddingBatch:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(5, 8)).astype(np.float32)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    return EmbeddingBatch(np.arange(5, dtype=np.int64), unit, "synthetic-model")


@dg.asset(io_manager_key="artifact_io_manager")
def synthetic_embedding_norms(synthetic_embeddings: EmbeddingBatch) -> EmbeddingBatch:
    norms = np.linalg.norm(synthetic_embeddings.vectors, axis=1, keepdims=True)
    batch = synthetic_embeddings
    return EmbeddingBatch(batch.tweet_ids, norms.astype(np.float32), batch.model)


@dg.asset
def synthetic_table() -> pd.DataFrame:
    return pd.DataFrame({"tweet_id": np.arange(4, dtype=np.int64), "text": ["a", "b", "c", "d"]})


@dg.asset
def synthetic_table_copy(synthetic_table: pd.DataFrame) -> pd.DataFrame:
    return synthetic_table.assign(length=synthetic_table["text"].str.len())


def resources(base: pathlib.Path) -> dict:
    return {
        "io_manager": ParquetIOManagerFactory(base_path=str(base)),
        "artifact_io_manager": ArtifactIOManagerFactory(base_path=str(base)),
    }


def failure_messages(result: dg.ExecuteInProcessResult) -> str:
    return "\n".join(
        str(event.step_failure_data.error)
        for event in result.all_events
        if event.is_step_failure and event.step_failure_data
    )


def test_unpartitioned_round_trip(tmp_path):
    result = dg.materialize([synthetic_table, synthetic_table_copy], resources=resources(tmp_path))
    assert result.success
    written = pd.read_parquet(tmp_path / "synthetic_table.parquet")
    pd.testing.assert_frame_equal(written, synthetic_table())
    copy = result.output_for_node("synthetic_table_copy")
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "synthetic_table_copy.parquet"), copy)
    assert copy["length"].tolist() == [1, 1, 1, 1]


def test_artifact_round_trip(tmp_path):
    result = dg.materialize([synthetic_embeddings, synthetic_embedding_norms], resources=resources(tmp_path))
    assert result.success
    stored = artifact_from_bytes((tmp_path / "synthetic_embedding_norms.npz").read_bytes())
    np.testing.assert_allclose(stored.vectors[:, 0], 1.0, atol=1e-6)
    original = artifact_from_bytes((tmp_path / "synthetic_embeddings.npz").read_bytes())
    np.testing.assert_array_equal(original.vectors, synthetic_embeddings().vectors)


def test_single_run_range_writes_one_file_per_partition(tmp_path):
    result = dg.materialize([synthetic_daily], resources=resources(tmp_path), tags=RANGE_TAGS)
    assert result.success
    folder = tmp_path / "synthetic_daily"
    assert sorted(p.name for p in folder.iterdir()) == [f"{day}.parquet" for day in RANGE_DAYS]
    for day in RANGE_DAYS:
        pd.testing.assert_frame_equal(pd.read_parquet(folder / f"{day}.parquet"), synthetic_day_frame(day))
    materializations = result.asset_materializations_for_node("synthetic_daily")
    assert sorted(m.partition for m in materializations) == RANGE_DAYS


def test_downstream_gets_only_the_materialized_partitions(tmp_path):
    instance = dg.DagsterInstance.ephemeral()
    assets = [synthetic_daily, synthetic_all_days]
    assert dg.materialize(assets, resources=resources(tmp_path), tags=RANGE_TAGS, instance=instance).success
    assert dg.materialize(
        assets,
        resources=resources(tmp_path),
        partition_key="2024-01-10",
        instance=instance,
        selection=[synthetic_daily],
    ).success
    storage = resources(tmp_path)
    result = dg.materialize(assets, resources=storage, instance=instance, selection=[synthetic_all_days])
    assert result.success
    summary = result.output_for_node("synthetic_all_days")
    assert summary["days"].tolist() == [*RANGE_DAYS, "2024-01-10"]
    assert summary["rows"].tolist() == [2, 2, 2, 2]


def test_missing_partition_fails_without_allow_missing(tmp_path):
    assets = [synthetic_daily, synthetic_all_days_strict]
    storage = resources(tmp_path)
    assert dg.materialize(assets, resources=storage, tags=RANGE_TAGS, selection=[synthetic_daily]).success
    result = dg.materialize(
        assets, resources=resources(tmp_path), selection=[synthetic_all_days_strict], raise_on_error=False
    )
    assert not result.success
    assert "not materialized" in failure_messages(result)
    assert "2024-01-04" in failure_messages(result)


def test_partitioned_output_must_be_a_partition_dict(tmp_path):
    result = dg.materialize(
        [synthetic_daily_not_a_dict], resources=resources(tmp_path), tags=RANGE_TAGS, raise_on_error=False
    )
    assert not result.success
    assert "{partition_key: value}" in failure_messages(result)
    assert not (tmp_path / "synthetic_daily_not_a_dict").exists() or not any(
        (tmp_path / "synthetic_daily_not_a_dict").iterdir()
    )


def test_rematerializing_a_partition_overwrites_only_it(tmp_path):
    assert dg.materialize([synthetic_daily], resources=resources(tmp_path), tags=RANGE_TAGS).success
    folder = tmp_path / "synthetic_daily"
    before = {day: (folder / f"{day}.parquet").read_bytes() for day in RANGE_DAYS}
    result = dg.materialize(
        [synthetic_daily], resources=resources(tmp_path), partition_key="2024-01-02", tags={"version": "2"}
    )
    assert result.success
    rewritten = pd.read_parquet(folder / "2024-01-02.parquet")
    pd.testing.assert_frame_equal(rewritten, synthetic_day_frame("2024-01-02", 2))
    assert (folder / "2024-01-01.parquet").read_bytes() == before["2024-01-01"]
    assert (folder / "2024-01-03.parquet").read_bytes() == before["2024-01-03"]
    assert sorted(p.name for p in folder.iterdir()) == [f"{day}.parquet" for day in RANGE_DAYS]
