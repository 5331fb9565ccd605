"""Which score should decide what the cascade escalates: the student's top probability or something better?

The cascade escalates the texts whose score is below a threshold chosen on calibration texts
(`core.cascade.choose_escalation_threshold`). Each candidate score here goes through that same rule on the product
cascade's calibration texts, and is then applied to held-out evaluation texts: the share escalated and the
agreement with the all-transformer labels are what a cascade escalating on that score would have. The student and
its classifier are the product's, unchanged; the candidates only reorder which texts go to the transformer.

Per text the cheap side knows (`EscalationFeatures`): the student classifier's probabilities (top, top-two
margin, entropy, label) and three other views of the student vector: its nearest centroid of the teacher's vectors
of each category (fit texts, the teacher classifier's labels), the transformer's classifier applied to it, and a
classifier of the student vector alone; and the text's length in tokens and the share of its n-grams no fit text has.
The learnt score, a logistic regression predicting "the student agrees with the transformer" from those, is
cross-fitted on the calibration texts: each text's calibration score comes from the model fitted on the other
folds, so the threshold is not chosen on the texts a model was fitted on; held-out texts get the folds' mean.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import entropy
from sklearn.compose import make_column_transformer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from support_nlp.core.cascade import Cascade, choose_escalation_threshold
from support_nlp.core.classifier import ClassifierModel
from support_nlp.core.embedding import embed_texts
from support_nlp.core.embedding_cache import EmbeddingCache
from support_nlp.core.student_classifier import HASHED_COLUMNS, TOKEN_PATTERN, StudentClassifier, hashed_counts

CROSS_FIT_FOLDS = 5
SEED = 0
AGREEMENT_MODEL_FEATURES = [
    "top",
    "margin",
    "entropy",
    "centroid_agrees",
    "transformer_classifier_agrees",
    "vector_alone_agrees",
    "vector_alone_probability",
    "log_tokens",
    "unseen_ngram_share",
]


@dataclass(frozen=True)
class StudentViews:
    """What, besides the student classifier, labels a student vector without the transformer."""

    centroids: np.ndarray  # categories x dimension, unit rows: the teacher's vectors of the fit texts per label
    centroid_labels: np.ndarray
    teacher_classifier: ClassifierModel
    vector_alone: StudentClassifier


def student_views(
    cascade: Cascade, vector_alone: StudentClassifier, fit_texts: list[str], teacher_cache: EmbeddingCache | None
) -> StudentViews:
    vectors = embed_texts(fit_texts, cascade.teacher, cache=teacher_cache)
    labels = cascade.teacher_classifier.predict(vectors, 0.0)["category_id"].to_numpy()
    centroid_labels = np.unique(labels)
    centroids = np.stack([vectors[labels == label].mean(axis=0) for label in centroid_labels])
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    return StudentViews(centroids, centroid_labels, cascade.teacher_classifier, vector_alone)


@dataclass(frozen=True)
class EscalationFeatures:
    """One row per text of the cheap features, and whether the student classifier's label is the transformer's."""

    features: pd.DataFrame
    student_agrees: np.ndarray


def escalation_features(
    texts: list[str], cascade: Cascade, views: StudentViews, teacher_cache: EmbeddingCache | None
) -> EscalationFeatures:
    vectors = embed_texts(texts, cascade.student)
    classifier = cascade.student_classifier
    proba = classifier.predict_proba(texts, vectors)
    ranked = np.sort(proba, axis=1)
    label = classifier.classes[proba.argmax(axis=1)]
    vector_alone_proba = views.vector_alone.predict_proba(texts, vectors)
    vector_alone_column = {c: column for column, c in enumerate(views.vector_alone.classes)}
    counts = hashed_counts(texts)
    unseen_columns = np.ones(HASHED_COLUMNS, dtype=np.float32)
    unseen_columns[classifier.lexical_columns] = 0
    features = pd.DataFrame(
        {
            "label": label,
            "top": ranked[:, -1],
            "margin": ranked[:, -1] - ranked[:, -2],
            "entropy": entropy(proba, axis=1),
            "centroid_agrees": views.centroid_labels[(vectors @ views.centroids.T).argmax(axis=1)] == label,
            "transformer_classifier_agrees": views.teacher_classifier.predict(vectors, 0.0)["category_id"].to_numpy()
            == label,
            "vector_alone_agrees": views.vector_alone.classes[vector_alone_proba.argmax(axis=1)] == label,
            "vector_alone_probability": vector_alone_proba[
                np.arange(len(texts)), [vector_alone_column[c] for c in label]
            ],
            "log_tokens": np.log1p([len(re.findall(TOKEN_PATTERN, text.lower())) for text in texts]),
            "unseen_ngram_share": (counts @ unseen_columns) / np.maximum(np.asarray(counts.sum(axis=1)).ravel(), 1),
        }
    )
    teacher_labels = cascade.teacher_classifier.predict(embed_texts(texts, cascade.teacher, cache=teacher_cache), 0.0)
    return EscalationFeatures(features, label == teacher_labels["category_id"].to_numpy())


@dataclass(frozen=True)
class ScoredTexts:
    calibration: np.ndarray
    evaluations: list[np.ndarray]


FixedScore = Callable[[pd.DataFrame], np.ndarray]

SHIPPED_SCORE = "top probability (shipped)"
FIXED_SCORES: dict[str, FixedScore] = {
    SHIPPED_SCORE: lambda f: f["top"].to_numpy(),
    "top-1 minus top-2 probability": lambda f: f["margin"].to_numpy(),
    "top probability, below all where the nearest teacher centroid disagrees": lambda f: (
        f["top"] + f["centroid_agrees"]
    ).to_numpy(),
    "top probability, below all where the transformer's classifier disagrees": lambda f: (
        f["top"] + f["transformer_classifier_agrees"]
    ).to_numpy(),
    "top probability, below all where the vector-alone classifier disagrees": lambda f: (
        f["top"] + f["vector_alone_agrees"]
    ).to_numpy(),
    "top probability x the vector-alone classifier's probability of that label": lambda f: (
        f["top"] * f["vector_alone_probability"]
    ).to_numpy(),
}


def _agreement_model(by_category: bool):
    numeric = StandardScaler()
    if not by_category:
        return make_pipeline(numeric, LogisticRegression(max_iter=1000))
    columns = make_column_transformer(
        (numeric, AGREEMENT_MODEL_FEATURES), (OneHotEncoder(handle_unknown="ignore"), ["label"])
    )
    return make_pipeline(columns, LogisticRegression(max_iter=1000))


def cross_fitted_agreement(
    calibration: EscalationFeatures, evaluations: list[pd.DataFrame], by_category: bool
) -> ScoredTexts:
    """P(the student agrees with the transformer): out of fold on the calibration texts, the folds' mean elsewhere."""
    columns = [*AGREEMENT_MODEL_FEATURES, "label"] if by_category else AGREEMENT_MODEL_FEATURES
    features = calibration.features[columns]
    out_of_fold = np.empty(len(features))
    evaluation_scores = [np.zeros(len(frame)) for frame in evaluations]
    folds = StratifiedKFold(CROSS_FIT_FOLDS, shuffle=True, random_state=SEED)
    for fitted_on, scored in folds.split(features, calibration.student_agrees):
        model = _agreement_model(by_category).fit(features.iloc[fitted_on], calibration.student_agrees[fitted_on])
        out_of_fold[scored] = model.predict_proba(features.iloc[scored])[:, 1]
        for total, frame in zip(evaluation_scores, evaluations, strict=True):
            total += model.predict_proba(frame[columns])[:, 1] / CROSS_FIT_FOLDS
    return ScoredTexts(out_of_fold, evaluation_scores)


