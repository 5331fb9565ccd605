"""Category discovery (spectral or KMeans, keyphrase names, "other", language groups, near-duplicates) on
embeddings of ~400 real cleaned tweets."""

from functools import lru_cache

import numpy as np
import pandas as pd
import pytest

from support_nlp.core.categories import (
    MIXED_LANGUAGES,
    REPRESENTATIVES_PER_CATEGORY,
    ClusteringConfig,
    fit_categories,
    is_multilingual,
    k_candidates,
    language_groups,
    similarity_to_category,
)
from support_nlp.core.conversation import near_duplicate_key
from support_nlp.core.embedding import embed_texts
from support_nlp.core.encoders import BUNDLED_MODEL_NAME, load_encoder
from support_nlp.core.language import detect_languages
from support_nlp.core.text import clean_frame
from support_nlp.core.twcs import read_twcs
from support_nlp_tests.conftest import SLICE_DAYS

ROWS_PER_DAY = 100
# The structural tests want every tweet in a category; "other" has its own tests.
SEARCH = ClusteringConfig(k_min=4, k_max=10, k_step=2, seed=0, max_outlier_share=0)


@lru_cache(maxsize=1)
def real_training_set(slice_csv: str) -> tuple[pd.DataFrame, np.ndarray]:
    """The first 100 non-empty real tweets of each slice day, cleaned, language-tagged and embedded.

    Cached per process so that test_classifier reuses the same embeddings instead of encoding again.
    """
    inbound, _, summary = read_twcs(slice_csv)
    tweets = clean_frame(inbound, frozenset(summary.brands))
    tweets = tweets[~tweets["is_empty"] & tweets["day"].isin(SLICE_DAYS)]
    tweets = tweets.sort_values(["day", "tweet_id"]).groupby("day").head(ROWS_PER_DAY).reset_index(drop=True)
    tweets["language"] = detect_languages(tweets["text_clean"].tolist())
    return tweets, embed_texts(tweets["text_clean"].tolist(), load_encoder())


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


def test_k_is_the_start_of_the_silhouette_plateau(searched):
    assert [point["k"] for point in searched.k_curve] == [4, 6, 8, 10]
    assert SEARCH.k_min <= searched.k <= SEARCH.k_max
    best = max(point["silhouette"] for point in searched.k_curve)
    floor = best * (1 - SEARCH.silhouette_tolerance)
    within = [point["k"] for point in searched.k_curve if point["silhouette"] >= floor]
    assert searched.k == min(within)
    assert all(-1.0 <= point["silhouette"] <= 1.0 and point["inertia"] > 0 for point in searched.k_curve)
    assert -1.0 <= searched.silhouette <= 1.0
    assert len(np.unique(searched.labels)) == searched.k


def test_fixed_k_is_respected(training_set):
    tweets, vectors = training_set
    model = fit_categories(vectors, tweets["tweet_id"].to_numpy(), tweets, ClusteringConfig(k=5, max_outlier_share=0))
    assert model.k == 5 and model.k_curve == []
    assert sorted(np.unique(model.labels)) == [0, 1, 2, 3, 4]
    assert len(model.categories) == 5


def test_every_category_is_described(training_set, searched):
    tweets, _ = training_set
    assert [c.id for c in searched.categories] == list(range(searched.k))
    assert sum(c.size for c in searched.categories) == len(tweets)
    for category in searched.categories:
        members = tweets[searched.labels == category.id]
        assert category.size == len(members) > 0
        assert category.share == pytest.approx(len(members) / len(tweets), abs=1e-4)
        assert category.keywords and all(score > 0 for _, score in category.keywords)
        assert category.name.startswith(category.keywords[0][0])
        assert 1 <= len(category.representatives) <= REPRESENTATIVES_PER_CATEGORY
        assert set(category.representatives) <= set(members["text"])
        for column, shares in (("language", category.languages), ("brand", category.brands)):
            assert shares and len(shares) <= 5
            for value, share in shares.items():
                # Shares are stored rounded to 3 decimals (half to even: 1/16 is 0.062), so compare them rounded.
                assert share == round((members[column] == value).mean(), 3)
    names = searched.names
    assert set(names) == set(range(searched.k)) and all(names.values())


def test_representatives_are_the_members_closest_to_the_centroid(training_set, searched):
    tweets, vectors = training_set
    features = searched.project(vectors)
    distances = np.linalg.norm(features - searched.centroids[searched.labels], axis=1)
    for category in searched.categories:
        members = np.flatnonzero(searched.labels == category.id)
        closest = members[np.argsort(distances[members])]
        assert category.representatives[0] == tweets["text"].iloc[closest[0]]


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


