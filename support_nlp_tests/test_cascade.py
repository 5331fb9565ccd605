"""The cascade: every text labelled from the static student, the unsure ones by the transformer; on real tweets."""

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import dagster as dg
import numpy as np
import pandas as pd
import pytest
from sklearn.cluster import KMeans
from upath import UPath

from support_nlp.benchmarks.escalation_scores import (
    SHIPPED_SCORE,
    compare_escalation_scores,
    escalation_features,
    student_views,
)
from support_nlp.core import cascade as cascade_module
from support_nlp.core.artifacts import artifact_from_bytes, artifact_to_bytes
from support_nlp.core.cascade import (
    CALIBRATION_Z,
    CASCADE_TEXTS_FILE,
    DEFAULT_CALIBRATION_ROWS,
    ESCALATE_EVERYTHING,
    MAX_CALIBRATION_SHARE,
    MIN_FIT_TEXTS,
    Cascade,
    CascadeTexts,
    calibrate_cascade,
    cascade_texts_of,
    choose_escalation_threshold,
    classifier_fingerprint,
    disagreement_upper_bound,
    fit_student_classifier,
    load_cascade,
    store_cascade,
    stored_cascade,
)
from support_nlp.core.classifier import ClassifierModel, train_classifier
from support_nlp.core.conversation import ISSUE, conversation_frame
from support_nlp.core.embedding import embed_texts
from support_nlp.core.encoders.static_backend import default_student_root, fit_digest
from support_nlp.core.language import detect_languages
from support_nlp.core.model_store import ModelPair, ModelVersion, holdout_of
from support_nlp.core.storage import list_names, read_decoded, write_file
from support_nlp.core.student_classifier import StudentClassifier
from support_nlp.core.text import clean_frame
from support_nlp.core.twcs import BUNDLED_SAMPLE, read_twcs
from support_nlp.defs.assets.inference import predictions_asset
from support_nlp.partitions import daily_partitions
from support_nlp.resources import EmbeddingModel
from support_nlp.settings import INFERENCE, read_settings
from support_nlp_tests.static_student import FIT_TEXTS, build_student, distinct_cleaned, teacher
from support_nlp_tests.test_model_store import refuse_to_build

CATEGORIES = 8
CALIBRATION_TEXTS = 400
EVALUATION_TEXTS = 400


@pytest.fixture(scope="module")
def splits(real_inbound) -> tuple[pd.DataFrame, list[str], list[str]]:
    """Training rows (the student's fit texts too), calibration texts and evaluation texts, all distinct."""
    texts = distinct_cleaned(real_inbound)
    training = texts.iloc[:FIT_TEXTS]
    calibration = texts["text"].iloc[FIT_TEXTS : FIT_TEXTS + CALIBRATION_TEXTS].tolist()
    evaluation = texts["text"].iloc[-EVALUATION_TEXTS:].tolist()
    return training, calibration, evaluation


@pytest.fixture(scope="module")
def student(splits):
    return build_student(splits[0]["text"].tolist())


@pytest.fixture(scope="module")
def teacher_classifier(splits):
    """Trained on the transformer's vectors of the training texts, labels from KMeans on those vectors."""
    training = splits[0]
    vectors = embed_texts(training["text"].tolist(), teacher())
    labels = KMeans(CATEGORIES, n_init=3, random_state=0).fit_predict(vectors)
    names = {c: f"category {c}" for c in range(CATEGORIES)}
    return train_classifier(vectors, labels, training["day"].to_numpy(), names, teacher().identity)


@pytest.fixture(scope="module")
def student_classifiers(student, teacher_classifier, splits) -> dict[str, StudentClassifier]:
    """Trained on the training texts with the teacher classifier's labels: on the student vector and the texts'
    n-grams (the product's), and on the vector alone."""
    fit_texts = splits[0]["text"].tolist()
    return {
        name: fit_student_classifier(student, teacher(), teacher_classifier, fit_texts, lexical=lexical)
        for name, lexical in (("vector + n-grams", True), ("vector alone", False))
    }


