"""The team's own taxonomy: seed categories from the category map, matched on embeddings of ~400 real tweets and
on the labelled real twcs tweets."""

from dataclasses import replace

import numpy as np
import pytest

from support_nlp.benchmarks import quality
from support_nlp.core.categories import CategoryModel, ClusteringConfig, fit_categories
from support_nlp.core.category_map import (
    DEFAULT_CATEGORY_MAP,
    CategoryMap,
    apply_category_map,
    load_category_map,
    unknown_ids,
)
from support_nlp.core.embedding import embed_texts
from support_nlp.core.encoders import BUNDLED_MODEL_NAME, load_encoder
from support_nlp.core.seeds import (
    ADOPTION_SHARE,
    NO_SEED,
    OVERLAP_NOTE_SHARE,
    SEED_SIMILARITY,
    TARGET_TWEET_PRECISION,
    Seed,
    add_seed_categories,
    adopting_seeds,
    assign_seeds,
    match_seeds,
    overlap_note,
    seed_of_rows,
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
    return assign_seeds(seeds, vectors, lambda texts: embed_texts(texts, encoder), SEED_SIMILARITY)


@pytest.fixture(scope="module")
def discovered(training_set) -> CategoryModel:
    tweets, vectors = training_set
    return fit_categories(vectors, tweets["tweet_id"].to_numpy(), tweets, CLUSTERING, BUNDLED_MODEL_NAME)


@pytest.fixture(scope="module")
def seeded_model(training_set, seeds, seed_of, discovered) -> CategoryModel:
    tweets, vectors = training_set
    return add_seed_categories(discovered, seeds, seed_of, vectors, tweets["tweet_id"].to_numpy(), tweets)


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
    assert assign_seeds((), np.zeros((3, 4)), embed_texts, SEED_SIMILARITY).tolist() == [NO_SEED] * 3


def test_a_seed_adopts_the_categories_largely_close_to_it():
    """Synthetic labels: category 0 has 2 of 4 tweets close to seed 0, category 1 one of 5 close to seed 1, and
    category 2 three of 4 close to seed 0."""
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 2, 2, 2, 2])
    close = np.array([0, 0, -1, -1, 1, -1, -1, -1, -1, 0, 0, 0, -1])
    assert adopting_seeds(labels, close, k=3, share=0.5).tolist() == [0, NO_SEED, 0]  # two fold into seed 0
    assert adopting_seeds(labels, close, k=3, share=0.2).tolist() == [0, 1, 0]
    assert adopting_seeds(labels, np.full(len(labels), NO_SEED), k=3, share=0.2).tolist() == [NO_SEED] * 3


def test_seed_categories_hold_adopted_categories_and_the_tweets_close_to_the_seed(
    training_set, seeds, seed_of, discovered, seeded_model
):
    tweets, _ = training_set
    ids = tweets["tweet_id"].to_numpy()
    model = seeded_model
    assert sorted(model.tweet_ids.tolist()) == sorted(ids.tolist())  # every tweet exactly once
    by_seed = {c.seed: c for c in model.categories if c.seed}
    assert set(by_seed) == {seed.name for seed in seeds}
    label_of = dict(zip(model.tweet_ids.tolist(), model.labels.tolist(), strict=True))
    final_seed = seed_of_rows(discovered, seed_of, ids, ADOPTION_SHARE, min_tweets=1)
    assert ((final_seed == seed_of) | (seed_of == NO_SEED)).all()  # a tweet close to a seed ends up in it
    adopted = adopting_seeds(discovered.labels, seed_of, discovered.k, ADOPTION_SHARE)
    for index, seed in enumerate(seeds):
        members = ids[final_seed == index]
        category = by_seed[seed.name]
        assert category.name == seed.name and category.size == len(members)
        assert {label_of[tweet_id] for tweet_id in members} == {category.id}
        assert category.generated_name and category.keywords
        whole = discovered.tweet_ids[np.isin(discovered.labels, np.flatnonzero(adopted == index))]
        assert set(whole) <= set(members)
    assert all(c.language_group for c in model.categories)
    assert sum(c.size for c in model.categories) == len(tweets)
    assert [c.id for c in model.categories] == list(range(model.k))
    assert len({c.generated_name if c.seed else c.name for c in model.categories}) == model.k


