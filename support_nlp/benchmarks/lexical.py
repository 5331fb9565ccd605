"""Lexical evidence (c-TF-IDF) next to the product's embedding-only categories, against human labels.

    python -m support_nlp.benchmarks.lexical --dev   # the dev sets (the decision; docs/quality.md)
    python -m support_nlp.benchmarks.lexical         # the evaluation sets

Intent sets have keywords ("top up", "pin", "card arrival") that a small sentence encoder blurs. Two ways to let
the words count, each at a few weights, at k = true and with the product's automatic k:

- refinement after the fit: from the product's partition, each category's class-based TF-IDF (BERTopic's
  c-TF-IDF: a term's share of the category's words times log(1 + mean words per category / the term's count over
  all categories)) over the texts' words and bigrams; every row moves to the category with the highest cosine of
  its embedding to the category's mean embedding plus `weight` times the cosine of its TF-IDF to the category's
  c-TF-IDF; means and c-TF-IDF are recomputed and the rows reassigned again, `--rounds` times. Weight 0 is the
  control: the same reassignment by the embeddings alone.
- hybrid vectors before the graph: each embedding concatenated with `weight` times a 100-d TruncatedSVD of the
  texts' sublinear TF-IDF (unit rows), renormalised, and given to the product's fit unchanged (PCA, neighbour
  smoothing, graph, spectral partition, k search).

Terms are the words and bigrams (scikit-learn's tokenizer) of the cleaned texts found in at least two texts.
Every partition's "other" comes from the product's rule on the texts' own embeddings, and it is scored like
`quality` (accuracy under the best one-to-one matching, NMI, ARI; "other" counts as a cluster). Seconds: the
product's fit with its k search; the refinement alone; the TF-IDF's SVD and the fit on the hybrid vectors.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer

from support_nlp.benchmarks import quality
from support_nlp.benchmarks.consensus import score_row, with_other
from support_nlp.core.categories import ClusteringConfig, member_means, unit_rows

REFINEMENT_WEIGHTS = (0.0, 0.25, 0.5, 1.0)
HYBRID_WEIGHTS = (0.25, 0.5, 1.0)
REFINEMENT_ROUNDS = 2
LEXICAL_DIMENSIONS = 100


def term_matrices(texts: list[str]) -> tuple[sparse.csr_matrix, sparse.csr_matrix]:
    """Counts of the words and bigrams found in at least two texts, and the rows' sublinear TF-IDF (unit rows)."""
    counts = CountVectorizer(ngram_range=(1, 2), min_df=2).fit_transform(texts)
    return counts, TfidfTransformer(sublinear_tf=True).fit_transform(counts)


def class_tfidf(counts: sparse.csr_matrix, labels: np.ndarray) -> np.ndarray:
    """BERTopic's c-TF-IDF of each category (labels 0..k-1), unit rows."""
    categories = int(labels.max()) + 1
    membership = sparse.csr_matrix(
        (np.ones(len(labels)), (labels, np.arange(len(labels)))), shape=(categories, len(labels))
    )
    per_category = (membership @ counts).toarray()
    share = per_category / np.maximum(per_category.sum(axis=1, keepdims=True), 1)
    words_per_category = per_category.sum() / categories
    return unit_rows(share * np.log(1 + words_per_category / np.maximum(per_category.sum(axis=0), 1)))


def refine_lexically(
    vectors: np.ndarray,
    term_counts: sparse.csr_matrix,
    tfidf: sparse.csr_matrix,
    labels: np.ndarray,
    weight: float,
    rounds: int,
) -> np.ndarray:
    """Rows reassigned `rounds` times by embedding cosine to the category means plus `weight` times TF-IDF cosine
    to the categories' c-TF-IDF; categories left empty are dropped, so labels stay 0..k-1."""
    unit = unit_rows(vectors)
    for _ in range(rounds):
        labels = np.unique(labels, return_inverse=True)[1]
        semantic = unit @ unit_rows(member_means(unit, labels)).T
        lexical = np.asarray(tfidf @ class_tfidf(term_counts, labels).T)
        labels = np.argmax(semantic + weight * lexical, axis=1)
    return np.unique(labels, return_inverse=True)[1].astype(np.int32)


