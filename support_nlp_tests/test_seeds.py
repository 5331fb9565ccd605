"""The team's own taxonomy: seed categories from the category map, matched on embeddings of ~400 real tweets."""

import numpy as np
import pytest

from support_nlp.benchmarks import quality
from support_nlp.core.categories import CategoryModel, ClusteringConfig, fit_categories
from support_nlp.core.category_map import DEFAULT_CATEGORY_MAP, CategoryMap, apply_category_map, load_category_map
from support_nlp.core.embedding import embed_texts
from support_nlp.core.encoders import BUNDLED_MODEL_NAME, load_encoder
from support_nlp.core.seeds import (
    NO_SEED,
    SEED_SIMILARITY,
    Seed,
    add_seed_categories,
    assign_seeds,
    match_seeds,
    seed_similarity,
    suggested_categories,
    without_rare_seeds,
)
from support_nlp_tests.test_categories import real_training_set

CLUSTERING = ClusteringConfig(k=6, seed=0, max_outlier_share=0)


@pytest.fixture(scope="module")
def training_set(real_slice_csv):
    return real_training_set(real_slice_csv)


@pytest.fixture(scope="module")
def seeds(training_set) -> tuple[Seed, ...]:
    """Two seeds whose example phrases are real tweets of the set (so they match at least those tweets)."""
    tweets, _ = training_set
    return (
        Seed("First seed (real example tweets)", tuple(tweets["text"].iloc[[0, 1]])),
        Seed("Second seed (real example tweets)", tuple(tweets["text"].iloc[[2]])),
    )


@pytest.fixture(scope="module")
def seed_of(training_set, seeds) -> np.ndarray:
    _, vectors = training_set
    encoder = load_encoder()
    return assign_seeds(seeds, vectors, lambda texts: embed_texts(texts, encoder), SEED_SIMILARITY, min_tweets=1)


@pytest.fixture(scope="module")
def seeded_model(training_set, seeds, seed_of) -> CategoryModel:
    tweets, vectors = training_set
    ids = tweets["tweet_id"].to_numpy()
    discover = seed_of == NO_SEED
    discovered = fit_categories(vectors[discover], ids[discover], tweets[discover], CLUSTERING, BUNDLED_MODEL_NAME)
    return add_seed_categories(discovered, seeds, seed_of, vectors, ids, tweets)


def test_a_tweet_joins_the_seed_it_is_closest_to_above_the_threshold(training_set, seeds, seed_of):
    _, vectors = training_set
    assert seed_of[[0, 1, 2]].tolist() == [0, 0, 1]  # the example tweets themselves
    owners = np.array([0, 0, 1])
    similarity = seed_similarity(vectors, vectors[[0, 1, 2]], owners, seeds=2)
    expected = np.where(similarity.max(axis=1) >= SEED_SIMILARITY, similarity.argmax(axis=1), NO_SEED)
    np.testing.assert_array_equal(match_seeds(vectors, vectors[[0, 1, 2]], owners, SEED_SIMILARITY), expected)
    # Most real tweets are near no seed: they are left to discovery.
    assert (seed_of == NO_SEED).mean() > 0.9
    assert (match_seeds(vectors, vectors[[0]], np.array([0]), threshold=1.01) == NO_SEED).all()


def test_seeds_matched_too_rarely_are_left_to_discovery():
    seed_of = np.array([0, 0, 0, 1, NO_SEED, 2, 2])
    assert without_rare_seeds(seed_of, min_tweets=2).tolist() == [0, 0, 0, NO_SEED, NO_SEED, 2, 2]
    assert assign_seeds((), np.zeros((3, 4)), embed_texts, SEED_SIMILARITY, 1).tolist() == [NO_SEED] * 3


