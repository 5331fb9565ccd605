"""Neighbour smoothing of embeddings before clustering (core/categories.py, `smoothing_neighbours`).

Each embedding is averaged with those of its nearest neighbours, so a tweet's position reflects the neighbourhood
it sits in rather than its own wording alone: paraphrases of one intent move together and the neighbour graph
cut by spectral clustering gets cleaner. Measured on the dev sets: docs/quality.md.
"""

from __future__ import annotations

import numpy as np

# Rows compared at once when searching neighbours: bounds the similarity block to this many rows by all rows.
SIMILARITY_BLOCK_ROWS = 2048


def smooth_by_neighbours(unit_vectors: np.ndarray, neighbours: int, reference: np.ndarray | None = None) -> np.ndarray:
    """Each row averaged with its `neighbours` + 1 most cosine-similar rows of `reference` (default: the rows
    themselves, where a row is its own nearest), unit length. A reference sample bounds the cost for many rows."""
    reference = unit_vectors if reference is None else reference
    if neighbours < 1 or len(reference) <= neighbours:
        return unit_vectors
    smoothed = np.empty_like(unit_vectors)
    for start in range(0, len(unit_vectors), SIMILARITY_BLOCK_ROWS):
        block = unit_vectors[start : start + SIMILARITY_BLOCK_ROWS]
        similarity = block @ reference.T
        nearest = np.argpartition(-similarity, neighbours, axis=1)[:, : neighbours + 1]
        smoothed[start : start + len(block)] = reference[nearest].mean(axis=1)
    return smoothed / np.maximum(np.linalg.norm(smoothed, axis=1, keepdims=True), 1e-12)