def agreement_with_teacher(predictions: pd.DataFrame, teacher_classifier, texts: list[str]) -> float:
    reference = teacher_classifier.predict(embed_texts(texts, teacher()), 0.0)
    return float((predictions["category_id"].to_numpy() == reference["category_id"].to_numpy()).mean())


def test_the_student_classifier_learns_the_teachers_labels_of_held_out_real_tweets(
    student, teacher_classifier, student_classifiers, splits
):
    evaluation = splits[2]
    vectors = student.encode(evaluation)
    agreement = {
        name: agreement_with_teacher(classifier.predict(evaluation, vectors, 0.0), teacher_classifier, evaluation)
        for name, classifier in student_classifiers.items()
    }
    # Far above the 1 in 8 of guessing; the floor leaves room for a different CPU.
    assert agreement["vector + n-grams"] >= 0.6
    assert agreement["vector alone"] >= 0.5
    assert student_classifiers["vector + n-grams"].lexical
    assert not student_classifiers["vector alone"].lexical


def test_the_student_classifier_is_stored_as_arrays_and_predicts_the_same_after(student, student_classifiers, splits):
    classifier = student_classifiers["vector + n-grams"]
    again = artifact_from_bytes(artifact_to_bytes(classifier))
    evaluation = splits[2]
    vectors = student.encode(evaluation)
    # A text's n-grams count alone: its prediction does not depend on the other texts of the call.
    one_by_one = pd.concat([again.predict([text], vectors[[row]], 0.0) for row, text in enumerate(evaluation[:50])])
    pd.testing.assert_frame_equal(again.predict(evaluation, vectors, 0.0), classifier.predict(evaluation, vectors, 0.0))
    np.testing.assert_allclose(
        one_by_one["confidence"].to_numpy(),
        classifier.predict(evaluation[:50], vectors[:50], 0.0)["confidence"],
        rtol=1e-5,
    )
    assert classifier.predict([], vectors[:0], 0.0).empty


def test_the_cascade_escalates_exactly_the_texts_the_student_is_unsure_of(
    student, teacher_classifier, student_classifiers, splits
):
    texts = splits[2]
    student_classifier = student_classifiers["vector + n-grams"]
    student_predictions = student_classifier.predict(texts, student.encode(texts), 0.0)
    threshold = float(np.median(student_predictions["confidence"]))
    labels = Cascade(student, teacher(), student_classifier, teacher_classifier, threshold).label(texts)

    unsure = student_predictions["confidence"].to_numpy() < threshold
    np.testing.assert_array_equal(labels.predictions["escalated"].to_numpy(), unsure)
    assert labels.escalated_share == pytest.approx(unsure.mean())
    teacher_predictions = teacher_classifier.predict(embed_texts(texts, teacher()), 0.0)
    for column in ("category_id", "category_name", "confidence"):
        decided, by_teacher, by_student = (
            frame[column].to_numpy() for frame in (labels.predictions, teacher_predictions, student_predictions)
        )
        # Confidences of the same vectors differ in the last float32 bits with the size of the matrix product.
        if column == "confidence":
            np.testing.assert_allclose(decided[unsure], by_teacher[unsure], rtol=1e-5)
            np.testing.assert_allclose(decided[~unsure], by_student[~unsure], rtol=1e-5)
        else:
            np.testing.assert_array_equal(decided[unsure], by_teacher[unsure])
            np.testing.assert_array_equal(decided[~unsure], by_student[~unsure])


def test_labelling_in_chunks_gives_the_labels_of_one_call(
    student, teacher_classifier, student_classifiers, splits, monkeypatch
):
    texts = splits[2][:500]
    student_classifier = student_classifiers["vector + n-grams"]
    confidence = student_classifier.predict(texts, student.encode(texts), 0.0)["confidence"]
    cascade = Cascade(student, teacher(), student_classifier, teacher_classifier, float(np.median(confidence)))
    whole = cascade.label(texts).predictions
    monkeypatch.setattr(cascade_module, "LABEL_CHUNK_ROWS", 97)
    chunked = cascade.label(texts).predictions
    assert whole["escalated"].any() and not whole["escalated"].all()
    pd.testing.assert_frame_equal(chunked.drop(columns="confidence"), whole.drop(columns="confidence"))
    np.testing.assert_allclose(chunked["confidence"], whole["confidence"], rtol=1e-5)
    assert cascade.label([]).predictions.empty


