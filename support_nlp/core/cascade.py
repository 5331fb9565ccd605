"""Labelling every text with a cheap student encoder, and with the transformer only where the student is unsure.

Every text is embedded by the student (e.g. the static encoder) and labelled by the student's classifier: a
classifier trained on student vectors, or the transformer's own classifier, since the static student's vectors
live in the transformer's space. Texts whose student confidence is below the escalation threshold are embedded by
the teacher (the transformer) and labelled by the teacher's classifier. The threshold is calibrated on held-out
texts labelled both ways (`calibrate_cascade`): the lowest one at which the cascade would agree with the
all-transformer labels on a target share of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from support_nlp.core.classifier import ClassifierModel
from support_nlp.core.embedding import embed_texts
from support_nlp.core.encoders import Encoder

if TYPE_CHECKING:
    from support_nlp.core.embedding_cache import EmbeddingCache

ESCALATE_EVERYTHING = float("inf")


@dataclass(frozen=True)
class CascadeLabels:
    """Per text: category_id, category_name, confidence (of the classifier that decided) and `escalated`."""

    predictions: pd.DataFrame

    @property
    def escalated_share(self) -> float:
        return float(self.predictions["escalated"].mean()) if len(self.predictions) else 0.0


@dataclass(frozen=True)
class Cascade:
    student: Encoder
    teacher: Encoder
    student_classifier: ClassifierModel
    teacher_classifier: ClassifierModel
    escalate_below: float

    def label(
        self, texts: list[str], min_confidence: float = 0.0, teacher_cache: EmbeddingCache | None = None
    ) -> CascadeLabels:
        """Labels of `texts`; below `min_confidence` (of the deciding classifier) the category is `uncertain`.

        `teacher_cache` serves and keeps the teacher's vectors of escalated texts; the student needs no cache."""
        predictions = self.student_classifier.predict(embed_texts(texts, self.student), min_confidence)
        escalated = predictions["confidence"].to_numpy() < self.escalate_below
        if escalated.any():
            escalated_texts = [texts[row] for row in np.flatnonzero(escalated)]
            teacher_predictions = self.teacher_classifier.predict(
                embed_texts(escalated_texts, self.teacher, cache=teacher_cache), min_confidence
            )
            for column in predictions.columns:
                values = predictions[column].to_numpy().copy()
                values[escalated] = teacher_predictions[column].to_numpy()
                predictions[column] = values
        predictions["escalated"] = escalated
        return CascadeLabels(predictions)


def choose_escalation_threshold(
    student_confidence: np.ndarray, student_agrees: np.ndarray, target_agreement: float
) -> float:
    """The lowest threshold at which the cascade agrees with the teacher on `target_agreement` of these texts.

    Escalated texts (confidence below the threshold) agree by construction; kept ones where `student_agrees`."""
    if len(student_confidence) == 0:
        raise ValueError("choosing an escalation threshold needs calibration texts")
    order = np.argsort(-student_confidence, kind="stable")
    confidence = student_confidence[order]
    kept_disagreements = np.cumsum(~student_agrees[order])
    allowed = (1 - target_agreement) * len(order)
    # Keeping the m most confident texts is possible only where no tie straddles the cut.
    cut_between_distinct = np.append(confidence[:-1] > confidence[1:], True)
    keepable = np.flatnonzero((kept_disagreements <= allowed) & cut_between_distinct)
    return float(confidence[keepable[-1]]) if len(keepable) else ESCALATE_EVERYTHING


def calibrate_cascade(
    student: Encoder,
    teacher: Encoder,
    student_classifier: ClassifierModel,
    teacher_classifier: ClassifierModel,
    calibration_texts: list[str],
    target_agreement: float,
    teacher_cache: EmbeddingCache | None = None,
) -> Cascade:
    """A cascade whose threshold is chosen on `calibration_texts`: held-out texts, never those it is scored on."""
    student_predictions = student_classifier.predict(embed_texts(calibration_texts, student), 0.0)
    teacher_predictions = teacher_classifier.predict(embed_texts(calibration_texts, teacher, cache=teacher_cache), 0.0)
    agrees = student_predictions["category_id"].to_numpy() == teacher_predictions["category_id"].to_numpy()
    threshold = choose_escalation_threshold(student_predictions["confidence"].to_numpy(), agrees, target_agreement)
    return Cascade(student, teacher, student_classifier, teacher_classifier, threshold)
