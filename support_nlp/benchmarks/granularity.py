"""How many categories: the product's k rule next to stability across subsamples, scored against human labels.

    python -m support_nlp.benchmarks.granularity --dev   # the dev sets (the decision; docs/quality.md)
    python -m support_nlp.benchmarks.granularity         # the evaluation sets

Stability (Lange, Roth, Braun and Buhmann, 2004): the rows are split into two seeded halves; each half's smoothed
vectors get their own neighbour graph and spectral partition at every candidate k (one eigenproblem per half serves
all k, as in the product); each half's rows are also labelled by the other half's nearest category centroid, and the
adjusted Rand index between the two labellings is the half's agreement. A k that matches real structure should be
found again from either half; a k that splits or merges categories arbitrarily should not.

Each rule picks a k among the product's candidates (`k_candidates`); the product's own fit at that k is then scored
against the human labels like `quality` does (accuracy under the best one-to-one matching, NMI; "other" counts as a
cluster), next to k = the true number of labels.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA
from sklearn.metrics import adjusted_rand_score

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
    plateau_start,
    spectral_coordinates,
    spectral_partition,
    unit_rows,
)
from support_nlp.core.encoders import BUNDLED_MODEL_NAME
from support_nlp.core.metrics import clustering_scores
from support_nlp.core.refinement import smooth_by_neighbours

# A k whose stability is within this of the best one still counts as stable; the largest such k is a rule.
STABILITY_TOLERANCE = 0.02


def split_halves(rows: int, split: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.random.default_rng(split).permutation(rows)
    return np.sort(order[: rows // 2]), np.sort(order[rows // 2 :])


def split_half_stability(vectors: np.ndarray, ks: list[int], config: ClusteringConfig, splits: int) -> np.ndarray:
    """Mean adjusted Rand index per k between each half's own spectral partition and its labels by the other
    half's centroids (see the module docstring), over `splits` seeded splits and both directions."""
    features = PCA(n_components=config.pca_components, random_state=config.seed).fit_transform(vectors)
    smoothed = smooth_by_neighbours(unit_rows(vectors), config.smoothing_neighbours)
    typical_k = float(np.sqrt(min(ks) * max(ks)))
    agreement = np.zeros((splits, len(ks)))
    for split in range(splits):
        halves = split_halves(len(vectors), split)
        partitions = []
        for half in halves:
            graph = neighbour_graph(smoothed[half], neighbour_count(len(half), typical_k, config))
            coordinates = spectral_coordinates(graph, min(max(ks), len(half) - 1), config.seed)
            partitions.append([spectral_partition(coordinates, k) for k in ks])
        for i in range(len(ks)):
            for source, target in ((0, 1), (1, 0)):
                centroids = member_means(features[halves[source]], partitions[source][i])
                _, transferred = assign_to_nearest(features[halves[target]], centroids)
                agreement[split, i] += adjusted_rand_score(partitions[target][i], transferred) / 2
    return agreement.mean(axis=0)


def chosen_ks(prepared: PreparedSet, config: ClusteringConfig, splits: int) -> tuple[dict[str, int], pd.DataFrame, str]:
    """The k each rule picks, the stability and silhouette curves they were picked from, and what each cost."""
    ks = k_candidates(len(prepared.vectors), config)
    started = time.perf_counter()
    stability = split_half_stability(prepared.vectors, ks, config, splits)
    stability_seconds = time.perf_counter() - started
    _, product = cluster(prepared, config)
    product_seconds = time.perf_counter() - started - stability_seconds
    stable = [k for k, score in zip(ks, stability, strict=True) if score >= stability.max() - STABILITY_TOLERANCE]
    most_stable = ks[int(np.argmax(stability))]
    up_to_most_stable = [point for point in product.k_curve if point.k <= most_stable]
    rules = {
        "k = true": prepared.true_k,
        "silhouette plateau (default)": product.k,
        "most stable (split halves)": most_stable,
        f"largest k within {STABILITY_TOLERANCE} of the most stable": max(stable),
        "silhouette plateau up to the most stable k": plateau_start(up_to_most_stable, config.silhouette_tolerance),
    }
    silhouette = {point.k: point.silhouette for point in product.k_curve}
    curve = pd.DataFrame({"k": ks, "stability": stability.round(3), "silhouette": [silhouette[k] for k in ks]})
    cost = f"stability {stability_seconds:.0f} s, the product's fit with its k search {product_seconds:.0f} s"
    return rules, curve, cost


def rule_rows(prepared: PreparedSet, config: ClusteringConfig, splits: int) -> tuple[list[dict], pd.DataFrame, str]:
    rules, curve, cost = chosen_ks(prepared, config, splits)
    scores = {}
    for k in set(rules.values()):
        labels, _ = cluster(prepared, replace(config, k=k))
        scores[k] = clustering_scores(prepared.label_ids, labels)
    true_acc = scores[prepared.true_k]["acc"]
    rows = [
        {
            "set": prepared.labelled.name,
            "rule": rule,
            "k": k,
            "ACC": round(100 * scores[k]["acc"], 1),
            "NMI": round(100 * scores[k]["nmi"], 1),
            "ACC − k = true": round(100 * (scores[k]["acc"] - true_acc), 1),
        }
        for rule, k in rules.items()
    ]
    return rows, curve, cost


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_set_arguments(parser)
    parser.add_argument("--splits", type=int, default=2, help="seeded splits into halves (default 2)")
    parser.add_argument("--curves", action="store_true", help="also print stability and silhouette by k")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    args = parser.parse_args(argv)
    config, rows = ClusteringConfig(), []
    for name, load in chosen_sets(parser, args).items():
        started = time.perf_counter()
        prepared = prepare(load(), BUNDLED_MODEL_NAME, args.cache_dir)
        set_rows, curve, cost = rule_rows(prepared, config, args.splits)
        rows += set_rows
        print(f"{name}: {len(prepared.vectors):,} texts, {time.perf_counter() - started:.0f} s ({cost})", flush=True)
        if args.curves:
            print(curve.to_markdown(index=False), flush=True)
    print(f"\nk by each rule, the product's fit at that k vs human labels (%, seed {config.seed})\n")
    print(pd.DataFrame(rows).to_markdown(index=False))


if __name__ == "__main__":
    main()
