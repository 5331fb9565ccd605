"""The model store on real trained pairs (categories + classifier from real tweets of the bundled sample): versions,
promotion gated by the classifier's blocking check, rollback, and predictions made with the deployed pair."""

import threading
import uuid
from functools import lru_cache

import dagster as dg
import numpy as np
import pandas as pd
import pytest
from upath import UPath

from support_nlp.core import cascade as cascade_module
from support_nlp.core import model_store as model_store_module
from support_nlp.core.artifacts import artifact_to_bytes
from support_nlp.core.cascade import (
    CASCADE_TEXTS_FILE,
    DESCRIPTION_FILE,
    CascadeTexts,
    load_cascade,
    stored_cascade,
    stored_cascade_texts,
)
from support_nlp.core.categories import CategoryModel, ClusteringConfig, fit_categories
from support_nlp.core.classifier import ClassifierModel, train_classifier
from support_nlp.core.conversation import ISSUE
from support_nlp.core.embedding import EmbeddingBatch, embed_texts
from support_nlp.core.embedding_cache import EmbeddingCache
from support_nlp.core.encoders import BUNDLED_MODEL_NAME
from support_nlp.core.encoders.static_backend import default_student_root
from support_nlp.core.model_store import CLASSIFIER_FILE, MANIFEST_FILE, ModelPair, ModelStore, ModelStoreError
from support_nlp.core.storage import CorruptArtifactError, list_names, s3_storage_options, write_file
from support_nlp.io_managers import ParquetIOManager
from support_nlp.model_store import listing
from support_nlp.model_store import main as model_store_command
from support_nlp.resources import ModelStoreResource
from support_nlp_tests.conftest import SLICE_DAYS, slice_definitions
from support_nlp_tests.s3_server import REGION, pointed_at
from support_nlp_tests.static_student import FIT_TEXTS, distinct_cleaned, teacher
from support_nlp_tests.test_categories import real_training_set


def train_pair(
    tweets: pd.DataFrame, vectors: np.ndarray, k: int, encoder: str
) -> tuple[CategoryModel, ClassifierModel]:
    """Categories (k fixed) of `tweets` and the classifier trained on them, as the assets do."""
    tweet_ids = tweets["tweet_id"].to_numpy()
    categories = fit_categories(vectors, tweet_ids, tweets, ClusteringConfig(k=k, max_outlier_share=0))
    labelled = np.isin(tweet_ids, categories.tweet_ids)
    labels = pd.Series(categories.labels, index=categories.tweet_ids).loc[tweet_ids[labelled]].to_numpy()
    days = tweets["day"].to_numpy()[labelled]
    classifier = train_classifier(vectors[labelled], labels, days, categories.names, encoder)
    return categories, classifier


@lru_cache(maxsize=4)
def trained_pair(slice_csv: str, k: int) -> tuple[CategoryModel, ClassifierModel]:
    """A pair of the real training set."""
    return train_pair(*real_training_set(slice_csv), k, BUNDLED_MODEL_NAME)


@lru_cache(maxsize=1)
def cascade_teacher_pair(slice_csv: str) -> tuple[CategoryModel, ClassifierModel]:
    """A pair of the real training set on the vectors of the cascade's teacher (the ONNX int8 encoder)."""
    tweets, _ = real_training_set(slice_csv)
    return train_pair(tweets, embed_texts(tweets["text_clean"].tolist(), teacher()), 4, teacher().identity)


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path):
    if request.param == "local":
        yield ModelStore(UPath(tmp_path) / "models")
        return
    server = request.getfixturevalue("s3_server")
    url = f"s3://{server.bucket}/model-store-{uuid.uuid4().hex[:8]}"
    with pointed_at(server):
        yield ModelStore(UPath(url, **s3_storage_options(url, server.endpoint_url, REGION)))


def new_run_id() -> str:
    return str(uuid.uuid4())


