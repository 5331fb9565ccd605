"""Corrupt stored artifacts: named, not retried, with the command that rebuilds them; a corrupt embedding-cache
segment is a reported miss. Transient read failures are still retried. Synthetic assets for the IO-manager
mechanics, real rows and the real graph's artifacts for the rest."""

import pathlib
import shutil
import struct
import warnings

import dagster as dg
import numpy as np
import pandas as pd
import pytest
from upath import UPath

from support_nlp.core import embedding_cache
from support_nlp.core.embedding import EmbeddingBatch
from support_nlp.core.embedding_cache import EmbeddingCache
from support_nlp.core.encoders import BUNDLED_MODEL_NAME
from support_nlp.core.model_store import CLASSIFIER_FILE, ModelStore
from support_nlp.core.storage import CorruptArtifactError
from support_nlp.io_managers import ArtifactIOManager, ParquetIOManager
from support_nlp.resources import ROLLBACK_COMMAND
from support_nlp_tests.conftest import SLICE_DAYS, slice_definitions
from support_nlp_tests.test_fast_embedding import SYNTHETIC_TEXTS, unit_vectors
from support_nlp_tests.test_io_managers import RANGE_DAYS, RANGE_TAGS, resources

DAY = "2017-11-04"
DEPLOYED_CLASSIFIER = "the deployed classifier in the model store"