def test_the_threshold_is_the_lowest_that_reaches_the_target_on_the_calibration_texts():
    confidence = np.array([0.99, 0.9, 0.9, 0.8, 0.7, 0.6])
    agrees = np.array([True, True, False, True, False, True])
    # On the calibration texts alone (z = 0): keeping everything down to 0.8 leaves one disagreement in six
    # (83.3 % agreement); down to 0.6, two.
    assert choose_escalation_threshold(confidence, agrees, 0.8, z=0) == 0.8
    # One disagreement in six is too many for 90 %; keeping only the 0.99 text would need cutting between two
    # texts of confidence 0.9, one of them wrong: the cut goes above both.
    assert choose_escalation_threshold(confidence, agrees, 0.9, z=0) == 0.99
    assert choose_escalation_threshold(confidence, np.zeros(6, dtype=bool), 0.9, z=0) == ESCALATE_EVERYTHING
    # With the product's margin six texts cannot vouch for 80 % on other tweets: everything is escalated.
    assert choose_escalation_threshold(confidence, agrees, 0.8) == ESCALATE_EVERYTHING


def test_the_margin_keeps_fewer_texts_and_bounds_the_disagreement_it_keeps():
    rng = np.random.default_rng(0)
    confidence = rng.random(3000)
    agrees = rng.random(3000) < 0.6 + 0.4 * confidence  # the surer, the more often right
    at_target = choose_escalation_threshold(confidence, agrees, 0.97, z=0)
    with_margin = choose_escalation_threshold(confidence, agrees, 0.97)
    assert with_margin > at_target
    kept = confidence >= with_margin
    assert (~agrees[kept]).sum() / len(confidence) < 0.03
    assert disagreement_upper_bound(np.array([(~agrees[kept]).sum()]), len(confidence), CALIBRATION_Z) <= 0.03


def test_a_calibrated_cascade_agrees_with_the_transformer_on_held_out_real_tweets(
    student, teacher_classifier, student_classifiers, splits
):
    _, calibration, evaluation = splits
    for student_classifier in student_classifiers.values():
        cascade = calibrate_cascade(student, teacher(), student_classifier, teacher_classifier, calibration, 0.97)
        labels = cascade.label(evaluation)
        # Calibrated for 97 % on other tweets; the floor leaves room for a different sample and CPU.
        assert agreement_with_teacher(labels.predictions, teacher_classifier, evaluation) >= 0.85
        assert labels.escalated_share < 1.0


def test_the_escalation_score_comparison_reproduces_the_cascade_on_held_out_real_tweets(
    student, teacher_classifier, student_classifiers, splits
):
    """The benchmark's comparison of escalation scores: on the shipped score it chooses the threshold
    `calibrate_cascade` chooses and escalates on held-out tweets what the cascade escalates; every score, the
    cross-fitted ones too, escalates some but not all calibration texts."""
    training, calibration, evaluation = splits
    fit_texts = training["text"].tolist()
    cascade = calibrate_cascade(
        student, teacher(), student_classifiers["vector + n-grams"], teacher_classifier, calibration, 0.97
    )
    views = student_views(cascade, student_classifiers["vector alone"], fit_texts, None)
    calibration_features, evaluation_features = (
        escalation_features(texts, cascade, views, None) for texts in (calibration, evaluation)
    )
    results = {r.score: r for r in compare_escalation_scores(calibration_features, [evaluation_features], 0.97)}

    shipped = results[SHIPPED_SCORE]
    assert shipped.threshold == cascade.escalate_below
    labels = cascade.label(evaluation)
    assert shipped.escalated == [pytest.approx(labels.escalated_share)]
    assert shipped.agreement == [
        pytest.approx(agreement_with_teacher(labels.predictions, teacher_classifier, evaluation))
    ]
    assert len(results) > 2 and all(0 < r.calibration_escalated < 1 for r in results.values())
    # Every n-gram of a text the student classifier was fitted on is known to it; held-out tweets bring new ones.
    seen = escalation_features(fit_texts[:200], cascade, views, None).features["unseen_ngram_share"]
    assert (seen == 0).all() and evaluation_features.features["unseen_ngram_share"].between(0, 1).all()
    assert evaluation_features.features["unseen_ngram_share"].mean() > 0