def test_a_discovered_category_records_the_seed_its_tweets_were_most_often_close_to(
    training_set, seeds, seed_of, discovered, seeded_model
):
    """Counted by tweet id on the real rows: of the discovered category each kept category comes from, the share
    of tweets close to each seed."""
    tweets, _ = training_set
    close_to = dict(zip(tweets["tweet_id"].tolist(), seed_of.tolist(), strict=True))
    discovered_label = dict(zip(discovered.tweet_ids.tolist(), discovered.labels.tolist(), strict=True))
    kept_label = dict(zip(seeded_model.tweet_ids.tolist(), seeded_model.labels.tolist(), strict=True))
    overlapping = 0
    for category in seeded_model.categories:
        if category.seed:
            assert (category.overlapping_seed, category.overlapping_seed_share) == (None, 0.0)
            continue
        member = next(tweet_id for tweet_id, label in kept_label.items() if label == category.id)
        origin = [t for t, label in discovered_label.items() if label == discovered_label[member]]
        counts = [sum(close_to[t] == index for t in origin) for index in range(len(seeds))]
        best = int(np.argmax(counts))
        expected = (seeds[best].name, round(counts[best] / len(origin), 4)) if counts[best] else (None, 0.0)
        assert (category.overlapping_seed, category.overlapping_seed_share) == expected
        overlapping += category.overlapping_seed is not None
    assert overlapping  # the seeds' example tweets sit in discovered categories too small a share to be adopted


def test_an_overlap_is_noted_from_the_floor_on_suggested_categories_only(seeded_model):
    suggested = suggested_categories(seeded_model.categories)[0]
    at_floor = replace(suggested, overlapping_seed="Refund", overlapping_seed_share=OVERLAP_NOTE_SHARE)
    assert overlap_note(at_floor) == f"close to seed 'Refund' ({OVERLAP_NOTE_SHARE:.0%} of its tweets)"
    assert overlap_note(replace(at_floor, overlapping_seed_share=OVERLAP_NOTE_SHARE - 0.001)) is None
    assert overlap_note(replace(at_floor, merged_into=0)) is None
    assert overlap_note(replace(at_floor, seed="Refund")) is None


def test_the_map_can_merge_a_suggested_category_into_a_seed_category(seeded_model):
    """The hint's action: `<discovered id>: {merge_into: <seed category id>}` relabels its tweets to the seed's
    category and takes it off the suggestions."""
    seed_category = next(c for c in seeded_model.categories if c.seed)
    suggested = suggested_categories(seeded_model.categories)[0]
    category_map = CategoryMap(merges={suggested.id: seed_category.id})
    merged = apply_category_map(seeded_model, category_map)
    assert not unknown_ids(category_map, seeded_model)
    was_suggested = seeded_model.labels == suggested.id
    assert (merged.labels[was_suggested] == seed_category.id).all()
    np.testing.assert_array_equal(merged.labels[~was_suggested], seeded_model.labels[~was_suggested])
    assert suggested.id not in {c.id for c in suggested_categories(merged.categories)}


def test_the_shipped_seeds_find_their_topics_in_real_labelled_tweets(tmp_path):
    """The threshold, chosen on the labelled twcs tweets with none or several topics, holds on the single-topic
    ones: most tweets close to a shipped seed carry a human topic that seed stands for."""
    scores = quality.shipped_seed_scores(BUNDLED_MODEL_NAME, tmp_path, single_topic=True)
    at_threshold = scores.loc[SEED_SIMILARITY]
    assert at_threshold["close to a seed"] > 0
    assert at_threshold["precision %"] >= 100 * TARGET_TWEET_PRECISION
    assert scores["close to a seed"].is_monotonic_decreasing


def test_suggested_categories_are_the_discovered_ones_largest_first(seeded_model):
    suggested = suggested_categories(seeded_model.categories)
    assert [c.seed for c in suggested] == [None] * (seeded_model.k - 2)
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


def test_the_adoption_benchmark_scores_adoption_by_hand():
    """Synthetic, as above, with the discovered categories the labels themselves (and "other" empty): every
    seeded label's category is adopted by its seed and no other category is."""
    labels = np.repeat(np.arange(4), 10)
    vectors = np.eye(4, dtype=np.float32)[labels]
    labelled = quality.LabelledSet("synthetic_orthogonal", [f"text {i}" for i in range(40)], labels, ["b"] * 40)
    prepared = quality.PreparedSet(labelled, labelled.texts, vectors, labels.astype(np.int32))
    scores = quality.adoption_scores(prepared, labels, k=4, trials=[0, 1], threshold=0.5)
    assert (scores["adopted categories"] == quality.SEEDED_LABEL_SHARE * 4).all()
    assert (scores["precision"] == 1.0).all() and (scores["coverage"] == 1.0).all()
    assert quality.lowest_precise_share(scores) == min(quality.ADOPTION_SHARES)
