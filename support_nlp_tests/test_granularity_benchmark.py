"""The granularity benchmark: stability across split halves next to the product's k rule, on real labelled data."""

import numpy as np
import pytest

from support_nlp.benchmarks import granularity
from support_nlp.core.categories import ClusteringConfig, k_candidates


def test_split_halves_are_disjoint_seeded_and_cover_every_row():
    first, second = granularity.split_halves(101, split=0)
    assert len(first) == 50 and len(second) == 51
    assert not set(first) & set(second) and sorted([*first, *second]) == list(range(101))
    assert np.array_equal(first, granularity.split_halves(101, split=0)[0])
    assert not np.array_equal(first, granularity.split_halves(101, split=1)[0])


def test_real_intents_are_stable_at_their_number_and_not_at_many_tiny_categories(banking_subset):
    """12 real BANKING77 intents: both halves find the same 12 categories far more often than the same 60."""
    config = ClusteringConfig()
    ks = [banking_subset.true_k, k_candidates(len(banking_subset.vectors), config)[-1]]
    assert ks == [12, 60]
    stability = granularity.split_half_stability(banking_subset.vectors, ks, config, splits=1)
    assert all(-1 <= score <= 1 for score in stability)
    assert stability[0] > stability[1]


@pytest.mark.benchmark
def test_command_prints_each_rule_with_its_k_and_scores(tmp_path, capsys):
    granularity.main(["--sets", "twcs_topics", "--splits", "1", "--curves", "--cache-dir", str(tmp_path)])
    out = capsys.readouterr().out
    search = k_candidates(267, ClusteringConfig())
    rules = [line for line in out.splitlines() if line.startswith("| twcs_topics |")]
    assert len(rules) == 5
    assert rules[0].split("|")[2].strip() == "k = true" and int(rules[0].split("|")[3]) == 33
    assert all(search[0] <= int(rule.split("|")[3]) <= search[-1] for rule in rules)
    assert "stability" in out and "silhouette" in out and "twcs_topics: 267 texts" in out
