"""A logistic-regression classifier that learns the discovered categories and labels new tweets.

Its quality is measured on a time-ordered holdout (train on earlier days, score later days), and the
numbers are agreement with the clustering's pseudo-labels, not accuracy against human labels.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy.special import softmax
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, classification_report, confusion_matrix, f1_score

UNCERTAIN_ID = -1
UNCERTAIN_NAME = "uncertain"
# A conversational message (thanks, "DM sent", ...) is no issue, and a complaint that names no topic states none:
# neither has a category of its own, only its thread's.
CONVERSATIONAL_ID = -2


@dataclass(frozen=True)
class ClassifierConfig:
    holdout_share: float = 0.2
    # Unit-length embeddings need weak regularisation for honest probabilities: at C=1 the model was right ~87 % of
    # the time at ~37 % mean confidence (ECE ~0.5). Chosen on the quality benchmark's dev sets (Banking77 train,
    # Bitext 8k) among 1, 10, 30, 100: C=100 had the lowest ECE on both (0.03, 0.01) and the best or level accuracy.
    regularization_c: float = 100.0
    max_iter: int = 1000
    # Fitting cost grows with rows while a 384-d linear model stops improving long before 1.6M of them: above
    # this many rows each fit uses a seeded sample of this size (every category keeps at least one row).
    max_fit_rows: int = 200_000
    seed: int = 0

    def __post_init__(self):
        if not 0 < self.holdout_share < 1:
            raise ValueError(f"holdout_share = {self.holdout_share}: the held-out share of the rows, in (0, 1)")
        if self.regularization_c <= 0 or self.max_iter < 1 or self.max_fit_rows < 1:
            raise ValueError("regularization_c, max_iter and max_fit_rows must be positive")


@dataclass(frozen=True)
class CategoryAgreement:
    """One category's agreement with its pseudo-labels on the holdout."""

    category_id: int
    category: str
    precision: float
    recall: float
    f1: float
    support: int  # held-out rows the clustering put in the category


@dataclass(frozen=True)
class HoldoutMetrics:
    """Agreement with the clustering's pseudo-labels on a time-ordered holdout: earlier days train a model, the
    later days score it. Not accuracy against human labels."""

    agreement_accuracy: float
    agreement_macro_f1: float
    train_rows: int
    fitted_rows: int  # of the train rows: at most ClassifierConfig.max_fit_rows
    holdout_rows: int
    train_days: tuple[str, str]  # first and last
    holdout_days: tuple[str, str]
    per_category: tuple[CategoryAgreement, ...]
    confusion_labels: tuple[int, ...]  # category ids of the confusion matrix's rows (truth) and columns
    confusion_matrix: tuple[tuple[int, ...], ...]

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, fields: dict) -> HoldoutMetrics:
        # Models stored before training was capped at max_fit_rows were fitted on every training row.
        earlier = {"fitted_rows": fields["train_rows"]}
        return cls(
            **{
                **earlier,
                **fields,
                "train_days": tuple(fields["train_days"]),
                "holdout_days": tuple(fields["holdout_days"]),
                "per_category": tuple(CategoryAgreement(**row) for row in fields["per_category"]),
                "confusion_labels": tuple(fields["confusion_labels"]),
                "confusion_matrix": tuple(tuple(row) for row in fields["confusion_matrix"]),
            }
        )


@dataclass(frozen=True)
class ClassifierModel:
    """Multinomial logistic regression stored as plain arrays (no pickle): P(c|x) = softmax(W x + b)."""

    coef: np.ndarray
    intercept: np.ndarray
    classes: np.ndarray
    category_names: dict[str, str]
    embedding_model: str
    metrics: HoldoutMetrics
    # Each category's share of the training rows: the mix that drift of daily predictions is measured against.
    category_shares: dict[str, float]

    @property
    def training_days(self) -> tuple[str, str]:
        """First and last day the deployed model was fitted on: it is refit on the holdout days too."""
        return self.metrics.train_days[0], self.metrics.holdout_days[1]

    def to_arrays(self) -> tuple[dict[str, np.ndarray], dict]:
        arrays = {"coef": self.coef, "intercept": self.intercept, "classes": self.classes}
        meta = {
            "category_names": self.category_names,
            "embedding_model": self.embedding_model,
            "metrics": self.metrics.to_json(),
            "category_shares": self.category_shares,
        }
        return arrays, meta

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], meta: dict) -> ClassifierModel:
        metrics = dict(meta["metrics"])
        # Classifiers stored before the metrics were typed kept the training mix among them.
        category_shares = meta.get("category_shares", metrics.pop("category_shares", None))
        return cls(
            **arrays,
            **{**meta, "metrics": HoldoutMetrics.from_json(metrics), "category_shares": category_shares},
        )

    def predict_proba(self, vectors: np.ndarray) -> np.ndarray:
        logits = vectors @ self.coef.T + self.intercept
        if len(self.classes) == 2:
            # Binary models keep one coefficient row (for the second class); softmax([0, z]) is its sigmoid.
            logits = np.hstack([np.zeros_like(logits), logits])
        return softmax(logits, axis=1)

    def predict(self, vectors: np.ndarray, min_confidence: float) -> pd.DataFrame:
        """Category id, name and confidence per row; below `min_confidence` the category is `uncertain`."""
        proba = self.predict_proba(vectors) if len(vectors) else np.empty((0, len(self.classes)))
        return predictions_from_proba(proba, self.classes, self.category_names, min_confidence)


