"""The category classifier on embeddings of real tweets, with the clustering's pseudo-labels and real tweet days."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score

from support_nlp.core.categories import ClusteringConfig, fit_categories
from support_nlp.core.classifier import (
    UNCERTAIN_ID,
    UNCERTAIN_NAME,
    ClassifierConfig,
    ClassifierModel,
    fit_rows,
    time_ordered_split,
    train_classifier,
)
from support_nlp.core.encoders import BUNDLED_MODEL_NAME
from support_nlp_tests.conftest import SLICE_DAYS
from support_nlp_tests.test_categories import real_training_set

CONFIG = ClassifierConfig()


@pytest.fixture(scope="module")
def labelled(real_slice_csv):
    """Real cleaned tweets of 4 days, their embeddings and the category labels of a spectral clustering."""
    tweets, vectors = real_training_set(real_slice_csv)
    categories = fit_categories(
        vectors, tweets["tweet_id"].to_numpy(), tweets, ClusteringConfig(k=6, max_outlier_share=0)
    )
    return vectors, categories.labels, tweets["day"].to_numpy(), categories.names


@pytest.fixture(scope="module")
def trained(labelled):
    vectors, labels, days, names = labelled
    return train_classifier(vectors, labels, days, names, BUNDLED_MODEL_NAME, CONFIG)


def sklearn_model(vectors, labels) -> LogisticRegression:
    return LogisticRegression(C=CONFIG.regularization_c, max_iter=CONFIG.max_iter).fit(vectors, labels)


def as_classifier_model(model: LogisticRegression, names: dict, trained: ClassifierModel) -> ClassifierModel:
    """`model`'s weights in the stored form (holdout metrics and training mix are `trained`'s: unused here)."""
    return replace(
        trained,
        coef=model.coef_,
        intercept=model.intercept_,
        classes=model.classes_,
        category_names={str(k): v for k, v in names.items()},
    )


def test_time_ordered_split_trains_on_earlier_days(labelled):
    _, _, days, _ = labelled
    assert sorted(set(days)) == SLICE_DAYS
    for share in (0.01, 0.2, 0.5, 0.9):
        train = time_ordered_split(days, share)
        assert train.any() and (~train).any()
        assert days[train].max() < days[~train].min()
    # Four equally sized days and a 20% holdout: the last day is held out.
    train = time_ordered_split(days, 0.2)
    assert set(days[~train]) == {SLICE_DAYS[-1]}


def test_time_ordered_split_needs_two_days(labelled):
    _, _, days, _ = labelled
    one_day = days[days == SLICE_DAYS[0]]
    with pytest.raises(ValueError, match="at least 2 days"):
        time_ordered_split(one_day, 0.2)


def test_holdout_metrics_are_computed_on_later_days(labelled, trained):
    _, _, days, _ = labelled
    metrics = trained.metrics
    assert metrics.holdout_days[0] > metrics.train_days[1]
    assert metrics.train_days == (SLICE_DAYS[0], SLICE_DAYS[2])
    assert metrics.holdout_days == (SLICE_DAYS[3], SLICE_DAYS[3])
    assert metrics.train_rows + metrics.holdout_rows == len(days)
    assert metrics.holdout_rows == int((days == SLICE_DAYS[3]).sum())
    assert 0.0 <= metrics.agreement_accuracy <= 1.0
    assert 0.0 <= metrics.agreement_macro_f1 <= 1.0


def test_holdout_metrics_match_a_model_refit_on_training_rows_only(labelled, trained):
    vectors, labels, days, _ = labelled
    train = time_ordered_split(days, CONFIG.holdout_share)
    predicted = sklearn_model(vectors[train], labels[train]).predict(vectors[~train])
    truth = labels[~train]
    metrics = trained.metrics
    assert metrics.agreement_accuracy == pytest.approx(accuracy_score(truth, predicted), abs=1e-4)
    macro_f1 = f1_score(truth, predicted, labels=np.unique(labels), average="macro", zero_division=0)
    assert metrics.agreement_macro_f1 == pytest.approx(macro_f1, abs=1e-4)
    matrix = np.asarray(metrics.confusion_matrix)
    assert matrix.sum() == metrics.holdout_rows
    assert np.trace(matrix) == int((predicted == truth).sum())
    assert sum(row.support for row in metrics.per_category) == metrics.holdout_rows


def test_deployed_model_is_fit_on_all_rows(labelled, trained):
    vectors, labels, _, names = labelled
    reference = sklearn_model(vectors, labels)
    np.testing.assert_array_equal(trained.classes, reference.classes_)
    np.testing.assert_allclose(trained.predict_proba(vectors), reference.predict_proba(vectors), atol=1e-4)
    assert trained.category_names == {str(k): v for k, v in names.items()}
    assert trained.embedding_model == BUNDLED_MODEL_NAME


def test_predict_proba_equals_sklearn(labelled, trained):
    vectors, labels, _, names = labelled
    reference = sklearn_model(vectors, labels)
    model = as_classifier_model(reference, names, trained)
    np.testing.assert_allclose(model.predict_proba(vectors), reference.predict_proba(vectors), atol=1e-10)


def test_predict_proba_equals_sklearn_for_two_categories(labelled, trained):
    vectors, labels, _, _ = labelled
    two = (labels % 2).astype(np.int32)
    reference = sklearn_model(vectors, two)
    model = as_classifier_model(reference, {0: "even", 1: "odd"}, trained)
    # sklearn's binary path computes in the vectors' float32, hence the looser tolerance.
    np.testing.assert_allclose(model.predict_proba(vectors), reference.predict_proba(vectors), atol=1e-6)


def test_predict_marks_low_confidence_rows_uncertain(labelled, trained):
    vectors, labels, _, names = labelled
    # Category ids that differ from the class positions, to check the id mapping.
    ids = labels * 10 + 3
    model = as_classifier_model(sklearn_model(vectors, ids), {k * 10 + 3: v for k, v in names.items()}, trained)
    proba = model.predict_proba(vectors)
    threshold = float(np.median(proba.max(axis=1)))
    predicted = model.predict(vectors, min_confidence=threshold)
    assert len(predicted) == len(vectors)
    np.testing.assert_allclose(predicted["confidence"], proba.max(axis=1), rtol=1e-6)
    uncertain = predicted["confidence"] < np.float32(threshold)
    assert 0 < uncertain.sum() < len(predicted)
    assert (predicted.loc[uncertain, "category_id"] == UNCERTAIN_ID).all()
    assert (predicted.loc[uncertain, "category_name"] == UNCERTAIN_NAME).all()
    confident = predicted[~uncertain]
    expected_ids = model.classes[proba.argmax(axis=1)][~uncertain.to_numpy()]
    assert confident["category_id"].tolist() == expected_ids.tolist()
    assert confident["category_name"].tolist() == [names[(i - 3) // 10] for i in expected_ids]
    # With no threshold nothing is uncertain; with an impossible one everything is.
    assert (model.predict(vectors, 0.0)["category_id"] != UNCERTAIN_ID).all()
    assert (model.predict(vectors, 1.01)["category_name"] == UNCERTAIN_NAME).all()


def test_predict_on_no_rows(trained):
    predicted = trained.predict(np.zeros((0, 384), np.float32), min_confidence=0.5)
    assert len(predicted) == 0
    assert predicted.dtypes.to_dict() == {
        "category_id": np.dtype("int32"),
        "category_name": pd.Series([], dtype=str).dtype,
        "confidence": np.dtype("float32"),
    }


def test_large_training_sets_are_fitted_on_a_seeded_sample_holding_every_category(labelled):
    vectors, labels, days, names = labelled
    capped = ClassifierConfig(max_fit_rows=len(labels) // 2)
    rare = labels.max() + 1  # a category with one row, which a uniform sample would usually miss
    labels_with_rare = np.append(labels, rare)
    rows = fit_rows(labels_with_rare, capped)
    assert capped.max_fit_rows <= len(rows) <= capped.max_fit_rows + 1
    assert set(labels_with_rare[rows]) == set(labels_with_rare)
    assert np.array_equal(rows, fit_rows(labels_with_rare, capped))
    assert np.array_equal(fit_rows(labels, CONFIG), np.arange(len(labels)))

    model = train_classifier(vectors, labels, days, names, BUNDLED_MODEL_NAME, capped)
    assert model.metrics.fitted_rows == capped.max_fit_rows < model.metrics.train_rows
    assert model.metrics.agreement_macro_f1 >= 0.8


@pytest.mark.parametrize(
    "wrong", [{"holdout_share": 0.0}, {"holdout_share": 1.0}, {"regularization_c": 0.0}, {"max_fit_rows": 0}]
)
def test_classifier_config_refuses_values_out_of_range(wrong):
    with pytest.raises(ValueError, match=next(iter(wrong))):
        ClassifierConfig(**wrong)