def cascade_texts(splits) -> CascadeTexts:
    training, calibration, _ = splits
    return CascadeTexts(training["text"].tolist(), calibration)


@pytest.fixture(scope="module")
def product_cascade(student, teacher_classifier, splits, tmp_path_factory):
    """The product's cascade (`load_cascade`) for the tests' classifier and the folder it is kept in; the student
    is the tests' one."""
    kept_in = UPath(tmp_path_factory.mktemp("cascade"))
    return kept_in, load_cascade(teacher(), teacher_classifier, cascade_texts(splits), default_student_root(), kept_in)


def test_the_product_cascade_agrees_with_the_transformer_on_held_out_real_tweets(
    product_cascade, teacher_classifier, splits
):
    _, cascade = product_cascade
    evaluation = splits[2]
    labels = cascade.label(evaluation)
    # Calibrated for 97 % on 400 other tweets; the floor leaves room for a different sample and CPU.
    assert agreement_with_teacher(labels.predictions, teacher_classifier, evaluation) >= 0.9
    assert cascade.student_classifier.lexical
    assert 0.0 < labels.escalated_share < 1.0


def test_the_product_cascade_is_built_once_per_classifier(product_cascade, teacher_classifier, splits, monkeypatch):
    kept_in, cascade = product_cascade
    files = list_names(kept_in)
    monkeypatch.setattr(cascade_module, "fit_student_classifier", refuse_to_build)
    again = load_cascade(teacher(), teacher_classifier, cascade_texts(splits), default_student_root(), kept_in)
    assert list_names(kept_in) == files
    assert again.escalate_below == cascade.escalate_below
    np.testing.assert_array_equal(again.student_classifier.lexical_coef, cascade.student_classifier.lexical_coef)
    retrained = replace(teacher_classifier, intercept=teacher_classifier.intercept + np.float32(0.1))
    assert classifier_fingerprint(retrained) != classifier_fingerprint(teacher_classifier)


def test_concurrent_first_uses_leave_a_description_naming_its_own_classifier(product_cascade, tmp_path):
    """Two builds of one version's cascade that came out differently (e.g. on two CPUs) stored at once."""
    _, cascade = product_cascade
    shifted = replace(cascade.student_classifier, intercept=cascade.student_classifier.intercept + np.float32(1))
    builds = [cascade, replace(cascade, student_classifier=shifted, escalate_below=cascade.escalate_below / 2)]
    kept_in = UPath(tmp_path)
    intercept_of = {build.escalate_below: build.student_classifier.intercept for build in builds}

    def stored_pair_matches() -> bool:
        description = stored_cascade(kept_in)
        stored = read_decoded(kept_in / description["student_classifier_file"], artifact_from_bytes)
        return np.array_equal(stored.intercept, intercept_of[description["escalate_below"]])

    store_cascade(kept_in, builds[0], {})
    with ThreadPoolExecutor(max_workers=4) as pool:
        writes = [pool.submit(store_cascade, kept_in, builds[i % 2], {}) for i in range(8)]
        reads = [pool.submit(stored_pair_matches) for _ in range(8)]
        for write in writes:
            write.result()
        assert all(read.result() for read in reads)
    assert stored_pair_matches()
    assert not [path for path in tmp_path.iterdir() if ".tmp-" in path.name]


