"""The UMAP benchmark: UMAP projections in front of the product's clustering, on real labelled data."""

import sys

import numpy as np
import pytest

from support_nlp.benchmarks import umap_projection
from support_nlp.core.categories import ClusteringConfig, k_candidates


@pytest.fixture(scope="module")
def banking_projection(banking_subset) -> np.ndarray:
    return umap_projection.umap_projection(banking_subset.vectors, neighbours=15, components=5, seed=0)


def same_intent_pairs(label_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    same = label_ids[:, None] == label_ids[None, :]
    different = ~same
    np.fill_diagonal(same, False)
    return same, different


def test_projection_is_seeded_and_keeps_real_intents_together(banking_subset, banking_projection):
    """12 real BANKING77 intents: two queries of one intent lie far closer in the 5-d projection than two of
    different intents, and the same seed gives the same projection."""
    assert banking_projection.shape == (480, 5) and np.isfinite(banking_projection).all()
    again = umap_projection.umap_projection(banking_subset.vectors, neighbours=15, components=5, seed=0)
    assert np.array_equal(again, banking_projection)
    distance = np.linalg.norm(banking_projection[:, None] - banking_projection[None, :], axis=2)
    same, different = same_intent_pairs(banking_subset.label_ids)
    assert 2 * distance[same].mean() < distance[different].mean()


@pytest.mark.parametrize("partition_of", ["spectral", "kmeans"])
def test_partitions_of_the_projection_group_real_intents(banking_subset, banking_projection, partition_of):
    if partition_of == "spectral":
        partition = umap_projection.projection_spectral_partition(banking_projection, 12, ClusteringConfig())
    else:
        partition = umap_projection.kmeans_partition(banking_projection, 12, seed=0)
    assert len(partition) == 480 and set(partition) == set(range(12))
    together = partition[:, None] == partition[None, :]
    same, different = same_intent_pairs(banking_subset.label_ids)
    assert together[same].mean() > 2 * together[different].mean()


def test_a_missing_umap_learn_is_named(monkeypatch):
    monkeypatch.setitem(sys.modules, "umap", None)  # makes `import umap` fail as if it were not installed
    with pytest.raises(SystemExit, match="umap-learn"):
        umap_projection.umap_class()


@pytest.mark.benchmark
def test_command_prints_the_default_the_recipe_and_each_projection(tmp_path, capsys):
    umap_projection.main(
        ["--sets", "twcs_topics", "--components", "5", "--neighbours", "15", "--cache-dir", str(tmp_path)]
    )
    out = capsys.readouterr().out
    search = k_candidates(267, ClusteringConfig())
    rows = [
        [cell.strip() for cell in line.split("|")] for line in out.splitlines() if line.startswith("| twcs_topics |")
    ]
    methods = [row[3] for row in rows]
    assert len(rows) == 13 and methods[:4] == ["product (default)", 'product, no "other"'] * 2
    assert sum(method.startswith("BERTopic: UMAP 15 neighbours, 5-d") for method in methods) == 2
    assert sum("of the smoothed vectors + spectral" in method for method in methods) == 2
    assert [row[2] for row in rows].count("k = true") == 6
    assert all(0 < int(row[4]) <= search[-1] for row in rows)
    assert all(0 <= float(row[cell]) <= 100 for row in rows for cell in (6, 7, 9))
    assert "UMAP's first fit" in out and "twcs_topics: 267 texts" in out
