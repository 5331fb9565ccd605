"""A contextual but shallow student: the teacher's own first N transformer layers, against the static student.

Each shallow encoder is the ONNX int8 export of the configured model cut after N of its transformer layers
(`onnx_runtime.ensure_exported(..., layers=N)`: the teacher's export recipe, mean pooling, normalisation, one text
per run), so it costs roughly N/layers of the teacher per text. It replaces the static student in the product's
cascade recipe, nothing else changed (`core.cascade.fit_cascade`, as `load_cascade` fits): the student classifier
(vector + n-grams) trained on the teacher classifier's labels of the cascade's fit texts, the threshold chosen for
the target agreement on its calibration texts, then applied to the evaluation sets. The static row is the
product's cascade of the benchmark, fitted and calibrated on the same texts.

Per student: its cost and the teacher's, measured on the same texts in the same process (the student's side is its
encoder plus its classifier, the teacher's side the transformer plus its classifier, each text encoded fresh); the
mean cosine to the teacher on the first evaluation set after a least-squares linear map (with offset) fitted on the
fit texts (informative only: the classifier never sees mapped vectors); the student alone's agreement with the
transformer's labels; at the calibrated threshold the share escalated and the cascade's agreement per set; and the
cascade's CPU per text relative to all-transformer, (student side + escalated share x teacher side) / teacher
side, from those measured costs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from support_nlp.benchmarks.performance import Cost, timed
from support_nlp.core.cascade import Cascade, CascadeTexts
from support_nlp.core.classifier import ClassifierModel
from support_nlp.core.embedding import embed_texts
from support_nlp.core.embedding_cache import EmbeddingCache
from support_nlp.core.encoders import Encoder, resolve_model_location
from support_nlp.core.encoders.onnx_runtime import OnnxEncoder, default_export_root, ensure_exported
from support_nlp.core.progress import Progress


class CachedEncoder:
    """`encoder` reading and keeping its vectors in `cache`: the benchmark embeds the same texts for several uses.
    Costs are measured on the wrapped encoder itself, never through the cache."""

    def __init__(self, encoder: Encoder, cache: EmbeddingCache):
        self.encoder = encoder
        self.cache = cache
        self.identity = encoder.identity
        self.dimension = encoder.dimension

    def encode(self, texts: list[str], progress: Progress | None = None) -> np.ndarray:
        return embed_texts(texts, self.encoder, progress, self.cache)


def shallow_encoder(teacher: OnnxEncoder, layers: int) -> OnnxEncoder:
    """The teacher's model cut after `layers` transformer layers, exported once into the teacher's export root."""
    return OnnxEncoder(
        ensure_exported(teacher.model, resolve_model_location(teacher.model), default_export_root(), layers)
    )


def mapped_cosine(student_fit: np.ndarray, teacher_fit: np.ndarray, student: np.ndarray, teacher: np.ndarray) -> float:
    """Mean cosine of `student` vectors, linearly mapped (least squares on the fit vectors), to `teacher`'s."""

    def with_offset(vectors: np.ndarray) -> np.ndarray:
        return np.hstack([vectors, np.ones((len(vectors), 1), dtype=vectors.dtype)])

    linear_map, *_ = np.linalg.lstsq(with_offset(student_fit), teacher_fit, rcond=None)
    mapped = with_offset(student) @ linear_map
    mapped /= np.linalg.norm(mapped, axis=1, keepdims=True)
    return float((mapped * teacher).sum(axis=1).mean())


@dataclass(frozen=True)
class SetResult:
    student_alone: float
    escalated: float
    agreement: float
    relative_cpu: float


@dataclass(frozen=True)
class StudentResult:
    student: str
    cost: Cost  # the student's side on the cost texts
    teacher_cost: Cost  # the teacher's side on the same texts
    cost_texts: int
    mapped_cosine: float
    calibration_alone: float
    threshold: float
    sets: dict[str, SetResult]

    @property
    def relative_cost(self) -> float:
        return self.cost.cpu_s / self.teacher_cost.cpu_s