def test_a_versions_cascade_texts_split_its_training_days_texts_in_two(real_inbound):
    texts = distinct_cleaned(real_inbound)
    days = sorted(texts["day"].unique())
    halves = [texts.loc[texts["day"].isin(half), "text"].tolist() for half in (days[::2], days[1::2])]
    split = [cascade_texts_of(half) for half in halves]
    for half, recorded in zip(halves, split, strict=True):
        fit, calibration = set(recorded.fit_texts), set(recorded.calibration_texts)
        assert fit | calibration == set(half) and not fit & calibration
        assert len(calibration) == min(DEFAULT_CALIBRATION_ROWS, int(len(half) * MAX_CALIBRATION_SHARE))
        assert CascadeTexts.from_bytes(recorded.to_bytes()) == recorded == cascade_texts_of(reversed(half))
    # Another training slice, another student: its fit digest is part of the student's identity.
    assert fit_digest(split[0].fit_texts) != fit_digest(split[1].fit_texts)
    capped = cascade_texts_of(halves[0], max_fit_rows=500)
    assert len(capped.fit_texts) == 500 and set(capped.fit_texts) <= set(split[0].fit_texts)
    assert capped.calibration_texts == split[0].calibration_texts


def test_the_product_cascade_of_a_version_is_fitted_on_the_texts_its_training_recorded(
    product_cascade, teacher_classifier, splits, tmp_path
):
    """Through the embedding model resource, as `predictions` builds it; the recorded texts are the tests' own, so
    the cached student serves and the cascade comes out as `load_cascade` built it from them."""
    _, cascade = product_cascade
    recorded = cascade_texts(splits)
    folder = UPath(tmp_path) / "version"
    write_file(folder / CASCADE_TEXTS_FILE, recorded.to_bytes())
    built = EmbeddingModel(backend="onnx", device="cpu").cascade(teacher_classifier, folder)
    description = stored_cascade(folder)
    assert description["student"] == built.student.identity
    assert built.student.identity.endswith(f"-fit-{fit_digest(recorded.fit_texts)}")
    assert description["calibration_texts"] == fit_digest(recorded.calibration_texts)
    assert (description["fit_texts_count"], description["calibration_texts_count"]) == (FIT_TEXTS, CALIBRATION_TEXTS)
    assert built.escalate_below == cascade.escalate_below

    unrecorded = UPath(tmp_path) / "older-version"
    with pytest.raises(ValueError, match="older-version records no texts.*SUPPORT_NLP_INFERENCE=transformer"):
        EmbeddingModel(backend="onnx", device="cpu").cascade(teacher_classifier, unrecorded)


def test_the_product_cascade_refuses_too_few_texts(teacher_classifier, splits, tmp_path):
    training, calibration, _ = splits
    few = CascadeTexts(training["text"].tolist()[: MIN_FIT_TEXTS - 1], calibration)
    with pytest.raises(ValueError, match=f"too few texts for a cascade: {MIN_FIT_TEXTS - 1:,} to fit"):
        load_cascade(teacher(), teacher_classifier, few, tmp_path, UPath(tmp_path))


def test_the_product_cascade_refuses_a_classifier_of_another_encoder(teacher_classifier, splits, tmp_path):
    other = replace(teacher_classifier, embedding_model="all-MiniLM-L6-v2|torch-fp32")
    with pytest.raises(ValueError, match="torch-fp32"):
        load_cascade(teacher(), other, cascade_texts(splits), tmp_path, UPath(tmp_path))


