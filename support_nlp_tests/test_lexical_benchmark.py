"""The lexical-evidence benchmark: c-TF-IDF refinement and hybrid vectors, on real labelled data."""

import numpy as np
import pytest

from support_nlp.benchmarks import lexical
from support_nlp.core.categories import ClusteringConfig, k_candidates
from support_nlp.core.metrics import clustering_accuracy


@pytest.fixture(scope="module")
def banking_terms(banking_subset):
    return lexical.term_matrices(banking_subset.clean)


def test_class_tfidf_weighs_each_real_intents_own_words(banking_subset, banking_terms):
    """12 real BANKING77 intents: each intent's heaviest c-TF-IDF term is used by more of its own queries than by
    the other intents' queries."""
    counts, _ = banking_terms
    weights = lexical.class_tfidf(counts, banking_subset.label_ids)
    assert weights.shape == (12, counts.shape[1]) and np.allclose(np.linalg.norm(weights, axis=1), 1)
    used = counts > 0
    for intent, top_term in enumerate(weights.argmax(axis=1)):
        own = banking_subset.label_ids == intent
        assert used[own, top_term].mean() > used[~own, top_term].mean()


def test_refinement_moves_scrambled_queries_back_to_their_intent(banking_subset, banking_terms):
    """A fifth of the real queries put in a wrong intent: the refinement returns most of them by their embeddings
    alone (weight 0), and by their words alone (identical embeddings); labels stay 0..k-1."""
    counts, tfidf = banking_terms
    truth = banking_subset.label_ids
    scrambled = truth.copy()
    moved = np.random.default_rng(0).choice(len(truth), size=len(truth) // 5, replace=False)
    scrambled[moved] = (truth[moved] + 1 + np.arange(len(moved)) % 11) % 12
    by_embeddings = lexical.refine_lexically(banking_subset.vectors, counts, tfidf, scrambled, 0.0, rounds=2)
    no_meaning = np.ones_like(banking_subset.vectors)
    by_words = lexical.refine_lexically(no_meaning, counts, tfidf, scrambled, 1.0, rounds=2)
    for refined in (by_embeddings, by_words):
        assert set(refined) == set(range(refined.max() + 1))
        assert clustering_accuracy(truth, refined) > clustering_accuracy(truth, scrambled) + 0.1
        assert np.mean(refined[moved] == truth[moved]) > 0.75


def test_hybrid_vectors_keep_the_embeddings_part(banking_subset, banking_terms):
    _, tfidf = banking_terms
    vectors = banking_subset.vectors
    hybrid = lexical.hybrid_vectors(vectors, tfidf, 0.5, seed=0)
    assert hybrid.shape == (len(vectors), vectors.shape[1] + lexical.LEXICAL_DIMENSIONS)
    assert np.allclose(np.linalg.norm(hybrid, axis=1), 1, atol=1e-5)
    without_words = lexical.hybrid_vectors(vectors, tfidf, 0.0, seed=0)
    assert np.allclose(without_words[:, : vectors.shape[1]], vectors, atol=1e-5)


@pytest.mark.benchmark
def test_command_prints_the_default_and_each_variant(tmp_path, capsys):
    lexical.main(
        [
            "--sets",
            "twcs_topics",
            "--refinement-weights",
            "0,0.5",
            "--hybrid-weights",
            "0.5",
            "--cache-dir",
            str(tmp_path),
        ]
    )
    out = capsys.readouterr().out
    search = k_candidates(267, ClusteringConfig())
    rows = [
        [cell.strip() for cell in line.split("|")] for line in out.splitlines() if line.startswith("| twcs_topics |")
    ]
    assert len(rows) == 8 and [row[3] for row in rows[:4]] == [
        "product (default)",
        "c-TF-IDF refinement, weight 0.0",
        "c-TF-IDF refinement, weight 0.5",
        "hybrid vectors, weight 0.5",
    ]
    assert [row[2] for row in rows] == ["k = true"] * 4 + ["automatic"] * 4
    assert all(0 < int(row[4]) <= search[-1] for row in rows)
    assert all(0 <= float(row[cell]) <= 100 for row in rows for cell in (6, 7, 9))
    assert "twcs_topics: 267 texts" in out
