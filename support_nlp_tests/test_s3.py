"""S3 storage against a real S3 server process (SeaweedFS on 127.0.0.1, started and stopped by these tests)."""

import io
import os
import shutil

import botocore.exceptions
import dagster as dg
import numpy as np
import pandas as pd
import pytest
from s3fs import S3FileSystem

from support_nlp.core.artifacts import artifact_from_bytes
from support_nlp.core.cascade import CASCADE_TEXTS_FILE
from support_nlp.core.category_schema import CategoryModel
from support_nlp.core.classifier import ClassifierModel
from support_nlp.core.embedding import EmbeddingBatch
from support_nlp.core.model_store import CATEGORIES_FILE, CLASSIFIER_FILE, MANIFEST_FILE
from support_nlp.core.storage import StorageError
from support_nlp.definitions import build_definitions, build_resources
from support_nlp.io_managers import ParquetIOManager, ParquetIOManagerFactory
from support_nlp.pipeline import run_pipeline
from support_nlp.resources import ObjectStore, TweetSource
from support_nlp_tests.conftest import LAPTOP_INSTANCE_CONFIG, SLICE_RANGE
from support_nlp_tests.s3_server import S3Server, pointed_at
from support_nlp_tests.stack.processes import free_ports

DAILY_ASSETS = {"raw_tweets": ".parquet", "clean_text": ".parquet", "embeddings": ".npz", "predictions": ".parquet"}
PROBE = dg.AssetKey("probe")


def slice_days() -> list[str]:
    return list(pd.date_range(*SLICE_RANGE).strftime("%Y-%m-%d"))


def read_table(server: S3Server, key: str) -> pd.DataFrame:
    return pd.read_parquet(io.BytesIO(server.read(key)))


def test_the_server_rejects_wrong_credentials(s3_server):
    wrong = {"SignatureDoesNotMatch": (s3_server.access_key, "not-the-secret"), "InvalidAccessKeyId": ("nobody", "x")}
    for expected_code, (access_key, secret_key) in wrong.items():
        with pytest.raises(botocore.exceptions.ClientError) as caught:
            s3_server.client(access_key, secret_key).list_objects_v2(Bucket=s3_server.bucket)
        assert caught.value.response["Error"]["Code"] == expected_code
    assert s3_server.client().list_objects_v2(Bucket=s3_server.bucket)["ResponseMetadata"]["HTTPStatusCode"] == 200


# --------------------------------------------------------------------------- the whole graph on S3


@pytest.fixture(scope="module")
def s3_pipeline_run(s3_server, real_slice_csv, tmp_path_factory):
    """`make run`'s code path with the source and every artifact on the S3 server, configured as in production:
    SUPPORT_NLP_S3_* for the endpoint, AWS_* for the credentials."""
    source_key = "sources/twcs_slice.csv.gz"
    s3_server.client().upload_file(real_slice_csv, s3_server.bucket, source_key)
    source = f"s3://{s3_server.bucket}/{source_key}"
    prefix = "pipeline"
    home = tmp_path_factory.mktemp("s3_home")
    storage = f"s3://{s3_server.bucket}/{prefix}"
    (home / "dagster_home").mkdir()
    shutil.copy(LAPTOP_INSTANCE_CONFIG, home / "dagster_home" / "dagster.yaml")
    with pointed_at(s3_server):
        defs = build_definitions(build_resources(storage=storage, source=source, cache_dir=str(home / "cache")))
        # The launched runs configure the code location from the environment, as a deployment does.
        environment = {
            **os.environ,
            "SUPPORT_NLP_HOME": str(home),
            "SUPPORT_NLP_STORAGE": storage,
            "SUPPORT_NLP_SOURCE": source,
        }
        instance = dg.DagsterInstance.local_temp(str(home / "dagster_home"))
        result = run_pipeline(defs, instance, report=lambda line: None, environment=environment)
        parsed = defs.resources["tweet_source"].process_config_and_initialize().parse()
    return prefix, source, result, parsed