def test_cascade_predictions_report_the_escalated_share_of_each_day(product_cascade):
    _, cascade = product_cascade
    day = "2017-11-06"
    inbound, _, summary = read_twcs(str(BUNDLED_SAMPLE))
    tweets = clean_frame(inbound[inbound["day"] == day].reset_index(drop=True), frozenset(summary.brands))
    tweets["language"] = detect_languages(tweets["text_clean"].tolist())

    @dg.asset(key="clean_text", partitions_def=daily_partitions)
    def real_clean_text():
        return {day: tweets}

    given = GivenCascade(cascade)
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(
        [real_clean_text, predictions_asset("cascade")],
        partition_key=day,
        instance=instance,
        resources={
            "io_manager": dg.mem_io_manager,
            "table_io_manager": dg.mem_io_manager,
            "embedding_model": given,
            "model_store": given,
        },
    )
    materialization = next(
        event.materialization
        for event in result.get_asset_materialization_events()
        if event.asset_key == dg.AssetKey("predictions")
    )
    # Only issue messages go through the cascade; the share is of all the day's predicted tweets.
    eligible = tweets[~tweets["is_empty"]].reset_index(drop=True)
    issue = (conversation_frame(eligible)["message_kind"] == ISSUE).to_numpy()
    assert 0 < issue.sum() < len(eligible)
    escalated = cascade.label(eligible.loc[issue, "text_clean"].tolist()).predictions["escalated"]
    assert 0.0 < escalated.mean() < 1.0
    share = escalated.sum() / len(eligible)
    assert materialization.metadata["escalated_share"].value == pytest.approx(share, abs=1e-4)
    predicted = result.asset_value("predictions")[day].set_index("tweet_id")
    conversational = predicted.loc[eligible.loc[~issue, "tweet_id"]]
    assert not conversational["escalated"].any() and conversational["confidence"].isna().all()
    assert (conversational["category_name"] == "").all()
    assert materialization.metadata["model_version"].value == GIVEN_VERSION
    run_tags = instance.get_run_by_id(result.run_id).tags
    assert run_tags["support_nlp/predictions.rows_escalated"] == f"{int(escalated.sum()):,}"


GIVEN_VERSION = "given-by-the-test"


class GivenCascade:
    """Stands in for the model store, with the cascade's teacher classifier deployed, and for the embedding model
    resource, with the tests' cascade instead of the product's default fit (building that student takes minutes of
    transformer time); the tweets and models are real."""

    vector_cache = None

    def __init__(self, cascade: Cascade):
        self.given = cascade

    def deployed(self) -> ModelPair:
        classifier = self.given.teacher_classifier
        version = ModelVersion(
            GIVEN_VERSION,
            "test",
            "",
            classifier.embedding_model,
            len(classifier.category_names),
            holdout_of(classifier),
        )
        # The cascade reads the deployed classifier only; its categories stay with the training job.
        return ModelPair(version, categories=None, classifier=classifier)

    def folder(self, pair: ModelPair) -> UPath:
        return UPath(f"memory://versions/{pair.version.version}")

    def cascade(self, classifier: ClassifierModel, kept_in: UPath, report=None) -> Cascade:
        assert classifier is self.given.teacher_classifier, "the cascade is built for the deployed classifier"
        assert kept_in.name == GIVEN_VERSION, "the cascade is kept with the deployed version"
        return self.given


# The setting is read when the code location is imported: each value is tried in a fresh process, as a deployment
# reads it.
GRAPH_UNDER_THE_SETTING = """
import json
import dagster as dg
from support_nlp.definitions import defs
parents = defs.resolve_asset_graph().get(dg.AssetKey("predictions")).parent_keys
daily = defs.resolve_job_def("daily_inference").asset_layer.selected_asset_keys
print(json.dumps({"predictions_reads": [k.to_user_string() for k in parents],
                  "daily_inference": [k.to_user_string() for k in daily]}))
"""


@pytest.mark.parametrize("inference", ["transformer", "cascade"])
def test_the_inference_setting_switches_the_predictions_path(inference, tmp_path):
    completed = subprocess.run(
        [sys.executable, "-c", GRAPH_UNDER_THE_SETTING],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, INFERENCE.name: inference, "DAGSTER_HOME": str(tmp_path)},
    )
    assert completed.returncode == 0, completed.stderr
    graph = {name: set(keys) for name, keys in json.loads(completed.stdout.splitlines()[-1]).items()}
    reads_embeddings = inference == "transformer"
    assert ("embeddings" in graph["predictions_reads"]) == reads_embeddings
    assert {"clean_text", "deployed_model"} <= graph["predictions_reads"]
    assert ("embeddings" in graph["daily_inference"]) == reads_embeddings
    assert {"raw_tweets", "known_brands", "clean_text", "predictions"} <= graph["daily_inference"]


def test_an_unknown_inference_setting_is_refused():
    with pytest.raises(ValueError, match="SUPPORT_NLP_INFERENCE='fast'"):
        read_settings({INFERENCE.name: "fast"})
