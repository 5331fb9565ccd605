"""Consensus clustering (evidence accumulation) next to the product's partition and k rule, against human labels.

    python -m support_nlp.benchmarks.consensus --dev   # the dev sets (the decision; docs/quality.md)
    python -m support_nlp.benchmarks.consensus         # the evaluation sets

Evidence accumulation (Fred and Jain, 2005): many cheap partitions of the same rows are pooled into a
co-association matrix, the share of the partitions holding both rows that put them in one group. The partitions
come from the product's own spectral embedding, computed once: the neighbour graph of the smoothed vectors
(`smoothing_neighbours`, as the product partitions; `--graph-smoothing 0`: the unsmoothed graph whose
eigenvectors the product's k search already computes) and its eigenvectors for the largest candidate k; for every
candidate k (`k_candidates`) and ensemble seed, KMeans with one start on the first k coordinates (rows of unit
length) of a seeded subsample of the rows. Average linkage on 1 − co-association gives the consensus tree:

- the consensus partition at a k is the tree cut into k groups;
- the longest lifetime (Fred and Jain) is the k in the candidate range, step 1, that the tree keeps over the
  widest span of merge heights;
- the best agreement (Strehl and Ghosh's ANMI) is the candidate k whose consensus partition has the highest mean
  NMI with the ensemble's partitions.

Every partition is finished as the product finishes its own (each row joins the nearest of the groups' mean
projections; rows too far from their category's mean embedding go to "other") and scored like `quality`
(accuracy under the best one-to-one matching, NMI, ARI; "other" counts as a cluster), next to the product's
default at k = true and with its silhouette plateau, and the product's fit at each consensus rule's k.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.metrics import normalized_mutual_info_score

from support_nlp.benchmarks.quality import (
    DEFAULT_CACHE,
    PreparedSet,
    add_set_arguments,
    chosen_sets,
    cluster,
    prepare,
)
from support_nlp.core.categories import (
    ClusteringConfig,
    assign_to_nearest,
    k_candidates,
    member_means,
    neighbour_count,
    neighbour_graph,
    outlier_rows,
    similarity_to_category,
    spectral_coordinates,
    unit_rows,
)
from support_nlp.core.encoders import BUNDLED_MODEL_NAME
from support_nlp.core.metrics import clustering_scores
from support_nlp.core.refinement import smooth_by_neighbours

ENSEMBLE_SEEDS = 4  # KMeans partitions per candidate k, each on its own subsample
SUBSAMPLE_SHARE = 0.8
LEFT_OUT = -1  # a row's label in a partition of a subsample that did not hold it


@dataclass(frozen=True)
class Ensemble:
    partitions: list[np.ndarray]  # one label per row, LEFT_OUT where the subsample did not hold the row
    coassociation: np.ndarray  # rows × rows: share of the partitions holding both rows that group them together


def spectral_ensemble(vectors: np.ndarray, ks: list[int], config: ClusteringConfig, seeds: int) -> Ensemble:
    """KMeans partitions of seeded row subsamples on the product's spectral embedding, at every k in `ks`."""
    rows = len(vectors)
    smoothed = smooth_by_neighbours(unit_rows(vectors), config.smoothing_neighbours)
    typical_k = float(np.sqrt(min(ks) * max(ks)))
    graph = neighbour_graph(smoothed, neighbour_count(rows, typical_k, config))
    coordinates = spectral_coordinates(graph, min(max(ks), rows - 1), config.seed)
    together = np.zeros((rows, rows), dtype=np.float32)
    sampled = np.zeros((rows, rows), dtype=np.float32)
    rng = np.random.default_rng(config.seed)
    partitions = []
    for k in ks:
        leading = unit_rows(coordinates[:, :k])
        for seed in range(seeds):
            held = np.sort(rng.choice(rows, size=round(SUBSAMPLE_SHARE * rows), replace=False))
            labels = KMeans(n_clusters=k, n_init=1, random_state=seed).fit_predict(leading[held])
            pairs = np.ix_(held, held)
            together[pairs] += labels[:, None] == labels[None, :]
            sampled[pairs] += 1
            partitions.append(np.full(rows, LEFT_OUT))
            partitions[-1][held] = labels
    return Ensemble(partitions, together / np.maximum(sampled, 1))


def consensus_tree(coassociation: np.ndarray) -> np.ndarray:
    """Average-linkage merge tree (scipy's linkage matrix) on 1 − co-association."""
    distance = 1 - coassociation
    np.fill_diagonal(distance, 0)
    return linkage(squareform(distance, checks=False), method="average")


def consensus_partition(tree: np.ndarray, k: int) -> np.ndarray:
    return fcluster(tree, k, criterion="maxclust") - 1


def longest_lifetime_k(tree: np.ndarray, k_min: int, k_max: int) -> int:
    """The k the tree keeps over the widest span of merge heights: from the merge that leaves k groups to the
    next one."""
    heights, rows = tree[:, 2], len(tree) + 1
    ks = np.arange(k_min, k_max + 1)
    return int(ks[np.argmax(heights[rows - ks] - heights[rows - ks - 1])])