def test_every_asset_is_written_to_s3_one_object_per_partition(s3_server, s3_pipeline_run):
    prefix, _, result, _ = s3_pipeline_run
    expected = {f"{prefix}/{asset}/{day}{suffix}" for asset, suffix in DAILY_ASSETS.items() for day in slice_days()}
    expected |= {f"{prefix}/{name}" for name in ("known_brands.parquet", "cluster_labels.npz", "classifier.npz")}
    expected.add(f"{prefix}/category_trends.parquet")
    # Files for people: the HTML report and the trend plots.
    expected |= {
        f"{prefix}/reports/{name}" for name in ("category_report.html", "category_trends.png", "top_movers.png")
    }
    # The model store: the one trained pair as a version (with the texts its cascade is fitted on), and the one record
    # that deployed it.
    with pointed_at(s3_server):
        store = (
            build_resources(storage=f"s3://{s3_server.bucket}/{prefix}")["model_store"]
            .process_config_and_initialize()
            .open()
        )
        [version] = store.versions()
        assert store.deployed_version() == version and len(store.deployments()) == 1
    models = f"{prefix}/models"
    expected |= {
        f"{models}/versions/{version.version}/{name}"
        for name in (CATEGORIES_FILE, CLASSIFIER_FILE, CASCADE_TEXTS_FILE, MANIFEST_FILE)
    }
    keys = s3_server.keys(f"{prefix}/")
    deployments = {key for key in keys if key.startswith(f"{models}/deployments/")}
    cache_prefix = f"{prefix}/embedding_cache/"
    assert len(deployments) == 1
    assert {key for key in keys - deployments if not key.startswith(cache_prefix)} == expected
    # The vector cache lives next to the artifacts: sharded .npz segments under one folder per encoder.
    cache_keys = [key.removeprefix(cache_prefix).split("/") for key in keys if key.startswith(cache_prefix)]
    assert cache_keys and all(len(parts) == 3 and parts[2].endswith(".npz") for parts in cache_keys)
    assert result.predictions_path == f"s3://{s3_server.bucket}/{prefix}/predictions"
    assert result.report_path == f"s3://{s3_server.bucket}/{prefix}/reports/category_report.html"


def test_s3_objects_load_back(s3_server, s3_pipeline_run, slice_inbound_count):
    prefix, _, result, _ = s3_pipeline_run
    tables = {
        asset: pd.concat([read_table(s3_server, f"{prefix}/{asset}/{day}.parquet") for day in slice_days()])
        for asset in ("clean_text", "predictions")
    }
    assert len(tables["clean_text"]) == slice_inbound_count
    assert len(tables["predictions"]) == result.rows_predicted > 0
    batches = [artifact_from_bytes(s3_server.read(f"{prefix}/embeddings/{day}.npz")) for day in slice_days()]
    assert all(isinstance(batch, EmbeddingBatch) for batch in batches)
    embedded_ids = np.concatenate([batch.tweet_ids for batch in batches])
    assert set(embedded_ids) == set(tables["predictions"]["tweet_id"])

    categories = artifact_from_bytes(s3_server.read(f"{prefix}/cluster_labels.npz"))
    assert isinstance(categories, CategoryModel) and categories.names == result.categories.names
    classifier = artifact_from_bytes(s3_server.read(f"{prefix}/classifier.npz"))
    assert isinstance(classifier, ClassifierModel) and classifier.metrics == result.classifier.metrics


def test_the_source_is_read_from_its_s3_uri(s3_pipeline_run, real_slice_csv):
    _, source, _, parsed = s3_pipeline_run
    assert parsed.summary.source == source
    local = TweetSource(path=real_slice_csv, cache_dir=str(parsed.directory.parent)).parse()
    # Same content, same fingerprint: the S3 read saw exactly the bytes of the local file.
    assert parsed.directory == local.directory


# ---------------------------------------------------------------------------------------- failures


def table_io_manager(server: S3Server, prefix: str, endpoint_url: str | None = None, **settings) -> ParquetIOManager:
    store = ObjectStore(endpoint_url=endpoint_url or server.endpoint_url, **settings)
    factory = ParquetIOManagerFactory(base_path=f"s3://{server.bucket}/{prefix}", store=store)
    with dg.build_init_resource_context() as init:
        return factory.create_io_manager(init)


def write_probe(manager: ParquetIOManager, frame: pd.DataFrame) -> None:
    with dg.build_output_context(asset_key=PROBE) as context:
        manager.handle_output(context, frame)