def test_every_pair_is_kept_with_its_manifest_and_loads_whole(store, real_slice_csv):
    (four, four_classifier), (six, six_classifier) = trained_pair(real_slice_csv, 4), trained_pair(real_slice_csv, 6)
    runs = [new_run_id(), new_run_id()]
    first = store.add(four, four_classifier, runs[0])
    second = store.add(six, six_classifier, runs[1])

    assert [v.version for v in store.versions()] == [first.version, second.version]
    assert [v.run_id for v in store.versions()] == runs
    assert first.categories == 4 and second.categories == 6
    assert first.macro_f1 == four_classifier.metrics.agreement_macro_f1
    assert first.holdout["holdout_days"] == [SLICE_DAYS[-1], SLICE_DAYS[-1]]
    assert second.encoder == BUNDLED_MODEL_NAME
    assert store.trained_by(runs[1]) == second and store.trained_by(new_run_id()) is None

    loaded = store.load(first.version)
    assert loaded.categories.names == four.names
    tweets, vectors = real_training_set(real_slice_csv)
    pd.testing.assert_frame_equal(loaded.classifier.predict(vectors, 0.5), four_classifier.predict(vectors, 0.5))
    assert store.deployed() is None  # stored is not deployed
    # No cascade was ever needed: the versions hold none, and list as such.
    assert stored_cascade(store.folder(first.version)) is None
    assert listing(store).count("no cascade") == 2


def refuse_to_build(*args, **kwargs):
    raise AssertionError("the stored cascade should have been read, not built again")


@pytest.fixture(scope="module")
def teacher_vectors(tmp_path_factory) -> EmbeddingCache:
    """The teacher's vectors of the cascade's texts, shared by the local and the S3 store's tests."""
    return EmbeddingCache(UPath(tmp_path_factory.mktemp("teacher_vectors")))


def test_a_versions_cascade_is_stored_in_it_and_read_back_with_identical_labels(
    store, real_slice_csv, real_inbound, teacher_vectors, monkeypatch
):
    texts = distinct_cleaned(real_inbound)["text"].tolist()
    cascade_texts = CascadeTexts(texts[:FIT_TEXTS], texts[FIT_TEXTS : FIT_TEXTS + 400])
    evaluation = texts[-400:]
    categories, classifier = cascade_teacher_pair(real_slice_csv)
    recorded = {CASCADE_TEXTS_FILE: cascade_texts.to_bytes()}
    with_cascade, without = (store.add(categories, classifier, new_run_id(), recorded) for _ in range(2))
    folder = store.folder(with_cascade.version)

    def cascade_of_the_version():
        texts = stored_cascade_texts(folder)
        return load_cascade(teacher(), classifier, texts, default_student_root(), folder, 0.97, teacher_vectors)

    built = cascade_of_the_version()
    files = list_names(folder)
    monkeypatch.setattr(cascade_module, "fit_student_classifier", refuse_to_build)
    read_back = cascade_of_the_version()
    assert list_names(folder) == files
    assert stored_cascade_texts(folder) == cascade_texts
    assert [name for name in files if name.startswith("cascade")] == [
        stored_cascade(folder)["student_classifier_file"],
        DESCRIPTION_FILE,
        CASCADE_TEXTS_FILE,
    ]
    assert read_back.escalate_below == built.escalate_below
    assert read_back.student.identity == stored_cascade(folder)["student"]
    labels = read_back.label(evaluation).predictions
    pd.testing.assert_frame_equal(labels, built.label(evaluation).predictions)
    assert 0 < labels["escalated"].mean() < 1

    # The version without a cascade stays whole; each lists as it is.
    assert store.load(without.version).classifier.category_names == classifier.category_names
    assert stored_cascade(store.folder(without.version)) is None
    lines = listing(store).splitlines()
    assert f"cascade < {built.escalate_below:.3f}" in next(line for line in lines if with_cascade.version in line)
    assert "no cascade" in next(line for line in lines if without.version in line)


def test_rollback_steps_back_through_deployed_versions_only(store, real_slice_csv):
    pair = trained_pair(real_slice_csv, 4)
    first, second, never = (store.add(*pair, new_run_id()).version for _ in range(3))
    with pytest.raises(ModelStoreError, match="nothing to roll back"):
        store.rollback()
    store.deploy(first, "test")
    store.deploy(second, "test")
    assert store.deployed_version().version == second

    # `never` (like a model refused at its quality floor) was never deployed: a rollback skips it.
    assert store.rollback().version == first
    assert store.deployed().version.version == first
    with pytest.raises(ModelStoreError, match="no version older"):
        store.rollback()
    assert store.rollback(to=never).version == never
    with pytest.raises(ModelStoreError, match="no model version 'nonexistent'"):
        store.rollback(to="nonexistent")
    assert [d.version for d in store.deployments()] == [first, second, first, never]
    assert store.deployments()[2].reason == f"rollback (was {second})"