def best_agreement_k(tree: np.ndarray, ensemble: Ensemble, ks: list[int]) -> int:
    """The k whose consensus partition has the highest mean NMI with the ensemble's partitions (on their rows)."""

    def mean_nmi(k: int) -> float:
        consensus = consensus_partition(tree, k)
        return float(
            np.mean(
                [normalized_mutual_info_score(consensus[p != LEFT_OUT], p[p != LEFT_OUT]) for p in ensemble.partitions]
            )
        )

    return max(ks, key=mean_nmi)


def finished_labels(prepared: PreparedSet, partition: np.ndarray, config: ClusteringConfig) -> tuple[np.ndarray, int]:
    """`partition` finished as `fit_categories` finishes its own: each row joins the nearest group mean in the
    PCA projection; rows too far from their category's mean embedding go to "other", one label after the
    categories (as `quality.cluster` labels them); and the number of categories."""
    features = PCA(n_components=config.pca_components, random_state=config.seed).fit_transform(prepared.vectors)
    _, labels = assign_to_nearest(features, member_means(features, partition))
    return with_other(prepared.vectors, labels, config)


def with_other(vectors: np.ndarray, labels: np.ndarray, config: ClusteringConfig) -> tuple[np.ndarray, int]:
    """Every row's category, "other" by the product's rule (rows too far from their category's mean embedding) as
    one label after the categories (as `quality.cluster` labels them); and the number of categories."""
    labels = labels.copy()
    outliers = outlier_rows(similarity_to_category(vectors, labels), config)
    members = np.setdiff1d(np.arange(len(labels)), outliers)
    kept, member_labels = np.unique(labels[members], return_inverse=True)
    labels[members], labels[outliers] = member_labels, len(kept)
    return labels, len(kept)


def score_row(prepared: PreparedSet, method: str, labels: np.ndarray, categories: int) -> dict:
    scores = clustering_scores(prepared.label_ids, labels)
    return {
        "set": prepared.labelled.name,
        "method": method,
        "categories": categories,
        **{metric.upper(): round(100 * scores[metric], 1) for metric in ("acc", "nmi", "ari")},
        "other %": round(100 * float(np.mean(labels == categories)), 1),
    }


def consensus_rows(
    prepared: PreparedSet, config: ClusteringConfig, seeds: int, graph_smoothing: int
) -> tuple[list[dict], str]:
    """The product's default and the consensus rows of one set, and what each cost; the ensemble's graph is built
    on vectors smoothed with `graph_smoothing` neighbours."""
    started = time.perf_counter()
    labels, product = cluster(prepared, config)
    product_seconds = time.perf_counter() - started
    rows = [score_row(prepared, "product (default): silhouette plateau", labels, product.k)]
    ks = k_candidates(len(prepared.vectors), config)
    started = time.perf_counter()
    ensemble = spectral_ensemble(prepared.vectors, ks, replace(config, smoothing_neighbours=graph_smoothing), seeds)
    tree = consensus_tree(ensemble.coassociation)
    ensemble_seconds = time.perf_counter() - started
    lifetime_k = longest_lifetime_k(tree, ks[0], ks[-1])
    agreement_k = best_agreement_k(tree, ensemble, ks)
    agreement_seconds = time.perf_counter() - started - ensemble_seconds
    rules = {
        "k = true": prepared.true_k,
        "the product's k": product.k,
        "longest lifetime": lifetime_k,
        "best agreement (ANMI)": agreement_k,
    }
    for rule, k in rules.items():
        labels, categories = finished_labels(prepared, consensus_partition(tree, k), config)
        rows.append(score_row(prepared, f"consensus partition: {rule} ({k})", labels, categories))
    for rule, k in rules.items():
        if rule != "the product's k":
            labels, model = cluster(prepared, replace(config, k=k))
            rows.append(score_row(prepared, f"product's partition: {rule} ({k})", labels, model.k))
    cost = (
        f"ensemble of {len(ensemble.partitions)} partitions and consensus tree {ensemble_seconds:.0f} s, "
        f"best agreement {agreement_seconds:.0f} s, "
        f"the product's fit with its k search {product_seconds:.0f} s"
    )
    return rows, cost


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_set_arguments(parser)
    parser.add_argument(
        "--ensemble-seeds",
        type=int,
        default=ENSEMBLE_SEEDS,
        help=f"partitions per candidate k (default {ENSEMBLE_SEEDS})",
    )
    parser.add_argument(
        "--graph-smoothing",
        type=int,
        default=ClusteringConfig().smoothing_neighbours,
        help="neighbours the ensemble's graph vectors are smoothed with (default: the product's partitions'; "
        "0: the graph its k search uses)",
    )
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    args = parser.parse_args(argv)
    config, rows = ClusteringConfig(), []
    for name, load in chosen_sets(parser, args).items():
        started = time.perf_counter()
        prepared = prepare(load(), BUNDLED_MODEL_NAME, args.cache_dir)
        set_rows, cost = consensus_rows(prepared, config, args.ensemble_seeds, args.graph_smoothing)
        rows += set_rows
        print(f"{name}: {len(prepared.vectors):,} texts, {time.perf_counter() - started:.0f} s ({cost})", flush=True)
    print(f"\nConsensus and the product's default vs human labels (%, seed {config.seed})\n")
    print(pd.DataFrame(rows).to_markdown(index=False))


if __name__ == "__main__":
    main()