def read_probe(manager: ParquetIOManager) -> pd.DataFrame:
    with dg.build_input_context(asset_key=PROBE) as context:
        return manager.load_input(context)


def version(number: int) -> pd.DataFrame:
    return pd.DataFrame({"version": [number] * 3, "text": ["a", "b", "c"]})


def assert_names_object_and_endpoint(error: pytest.ExceptionInfo, url: str, endpoint: str) -> None:
    assert url in str(error.value) and endpoint in str(error.value), str(error.value)


def test_wrong_credentials_fail_clearly_and_keep_the_previous_version(s3_server):
    prefix = "wrong-credentials"
    url = f"s3://{s3_server.bucket}/{prefix}/probe.parquet"
    with pointed_at(s3_server):
        write_probe(table_io_manager(s3_server, prefix), version(1))
        stored = s3_server.read(f"{prefix}/probe.parquet")

    with pointed_at(s3_server, secret_key="not-the-secret"):
        manager = table_io_manager(s3_server, prefix)
        with pytest.raises(StorageError, match="could not write .*PermissionError") as write_error:
            write_probe(manager, version(2))
        # Refused, not "never materialized" (FileNotFoundError), which would let a run skip the data.
        with pytest.raises(StorageError, match="could not read .*PermissionError") as read_error:
            read_probe(manager)
    for error in (write_error, read_error):
        assert_names_object_and_endpoint(error, url, s3_server.endpoint_url)

    assert s3_server.keys(f"{prefix}/") == {f"{prefix}/probe.parquet"}
    assert s3_server.read(f"{prefix}/probe.parquet") == stored
    with pointed_at(s3_server):
        pd.testing.assert_frame_equal(read_probe(table_io_manager(s3_server, prefix)), version(1))


def test_an_unreachable_endpoint_is_named_in_the_error(s3_server):
    endpoint = f"http://127.0.0.1:{free_ports(1)[0]}"  # nothing listens there
    manager = table_io_manager(s3_server, "unreachable", endpoint_url=endpoint, max_attempts=1, connect_timeout_s=2)
    url = f"s3://{s3_server.bucket}/unreachable/probe.parquet"
    with pointed_at(s3_server):
        with pytest.raises(StorageError, match="could not write") as write_error:
            write_probe(manager, version(1))
        with pytest.raises(StorageError, match="could not read") as read_error:
            read_probe(manager)
    for error in (write_error, read_error):
        assert_names_object_and_endpoint(error, url, endpoint)


def test_a_write_failing_mid_upload_keeps_the_previous_version(s3_server, monkeypatch):
    prefix = "mid-upload"
    # Above twice its 50 MiB chunk size, s3fs uploads in parts: the failure comes once every part is on the server.
    large = pd.DataFrame({"value": np.random.default_rng(0).random(14_000_000)})
    calls: list[str] = []
    call_s3 = S3FileSystem._call_s3

    async def connection_lost_at_commit(fs, method, *args, **kwargs):
        calls.append(method)
        if method == "complete_multipart_upload":
            raise ConnectionResetError("connection lost before the upload was committed")
        return await call_s3(fs, method, *args, **kwargs)

    with pointed_at(s3_server):
        manager = table_io_manager(s3_server, prefix)
        write_probe(manager, version(1))
        stored = s3_server.read(f"{prefix}/probe.parquet")
        with monkeypatch.context() as patched:
            patched.setattr(S3FileSystem, "_call_s3", connection_lost_at_commit)
            with pytest.raises(StorageError, match="connection lost before the upload was committed") as error:
                write_probe(manager, large)
        assert calls.count("upload_part") >= 2
        assert_names_object_and_endpoint(
            error, f"s3://{s3_server.bucket}/{prefix}/probe.parquet", s3_server.endpoint_url
        )

        assert s3_server.read(f"{prefix}/probe.parquet") == stored
        pd.testing.assert_frame_equal(read_probe(manager), version(1))
    # The aborted upload's parts are gone too, not left to be billed.
    uploads = s3_server.client().list_multipart_uploads(Bucket=s3_server.bucket, Prefix=f"{prefix}/")
    assert uploads.get("Uploads", []) == []
