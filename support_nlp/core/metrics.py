"""Quality measures against human labels: clustering agreement and classifier calibration."""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
from sklearn.metrics.cluster import contingency_matrix

DEFAULT_CALIBRATION_BINS = 15


def clustering_accuracy(true_labels: np.ndarray, cluster_labels: np.ndarray) -> float:
    """Share of items whose cluster maps to their true label under the best one-to-one mapping (Hungarian).

    With more clusters than labels (or fewer), the unmatched clusters count as wrong for all their items.
    """
    if len(true_labels) != len(cluster_labels):
        raise ValueError(f"{len(true_labels)} true labels but {len(cluster_labels)} cluster labels")
    if len(true_labels) == 0:
        raise ValueError("clustering accuracy of no items is undefined")
    counts = contingency_matrix(true_labels, cluster_labels)
    rows, cols = linear_sum_assignment(counts, maximize=True)
    return float(counts[rows, cols].sum() / len(true_labels))


def clustering_scores(true_labels: np.ndarray, cluster_labels: np.ndarray) -> dict[str, float]:
    """Accuracy under optimal matching, normalised mutual information and adjusted Rand index."""
    return {
        "acc": clustering_accuracy(true_labels, cluster_labels),
        "nmi": float(normalized_mutual_info_score(true_labels, cluster_labels)),
        "ari": float(adjusted_rand_score(true_labels, cluster_labels)),
    }


def expected_calibration_error(
    probabilities: np.ndarray, true_labels: np.ndarray, classes: np.ndarray, bins: int = DEFAULT_CALIBRATION_BINS
) -> float:
    """Top-label ECE: sum over equal-width confidence bins of |accuracy - mean confidence| weighted by bin share.

    `probabilities[i, j]` is P(classes[j] | item i). 0 is perfectly calibrated; a model that is always 90% sure
    and right 60% of the time scores 0.3.
    """
    if len(probabilities) != len(true_labels):
        raise ValueError(f"{len(probabilities)} probability rows but {len(true_labels)} labels")
    confidence = probabilities.max(axis=1)
    correct = np.asarray(classes)[probabilities.argmax(axis=1)] == np.asarray(true_labels)
    # Bins are (lo, hi]; confidence is never 0, so the first bin's open lower edge loses nothing.
    bin_of = np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)
    error = 0.0
    for b in np.unique(bin_of):
        members = bin_of == b
        error += members.mean() * abs(correct[members].mean() - confidence[members].mean())
    return float(error)