def test_a_save_that_crashed_before_its_manifest_is_never_listed(tmp_path, real_slice_csv, monkeypatch):
    store = ModelStore(UPath(tmp_path) / "models")
    kept = store.add(*trained_pair(real_slice_csv, 4), new_run_id())
    store.deploy(kept.version, "test")

    def crash_on_manifest(path, data):
        if path.name == MANIFEST_FILE:
            raise OSError("killed before the manifest")
        write_file(path, data)

    monkeypatch.setattr(model_store_module, "write_file", crash_on_manifest)
    crashed_run = new_run_id()
    with pytest.raises(OSError, match="killed before the manifest"):
        store.add(*trained_pair(real_slice_csv, 6), crashed_run)
    monkeypatch.undo()
    assert len(list((tmp_path / "models" / "versions").iterdir())) == 2
    assert [v.version for v in store.versions()] == [kept.version]
    assert store.trained_by(crashed_run) is None
    assert store.deployed_version() == kept


def test_a_damaged_version_is_refused_at_deployment(tmp_path, real_slice_csv):
    store = ModelStore(UPath(tmp_path) / "models")
    good, damaged = (store.add(*trained_pair(real_slice_csv, 4), new_run_id()) for _ in range(2))
    store.deploy(good.version, "test")
    path = tmp_path / "models" / "versions" / damaged.version / CLASSIFIER_FILE
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(CorruptArtifactError, match=CLASSIFIER_FILE):
        store.deploy(damaged.version, "test")
    assert store.deployed_version() == good


