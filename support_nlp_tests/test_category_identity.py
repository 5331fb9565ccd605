"""Category identity across refits and the editable category map, on real tweets of the bundled sample."""

import numpy as np
import pytest

from support_nlp.core.categories import ClusteringConfig, fit_categories
from support_nlp.core.category_map import (
    DEFAULT_CATEGORY_MAP,
    CategoryMap,
    apply_category_map,
    load_category_map,
    unknown_ids,
)
from support_nlp.core.embedding import embed_texts
from support_nlp.core.encoders import load_encoder
from support_nlp.core.identity import carry_over_identity, match_categories
from support_nlp.core.language import detect_languages
from support_nlp.core.text import clean_frame

WINDOW_ROWS = 500
CONFIG = ClusteringConfig(k=8, pca_components=30, seed=0)


def window(real_inbound, first_day: str, last_day: str):
    """Non-empty cleaned real tweets of a date window, with embeddings."""
    rows = real_inbound[(real_inbound["day"] >= first_day) & (real_inbound["day"] <= last_day)]
    cleaned = clean_frame(rows.assign(thread_brand=""), known_brands=frozenset()).head(WINDOW_ROWS * 2)
    cleaned = cleaned[~cleaned["is_empty"]].head(WINDOW_ROWS).reset_index(drop=True)
    cleaned["language"] = detect_languages(cleaned["text_clean"].tolist())
    return cleaned, embed_texts(cleaned["text_clean"].tolist(), load_encoder())


@pytest.fixture(scope="module")
def earlier_and_later_fits(real_inbound):
    earlier_tweets, earlier_vectors = window(real_inbound, "2017-10-01", "2017-10-31")
    later_tweets, later_vectors = window(real_inbound, "2017-11-10", "2017-12-03")
    earlier = fit_categories(earlier_vectors, np.arange(len(earlier_tweets)), earlier_tweets, CONFIG)
    later = fit_categories(later_vectors, np.arange(len(later_tweets)), later_tweets, CONFIG)
    return earlier, later


def test_refit_on_a_later_window_keeps_ids_and_human_names_of_matched_categories(earlier_and_later_fits, tmp_path):
    earlier, later = earlier_and_later_fits
    map_file = tmp_path / "category_map.yaml"
    map_file.write_text(
        "categories:\n" + "".join(f"  {c.id}: {{name: 'team name {c.id}'}}\n" for c in earlier.categories)
    )
    category_map = load_category_map(map_file)
    named_earlier = apply_category_map(earlier, category_map)

    relabelled, report = carry_over_identity(later, named_earlier, min_similarity=0.8)
    named_later = apply_category_map(relabelled, category_map)

    assert len(report.matched) >= CONFIG.k // 2, report
    for category in named_later.categories:
        if category.id in report.matched:
            assert category.name == f"team name {category.id}"
            assert category.named_by == "category map"
        else:
            assert category.id > max(c.id for c in earlier.categories)
            assert category.named_by == "keywords"
    assert sorted(report.vanished) == sorted({c.id for c in earlier.categories} - set(report.matched))
    assert set(np.unique(named_later.labels)) == {c.id for c in named_later.categories}


def test_a_refit_on_the_same_data_matches_every_category_to_itself(earlier_and_later_fits):
    earlier, _ = earlier_and_later_fits
    _, report = carry_over_identity(earlier, earlier)
    assert sorted(report.matched) == [c.id for c in earlier.categories]
    assert all(similarity > 0.999 for similarity in report.matched.values())
    assert report.new == [] and report.vanished == []


def test_matching_is_one_to_one_and_respects_the_similarity_floor():
    previous = np.eye(3)
    current = np.array([[1.0, 0.0, 0.0], [0.9, 0.436, 0.0], [0.0, 0.0, 1.0]])
    current /= np.linalg.norm(current, axis=1, keepdims=True)
    matches = match_categories(previous, current, min_similarity=0.5)
    assert matches[0][0] == 0 and matches[2][0] == 2
    assert 1 not in matches  # its best partner, 0, is taken and 1 is below the floor


def test_merges_relabel_tweets_and_unknown_ids_are_reported(earlier_and_later_fits):
    earlier, _ = earlier_and_later_fits
    source, target = earlier.categories[0].id, earlier.categories[1].id
    merged = apply_category_map(earlier, CategoryMap(merges={source: target}))
    assert source not in set(merged.labels)
    assert (merged.labels == target).sum() == (np.isin(earlier.labels, [source, target])).sum()
    assert next(c for c in merged.categories if c.id == source).merged_into == target
    assert unknown_ids(CategoryMap(names={999: "ghost"}, merges={source: 998}), earlier) == [998, 999]


def test_malformed_or_cyclic_maps_are_refused(tmp_path):
    cyclic = tmp_path / "cyclic.yaml"
    cyclic.write_text("categories:\n  1: {merge_into: 2}\n  2: {merge_into: 1}\n")
    with pytest.raises(ValueError, match="cycle"):
        load_category_map(cyclic)
    malformed = tmp_path / "malformed.yaml"
    malformed.write_text("categories:\n  1: {rename: 'x'}\n")
    with pytest.raises(ValueError, match="expected"):
        load_category_map(malformed)


def test_the_shipped_category_map_loads():
    shipped = load_category_map(DEFAULT_CATEGORY_MAP)
    assert (shipped.names, shipped.merges) == (CategoryMap().names, CategoryMap().merges) and shipped.seeds