def test_tweets_that_fit_no_category_go_to_other_with_a_bounded_share(training_set):
    tweets, vectors = training_set
    config = ClusteringConfig(k=6)
    model = fit_categories(vectors, tweets["tweet_id"].to_numpy(), tweets, config)
    everyone = fit_categories(
        vectors, tweets["tweet_id"].to_numpy(), tweets, ClusteringConfig(k=6, max_outlier_share=0)
    )
    ids = tweets["tweet_id"].to_numpy()
    assert not set(model.tweet_ids) & set(model.outlier_ids)
    assert sorted([*model.tweet_ids, *model.outlier_ids]) == sorted(ids)
    assert 0 < model.outlier_share <= config.max_outlier_share
    assert len(everyone.outlier_ids) == 0 and everyone.outlier_share == 0
    similarity = pd.Series(similarity_to_category(vectors, everyone.labels), index=ids)
    # "other" holds the tweets least like their category: all below the floor, all less alike than the members.
    assert (similarity.loc[model.outlier_ids] < config.outlier_similarity).all()
    assert similarity.loc[model.outlier_ids].max() <= similarity.loc[model.tweet_ids].median()
    assert sum(c.size for c in model.categories) == len(model.tweet_ids)


def test_copies_of_one_tweet_count_in_sizes_but_not_in_the_clustering(training_set):
    """A real tweet retweeted 60 times with other URLs and mentions must not change the categories."""
    tweets, vectors = training_set
    config = ClusteringConfig(k=6, max_outlier_share=0)
    original = tweets.assign(near_duplicate_key=[near_duplicate_key(text) for text in tweets["text"]])
    copied_row = original.iloc[[7] * 60].assign(
        text=[f"RT @{n}: {original['text'].iloc[7]} https://t.co/{n}" for n in range(60)]
    )
    copied_row = copied_row.assign(
        tweet_id=np.arange(60) + 10**12, near_duplicate_key=[near_duplicate_key(t) for t in copied_row["text"]]
    )
    assert copied_row["near_duplicate_key"].nunique() == 1
    with_copies = pd.concat([original, copied_row], ignore_index=True)
    copy_vectors = np.vstack([vectors, np.repeat(vectors[[7]], 60, axis=0)])
    base = fit_categories(vectors, original["tweet_id"].to_numpy(), original, config)
    model = fit_categories(copy_vectors, with_copies["tweet_id"].to_numpy(), with_copies, config)
    np.testing.assert_array_equal(model.labels[: len(tweets)], base.labels)
    assert (model.labels[len(tweets) :] == base.labels[7]).all()
    sizes = {c.id: c.size for c in model.categories}
    assert sizes[base.labels[7]] == {c.id: c.size for c in base.categories}[base.labels[7]] + 60


def test_each_group_is_clustered_on_its_own(training_set):
    tweets, vectors = training_set
    brands = tweets["brand"].where(tweets["brand"] == "SpotifyCares", "others").to_numpy()
    model = fit_categories(
        vectors, tweets["tweet_id"].to_numpy(), tweets, ClusteringConfig(k=6, max_outlier_share=0), groups=brands
    )
    group_of_category = {}
    for label, brand in zip(model.labels, brands, strict=True):
        assert group_of_category.setdefault(label, brand) == brand, "a category mixes two groups"
    largest = pd.Series(brands).value_counts().index[0]
    in_largest = [c for c in model.categories if c.language_group == largest]
    assert len(in_largest) == 6
    # The other group gets as many categories as its size warrants at the largest group's category size.
    other_rows = int((brands != largest).sum())
    expected = max(1, round(other_rows / ((len(brands) - other_rows) / 6)))
    assert len(model.categories) - 6 == expected


def test_language_groups_keep_large_languages_apart_and_pool_the_rest(real_inbound):
    languages = pd.Series(["en"] * 100 + ["und"] * 10 + ["es"] * 45 + ["de"] * 5 + ["fr"] * 3)
    groups = language_groups(languages, min_rows=40, together=False)
    assert groups[:110].tolist() == ["en"] * 110  # undetermined (very short) texts join English
    assert groups[110:155].tolist() == ["es"] * 45
    assert set(groups[155:]) == {MIXED_LANGUAGES}
    assert set(language_groups(languages, min_rows=40, together=True)) == {"all"}
    assert is_multilingual("sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2") and is_multilingual("LaBSE")
    assert not is_multilingual(BUNDLED_MODEL_NAME)


def test_the_k_range_grows_with_the_rows_and_can_hold_the_true_k():
    default = ClusteringConfig()
    # 4,500 rows of 150 intents: the old 2·sqrt(rows) range and the old fixed 6..30 both excluded or missed it.
    assert k_candidates(4_500, default)[0] == default.k_min and k_candidates(4_500, default)[-1] >= 150
    assert k_candidates(3_080, default)[-1] >= 77
    assert k_candidates(400, default)[-1] >= 20
    assert len(k_candidates(3_080, default)) <= 30
    assert k_candidates(400, ClusteringConfig(k_min=4, k_max=10, k_step=2)) == [4, 6, 8, 10]
