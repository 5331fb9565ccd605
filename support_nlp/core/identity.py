"""Stable category identity across refits: a refit's categories inherit the ids (and so the human names)
of the previous model's categories they match.

Matching is Hungarian assignment on the cosine similarity of centroids in the original embedding space
(PCA bases differ between fits, so projected centroids are not comparable). Pairs below a similarity
floor do not match: the new category gets a fresh id, and unmatched previous categories are reported
as vanished.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy.optimize import linear_sum_assignment

from support_nlp.core.categories import unit_rows
from support_nlp.core.category_schema import CategoryModel

DEFAULT_MIN_SIMILARITY = 0.8


@dataclass(frozen=True)
class IdentityReport:
    matched: dict[int, float]  # inherited id -> centroid cosine similarity between previous and current fit
    new: list[int]  # ids of categories with no match in the previous fit
    vanished: list[int]  # previous ids with no match in this fit


def embedding_space_centroids(model: CategoryModel) -> np.ndarray:
    """Unit-length category centroids mapped back from PCA space to the embedding space."""
    return unit_rows(model.centroids @ model.pca_components + model.pca_mean)


def match_categories(previous: np.ndarray, current: np.ndarray, min_similarity: float) -> dict[int, tuple[int, float]]:
    """Row index in `current` -> (row index in `previous`, similarity) for the best one-to-one matching."""
    similarity = current @ previous.T
    rows, cols = linear_sum_assignment(-similarity)
    return {
        int(r): (int(c), float(similarity[r, c]))
        for r, c in zip(rows, cols, strict=True)
        if similarity[r, c] >= min_similarity
    }


def carry_over_identity(
    model: CategoryModel, previous: CategoryModel | None, min_similarity: float = DEFAULT_MIN_SIMILARITY
) -> tuple[CategoryModel, IdentityReport]:
    """`model` with category ids inherited from `previous` where centroids match; names in the category map
    are keyed by id, so they carry over with it. Unmatched categories get ids after the previous model's
    largest, so a current id never points to a different category than before."""
    current_ids = [c.id for c in model.categories]
    if previous is None:
        return model, IdentityReport(matched={}, new=current_ids, vanished=[])
    previous_ids = [c.id for c in previous.categories]
    matches = match_categories(embedding_space_centroids(previous), embedding_space_centroids(model), min_similarity)
    fresh_ids = iter(range(max(previous_ids) + 1, max(previous_ids) + 1 + len(current_ids)))
    new_id_of_row = [
        previous_ids[matches[row][0]] if row in matches else next(fresh_ids) for row in range(len(current_ids))
    ]
    categories = tuple(replace(category, id=new_id_of_row[row]) for row, category in enumerate(model.categories))
    id_of_label = np.asarray(new_id_of_row, dtype=np.int32)
    relabelled = replace(model, labels=id_of_label[model.labels], categories=categories)
    matched = {new_id_of_row[row]: round(score, 4) for row, (_, score) in matches.items()}
    report = IdentityReport(
        matched=matched,
        new=[new_id_of_row[row] for row in range(len(current_ids)) if row not in matches],
        vanished=sorted(set(previous_ids) - set(matched)),
    )
    return relabelled, report
