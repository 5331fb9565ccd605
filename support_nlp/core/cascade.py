"""Labelling every text with a cheap student encoder, and with the transformer only where the student is unsure.

Every text is embedded by the student (e.g. the static encoder) and labelled by the student's classifier
(`core.student_classifier`: the student vector and the text's hashed n-grams, trained on the transformer
classifier's labels). Texts whose student confidence is below the escalation threshold are embedded by the teacher
(the transformer) and labelled by the teacher's classifier. The threshold is calibrated on held-out
texts labelled both ways (`calibrate_cascade`): the lowest one at which the cascade would agree with the
all-transformer labels on a target share of them, with a margin for the tweets it was not chosen on (a confidence
bound, CALIBRATION_Z).

`load_cascade` builds the product's cascade for a trained classifier on first use and stores it in a folder, in the
product the model version's (`core.model_store`), so a rollback restores the matching cascade and every worker
reads the same one: the student is distilled and its classifier fitted on the fit texts with the transformer
classifier's labels of them, the threshold calibrated on other texts. In the product both come from the corpus the
version was trained on: training records them with the version (`cascade_texts_of`, `CASCADE_TEXTS_FILE`), and
their teacher vectors are already in the vector cache. The distilled student itself stays in the local encoder
cache; the stored cascade names it by identity. Stored are `cascade-<content digest>.npz` (the student's
classifier) and, written last, `cascade.json` (what it was built from, the threshold, the .npz's name):
concurrent first uses each write whole files and the description always names a complete classifier. A stored
cascade built another way (another student, recipe, calibration or target) is rebuilt and replaced.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from upath import UPath

from support_nlp.core.artifacts import artifact_from_bytes, artifact_to_bytes
from support_nlp.core.classifier import ClassifierModel
from support_nlp.core.embedding import embed_texts
from support_nlp.core.encoders import Encoder
from support_nlp.core.encoders.onnx_runtime import OnnxEncoder
from support_nlp.core.encoders.static_backend import StaticEncoder, cross_fitted_vectors, distil_student, fit_digest
from support_nlp.core.progress import Progress, ProgressCallback
from support_nlp.core.storage import read_decoded, write_file
from support_nlp.core.student_classifier import StudentClassifier, train_student_classifier

if TYPE_CHECKING:
    from support_nlp.core.embedding_cache import EmbeddingCache

ESCALATE_EVERYTHING = float("inf")
RECIPE_VERSION = "3"
DESCRIPTION_FILE = "cascade.json"
CASCADE_TEXTS_FILE = "cascade_texts.json.gz"
TARGET_AGREEMENT = 0.97
# The threshold is chosen on a few thousand calibration texts; chosen to just reach the target on them, it fell
# short on held-out tweets about as often as not. It must reach it at the one-sided 95 % Wilson bound (z).
CALIBRATION_Z = 1.645
# The calibration texts choose one threshold, so a few thousand suffice; the other distinct texts of the training
# days fit the student and its classifier (their transformer vectors are in the cache), up to a bound that keeps the
# first use within minutes on a large corpus (the student classifier's fit grows with them).
DEFAULT_CALIBRATION_ROWS = 3_000
MAX_FIT_ROWS = 20_000
DEFAULT_SEED = 0
# A small corpus calibrates on a fifth of its texts at most; below these counts no cascade is built.
MAX_CALIBRATION_SHARE = 0.2
MIN_FIT_TEXTS = 1_000
MIN_CALIBRATION_TEXTS = 200
# The student's vectors and n-gram features and the teacher's vectors of a chunk are held at once: the chunk bounds
# labelling's memory whatever the number of texts, and is large enough that the per-chunk overhead is negligible.
LABEL_CHUNK_ROWS = 100_000


def label_in_chunks(texts: list[str], label: Callable[[list[str]], pd.DataFrame]) -> pd.DataFrame:
    """`label` applied to LABEL_CHUNK_ROWS texts at a time, its frames concatenated: for labels of a text that
    depend on that text alone, the same as one call, in bounded memory."""
    starts = range(0, max(len(texts), 1), LABEL_CHUNK_ROWS)
    return pd.concat([label(texts[start : start + LABEL_CHUNK_ROWS]) for start in starts], ignore_index=True)


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
    student_classifier: StudentClassifier
    teacher_classifier: ClassifierModel
    escalate_below: float

    def label(
        self,
        texts: list[str],
        min_confidence: float = 0.0,
        teacher_cache: EmbeddingCache | None = None,
        report: ProgressCallback | None = None,
    ) -> CascadeLabels:
        """Labels of `texts`; below `min_confidence` (of the deciding classifier) the category is `uncertain`.

        `teacher_cache` serves and keeps the teacher's vectors of escalated texts; the student needs no cache.
        `report` receives the progress of the teacher on the escalated texts (the student's share takes seconds).
        Texts are labelled LABEL_CHUNK_ROWS at a time, each independently of the others."""
        return CascadeLabels(
            label_in_chunks(texts, lambda chunk: self._label_chunk(chunk, min_confidence, teacher_cache, report))
        )

    def _label_chunk(
        self,
        texts: list[str],
        min_confidence: float,
        teacher_cache: EmbeddingCache | None,
        report: ProgressCallback | None,
    ) -> pd.DataFrame:
        predictions = self.student_classifier.predict(texts, embed_texts(texts, self.student), min_confidence)
        escalated = predictions["confidence"].to_numpy() < self.escalate_below
        if escalated.any():
            escalated_texts = [texts[row] for row in np.flatnonzero(escalated)]
            progress = Progress(
                f"transformer on the unsure texts ({escalated.mean():.1%})", len(set(escalated_texts)), report
            )
            teacher_predictions = self.teacher_classifier.predict(
                embed_texts(escalated_texts, self.teacher, progress, teacher_cache), min_confidence
            )
            for column in predictions.columns:
                values = predictions[column].to_numpy().copy()
                values[escalated] = teacher_predictions[column].to_numpy()
                predictions[column] = values
        predictions["escalated"] = escalated
        return predictions


def disagreement_upper_bound(disagreements: np.ndarray, texts: int, z: float) -> np.ndarray:
    """Wilson score upper bound of a disagreement share observed as `disagreements` in `texts` (z = 0: the share)."""
    share = disagreements / texts
    spread = z * np.sqrt(share * (1 - share) / texts + z**2 / (4 * texts**2))
    return (share + z**2 / (2 * texts) + spread) / (1 + z**2 / texts)


def choose_escalation_threshold(
    student_confidence: np.ndarray, student_agrees: np.ndarray, target_agreement: float, z: float = CALIBRATION_Z
) -> float:
    """The lowest threshold at which the cascade agrees with the teacher on `target_agreement` of these texts, and
    with z > 0 on tweets like them: the share of disagreements kept is bounded above (Wilson, `z`) by 1 - target.

    Escalated texts (confidence below the threshold) agree by construction; kept ones where `student_agrees`."""
    if len(student_confidence) == 0:
        raise ValueError("choosing an escalation threshold needs calibration texts")
    order = np.argsort(-student_confidence, kind="stable")
    confidence = student_confidence[order]
    kept_disagreements = np.cumsum(~student_agrees[order])
    # The small tolerance keeps an exact share (1 disagreement in 10 for 90 %) from failing on rounding.
    within = disagreement_upper_bound(kept_disagreements, len(order), z) <= 1 - target_agreement + 1e-12
    # Keeping the m most confident texts is possible only where no tie straddles the cut.
    cut_between_distinct = np.append(confidence[:-1] > confidence[1:], True)
    keepable = np.flatnonzero(within & cut_between_distinct)
    return float(confidence[keepable[-1]]) if len(keepable) else ESCALATE_EVERYTHING


def calibrate_cascade(
    student: Encoder,
    teacher: Encoder,
    student_classifier: StudentClassifier,
    teacher_classifier: ClassifierModel,
    calibration_texts: list[str],
    target_agreement: float,
    teacher_cache: EmbeddingCache | None = None,
) -> Cascade:
    """A cascade whose threshold is chosen on `calibration_texts`: held-out texts, never those it is scored on."""
    student_predictions = student_classifier.predict(calibration_texts, embed_texts(calibration_texts, student), 0.0)
    teacher_predictions = teacher_classifier.predict(embed_texts(calibration_texts, teacher, cache=teacher_cache), 0.0)
    agrees = student_predictions["category_id"].to_numpy() == teacher_predictions["category_id"].to_numpy()
    threshold = choose_escalation_threshold(student_predictions["confidence"].to_numpy(), agrees, target_agreement)
    return Cascade(student, teacher, student_classifier, teacher_classifier, threshold)


def classifier_fingerprint(classifier: ClassifierModel) -> str:
    digest = hashlib.sha256()
    for array in (classifier.coef, classifier.intercept, classifier.classes):
        digest.update(np.ascontiguousarray(array).tobytes())
    digest.update(json.dumps([classifier.category_names, classifier.embedding_model], sort_keys=True).encode())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class CascadeTexts:
    """Distinct real texts the cascade is fitted on and the other texts its threshold is calibrated on."""

    fit_texts: list[str]
    calibration_texts: list[str]

    def to_bytes(self) -> bytes:
        return gzip.compress(json.dumps({"fit": self.fit_texts, "calibration": self.calibration_texts}).encode())

    @classmethod
    def from_bytes(cls, data: bytes) -> CascadeTexts:
        texts = json.loads(gzip.decompress(data))
        return cls(texts["fit"], texts["calibration"])


def cascade_texts_of(
    texts: Iterable[str],
    calibration_rows: int = DEFAULT_CALIBRATION_ROWS,
    max_fit_rows: int = MAX_FIT_ROWS,
    seed: int = DEFAULT_SEED,
    calibration_pool: Iterable[str] | None = None,
) -> CascadeTexts:
    """A corpus's distinct non-empty texts split by a seeded draw: `calibration_rows` of those in
    `calibration_pool` (None: of all; at most MAX_CALIBRATION_SHARE of the pool) to calibrate on, the rest (at most
    `max_fit_rows`) to fit; each list in sorted order. The product's pool is its issue messages: the threshold is
    chosen on the texts the cascade will label, while the student learns from every text."""
    distinct = sorted({text for text in texts if text})
    order = np.random.default_rng(seed).permutation(len(distinct))
    pool = np.ones(len(distinct), dtype=bool) if calibration_pool is None else np.isin(distinct, list(calibration_pool))
    calibration_count = min(calibration_rows, int(pool.sum() * MAX_CALIBRATION_SHARE))
    calibration = order[pool[order]][:calibration_count]
    fit = order[~np.isin(order, calibration)][:max_fit_rows]
    return CascadeTexts(*([distinct[row] for row in np.sort(rows)] for rows in (fit, calibration)))


def stored_cascade_texts(folder: UPath) -> CascadeTexts:
    """The texts training recorded in the model version `folder` for its cascade."""
    try:
        return read_decoded(folder / CASCADE_TEXTS_FILE, CascadeTexts.from_bytes)
    except FileNotFoundError as missing:
        raise ValueError(
            f"{folder} records no texts to fit a cascade on (a version stored before training recorded them, or "
            "adopted): run the `training` job for a version that has them, or use SUPPORT_NLP_INFERENCE=transformer"
        ) from missing


def check_enough_texts(texts: CascadeTexts) -> None:
    if len(texts.fit_texts) < MIN_FIT_TEXTS or len(texts.calibration_texts) < MIN_CALIBRATION_TEXTS:
        raise ValueError(
            f"too few texts for a cascade: {len(texts.fit_texts):,} to fit (at least {MIN_FIT_TEXTS:,}) and "
            f"{len(texts.calibration_texts):,} to calibrate (at least {MIN_CALIBRATION_TEXTS:,}): train on more "
            "days, or use SUPPORT_NLP_INFERENCE=transformer"
        )


def fit_student_classifier(
    student: Encoder,
    teacher: Encoder,
    teacher_classifier: ClassifierModel,
    fit_texts: list[str],
    teacher_cache: EmbeddingCache | None = None,
    lexical: bool = True,
    fit_vectors: np.ndarray | None = None,
) -> StudentClassifier:
    """A student classifier trained to reproduce the teacher classifier's labels of `fit_texts`: what the cascade
    is scored against, rather than the clustering's pseudo-labels the teacher learned from. It learns from
    `fit_vectors` (default: the student's vectors of the texts; see `cross_fitted_vectors`)."""
    teacher_labels = teacher_classifier.predict(embed_texts(fit_texts, teacher, cache=teacher_cache), 0.0)
    return train_student_classifier(
        fit_texts,
        embed_texts(fit_texts, student) if fit_vectors is None else fit_vectors,
        teacher_labels["category_id"].to_numpy(),
        teacher_classifier.category_names,
        student.identity,
        lexical,
    )


def fit_cascade(
    student: Encoder,
    teacher: Encoder,
    teacher_classifier: ClassifierModel,
    texts: CascadeTexts,
    target_agreement: float,
    teacher_cache: EmbeddingCache | None = None,
    fit_vectors: np.ndarray | None = None,
) -> Cascade:
    """`student`'s classifier fitted on the fit texts (on `fit_vectors` where given), the threshold calibrated on
    the calibration texts."""
    student_classifier = fit_student_classifier(
        student, teacher, teacher_classifier, texts.fit_texts, teacher_cache, fit_vectors=fit_vectors
    )
    return calibrate_cascade(
        student,
        teacher,
        student_classifier,
        teacher_classifier,
        texts.calibration_texts,
        target_agreement,
        teacher_cache,
    )


def stored_cascade(folder: UPath) -> dict | None:
    """The description of the cascade stored in `folder`; None when it holds none."""
    try:
        return read_decoded(folder / DESCRIPTION_FILE, json.loads)
    except FileNotFoundError:
        return None


def store_cascade(folder: UPath, cascade: Cascade, description: dict) -> None:
    """`cascade`'s student classifier and threshold into `folder`, the description last (module docstring)."""
    data = artifact_to_bytes(cascade.student_classifier)
    student_classifier_file = f"cascade-{hashlib.sha256(data).hexdigest()[:16]}.npz"
    write_file(folder / student_classifier_file, data)
    description = {
        **description,
        "escalate_below": cascade.escalate_below,
        "student_classifier_file": student_classifier_file,
    }
    write_file(folder / DESCRIPTION_FILE, json.dumps(description, indent=1).encode())


def load_cascade(
    teacher: Encoder,
    teacher_classifier: ClassifierModel,
    texts: CascadeTexts,
    student_root: Path,
    kept_in: UPath,
    target_agreement: float = TARGET_AGREEMENT,
    teacher_cache: EmbeddingCache | None = None,
    report: ProgressCallback | None = None,
) -> Cascade:
    """The cascade for `teacher_classifier` read from `kept_in`, built and stored there first when it holds none
    built this way (module docstring); the student is distilled under `student_root` on first use. `report`
    follows a build, which takes minutes."""
    if not isinstance(teacher, OnnxEncoder):
        raise ValueError(
            f"the cascade distils its student from the ONNX int8 export of a transformer; the classifier's encoder "
            f"is {teacher.identity!r}: set SUPPORT_NLP_INFERENCE=transformer, or, for a transformer model on CPU, "
            "backend 'onnx' (or 'auto')"
        )
    if teacher.identity != teacher_classifier.embedding_model:
        raise ValueError(
            f"the classifier was trained on vectors of {teacher_classifier.embedding_model!r}, not of the "
            f"cascade's teacher {teacher.identity!r}: retrain, or configure the classifier's encoder"
        )
    check_enough_texts(texts)
    student = StaticEncoder(distil_student(teacher, texts.fit_texts, student_root, teacher_cache, report))
    key = {
        "student": student.identity,
        "classifier": classifier_fingerprint(teacher_classifier),
        "calibration_texts": fit_digest(texts.calibration_texts),
        "target_agreement": target_agreement,
        "calibration_z": CALIBRATION_Z,
        "recipe": RECIPE_VERSION,
    }
    stored = stored_cascade(kept_in)
    if stored is not None and all(stored.get(name) == value for name, value in key.items()):
        student_classifier = read_decoded(kept_in / stored["student_classifier_file"], artifact_from_bytes)
        return Cascade(student, teacher, student_classifier, teacher_classifier, float(stored["escalate_below"]))
    # The student classifier learns from vectors of texts a student was not fitted on, as new tweets will be.
    if report:
        report("cascade: students of each half of the fit texts, for the student classifier's training vectors")
    fit_vectors = cross_fitted_vectors(teacher, texts.fit_texts, student_root, teacher_cache, report)
    if report:
        report(
            f"cascade: student classifier on {len(texts.fit_texts):,} fit texts, threshold on "
            f"{len(texts.calibration_texts):,} calibration texts"
        )
    cascade = fit_cascade(student, teacher, teacher_classifier, texts, target_agreement, teacher_cache, fit_vectors)
    counts = {"fit_texts_count": len(texts.fit_texts), "calibration_texts_count": len(texts.calibration_texts)}
    store_cascade(kept_in, cascade, {**key, **counts})
    return cascade
