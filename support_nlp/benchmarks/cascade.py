"""The static student and the cascade against the all-transformer path, on real tweets.

    python -m support_nlp.benchmarks.cascade [--quick] [--first-use-only] [--escalation-scores]
        [--shallow-students 1,2,3] [--trained-shallow 1 [--trained-epochs 3]]
        [--target-agreement 0.97] [--work-dir DIR]

Data (all real, cleaned with the product's `clean_text`, distinct non-empty texts, each with the product's
message kind of its first occurrence):
- the bundled sample's inbound tweets (support_nlp/data/twcs_sample.csv.gz), split by a seeded shuffle into
  calibration (the escalation threshold) and evaluation texts, both drawn from the issue messages (the only tweets
  the product's cascade labels), and, the rest of every kind (or fewer with --quick), training texts (student fit;
  categories and classifiers from those that open a thread with an issue, as the product discovers them);
- /work/shared/datasets/twcs_inbound_texts_6000 (first customer messages drawn from the whole twcs.csv by another
  author; texts also in the bundled sample's training or calibration texts removed): a second evaluation set, its
  issue messages;
- for the student's throughput only, additionally every distinct inbound text of /work/shared/datasets/twcs_real.

Reference ("all-transformer"): the int8 ONNX encoder (the product's CPU path) and a classifier trained on its
vectors of the training texts that open a thread with an issue, labels from `fit_categories` (default configuration)
on those vectors. The cascade is the product's (`core.cascade.load_cascade`) fitted the product's way
(`cascade_texts_of`): the training and calibration texts are the corpus the model was trained on, a seeded draw of
its issue messages calibrates the threshold and the rest fit the student and its classifier (trained on its vectors
and the texts' n-grams with the reference classifier's labels); its first use (distil, fit, calibrate; teacher
vectors already cached, as the training days' are in the product) is timed. So is the first use of a second model
version: the same teacher, its texts another seeded draw of the corpus (a retrained version's fit texts differ),
once in the student folder the first version filled (the teacher's vocabulary pass is reused) and once in a fresh
one (the pass is made again, as it was for every version before it was shared); --first-use-only stops there. Beside
it the same recipe fitted on the training texts and calibrated on the separate calibration texts (the fitting before
models recorded their corpus), and that cascade with a student classifier of the student vector alone. Agreement is
the share of evaluation texts whose label (the classifier's top category, no confidence floor) equals the
all-transformer label. The cascade re-embeds escalated texts with the teacher without any cache, so its timing
includes them. Before the cascades are compared, the product's student's closeness to the teacher on both
evaluation sets is printed, after its ridge map alone and after its training (`static_backend` steps 3 and 4,
remade from its fit texts).

--escalation-scores compares, on the product's cascade, the scores that could decide what is escalated
(`benchmarks.escalation_scores`): each threshold chosen on the cascade's calibration texts, the share escalated and
the agreement on both evaluation sets; it stops there.

--shallow-students N,... puts the teacher's own first N transformer layers (ONNX int8, exported once) in the static
student's place in the same cascade recipe and prints each beside the static student
(`benchmarks.shallow_students`): cost against the teacher, closeness, agreement alone, and at the threshold chosen
on the cascade's calibration texts the share escalated, the agreement and the cascade's CPU per text relative to
all-transformer on both evaluation sets; it stops there. --trained-shallow N,... adds (after those) the teacher's
first N layers trained to reproduce the teacher's vectors of the cascade's fit texts (`benchmarks.trained_students`,
trained once per work dir), printing the training's time.
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from upath import UPath

from support_nlp.benchmarks.escalation_scores import (
    compare_escalation_scores,
    escalation_features,
    escalation_report,
    student_views,
)
from support_nlp.benchmarks.performance import Cost, machine_description, timed
from support_nlp.benchmarks.shallow_students import (
    CachedEncoder,
    measure_student,
    shallow_encoder,
    shallow_report,
)
from support_nlp.benchmarks.trained_students import DistillationSettings, trained_shallow_encoder
from support_nlp.core.cascade import (
    DEFAULT_SEED,
    Cascade,
    CascadeTexts,
    calibrate_cascade,
    cascade_texts_of,
    fit_cascade,
    fit_student_classifier,
    load_cascade,
)
from support_nlp.core.categories import fit_categories
from support_nlp.core.classifier import ClassifierModel, train_classifier
from support_nlp.core.conversation import ISSUE, message_kinds
from support_nlp.core.embedding import embed_texts
from support_nlp.core.embedding_cache import EmbeddingCache
from support_nlp.core.encoders import BUNDLED_MODEL_NAME, Encoder, load_encoder, static_backend
from support_nlp.core.encoders.onnx_runtime import OnnxEncoder
from support_nlp.core.text import clean_text
from support_nlp.core.twcs import BUNDLED_SAMPLE, CREATED_AT_FORMAT

SHARED_DATASETS = Path("/work/shared/datasets")
EXTERNAL_INBOUND = SHARED_DATASETS / "twcs_inbound_texts_6000" / "test_set.csv"
TWCS_REAL = SHARED_DATASETS / "twcs_real"
SEED = 0
REFERENCE_METHOD = "all-transformer (int8 ONNX)"


@dataclass(frozen=True)
class Settings:
    training_texts: int | None  # None: every text not calibrating or evaluating
    calibration_texts: int
    evaluation_texts: int  # per evaluation set
    target_agreement: float
    work_dir: Path
    first_use_only: bool
    escalation_scores: bool
    shallow_students: tuple[int, ...] = ()
    trained_shallow: tuple[int, ...] = ()
    trained_epochs: int = DistillationSettings.epochs


@dataclass(frozen=True)
class Split:
    texts: list[str]
    days: np.ndarray
    discovered: np.ndarray  # True where the text opens a thread with an issue: where the product finds categories


@dataclass(frozen=True)
class Measured:
    """One way of labelling one evaluation set."""

    evaluation_set: str
    method: str
    texts: int
    cost: Cost
    peak_rss_mib: float
    agreement: float
    escalated_share: float | None = None


def _distinct_cleaned(texts: pd.Series, days: pd.Series | None = None, opens: np.ndarray | None = None) -> pd.DataFrame:
    """Distinct non-empty clean texts with the day and the product's message kind of each one's first occurrence
    (`opens`: whether each tweet opens a thread; None: every one does)."""
    opens = np.ones(len(texts), dtype=bool) if opens is None else opens
    frame = pd.DataFrame(
        {
            "text": texts.map(clean_text).to_numpy(),
            "day": days.to_numpy() if days is not None else "",
            "kind": message_kinds(texts.tolist(), opens),
            "opens": opens,
        }
    )
    return frame[frame["text"] != ""].drop_duplicates("text").reset_index(drop=True)


def bundled_inbound() -> pd.DataFrame:
    sample = pd.read_csv(BUNDLED_SAMPLE, dtype=str, keep_default_na=False)
    inbound = sample[sample["inbound"] == "True"]
    days = pd.to_datetime(inbound["created_at"], format=CREATED_AT_FORMAT, utc=True).dt.strftime("%Y-%m-%d")
    return _distinct_cleaned(inbound["text"], days, (inbound["in_response_to_tweet_id"] == "").to_numpy())


def external_inbound() -> pd.DataFrame:
    return _distinct_cleaned(pd.read_csv(EXTERNAL_INBOUND, dtype=str, keep_default_na=False)["text"])


def twcs_real_inbound() -> list[str]:
    frames = [pd.read_csv(path, dtype=str, keep_default_na=False) for path in sorted(TWCS_REAL.glob("*.csv*"))]
    texts = pd.concat([frame.loc[frame["inbound"] == "True", "text"] for frame in frames], ignore_index=True)
    return _distinct_cleaned(texts)["text"].tolist()


def split_bundled(inbound: pd.DataFrame, settings: Settings) -> tuple[Split, Split, Split]:
    """Training texts (every kind), calibration and evaluation texts (issue messages)."""
    order = np.random.default_rng(SEED).permutation(len(inbound))
    issues = order[inbound["kind"].to_numpy()[order] == ISSUE]
    held_out = settings.calibration_texts + settings.evaluation_texts
    if held_out > len(issues):
        raise ValueError(f"the bundled sample has {len(issues)} distinct issue messages, too few for these splits")
    calibration, evaluation = np.split(issues[:held_out], [settings.calibration_texts])
    rest = order[~np.isin(order, issues[:held_out])]
    training = rest[: settings.training_texts or len(rest)]
    discovered = ((inbound["kind"] == ISSUE) & inbound["opens"]).to_numpy()
    return tuple(
        Split(inbound["text"].iloc[rows].tolist(), inbound["day"].to_numpy()[rows], discovered[rows])
        for rows in (training, calibration, evaluation)
    )


def agreement(predictions: pd.DataFrame, reference: pd.DataFrame) -> float:
    return float((predictions["category_id"].to_numpy() == reference["category_id"].to_numpy()).mean())


def train_reference(training: Split, teacher, teacher_cache: EmbeddingCache) -> ClassifierModel:
    texts = [text for text, discovered in zip(training.texts, training.discovered, strict=True) if discovered]
    vectors = embed_texts(texts, teacher, cache=teacher_cache)
    tweets = pd.DataFrame({"text": texts, "text_clean": texts, "language": "unknown", "brand": "unknown"})
    categories = fit_categories(vectors, np.arange(len(vectors)), tweets, embedding_model=teacher.identity)
    labelled = categories.tweet_ids  # positions: outliers ("other") have no category to learn
    days = training.days[training.discovered][labelled]
    return train_classifier(vectors[labelled], categories.labels, days, categories.names, teacher.identity)


def evaluate(
    name: str,
    texts: list[str],
    teacher,
    teacher_classifier: ClassifierModel,
    cascades: dict[str, Cascade],
) -> list[Measured]:
    def all_transformer() -> pd.DataFrame:
        return teacher_classifier.predict(embed_texts(texts, teacher), 0.0)

    reference, cost, peak = timed(all_transformer)
    results = [Measured(name, REFERENCE_METHOD, len(texts), cost, peak, 1.0)]
    for method, cascade in cascades.items():
        student_only = Cascade(cascade.student, teacher, cascade.student_classifier, teacher_classifier, 0.0)
        for label, runner in ((f"student alone, {method}", student_only), (f"cascade, {method}", cascade)):
            labels, cost, peak = timed(lambda runner=runner: runner.label(texts))
            results.append(
                Measured(
                    name,
                    label,
                    len(texts),
                    cost,
                    peak,
                    agreement(labels.predictions, reference),
                    labels.escalated_share if runner is cascade else None,
                )
            )
    return results


def throughput(encoder, texts: list[str]) -> tuple[float, Cost]:
    _, cost, _ = timed(lambda: encoder.encode(texts))
    return len(texts) / cost.wall_s, cost


def report(results: list[Measured]) -> str:
    lines = [
        "| evaluation set | method | texts | wall s | CPU s | texts/s | texts/CPU-s | peak RSS MiB | agreement "
        "| escalated |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        escalated = "-" if r.escalated_share is None else f"{r.escalated_share:.1%}"
        lines.append(
            f"| {r.evaluation_set} | {r.method} | {r.texts:,} | {r.cost.wall_s:.2f} | {r.cost.cpu_s:.2f} | "
            f"{r.texts / r.cost.wall_s:,.0f} | {r.texts / r.cost.cpu_s:,.0f} | {r.peak_rss_mib:,.0f} | "
            f"{r.agreement:.1%} | {escalated} |"
        )
    return "\n".join(lines)


def run(settings: Settings) -> None:
    print(machine_description())
    teacher = load_encoder(BUNDLED_MODEL_NAME, "onnx", "cpu")
    teacher_cache = EmbeddingCache(settings.work_dir / "embedding_cache")
    bundled = bundled_inbound()
    training, calibration, bundled_evaluation = split_bundled(bundled, settings)
    seen = set(training.texts) | set(calibration.texts)
    external_issues = external_inbound().loc[lambda frame: frame["kind"] == ISSUE, "text"]
    external = [text for text in external_issues if text not in seen][: settings.evaluation_texts]

    teacher_classifier = train_reference(training, teacher, teacher_cache)
    print(
        f"categories: {len(teacher_classifier.classes)} from the {training.discovered.sum():,} of "
        f"{len(training.texts):,} training texts that open a thread with an issue"
    )
    embed_texts(training.texts, teacher, cache=teacher_cache)
    embed_texts(calibration.texts, teacher, cache=teacher_cache)
    corpus = [*training.texts, *calibration.texts]
    corpus_issues = bundled.loc[bundled["kind"] == ISSUE, "text"]
    product_texts = cascade_texts_of(corpus, calibration_pool=corpus_issues)

    def cascade_of(texts: CascadeTexts, folder: str, students: str = "students") -> Cascade:
        return load_cascade(
            teacher,
            teacher_classifier,
            texts,
            settings.work_dir / students,
            UPath(settings.work_dir / folder),
            settings.target_agreement,
            teacher_cache,
        )

    cascade, cost, _ = timed(lambda: cascade_of(product_texts, "cascade"))
    print(f"product's student {cascade.student.identity}: {cascade.student.description}")
    print(
        f"product's cascade ready in {cost.wall_s:.1f} s wall, {cost.cpu_s:.1f} CPU-s (distil + fit + calibrate; "
        f"0 if cached): fitted on {len(product_texts.fit_texts):,} texts of the training corpus, escalate below "
        f"confidence {cascade.escalate_below:.3f} (target {settings.target_agreement:.0%} on "
        f"{len(product_texts.calibration_texts):,} others of it)"
    )
    evaluation_sets = {"bundled, held out": bundled_evaluation.texts, "external": external}
    print_student_closeness(teacher, product_texts.fit_texts, evaluation_sets, settings.work_dir, teacher_cache)
    if settings.escalation_scores:
        print_escalation_scores(cascade, product_texts, evaluation_sets, teacher_cache, settings.target_agreement)
        return
    if settings.shallow_students or settings.trained_shallow:
        print_shallow_students(cascade, product_texts, evaluation_sets, settings, teacher_cache)
        return
    retrained_texts = cascade_texts_of(corpus, seed=DEFAULT_SEED + 1, calibration_pool=corpus_issues)
    _, shared, _ = timed(lambda: cascade_of(retrained_texts, "cascade-retrained"))
    _, alone, _ = timed(lambda: cascade_of(retrained_texts, "cascade-retrained-alone", students="students-alone"))
    print(
        f"second model version (same teacher, other fit texts) ready in {shared.wall_s:.1f} s wall, "
        f"{shared.cpu_s:.1f} CPU-s reusing the teacher's vocabulary pass; {alone.wall_s:.1f} s wall, "
        f"{alone.cpu_s:.1f} CPU-s making it again (a fresh student folder, as before the pass was shared; 0 if cached)"
    )
    if settings.first_use_only:
        return
    split_fitted = cascade_of(CascadeTexts(training.texts, calibration.texts), "cascade-split")
    student = split_fitted.student
    print(f"training split's student {student.identity}: {student.description}")
    split_vectors = static_backend.cross_fitted_vectors(
        teacher, training.texts, settings.work_dir / "students", teacher_cache
    )
    vector_only = fit_student_classifier(
        student,
        teacher,
        teacher_classifier,
        training.texts,
        teacher_cache,
        lexical=False,
        fit_vectors=split_vectors,
    )
    cascades = {
        "vector + n-grams, fitted on the training corpus (product)": cascade,
        "vector + n-grams, fitted on the training split": split_fitted,
        "vector alone, fitted on the training split": calibrate_cascade(
            student,
            teacher,
            vector_only,
            teacher_classifier,
            calibration.texts,
            settings.target_agreement,
            teacher_cache,
        ),
    }
    for method, each in cascades.items():
        print(f"{method}: escalate below {each.escalate_below:.3f}")

    every_real_text = list(dict.fromkeys([*bundled["text"], *external_inbound()["text"], *twcs_real_inbound()]))
    student_rate, student_cost = throughput(student, every_real_text)
    print(
        f"student throughput: {len(every_real_text):,} distinct real texts in {student_cost.wall_s:.2f} s wall, "
        f"{student_cost.cpu_s:.2f} s CPU: {student_rate:,.0f} texts/s, "
        f"{len(every_real_text) / student_cost.cpu_s:,.0f} texts/CPU-s"
    )
    results = [
        *evaluate("bundled sample, held out", bundled_evaluation.texts, teacher, teacher_classifier, cascades),
        *evaluate("twcs_inbound_texts_6000", external, teacher, teacher_classifier, cascades),
    ]
    print(report(results))
    for evaluation_set in dict.fromkeys(r.evaluation_set for r in results):
        by_method = {r.method: r for r in results if r.evaluation_set == evaluation_set}
        reference = by_method[REFERENCE_METHOD]
        for method in list(cascades)[:2]:
            cascaded = by_method[f"cascade, {method}"]
            print(
                f"{evaluation_set}, {method}: cascade {cascaded.agreement:.1%} agreement, "
                f"{cascaded.escalated_share:.1%} escalated, {cascaded.texts / cascaded.cost.cpu_s:,.0f} texts/CPU-s "
                f"vs all-transformer {reference.texts / reference.cost.cpu_s:,.0f}: "
                f"{reference.cost.cpu_s / cascaded.cost.cpu_s:.2f}x"
            )


def print_student_closeness(
    teacher: OnnxEncoder,
    fit_texts: list[str],
    evaluation_sets: dict[str, list[str]],
    work_dir: Path,
    teacher_cache: EmbeddingCache,
) -> None:
    """Mean cosine to the teacher on the evaluation texts of the product's student after the ridge map alone
    (steps 1-3 of static_backend) and after training (step 4)."""
    fit_ids, fit_lengths = static_backend.token_ids_by_teacher(teacher, fit_texts)
    fit_targets = embed_texts(fit_texts, teacher, cache=teacher_cache)
    token_vectors = static_backend.teacher_token_vectors(teacher, work_dir / "students")
    mapped = static_backend.mapped_student(token_vectors, fit_ids, fit_lengths, fit_targets)
    trained = static_backend.trained_student(mapped, fit_ids, fit_lengths, fit_targets)
    for name, texts in evaluation_sets.items():
        ids = static_backend.token_ids_by_teacher(teacher, texts)
        targets = embed_texts(texts, teacher, cache=teacher_cache)
        cosines = {
            label: float((student.encode_ids(*ids) * targets).sum(axis=1).mean())
            for label, student in (("ridge map alone", mapped), ("trained", trained))
        }
        print(
            f"student's mean cosine to the teacher, {name} ({len(texts):,} texts): "
            + ", ".join(f"{label} {cosine:.3f}" for label, cosine in cosines.items())
        )


def print_escalation_scores(
    cascade: Cascade,
    texts: CascadeTexts,
    evaluation_sets: dict[str, list[str]],
    teacher_cache: EmbeddingCache,
    target_agreement: float,
) -> None:
    vector_alone = fit_student_classifier(
        cascade.student, cascade.teacher, cascade.teacher_classifier, texts.fit_texts, teacher_cache, lexical=False
    )
    views = student_views(cascade, vector_alone, texts.fit_texts, teacher_cache)
    calibration = escalation_features(texts.calibration_texts, cascade, views, teacher_cache)
    evaluations = [escalation_features(each, cascade, views, teacher_cache) for each in evaluation_sets.values()]
    for name, evaluation in zip(["calibration", *evaluation_sets], [calibration, *evaluations], strict=True):
        alone = evaluation.student_agrees.mean()
        print(
            f"{name}: {len(evaluation.student_agrees):,} texts, student alone agrees on {alone:.1%}; a perfect score "
            f"would escalate {max(0.0, 1 - alone - (1 - target_agreement)):.1%} for "
            f"{target_agreement:.0%}"
        )
    results = compare_escalation_scores(calibration, evaluations, target_agreement)
    print(escalation_report(results, list(evaluation_sets)))


def print_shallow_students(
    cascade: Cascade,
    texts: CascadeTexts,
    evaluation_sets: dict[str, list[str]],
    settings: Settings,
    teacher_cache: EmbeddingCache,
) -> None:
    results = [measure_student("static (product)", cascade, texts, evaluation_sets, teacher_cache)]
    print(machine_description())

    def add(name: str, encoder: Encoder) -> None:
        student = CachedEncoder(encoder, EmbeddingCache(settings.work_dir / "shallow"))
        shallow, cost, _ = timed(
            lambda: fit_cascade(
                student, cascade.teacher, cascade.teacher_classifier, texts, settings.target_agreement, teacher_cache
            )
        )
        print(
            f"{student.identity}: cascade fitted in {cost.wall_s:.1f} s wall, {cost.cpu_s:.1f} CPU-s (0 for vectors "
            f"cached), escalate below {shallow.escalate_below:.3f}"
        )
        results.append(measure_student(name, shallow, texts, evaluation_sets, teacher_cache))
        print(machine_description())

    for layers in settings.shallow_students:
        add(f"first {layers} of the teacher's layers", shallow_encoder(cascade.teacher, layers))
    fit_targets = embed_texts(texts.fit_texts, cascade.teacher, cache=teacher_cache)
    for layers in settings.trained_shallow:
        encoder, training = trained_shallow_encoder(
            cascade.teacher.model,
            layers,
            texts.fit_texts,
            fit_targets,
            settings.work_dir,
            DistillationSettings(epochs=settings.trained_epochs),
        )
        print(
            f"trained {layers} layer(s) on {training.texts:,} fit texts: {training.epochs:.2f} epochs in "
            f"{training.wall_s:.0f} s wall, {training.cpu_s:.0f} CPU-s, final loss (1 - cosine) "
            f"{training.final_loss:.3f} (timed when trained; cached after)"
        )
        add(f"first {layers} of the teacher's layers, trained", encoder)
    print(shallow_report(results))


def parse_args(argv: list[str] | None) -> Settings:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller splits (minutes less of teacher time)")
    parser.add_argument("--first-use-only", action="store_true", help="stop after the first-use timings")
    parser.add_argument(
        "--escalation-scores", action="store_true", help="compare escalation scores on the product's cascade, then stop"
    )
    parser.add_argument(
        "--shallow-students",
        type=lambda value: tuple(int(layers) for layers in value.split(",")),
        default=(),
        help="compare students made of the teacher's first N layers (comma-separated N), then stop",
    )
    parser.add_argument(
        "--trained-shallow",
        type=lambda value: tuple(int(layers) for layers in value.split(",")),
        default=(),
        help="add students of the teacher's first N layers trained on the fit texts' teacher vectors "
        "(comma-separated N)",
    )
    parser.add_argument("--trained-epochs", type=int, default=DistillationSettings.epochs, help="of --trained-shallow")
    parser.add_argument("--target-agreement", type=float, default=0.97)
    parser.add_argument("--work-dir", type=Path, help="student and teacher-vector cache (default: a temp folder)")
    args = parser.parse_args(argv)
    sizes = (3000, 1000, 1000) if args.quick else (None, 2000, 3000)
    work_dir = args.work_dir or Path(tempfile.mkdtemp(prefix="cascade-benchmark-"))
    return Settings(
        *sizes,
        args.target_agreement,
        work_dir,
        args.first_use_only,
        args.escalation_scores,
        args.shallow_students,
        args.trained_shallow,
        args.trained_epochs,
    )


def main(argv: list[str] | None = None) -> None:
    run(parse_args(argv))


if __name__ == "__main__":
    main()
