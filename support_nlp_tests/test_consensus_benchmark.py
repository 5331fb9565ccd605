"""The consensus benchmark: evidence accumulation over spectral partitions, on real labelled data."""

import numpy as np
import pytest

from support_nlp.benchmarks import consensus
from support_nlp.core.categories import ClusteringConfig, k_candidates


@pytest.fixture(scope="module")
def banking_ensemble(banking_subset) -> consensus.Ensemble:
    return consensus.spectral_ensemble(banking_subset.vectors, [6, 12, 24], ClusteringConfig(), seeds=2)


def test_coassociation_is_a_symmetric_share_that_groups_real_intents(banking_subset, banking_ensemble):
    """12 real BANKING77 intents: two queries of one intent are put together far more often than two of different
    intents."""
    coassociation = banking_ensemble.coassociation
    assert len(banking_ensemble.partitions) == 6 and coassociation.shape == (480, 480)
    assert np.allclose(coassociation, coassociation.T) and np.allclose(np.diag(coassociation), 1)
    assert coassociation.min() >= 0 and coassociation.max() <= 1
    same_intent = banking_subset.label_ids[:, None] == banking_subset.label_ids[None, :]
    np.fill_diagonal(same_intent, False)
    different = ~same_intent
    np.fill_diagonal(different, False)
    assert coassociation[same_intent].mean() > 2 * coassociation[different].mean()


def test_consensus_partition_and_its_finish_are_valid_partitions(banking_subset, banking_ensemble):
    tree = consensus.consensus_tree(banking_ensemble.coassociation)
    partition = consensus.consensus_partition(tree, 12)
    assert len(partition) == 480 and set(partition) == set(range(12))
    labels, categories = consensus.finished_labels(banking_subset, partition, ClusteringConfig())
    assert len(labels) == 480 and 2 <= categories <= 12
    assert set(labels) <= set(range(categories + 1)) and set(range(categories)) <= set(labels)
    assert np.mean(labels == categories) <= ClusteringConfig().max_outlier_share  # the last label is "other"
    assert 6 <= consensus.longest_lifetime_k(tree, 6, 24) <= 24
    assert consensus.best_agreement_k(tree, banking_ensemble, [6, 12, 24]) in (6, 12, 24)


@pytest.mark.benchmark
def test_command_prints_the_default_and_each_consensus_rule(tmp_path, capsys):
    consensus.main(["--sets", "twcs_topics", "--ensemble-seeds", "1", "--cache-dir", str(tmp_path)])
    out = capsys.readouterr().out
    search = k_candidates(267, ClusteringConfig())
    rows = [line.split("|") for line in out.splitlines() if line.startswith("| twcs_topics |")]
    assert len(rows) == 8 and rows[0][2].strip().startswith("product (default)")
    assert all(0 < int(row[3]) <= search[-1] for row in rows)
    assert all(0 <= float(row[cell]) <= 100 for row in rows for cell in (4, 5, 7))
    assert "twcs_topics: 267 texts" in out and "consensus tree" in out