def predictions_from_proba(
    proba: np.ndarray, classes: np.ndarray, category_names: dict[str, str], min_confidence: float
) -> pd.DataFrame:
    """The most probable category of each row (`uncertain` below `min_confidence`), its name and probability."""
    if len(proba) == 0:
        return pd.DataFrame(
            {
                "category_id": pd.Series([], dtype="int32"),
                "category_name": pd.Series([], dtype=str),
                "confidence": pd.Series([], dtype="float32"),
            }
        )
    best = proba.argmax(axis=1)
    confidence = proba[np.arange(len(proba)), best].astype(np.float32)
    category = classes[best].astype(np.int32)
    confident = confidence >= min_confidence
    return pd.DataFrame(
        {
            "category_id": np.where(confident, category, UNCERTAIN_ID).astype(np.int32),
            "category_name": [
                category_names[str(c)] if ok else UNCERTAIN_NAME for c, ok in zip(category, confident, strict=True)
            ],
            "confidence": confidence,
        }
    )


def time_ordered_split(days: np.ndarray, holdout_share: float) -> np.ndarray:
    """Boolean mask of training rows: the earliest days holding about (1 - holdout_share) of the rows."""
    unique_days, counts = np.unique(days, return_counts=True)
    if len(unique_days) < 2:
        raise ValueError(
            f"a time-ordered holdout needs tweets from at least 2 days, got {len(unique_days)} "
            f"({', '.join(unique_days)})"
        )
    cumulative = np.cumsum(counts) / counts.sum()
    # The last training day is the first one reaching the training share, but never the last day.
    last_train = min(int(np.searchsorted(cumulative, 1 - holdout_share)), len(unique_days) - 2)
    return days <= unique_days[last_train]


def _first_and_last(days: np.ndarray) -> tuple[str, str]:
    unique = np.unique(days)
    return str(unique[0]), str(unique[-1])


def fit_rows(labels: np.ndarray, config: ClassifierConfig) -> np.ndarray:
    """Indices of the rows a model is fitted on: all of them, or a seeded sample of `max_fit_rows` that still
    holds every category (a category the sample missed contributes its first row)."""
    if len(labels) <= config.max_fit_rows:
        return np.arange(len(labels))
    sample = np.random.default_rng(config.seed).choice(len(labels), size=config.max_fit_rows, replace=False)
    missed = np.setdiff1d(np.unique(labels), labels[sample])
    firsts = np.array([np.flatnonzero(labels == c)[0] for c in missed], dtype=sample.dtype)
    return np.sort(np.concatenate([sample, firsts]))


def _fit(vectors: np.ndarray, labels: np.ndarray, config: ClassifierConfig) -> LogisticRegression:
    rows = fit_rows(labels, config)
    return LogisticRegression(C=config.regularization_c, max_iter=config.max_iter).fit(vectors[rows], labels[rows])


def evaluate_holdout(vectors, labels, days, config: ClassifierConfig, names: dict[str, str]) -> HoldoutMetrics:
    """Train on earlier days, score the later ones: agreement with the pseudo-labels."""
    train = time_ordered_split(days, config.holdout_share)
    model = _fit(vectors[train], labels[train], config)
    predicted = model.predict(vectors[~train])
    truth = labels[~train]
    all_classes = np.unique(labels)
    report = classification_report(truth, predicted, labels=all_classes, output_dict=True, zero_division=0)
    per_category = tuple(
        CategoryAgreement(
            category_id=int(c),
            category=names[str(c)],
            precision=round(report[str(c)]["precision"], 4),
            recall=round(report[str(c)]["recall"], 4),
            f1=round(report[str(c)]["f1-score"], 4),
            support=int(report[str(c)]["support"]),
        )
        for c in all_classes
    )
    return HoldoutMetrics(
        agreement_accuracy=round(float(accuracy_score(truth, predicted)), 4),
        agreement_macro_f1=round(
            float(f1_score(truth, predicted, labels=all_classes, average="macro", zero_division=0)), 4
        ),
        train_rows=int(train.sum()),
        fitted_rows=len(fit_rows(labels[train], config)),
        holdout_rows=int((~train).sum()),
        train_days=_first_and_last(days[train]),
        holdout_days=_first_and_last(days[~train]),
        per_category=per_category,
        confusion_labels=tuple(int(c) for c in all_classes),
        confusion_matrix=tuple(map(tuple, confusion_matrix(truth, predicted, labels=all_classes).tolist())),
    )


def train_classifier(
    vectors: np.ndarray,
    labels: np.ndarray,
    days: np.ndarray,
    category_names: dict[int, str],
    embedding_model: str,
    config: ClassifierConfig = ClassifierConfig(),
) -> ClassifierModel:
    """Evaluate on a time-ordered holdout, then fit the deployed model on all rows."""
    names = {str(k): v for k, v in category_names.items()}
    metrics = evaluate_holdout(vectors, labels, days, config, names)
    classes, counts = np.unique(labels, return_counts=True)
    category_shares = {names[str(c)]: round(n / counts.sum(), 6) for c, n in zip(classes, counts, strict=True)}
    final = _fit(vectors, labels, config)
    return ClassifierModel(
        coef=final.coef_.astype(np.float32),
        intercept=final.intercept_.astype(np.float32),
        classes=final.classes_.astype(np.int32),
        category_names=names,
        embedding_model=embedding_model,
        metrics=metrics,
        category_shares=category_shares,
    )