def test_seed_categories_join_the_discovered_ones(training_set, seeds, seed_of, seeded_model):
    tweets, _ = training_set
    model = seeded_model
    assert sorted(model.tweet_ids.tolist()) == sorted(tweets["tweet_id"].tolist())  # every tweet exactly once
    by_seed = {c.seed: c for c in model.categories if c.seed}
    assert set(by_seed) == {seed.name for seed in seeds}
    label_of = dict(zip(model.tweet_ids.tolist(), model.labels.tolist(), strict=True))
    for index, seed in enumerate(seeds):
        members = tweets["tweet_id"][seed_of == index].tolist()
        category = by_seed[seed.name]
        assert category.name == seed.name and category.size == len(members)
        assert {label_of[tweet_id] for tweet_id in members} == {category.id}
        assert category.generated_name and category.keywords
    discovered = [c for c in model.categories if not c.seed]
    assert len(discovered) == CLUSTERING.k and all(c.language_group for c in model.categories)
    assert sum(c.size for c in model.categories) == len(tweets)
    assert [c.id for c in model.categories] == list(range(model.k))
    assert len({c.generated_name if c.seed else c.name for c in model.categories}) == model.k


def test_suggested_categories_are_the_discovered_ones_largest_first(seeded_model):
    suggested = suggested_categories(seeded_model.categories)
    assert [c.seed for c in suggested] == [None] * CLUSTERING.k
    assert [c.size for c in suggested] == sorted((c.size for c in suggested), reverse=True)


def test_the_map_names_seeds_and_a_name_given_by_id_still_wins(seeded_model):
    seed_category = next(c for c in seeded_model.categories if c.seed)
    named = apply_category_map(seeded_model, CategoryMap())
    assert {c.id: c.named_by for c in named.categories}[seed_category.id] == "seed"
    assert named.names[seed_category.id] == seed_category.seed
    renamed = apply_category_map(seeded_model, CategoryMap(names={seed_category.id: "Our name"}))
    assert renamed.names[seed_category.id] == "Our name"


def test_the_shipped_map_defines_seeds_with_example_phrases():
    seeds = load_category_map(DEFAULT_CATEGORY_MAP).seeds
    assert "Refund" in {seed.name for seed in seeds}
    assert all(len(seed.examples) >= 3 for seed in seeds)


@pytest.mark.parametrize(
    "seeds_yaml",
    [
        "seeds: [{name: Refund}]",
        "seeds: [{name: Refund, examples: []}]",
        "seeds: [{name: '', examples: [money back]}]",
        "seeds: [{name: Refund, examples: [a]}, {name: Refund, examples: [b]}]",
    ],
)
def test_a_malformed_seed_is_an_error_naming_the_file(tmp_path, seeds_yaml):
    path = tmp_path / "category_map.yaml"
    path.write_text(seeds_yaml)
    with pytest.raises(ValueError, match="category_map.yaml"):
        load_category_map(path)


def test_the_threshold_benchmark_scores_seed_matching_by_hand():
    """Synthetic: four labels of ten rows, each label's rows one unit vector of its own; a seeded label's rows
    match their seed exactly, an unseeded label's rows match nothing above similarity 0."""
    labels = np.repeat(np.arange(4), 10)
    vectors = np.eye(4, dtype=np.float32)[labels]
    labelled = quality.LabelledSet("synthetic_orthogonal", [f"text {i}" for i in range(40)], labels, ["b"] * 40)
    prepared = quality.PreparedSet(labelled, labelled.texts, vectors, labels.astype(np.int32))
    scores = quality.seed_scores(prepared, trials=[0, 1])
    assert (scores["precision"] == 1.0).all() and (scores["coverage"] == 1.0).all()
    assert (scores["unseeded taken"] == 0.0).all()
    seeded_rows = quality.SEEDED_LABEL_SHARE * 40 - quality.SEEDED_LABEL_SHARE * 4 * quality.EXAMPLES_PER_SEED
    assert (scores["matched rows"] == seeded_rows).all()
    assert quality.lowest_precise_threshold(scores) == min(quality.SEED_THRESHOLDS)
