"""The model store on the real models `make run` trains: versions, deployments, rollback, refusals."""

import json

import pytest
from upath import UPath

from support_nlp.core.model_store import DEPLOYMENTS_FILE, VERSION_FILE, VERSIONS_FOLDER, ModelStore, ModelStoreError


@pytest.fixture
def trained(pipeline_run):
    _, _, result, _ = pipeline_run
    return result.categories, result.classifier


def test_a_saved_pair_loads_back_as_stored(tmp_path, trained):
    categories, classifier = trained
    store = ModelStore(UPath(tmp_path))
    saved = store.save(categories, classifier, run_id="abcdef0123456789")
    assert saved.version.endswith("-abcdef01") and saved.encoder == classifier.embedding_model
    assert saved.categories == categories.k
    loaded = store.load(saved.version)
    assert loaded.version == saved
    assert loaded.categories.names == categories.names
    assert (loaded.classifier.coef == classifier.coef).all()
    assert store.deployed() is None, "saving is not deploying"


def test_deploy_and_roll_back_keep_a_history(tmp_path, trained, monkeypatch):
    store = ModelStore(UPath(tmp_path))
    first = store.save(*trained, run_id="run-one-aaaaaaaa")
    # Version names carry the training time to the second; two saves in one second must still differ.
    second = store.save(*trained, run_id="run-two-bbbbbbbb")
    assert [v.version for v in store.versions()] == sorted([first.version, second.version])

    store.deploy(first.version, reason="first training")
    store.deploy(second.version, reason="retrained")
    assert store.deployed().version == second
    rollback = store.rollback()
    assert rollback.version == first.version and rollback.reason == f"rollback from {second.version}"
    assert store.deployed().version == first
    history = json.loads((tmp_path / DEPLOYMENTS_FILE).read_text())
    assert [entry["version"] for entry in history] == [first.version, second.version, first.version]


def test_unknown_versions_and_empty_histories_are_refused(tmp_path, trained):
    store = ModelStore(UPath(tmp_path))
    with pytest.raises(ModelStoreError, match="nothing to roll back to"):
        store.rollback()
    with pytest.raises(ModelStoreError, match="'20990101T000000Z-nope' is not in"):
        store.deploy("20990101T000000Z-nope", reason="typo")
    only = store.save(*trained, run_id="only-run")
    store.deploy(only.version, reason="first")
    with pytest.raises(ModelStoreError, match="1 deployment"):
        store.rollback()


def test_an_interrupted_save_is_not_a_version(tmp_path, trained):
    store = ModelStore(UPath(tmp_path))
    saved = store.save(*trained, run_id="crashed-run")
    (tmp_path / VERSIONS_FOLDER / saved.version / VERSION_FILE).unlink()
    assert store.versions() == []
    with pytest.raises(ModelStoreError):
        store.deploy(saved.version, reason="half written")