def student_side_cost(cascade: Cascade, texts: list[str]) -> Cost:
    """CPU of the student's encoder (uncached) and classifier on `texts`."""
    encoder = cascade.student.encoder if isinstance(cascade.student, CachedEncoder) else cascade.student
    _, cost, _ = timed(lambda: cascade.student_classifier.predict(texts, encoder.encode(texts), 0.0))
    return cost


def teacher_side_cost(teacher: Encoder, teacher_classifier: ClassifierModel, texts: list[str]) -> Cost:
    _, cost, _ = timed(lambda: teacher_classifier.predict(teacher.encode(texts), 0.0))
    return cost


def measure_student(
    name: str,
    cascade: Cascade,
    texts: CascadeTexts,
    evaluation_sets: dict[str, list[str]],
    teacher_cache: EmbeddingCache,
) -> StudentResult:
    """`cascade`'s student against its teacher; both costs measured on the first evaluation set, one right after
    the other, so that a change of the shared machine's load between students does not tilt the comparison."""
    first_set = next(iter(evaluation_sets.values()))
    teacher = cascade.teacher
    cost = student_side_cost(cascade, first_set)
    teacher_cost = teacher_side_cost(teacher, cascade.teacher_classifier, first_set)

    def teacher_vectors(each: list[str]) -> np.ndarray:
        return embed_texts(each, teacher, cache=teacher_cache)

    cosine = mapped_cosine(
        embed_texts(texts.fit_texts, cascade.student),
        teacher_vectors(texts.fit_texts),
        embed_texts(first_set, cascade.student),
        teacher_vectors(first_set),
    )
    student_alone = Cascade(cascade.student, teacher, cascade.student_classifier, cascade.teacher_classifier, 0.0)

    def agreement(runner: Cascade, each: list[str]) -> tuple[float, float]:
        labels = runner.label(each, teacher_cache=teacher_cache)
        reference = cascade.teacher_classifier.predict(teacher_vectors(each), 0.0)
        agrees = labels.predictions["category_id"].to_numpy() == reference["category_id"].to_numpy()
        return float(agrees.mean()), labels.escalated_share

    sets = {}
    for set_name, each in evaluation_sets.items():
        alone, _ = agreement(student_alone, each)
        cascaded, escalated = agreement(cascade, each)
        relative_cpu = (cost.cpu_s + escalated * teacher_cost.cpu_s) / teacher_cost.cpu_s
        sets[set_name] = SetResult(alone, escalated, cascaded, relative_cpu)
    return StudentResult(
        name,
        cost,
        teacher_cost,
        len(first_set),
        cosine,
        agreement(student_alone, texts.calibration_texts)[0],
        cascade.escalate_below,
        sets,
    )


def shallow_report(results: list[StudentResult]) -> str:
    set_names = list(results[0].sets)
    header = (
        "| student | texts/CPU-s (teacher) | CPU vs teacher | mapped cosine | alone, calibration | threshold | "
        + " | ".join(f"{name}: alone | escalated | agreement | cascade CPU vs all-transformer" for name in set_names)
        + " |"
    )
    lines = [header, "|---|---:|---:|---:|---:|---:|" + "---:|---:|---:|---:|" * len(set_names)]
    for r in results:
        cells = [
            r.student,
            f"{r.cost_texts / r.cost.cpu_s:,.0f} ({r.cost_texts / r.teacher_cost.cpu_s:,.0f})",
            f"{r.relative_cost:.3f}",
            f"{r.mapped_cosine:.3f}",
            f"{r.calibration_alone:.1%}",
            f"{r.threshold:.3f}",
        ]
        for each in r.sets.values():
            cells += [f"{each.student_alone:.1%}", f"{each.escalated:.1%}", f"{each.agreement:.1%}"]
            cells.append(f"{each.relative_cpu:.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