def test_concurrent_training_runs_each_keep_their_version(tmp_path, real_slice_csv):
    store = ModelStore(UPath(tmp_path) / "models")
    pair = trained_pair(real_slice_csv, 4)
    runs = [new_run_id() for _ in range(4)]

    def train_and_deploy(run_id: str) -> None:
        store.deploy(store.add(*pair, run_id).version, f"run {run_id}")

    threads = [threading.Thread(target=train_and_deploy, args=(run_id,)) for run_id in runs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(v.run_id for v in store.versions()) == sorted(runs)
    assert len(store.deployments()) == len(runs)
    assert store.deployed_version().run_id in runs


def test_a_refit_inherits_category_ids_from_the_deployed_categories(tmp_path, real_slice_csv, caplog):
    resource = ModelStoreResource(base_path=str(tmp_path))
    assert resource.previous_categories() is None
    store = resource.open()
    four, six = trained_pair(real_slice_csv, 4), trained_pair(real_slice_csv, 6)
    deployed = store.add(*four, new_run_id())
    store.deploy(deployed.version, "test")
    store.add(*six, new_run_id())  # newer, but not deployed
    assert resource.previous_categories().names == four[0].names

    path = tmp_path / "models" / "versions" / deployed.version / "categories.npz"
    path.write_bytes(path.read_bytes()[:-100])
    assert resource.previous_categories() is None
    assert "the deployed model cannot be read and is ignored" in caplog.text


def test_a_storage_from_before_the_model_store_adopts_its_pair(tmp_path, real_slice_csv, monkeypatch):
    four, six = trained_pair(real_slice_csv, 4), trained_pair(real_slice_csv, 6)
    monkeypatch.setenv("SUPPORT_NLP_STORAGE", str(tmp_path))
    (tmp_path / "dagster_home").mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    store = ModelStore(UPath(tmp_path) / "models")
    # A refit whose classifier was refused left categories the stored classifier was not trained on.
    (tmp_path / "cluster_labels.npz").write_bytes(artifact_to_bytes(six[0]))
    (tmp_path / "classifier.npz").write_bytes(artifact_to_bytes(four[1]))
    assert model_store_command(["adopt"]) == 2
    assert store.versions() == []

    (tmp_path / "cluster_labels.npz").write_bytes(artifact_to_bytes(four[0]))
    assert model_store_command(["adopt"]) == 0
    deployed = store.deployed()
    assert deployed.version.run_id == "adopted" and deployed.categories.names == four[0].names
    # Recorded in the instance, so the asset's history says what is deployed.
    with dg.DagsterInstance.get() as instance:
        event = instance.get_latest_materialization_event(dg.AssetKey("deployed_model"))
    assert event.asset_materialization.metadata["model_version"].value == deployed.version.version


# ----------------------------------------------------------------------------------- in Dagster runs


def write_features(storage, slice_csv: str) -> None:
    """clean_text and embeddings partitions of the real training set, as the daily assets store them."""
    tweets, vectors = real_training_set(slice_csv)
    tables = ParquetIOManager(base_path=UPath(storage))
    for day in SLICE_DAYS:
        rows = (tweets["day"] == day).to_numpy()
        (storage / "clean_text").mkdir(parents=True, exist_ok=True)
        (storage / "embeddings").mkdir(parents=True, exist_ok=True)
        (storage / "clean_text" / f"{day}.parquet").write_bytes(tables.serialize(tweets[rows]))
        batch = EmbeddingBatch(tweets["tweet_id"].to_numpy()[rows], vectors[rows], BUNDLED_MODEL_NAME)
        (storage / "embeddings" / f"{day}.npz").write_bytes(artifact_to_bytes(batch))


def assert_predicted_with(storage, slice_csv: str, pair: ModelPair) -> None:
    day = SLICE_DAYS[-1]
    tweets, vectors = real_training_set(slice_csv)
    predicted = pd.read_parquet(storage / "predictions" / f"{day}.parquet")
    issues = predicted[predicted["message_kind"] == ISSUE]
    row_of = pd.Series(np.arange(len(tweets)), index=tweets["tweet_id"])
    expected = pair.classifier.predict(vectors[row_of.loc[issues["tweet_id"]].to_numpy()], 0.5)
    np.testing.assert_array_equal(issues["category_id"].to_numpy(), expected["category_id"].to_numpy())


def test_promotion_is_gated_by_the_quality_check_and_rollback_restores_the_previous_pair(
    tmp_path, real_slice_csv, monkeypatch
):
    storage = tmp_path / "storage"
    write_features(storage, real_slice_csv)
    defs = slice_definitions(tmp_path, real_slice_csv)
    instance = dg.DagsterInstance.ephemeral()
    store = defs.resources["model_store"].open()
    all_assets = list(defs.resolve_asset_graph().assets_defs)

    def train(k: int, min_macro_f1: float = 0.6) -> dg.ExecuteInProcessResult:
        # The categories of this training run, as cluster_labels would store them (its own fit is tested elsewhere).
        (storage / "cluster_labels.npz").write_bytes(artifact_to_bytes(trained_pair(real_slice_csv, k)[0]))
        config = {"ops": {"classifier": {"config": {"min_macro_f1": min_macro_f1}}}}
        selection = ["classifier", "deployed_model"]
        return dg.materialize(
            all_assets, selection=selection, instance=instance, run_config=config, raise_on_error=False
        )

    def predict() -> None:
        day = SLICE_DAYS[-1]
        assert dg.materialize(all_assets, selection=["predictions"], instance=instance, partition_key=day).success

    first = train(k=4)
    assert first.success
    deployed = store.deployed()
    assert deployed.version.run_id == first.run_id and deployed.categories.k == 4

    refused = train(k=6, min_macro_f1=1.01)
    assert not refused.success
    [check] = refused.get_asset_check_evaluations()
    assert check.check_name == "holdout_macro_f1_floor" and not check.passed
    assert "deployed_model" not in {e.step_key for e in refused.get_step_success_events()}
    assert [v.run_id for v in store.versions()] == [first.run_id, refused.run_id]  # kept, not promoted
    assert store.deployed_version().run_id == first.run_id
    predict()
    assert_predicted_with(storage, real_slice_csv, deployed)

    second = train(k=6)
    assert second.success and store.deployed().categories.k == 6
    predict()
    assert_predicted_with(storage, real_slice_csv, store.deployed())
    # Otherwise this test could not tell which pair predicted.
    with pytest.raises(AssertionError):
        assert_predicted_with(storage, real_slice_csv, deployed)

    monkeypatch.setenv("SUPPORT_NLP_STORAGE", str(storage))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    assert model_store_command(["rollback"]) == 0
    assert store.deployed_version() == deployed.version
    predict()
    assert_predicted_with(storage, real_slice_csv, deployed)

    # The same from the UI: the deploy_model job with the version in its config.
    roll_forward = defs.resolve_job_def("deploy_model").execute_in_process(
        instance=instance,
        run_config={"ops": {"deployed_model": {"config": {"version": store.trained_by(second.run_id).version}}}},
    )
    assert roll_forward.success and store.deployed_version().run_id == second.run_id
    assert model_store_command(["list"]) == 0