def truncate(path: pathlib.Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def parquet_footer_start(data: bytes) -> int:
    return len(data) - 8 - struct.unpack("<I", data[-8:-4])[0]


def flip_bit(path: pathlib.Path) -> None:
    """Flip one bit of the stored values: the last data byte of a Parquet file, the middle of an `.npz`."""
    data = bytearray(path.read_bytes())
    data[parquet_footer_start(data) - 1 if path.suffix == ".parquet" else len(data) // 2] ^= 0x10
    path.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def real_day(real_inbound) -> pd.DataFrame:
    """Real inbound tweets of one day, typed as the daily tables store them."""
    rows = real_inbound[real_inbound["day"] == DAY]
    return pd.DataFrame(
        {"tweet_id": rows["tweet_id"].astype("int64").to_numpy(), "text": rows["text"].to_numpy(), "day": DAY}
    )


# ------------------------------------------------------------------- every flipped bit is found or harmless


def silently_wrong_positions(path: pathlib.Path, read, expected, positions) -> list[int]:
    """Positions where one flipped bit yields a value unlike `expected` without an error."""
    original = path.read_bytes()
    wrong = []
    for position in positions:
        data = bytearray(original)
        data[position] ^= 0x10
        path.write_bytes(bytes(data))
        try:
            value = read(UPath(path))
        except CorruptArtifactError:
            continue
        if not expected(value):
            wrong.append(position)
    return wrong


def test_a_flipped_bit_in_a_parquet_data_page_is_an_error(tmp_path, real_day):
    manager = ParquetIOManager(base_path=UPath(tmp_path))
    path = tmp_path / "clean_text.parquet"
    path.write_bytes(manager.serialize(real_day))
    # Pages carry CRCs; the footer (schema, column names) after them does not.
    footer_start = parquet_footer_start(path.read_bytes())
    positions = range(4, footer_start, max(1, footer_start // 1500))
    assert silently_wrong_positions(path, manager.read, real_day.equals, positions) == []


def test_a_flipped_bit_in_an_npz_artifact_is_an_error(tmp_path, real_day):
    manager = ArtifactIOManager(base_path=UPath(tmp_path))
    # Narrow vectors keep the file small enough to flip a bit at every position.
    vectors = np.random.default_rng(0).normal(size=(len(real_day), 4)).astype(np.float32)
    batch = EmbeddingBatch(real_day["tweet_id"].to_numpy(), vectors, BUNDLED_MODEL_NAME)
    path = tmp_path / "embeddings.npz"
    path.write_bytes(manager.serialize(batch))

    def same(loaded: EmbeddingBatch) -> bool:
        return (
            np.array_equal(loaded.tweet_ids, batch.tweet_ids)
            and np.array_equal(loaded.vectors, batch.vectors)
            and loaded.model == batch.model
        )

    assert silently_wrong_positions(path, manager.read, same, range(path.stat().st_size)) == []


# --------------------------------------------------------------------- corrupt artifacts in Dagster runs

STORED = dg.DailyPartitionsDefinition(start_date=RANGE_DAYS[0])
NO_DELAY_RETRIES = dg.RetryPolicy(max_retries=2)


# Single-run backfills as in support_nlp.partitions; Dagster flags the parameter as beta.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Parameter `backfill_policy`", category=dg.BetaWarning)

    @dg.asset(partitions_def=STORED, backfill_policy=dg.BackfillPolicy.single_run())
    def synthetic_daily_table(context: dg.AssetExecutionContext) -> dict[str, pd.DataFrame]:
        ids = np.arange(50, dtype=np.int64)
        return {day: pd.DataFrame({"tweet_id": ids, "day": day}) for day in context.partition_keys}

    @dg.asset(
        partitions_def=STORED, backfill_policy=dg.BackfillPolicy.single_run(), io_manager_key="artifact_io_manager"
    )
    def synthetic_daily_vectors(context: dg.AssetExecutionContext) -> dict[str, EmbeddingBatch]:
        return {
            day: EmbeddingBatch(np.arange(50, dtype=np.int64), unit_vectors(50), "synthetic-model")
            for day in context.partition_keys
        }


@dg.asset(io_manager_key="artifact_io_manager")
def synthetic_model() -> EmbeddingBatch:
    return EmbeddingBatch(np.arange(5, dtype=np.int64), unit_vectors(5), "synthetic-model")


# Downstream of each, with a retry policy as the S3-facing assets have: corruption must not use it.
@dg.asset(
    ins={
        "synthetic_daily_table": dg.AssetIn(metadata={"allow_missing_partitions": True}),
        "synthetic_daily_vectors": dg.AssetIn(metadata={"allow_missing_partitions": True}),
    },
    retry_policy=NO_DELAY_RETRIES,
)
def synthetic_reader(synthetic_daily_table: dict, synthetic_daily_vectors: dict, synthetic_model) -> pd.DataFrame:
    return pd.DataFrame({"days": sorted(synthetic_daily_table), "vector_days": sorted(synthetic_daily_vectors)})


STORED_ASSETS = [synthetic_daily_table, synthetic_daily_vectors, synthetic_model, synthetic_reader]


@pytest.fixture
def stored(tmp_path) -> tuple[pathlib.Path, dg.DagsterInstance]:
    instance = dg.DagsterInstance.ephemeral()
    upstream = [synthetic_daily_table, synthetic_daily_vectors, synthetic_model]
    assert dg.materialize(
        STORED_ASSETS, resources=resources(tmp_path), tags=RANGE_TAGS, instance=instance, selection=upstream
    ).success
    return tmp_path, instance


def read_downstream(base: pathlib.Path, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        STORED_ASSETS, resources=resources(base), instance=instance, selection=[synthetic_reader], raise_on_error=False
    )


def step_events(result: dg.ExecuteInProcessResult, event_type: dg.DagsterEventType) -> list[dg.DagsterEvent]:
    return [event for event in result.all_events if event.event_type == event_type]


CORRUPTIONS = [
    ("synthetic_daily_table", RANGE_DAYS[1], "synthetic_daily_table/2024-01-02.parquet", truncate),
    ("synthetic_daily_table", RANGE_DAYS[0], "synthetic_daily_table/2024-01-01.parquet", flip_bit),
    ("synthetic_daily_vectors", RANGE_DAYS[2], "synthetic_daily_vectors/2024-01-03.npz", truncate),
    ("synthetic_daily_vectors", RANGE_DAYS[1], "synthetic_daily_vectors/2024-01-02.npz", flip_bit),
    ("synthetic_model", None, "synthetic_model.npz", truncate),
    ("synthetic_model", None, "synthetic_model.npz", flip_bit),
]


@pytest.mark.parametrize(("asset", "day", "stored_file", "corrupt"), CORRUPTIONS)
def test_a_corrupt_artifact_fails_once_naming_it_and_its_rebuild(stored, asset, day, stored_file, corrupt):
    base, instance = stored
    corrupt(base / stored_file)
    result = read_downstream(base, instance)
    assert not result.success
    assert step_events(result, dg.DagsterEventType.STEP_UP_FOR_RETRY) == []
    [failure] = step_events(result, dg.DagsterEventType.STEP_FAILURE)
    message = failure.step_failure_data.user_failure_data.description
    assert str(base / stored_file) in message
    command = f"dagster asset materialize -m support_nlp.definitions --select {asset}"
    assert f"`{command} --partition {day}`" in message if day else f"`{command}`" in message
    assert failure.step_failure_data.user_failure_data.metadata["rebuild_command"].value.startswith(command)


def test_a_transient_read_failure_is_still_retried(stored, monkeypatch):
    base, instance = stored
    path_type = type(UPath(base))
    read_bytes = path_type.read_bytes
    failures = iter([ConnectionError("connection reset by peer")])

    def flaky_read_bytes(self):
        if self.name == "synthetic_model.npz" and (error := next(failures, None)):
            raise error
        return read_bytes(self)

    monkeypatch.setattr(path_type, "read_bytes", flaky_read_bytes)
    result = read_downstream(base, instance)
    assert result.success
    assert len(step_events(result, dg.DagsterEventType.STEP_UP_FOR_RETRY)) == 1
    assert result.output_for_node("synthetic_reader")["days"].tolist() == RANGE_DAYS


# ---------------------------------------------------------------------------------- embedding cache


def cache_segments(root: pathlib.Path) -> list[pathlib.Path]:
    return sorted(root.rglob(f"*{embedding_cache.SEGMENT_SUFFIX}"))


def rewrite_with_other_vectors(path: pathlib.Path) -> None:
    """A well-formed segment whose content no longer matches the hash in its name."""
    with np.load(path) as segment:
        keys, vectors = segment["keys"], segment["vectors"]
    path.write_bytes(embedding_cache._segment_bytes(keys, -vectors))


@pytest.mark.parametrize("corrupt", [truncate, flip_bit, rewrite_with_other_vectors])
def test_a_corrupt_cache_segment_is_a_reported_miss_and_replaced(tmp_path, corrupt):
    vectors = unit_vectors(len(SYNTHETIC_TEXTS))
    EmbeddingCache(tmp_path).store("model", SYNTHETIC_TEXTS, vectors)
    damaged = cache_segments(tmp_path)[0]
    corrupt(damaged)
    warnings: list[str] = []

    found = EmbeddingCache(tmp_path, warn=warnings.append).lookup("model", SYNTHETIC_TEXTS)
    [warning] = warnings
    assert str(damaged) in warning and "corrupt" in warning
    assert not damaged.exists()
    missed = [text for text in SYNTHETIC_TEXTS if text not in found]
    assert missed and len(found) + len(missed) == len(SYNTHETIC_TEXTS)
    for text, vector in found.items():
        np.testing.assert_array_equal(vector, vectors[SYNTHETIC_TEXTS.index(text)])

    rows = [SYNTHETIC_TEXTS.index(text) for text in missed]
    EmbeddingCache(tmp_path).store("model", missed, vectors[rows])
    again = EmbeddingCache(tmp_path, warn=warnings.append).lookup("model", SYNTHETIC_TEXTS)
    assert len(again) == len(SYNTHETIC_TEXTS) and len(warnings) == 1


# ------------------------------------------------------------------------ the real graph, real artifacts


@pytest.mark.parametrize(
    ("stored_file", "corrupt", "rebuild"),
    [
        (DEPLOYED_CLASSIFIER, truncate, f"`{ROLLBACK_COMMAND}`"),
        (f"embeddings/{SLICE_DAYS[1]}.npz", flip_bit, f"--select embeddings --partition {SLICE_DAYS[1]}`"),
        (f"clean_text/{SLICE_DAYS[1]}.parquet", flip_bit, f"--select clean_text --partition {SLICE_DAYS[1]}`"),
    ],
)
def test_predictions_fail_once_on_a_corrupt_input(
    pipeline_run, real_slice_csv, tmp_path, stored_file, corrupt, rebuild
):
    """predictions has the S3 retry policy; a corrupt input of the real pipeline must not use it."""
    storage, _, _, _ = pipeline_run
    shutil.copytree(storage, tmp_path / "storage")
    if stored_file == DEPLOYED_CLASSIFIER:
        deployed = ModelStore(UPath(tmp_path / "storage" / "models")).deployed_version().version
        stored_file = f"models/versions/{deployed}/{CLASSIFIER_FILE}"
    corrupt(tmp_path / "storage" / stored_file)
    result = (
        slice_definitions(tmp_path, real_slice_csv)
        .resolve_job_def("daily_inference")
        .execute_in_process(
            instance=dg.DagsterInstance.ephemeral(),
            partition_key=SLICE_DAYS[1],
            asset_selection=[dg.AssetKey("predictions")],
            raise_on_error=False,
        )
    )
    assert not result.success
    assert step_events(result, dg.DagsterEventType.STEP_UP_FOR_RETRY) == []
    [failure] = step_events(result, dg.DagsterEventType.STEP_FAILURE)
    message = failure.step_failure_data.user_failure_data.description
    assert str(tmp_path / "storage" / stored_file) in message
    assert rebuild in message