def hybrid_vectors(vectors: np.ndarray, tfidf: sparse.csr_matrix, weight: float, seed: int) -> np.ndarray:
    lexical = TruncatedSVD(n_components=LEXICAL_DIMENSIONS, random_state=seed).fit_transform(tfidf)
    return unit_rows(np.hstack([unit_rows(vectors), weight * unit_rows(lexical)]))


def every_row_labelled(prepared: quality.PreparedSet, config: ClusteringConfig) -> tuple[np.ndarray, int, float]:
    """The product's partition with no row in "other" (that is applied later, on the texts' own embeddings), its
    number of categories and the fit's seconds."""
    started = time.perf_counter()
    labels, model = quality.cluster(prepared, replace(config, max_outlier_share=0.0))
    return labels, model.k, time.perf_counter() - started


def lexical_rows(
    prepared: quality.PreparedSet,
    config: ClusteringConfig,
    refinement_weights: list[float],
    hybrid_weights: list[float],
    rounds: int,
) -> list[dict]:
    counts, tfidf = term_matrices(prepared.clean)

    def scored(method: str, granularity: str, labels: np.ndarray, k: int, seconds: float) -> dict:
        labels, categories = with_other(prepared.vectors, labels, config)
        row = score_row(prepared, method, labels, categories)
        return {**row, "granularity": granularity, "k": k, "seconds": round(seconds, 2)}

    rows = []
    for granularity, k in (("k = true", prepared.true_k), ("automatic", None)):
        setting = replace(config, k=k)
        labels, product_k, product_seconds = every_row_labelled(prepared, setting)
        rows.append(scored("product (default)", granularity, labels, product_k, product_seconds))
        for weight in refinement_weights:
            started = time.perf_counter()
            refined = refine_lexically(prepared.vectors, counts, tfidf, labels, weight, rounds)
            seconds = time.perf_counter() - started
            rows.append(scored(f"c-TF-IDF refinement, weight {weight}", granularity, refined, product_k, seconds))
        for weight in hybrid_weights:
            started = time.perf_counter()
            hybrid = replace(prepared, vectors=hybrid_vectors(prepared.vectors, tfidf, weight, config.seed))
            svd_seconds = time.perf_counter() - started
            hybrid_labels, hybrid_k, fit_seconds = every_row_labelled(hybrid, setting)
            method = f"hybrid vectors, weight {weight}"
            rows.append(scored(method, granularity, hybrid_labels, hybrid_k, svd_seconds + fit_seconds))
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    quality.add_set_arguments(parser)
    for variant, defaults, weighted in (
        ("refinement", REFINEMENT_WEIGHTS, "the c-TF-IDF cosine in the refinement"),
        ("hybrid", HYBRID_WEIGHTS, "the TF-IDF part of the hybrid vectors"),
    ):
        help_text = f"comma-separated weights of {weighted} ('' for none; default {','.join(map(str, defaults))})"
        parser.add_argument(
            f"--{variant}-weights", type=quality.comma_separated(float), default=list(defaults), help=help_text
        )
    parser.add_argument("--rounds", type=int, default=REFINEMENT_ROUNDS, help="reassignment rounds of the refinement")
    parser.add_argument("--cache-dir", type=Path, default=quality.DEFAULT_CACHE)
    args = parser.parse_args(argv)
    config, rows = ClusteringConfig(), []
    for prepared in quality.prepared_chosen_sets(parser, args):
        rows += lexical_rows(prepared, config, args.refinement_weights, args.hybrid_weights, args.rounds)
    columns = ["set", "granularity", "method", "k", "categories", "ACC", "NMI", "ARI", "other %", "seconds"]
    print(f"\nLexical evidence and the product's default vs human labels (%, seed {config.seed})\n")
    print(pd.DataFrame(rows)[columns].to_markdown(index=False))


if __name__ == "__main__":
    main()
