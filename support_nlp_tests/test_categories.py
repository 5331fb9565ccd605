"""Category discovery (spectral clustering or KMeans, keyphrase names) on embeddings of ~400 real cleaned tweets."""

from functools import lru_cache

import numpy as np
import pandas as pd
import pytest

from support_nlp.core.categories import (
    REPRESENTATIVES_PER_CATEGORY,
    ClusteringConfig,
    fit_categories,
)
from support_nlp.core.embedding import BUNDLED_MODEL_NAME, embed_texts
from support_nlp.core.language import detect_languages
from support_nlp.core.text import clean_frame
from support_nlp.core.twcs import read_twcs
from support_nlp_tests.conftest import SLICE_DAYS

ROWS_PER_DAY = 100
SEARCH = ClusteringConfig(k_min=4, k_max=10, k_step=2, seed=0)


@lru_cache(maxsize=1)
def real_training_set(slice_csv: str) -> tuple[pd.DataFrame, np.ndarray]:
    """The first 100 non-empty real tweets of each slice day, cleaned, language-tagged and embedded.

    Cached per process so that test_classifier reuses the same embeddings instead of encoding again.
    """
    inbound, _, summary = read_twcs(slice_csv)
    tweets = clean_frame(inbound, frozenset(summary["brands"]))
    tweets = tweets[~tweets["is_empty"] & tweets["day"].isin(SLICE_DAYS)]
    tweets = tweets.sort_values(["day", "tweet_id"]).groupby("day").head(ROWS_PER_DAY).reset_index(drop=True)
    tweets["language"] = detect_languages(tweets["text_clean"].tolist())
    return tweets, embed_texts(tweets["text_clean"].tolist())


@pytest.fixture(scope="module")
def training_set(real_slice_csv):
    tweets, vectors = real_training_set(real_slice_csv)
    assert len(tweets) == ROWS_PER_DAY * len(SLICE_DAYS)
    return tweets, vectors


@pytest.fixture(scope="module")
def searched(training_set):
    tweets, vectors = training_set
    return fit_categories(vectors, tweets["tweet_id"].to_numpy(), tweets, SEARCH, BUNDLED_MODEL_NAME)


def test_fit_is_reproducible_with_a_fixed_seed(training_set, searched):
    tweets, vectors = training_set
    again = fit_categories(vectors, tweets["tweet_id"].to_numpy(), tweets, SEARCH, BUNDLED_MODEL_NAME)
    np.testing.assert_array_equal(again.labels, searched.labels)
    np.testing.assert_array_equal(again.centroids, searched.centroids)
    assert again.categories == searched.categories
    assert again.k_curve == searched.k_curve
    assert again.silhouette == searched.silhouette


def test_k_is_chosen_by_silhouette_within_the_range(searched):
    assert [point["k"] for point in searched.k_curve] == [4, 6, 8, 10]
    assert SEARCH.k_min <= searched.k <= SEARCH.k_max
    best = max(searched.k_curve, key=lambda point: point["silhouette"])
    assert searched.k == best["k"]
    assert all(-1.0 <= point["silhouette"] <= 1.0 and point["inertia"] > 0 for point in searched.k_curve)
    assert -1.0 <= searched.silhouette <= 1.0
    assert len(np.unique(searched.labels)) == searched.k


def test_fixed_k_is_respected(training_set):
    tweets, vectors = training_set
    model = fit_categories(vectors, tweets["tweet_id"].to_numpy(), tweets, ClusteringConfig(k=5))
    assert model.k == 5 and model.k_curve == []
    assert sorted(np.unique(model.labels)) == [0, 1, 2, 3, 4]
    assert len(model.categories) == 5


def test_every_category_is_described(training_set, searched):
    tweets, _ = training_set
    assert [c["id"] for c in searched.categories] == list(range(searched.k))
    assert sum(c["size"] for c in searched.categories) == len(tweets)
    for category in searched.categories:
        members = tweets[searched.labels == category["id"]]
        assert category["size"] == len(members) > 0
        assert category["share"] == pytest.approx(len(members) / len(tweets), abs=1e-4)
        assert category["keywords"] and all(score > 0 for _, score in category["keywords"])
        assert category["name"].startswith(category["keywords"][0][0])
        assert 1 <= len(category["representatives"]) <= REPRESENTATIVES_PER_CATEGORY
        assert set(category["representatives"]) <= set(members["text"])
        for column, shares in (("language", category["languages"]), ("brand", category["brands"])):
            assert shares and len(shares) <= 5
            for value, share in shares.items():
                assert share == pytest.approx((members[column] == value).mean(), abs=5e-4)
    names = searched.names
    assert set(names) == set(range(searched.k)) and all(names.values())


def test_representatives_are_the_members_closest_to_the_centroid(training_set, searched):
    tweets, vectors = training_set
    features = searched.project(vectors)
    distances = np.linalg.norm(features - searched.centroids[searched.labels], axis=1)
    for category in searched.categories:
        members = np.flatnonzero(searched.labels == category["id"])
        closest = members[np.argsort(distances[members])]
        assert category["representatives"][0] == tweets["text"].iloc[closest[0]]


def test_labels_are_the_nearest_centroid_in_the_projection(training_set, searched):
    _, vectors = training_set
    features = searched.project(vectors)
    nearest = np.argmin(((features[:, None, :] - searched.centroids[None]) ** 2).sum(axis=2), axis=1)
    assert (nearest == searched.labels).mean() >= 0.99
    assignments = searched.assignments()
    assert list(assignments.columns) == ["tweet_id", "category_id"]
    assert assignments["tweet_id"].tolist() == training_set[0]["tweet_id"].tolist()
    assert searched.embedding_model == BUNDLED_MODEL_NAME


def test_misaligned_inputs_and_too_few_tweets_are_rejected(training_set):
    tweets, vectors = training_set
    with pytest.raises(ValueError, match="400 vectors but 399 tweets"):
        fit_categories(vectors, tweets["tweet_id"].to_numpy(), tweets.iloc[1:], SEARCH)
    few = tweets.head(5)
    with pytest.raises(ValueError, match="too few tweets"):
        fit_categories(vectors[:5], few["tweet_id"].to_numpy(), few, ClusteringConfig(k_min=6))
