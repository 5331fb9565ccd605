"""Neighbour smoothing of embeddings, on real tweet embeddings and a hand-checked case."""

import numpy as np

from support_nlp.core import refinement
from support_nlp.core.refinement import smooth_by_neighbours
from support_nlp_tests.test_categories import real_training_set


def test_smoothing_averages_each_row_with_its_nearest_neighbours_by_hand():
    # Two pairs of close directions: each row's one nearest neighbour is its pair partner.
    angles = np.array([0.0, 0.2, 1.5, 1.7])
    rows = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    smoothed = smooth_by_neighbours(rows, neighbours=1)
    pair_directions = np.array([0.1, 0.1, 1.6, 1.6])
    np.testing.assert_allclose(smoothed, np.stack([np.cos(pair_directions), np.sin(pair_directions)], axis=1))
    np.testing.assert_array_equal(smooth_by_neighbours(rows, neighbours=0), rows)


def test_smoothing_real_embeddings_is_the_same_in_blocks(real_slice_csv, monkeypatch):
    _, vectors = real_training_set(real_slice_csv)
    whole = smooth_by_neighbours(vectors, neighbours=7)
    np.testing.assert_allclose(np.linalg.norm(whole, axis=1), 1, rtol=1e-5)
    # Each tweet stays closer to its own smoothed vector than the average tweet is.
    assert np.median((whole * vectors).sum(axis=1)) > np.median(vectors @ vectors.mean(axis=0))
    monkeypatch.setattr(refinement, "SIMILARITY_BLOCK_ROWS", 64)
    np.testing.assert_allclose(smooth_by_neighbours(vectors, neighbours=7), whole, atol=1e-6)
