"""The cascade's student classifier: the transformer classifier's labels predicted from cheap features of a text.

Features: the static student's vector, beside the text's hashed TF-IDF word uni- and bigrams (lower-cased words and
punctuation marks, hashed into a fixed number of columns, so nothing but the fitted arrays is stored). The student
vector carries what the transformer's space knows about a text; the n-grams carry the literal topic words the
student's averaged token vectors blur. A multinomial logistic regression on both is trained to reproduce the
transformer classifier's labels of the fit texts: what the cascade is scored against.

With `lexical=False` it is the same regression on the student vector alone (the comparison the cascade benchmark
prints). Stored as plain arrays (`core.artifacts`): the n-gram part keeps only the columns the fit texts use, since
a column no fit text has keeps a zero coefficient.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.special import softmax
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import normalize

from support_nlp.core.classifier import predictions_from_proba

HASHED_COLUMNS = 2**18
# Words and single punctuation marks: a "?" or "!" says something about the kind of message.
TOKEN_PATTERN = r"(?u)\b\w+\b|[^\w\s]"
# Chosen on the cascade benchmark's calibration texts (docs/performance.md) by the share escalated at 97 %.
REGULARIZATION_C = 10.0
MAX_ITER = 2000


def hashed_counts(texts: list[str]) -> sparse.csr_matrix:
    hasher = HashingVectorizer(
        n_features=HASHED_COLUMNS,
        ngram_range=(1, 2),
        token_pattern=TOKEN_PATTERN,
        alternate_sign=False,
        norm=None,
        dtype=np.float32,
    )
    counts = hasher.transform(texts).tocsr()
    counts.sum_duplicates()
    return counts


def _tf_idf(counts: sparse.csr_matrix, idf: np.ndarray) -> sparse.csr_matrix:
    """Sublinear term frequency times idf, each row scaled to unit length (scikit-learn's TfidfTransformer with
    sublinear_tf and smooth idf, written out so that only the idf array is stored)."""
    weighted = counts.copy()
    weighted.data = (1 + np.log(weighted.data)) * idf[weighted.indices]
    return normalize(weighted, copy=False)


@dataclass(frozen=True)
class StudentClassifier:
    """P(c | text) = softmax(V v + L x + b): v the student vector, x the text's TF-IDF n-grams (columns
    `lexical_columns` of the hashed space, the others' coefficients being zero)."""

    vector_coef: np.ndarray  # classes x student dimension
    lexical_columns: np.ndarray  # hashed columns the fit texts use (empty: no lexical part)
    lexical_coef: np.ndarray  # classes x len(lexical_columns)
    lexical_idf: np.ndarray  # the idf of those columns
    unseen_idf: float  # the idf of every other column
    intercept: np.ndarray
    classes: np.ndarray
    category_names: dict[str, str]
    student: str  # the student encoder's identity

    @property
    def lexical(self) -> bool:
        return len(self.lexical_columns) > 0

    def _lexical_features(self, texts: list[str]) -> sparse.csr_matrix:
        idf = np.full(HASHED_COLUMNS, self.unseen_idf, dtype=np.float32)
        idf[self.lexical_columns] = self.lexical_idf
        return _tf_idf(hashed_counts(texts), idf)

    def predict_proba(self, texts: list[str], vectors: np.ndarray) -> np.ndarray:
        logits = vectors @ self.vector_coef.T + self.intercept
        if self.lexical:
            logits += self._lexical_features(texts)[:, self.lexical_columns] @ self.lexical_coef.T
        if len(self.classes) == 2:
            logits = np.hstack([np.zeros_like(logits), logits])
        return softmax(logits, axis=1)

    def predict(self, texts: list[str], vectors: np.ndarray, min_confidence: float) -> pd.DataFrame:
        """Category id, name and confidence per text; below `min_confidence` the category is `uncertain`."""
        proba = self.predict_proba(texts, vectors) if texts else np.empty((0, len(self.classes)))
        return predictions_from_proba(proba, self.classes, self.category_names, min_confidence)

    def to_arrays(self) -> tuple[dict[str, np.ndarray], dict]:
        arrays = {
            "vector_coef": self.vector_coef,
            "lexical_columns": self.lexical_columns,
            "lexical_coef": self.lexical_coef,
            "lexical_idf": self.lexical_idf,
            "intercept": self.intercept,
            "classes": self.classes,
        }
        return arrays, {"unseen_idf": self.unseen_idf, "category_names": self.category_names, "student": self.student}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], meta: dict) -> StudentClassifier:
        return cls(**arrays, **meta)


def train_student_classifier(
    texts: list[str],
    vectors: np.ndarray,
    labels: np.ndarray,
    category_names: dict[str, str],
    student: str,
    lexical: bool = True,
) -> StudentClassifier:
    """Fitted on the student's `vectors` of `texts` and the transformer classifier's `labels` of them."""
    if lexical:
        counts = hashed_counts(texts)
        document_frequency = np.bincount(counts.indices, minlength=HASHED_COLUMNS)
        columns = np.flatnonzero(document_frequency).astype(np.int32)
        idf = (np.log((1 + len(texts)) / (1 + document_frequency)) + 1).astype(np.float32)
        lexical_features = _tf_idf(counts, idf)[:, columns]
        features = sparse.hstack([sparse.csr_matrix(vectors), lexical_features]).tocsr()
    else:
        columns, idf, features = np.empty(0, dtype=np.int32), np.ones(1, dtype=np.float32), vectors
    model = LogisticRegression(C=REGULARIZATION_C, max_iter=MAX_ITER).fit(features, labels)
    coef = model.coef_.astype(np.float32)
    dimension = vectors.shape[1]
    return StudentClassifier(
        vector_coef=coef[:, :dimension],
        lexical_columns=columns,
        lexical_coef=coef[:, dimension:],
        lexical_idf=idf[columns],
        unseen_idf=float(np.log(1 + len(texts)) + 1),
        intercept=model.intercept_.astype(np.float32),
        classes=model.classes_.astype(np.int32),
        category_names={str(k): v for k, v in category_names.items()},
        student=student,
    )