@dataclass(frozen=True)
class ScoreResult:
    score: str
    threshold: float
    calibration_escalated: float
    escalated: list[float]  # per evaluation set
    agreement: list[float]
    # The share the threshold chosen on the evaluation set itself would escalate: how well the score ranks the texts,
    # without the noise of a threshold carried over from other texts.
    escalated_at_own_threshold: list[float]


def compare_escalation_scores(
    calibration: EscalationFeatures, evaluations: list[EscalationFeatures], target_agreement: float
) -> list[ScoreResult]:
    frames = [each.features for each in evaluations]
    scored = {
        name: ScoredTexts(score(calibration.features), [score(frame) for frame in frames])
        for name, score in FIXED_SCORES.items()
    }
    scored["learnt P(student agrees), cross-fitted"] = cross_fitted_agreement(calibration, frames, False)
    scored["learnt P(student agrees) with the student's label, cross-fitted"] = cross_fitted_agreement(
        calibration, frames, True
    )
    results = []
    for name, scores in scored.items():
        threshold = choose_escalation_threshold(scores.calibration, calibration.student_agrees, target_agreement)
        escalated = [score < threshold for score in scores.evaluations]
        results.append(
            ScoreResult(
                name,
                threshold,
                float((scores.calibration < threshold).mean()),
                [float(each.mean()) for each in escalated],
                [
                    float((each | evaluation.student_agrees).mean())
                    for each, evaluation in zip(escalated, evaluations, strict=True)
                ],
                [
                    float(
                        (score < choose_escalation_threshold(score, evaluation.student_agrees, target_agreement)).mean()
                    )
                    for score, evaluation in zip(scores.evaluations, evaluations, strict=True)
                ],
            )
        )
    return results


def escalation_report(results: list[ScoreResult], evaluation_sets: list[str]) -> str:
    header = " | ".join(
        f"{name}: escalated | {name}: agreement | {name}: escalated at its own threshold" for name in evaluation_sets
    )
    lines = [
        f"| escalation score | threshold | calibration: escalated | {header} |",
        "|---|---:|---:|" + "---:|---:|---:|" * len(evaluation_sets),
    ]
    for r in results:
        cells = " | ".join(
            f"{escalated:.1%} | {agreement:.1%} | {own:.1%}"
            for escalated, agreement, own in zip(r.escalated, r.agreement, r.escalated_at_own_threshold, strict=True)
        )
        lines.append(f"| {r.score} | {r.threshold:.3f} | {r.calibration_escalated:.1%} | {cells} |")
    return "\n".join(lines)
