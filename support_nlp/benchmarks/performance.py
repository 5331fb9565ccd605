"""Throughput of every pipeline stage, run with the product's own code, next to a plain baseline.

    python -m support_nlp.benchmarks.performance [--quick] [--sizes 20000,200000,1600000] [--variants ...]
    python -m support_nlp.benchmarks.performance --end-to-end [twcs.csv(.gz)] [--work-dir DIR]

Corpora are built from the real inbound tweets of the bundled sample, written as a twcs.csv beside the sample's
brand replies, so the parse stage reads a file like the real one:
- "repeated": the real tweets over and over (new tweet ids, same texts): what dedupe and the cache profit from;
- "distinct": every text made unique by appending " #r<row number in letters>" (about 3 more tokens to a ~26-token
  tweet), so neither dedupe nor the cache can flatter the numbers; the extra tokens make it slightly pessimistic.
  Letters, not digits: a run of digits is what the personal-data masking looks for, and would send every synthetic
  text through its slow path, which ~4 % of real tweets take.

Stages and what they run: parse (`read_twcs`), clean (`clean_frame`), language (`detect_languages`, default detector),
embed (`embed_texts`, backend auto), embed-warm (the same texts again through a filled `EmbeddingCache`),
cluster (`fit_categories`, default config), train (`train_classifier`), predict (`ClassifierModel.predict`).
Baselines, run in the same process on the same texts: `SentenceTransformer(model).encode(texts, batch_size=32)`
in float32 for embed, langdetect one text at a time for language.

Embedding at large N would take hours on a small CPU, so the embed stages (product and baseline) and the
langdetect baseline are timed on the first texts of the corpus and extrapolated to N: the `how` column says
`measured` or `extrapolated from <count>`. For the product, extrapolation counts what it really does: dedupe
of all N texts (timed in full) plus encoding each distinct text once. Cluster, train and predict use those
sample vectors tiled to N rows.

`--end-to-end` instead runs one corpus (default: the bundled sample, the largest real one in these sessions;
give the full twcs.csv for the 1.6M run) through parse -> clean -> language -> message kinds -> embed -> predict
with a model trained on it, on the all-transformer path (every tweet embedded, as the `embeddings` asset does)
and through the cascade (issue messages only, as the cascade's `predictions` does; `--paths` runs one of them),
every text embedded cold (no vector cache), nothing sampled or extrapolated. Training is done first and not
timed: categories and classifier from the transformer's vectors of a seeded draw of the corpus's distinct texts,
the cascade fitted on those texts and calibrated on another draw (`core.cascade.load_cascade`). Label agreement
of the two paths is measured on the corpus's issue messages outside both draws: held-out real tweets (a
conversational message has no category on either path). Without the all-transformer run, its
labels are computed (untimed) for a seeded sample of AGREEMENT_SAMPLE of those tweets. `--distinct-corpus N` runs
the "distinct" corpus of N tweets instead, with the model trained on the bundled sample it is made of.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import re
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from upath import UPath

from support_nlp.core.cascade import DEFAULT_CALIBRATION_ROWS, CascadeTexts, label_in_chunks, load_cascade
from support_nlp.core.categories import fit_categories, unit_rows
from support_nlp.core.classifier import CONVERSATIONAL_ID, train_classifier
from support_nlp.core.conversation import ISSUE, message_kinds, opens_thread
from support_nlp.core.embedding import distinct_texts, embed_texts
from support_nlp.core.embedding_cache import EmbeddingCache
from support_nlp.core.encoders import BUNDLED_MODEL_NAME, load_encoder
from support_nlp.core.encoders.torch_backend import load_sentence_transformer
from support_nlp.core.language import detect_languages
from support_nlp.core.parallel import available_cores
from support_nlp.core.text import clean_frame
from support_nlp.core.twcs import BUNDLED_SAMPLE, read_twcs

VARIANTS = ("repeated", "distinct")
BASELINE_BATCH_SIZE = 32
MIN_CONFIDENCE = 0.5
PARSE_HOW = "measured, N = all CSV rows"


@dataclass(frozen=True)
class Settings:
    sizes: tuple[int, ...]
    variants: tuple[str, ...]
    embed_sample: int
    baseline_embed_sample: int
    langdetect_sample: int
    end_to_end: Path | None = None  # a twcs.csv run end to end on the inference paths instead of the sizes
    work_dir: Path | None = None
    distinct_corpus: int | None = None  # --end-to-end on the "distinct" corpus of this many tweets
    paths: tuple[str, ...] = ()


QUICK = Settings((20_000,), VARIANTS, embed_sample=400, baseline_embed_sample=200, langdetect_sample=300)
FULL = Settings(
    (20_000, 200_000, 1_600_000), VARIANTS, embed_sample=3000, baseline_embed_sample=1000, langdetect_sample=2000
)


@dataclass(frozen=True)
class Cost:
    """Wall seconds, and CPU seconds of the whole process (all threads) and of the worker processes it started and
    joined (`core.parallel`): the latter is what a shared, busy machine distorts least, since time spent waiting
    for a core is not counted."""

    wall_s: float
    cpu_s: float

    def scaled(self, factor: float) -> Cost:
        return Cost(self.wall_s * factor, self.cpu_s * factor)

    def __add__(self, other: Cost) -> Cost:
        return Cost(self.wall_s + other.wall_s, self.cpu_s + other.cpu_s)


@dataclass
class StageResult:
    variant: str
    rows: int
    stage: str
    cost: Cost
    peak_rss_mib: float
    how: str = "measured"
    baseline: Cost | None = None
    baseline_how: str = ""
    mean_cosine_to_baseline: float | None = None

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.cost.wall_s

    def speedup(self, field: str) -> str:
        if self.baseline is None:
            return "-"
        return f"{getattr(self.baseline, field) / getattr(self.cost, field):.1f}x"


# ------------------------------------------------------------------------------------------ memory


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (Linux >= 4.0), so each stage reports its own peak."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


PEAK_RSS_PER_STAGE = _reset_peak_rss()
PEAK_RSS_METHOD = (
    "VmHWM from /proc/self/status, reset before each stage through /proc/self/clear_refs (whole process, "
    "native allocations included)"
    if PEAK_RSS_PER_STAGE
    else "resource.getrusage(RUSAGE_SELF).ru_maxrss: the process peak so far, not per stage"
)


def _peak_rss_mib() -> float:
    if PEAK_RSS_PER_STAGE:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_seconds() -> float:
    """CPU time of this process and of the child processes it has waited for."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def costed(action: Callable[[], object]) -> tuple[object, Cost]:
    started_wall, started_cpu = time.perf_counter(), cpu_seconds()
    result = action()
    return result, Cost(time.perf_counter() - started_wall, cpu_seconds() - started_cpu)


def timed(action: Callable[[], object]) -> tuple[object, Cost, float]:
    """(result, its cost, peak RSS in MiB of this process during the call)."""
    _reset_peak_rss()
    result, cost = costed(action)
    return result, cost, _peak_rss_mib()


# ------------------------------------------------------------------------------------------ corpora


def real_sample() -> tuple[pd.DataFrame, pd.DataFrame]:
    """(inbound, outbound) rows of the bundled real sample, as strings."""
    sample = pd.read_csv(BUNDLED_SAMPLE, dtype=str, keep_default_na=False)
    return sample[sample["inbound"] == "True"], sample[sample["inbound"] == "False"]


def in_letters(number: int) -> str:
    """`number` in base 26 with the digits a..z."""
    letters = ""
    while True:
        number, digit = divmod(number, 26)
        letters = chr(ord("a") + digit) + letters
        if not number:
            return letters


DISTINCT_TAG = re.compile(r" #r[a-z]+$")


def untagged(text: str) -> str:
    """A "distinct" corpus text without the suffix that made it unique."""
    return DISTINCT_TAG.sub("", text)


def write_corpus(variant: str, rows: int, inbound: pd.DataFrame, outbound: pd.DataFrame, folder: Path) -> Path:
    """A twcs.csv with `rows` inbound tweets drawn in order, cyclically, from the real ones, plus the brand replies."""
    corpus = inbound.iloc[np.arange(rows) % len(inbound)].copy()
    first_id = pd.to_numeric(pd.concat([inbound, outbound])["tweet_id"]).max() + 1
    corpus["tweet_id"] = (first_id + np.arange(rows)).astype(str)
    # Thread links would point at the original ids: drop them, the brand then comes from the mentions.
    corpus["response_tweet_id"] = ""
    corpus["in_response_to_tweet_id"] = ""
    if variant == "distinct":
        corpus["text"] = [f"{text} #r{in_letters(row)}" for row, text in enumerate(corpus["text"])]
    path = folder / f"twcs_{variant}_{rows}.csv"
    pd.concat([corpus, outbound]).to_csv(path, index=False, quoting=csv.QUOTE_ALL)
    return path


# ------------------------------------------------------------------------------------------ stages


def sampled_how(sample: list, population: list) -> str:
    return "measured" if len(sample) == len(population) else f"extrapolated from {len(sample):,}"


def mean_cosine(left: np.ndarray, right: np.ndarray) -> float:
    return float((unit_rows(left) * unit_rows(right)).sum(axis=1).mean())


def baseline_encode(texts: list[str]) -> np.ndarray:
    return load_sentence_transformer(BUNDLED_MODEL_NAME, "cpu").encode(texts, batch_size=BASELINE_BATCH_SIZE)


def embed_stages(
    variant: str, texts: list[str], settings: Settings, folder: Path
) -> tuple[list[StageResult], np.ndarray]:
    """Product (cold, then warm cache) and baseline embedding; returns the results and the vectors of `texts`."""
    rows = len(texts)
    distinct_count = len(set(texts))
    sample = texts[: settings.embed_sample]
    if distinct_count <= settings.embed_sample:
        vectors, cost, peak = timed(lambda: embed_texts(texts, load_encoder()))
        how = "measured"
    else:
        sample_vectors, sample_cost, peak = timed(lambda: embed_texts(sample, load_encoder()))
        _, dedupe_cost, _ = timed(lambda: distinct_texts(texts))
        cost = dedupe_cost + sample_cost.scaled(distinct_count / len(set(sample)))
        vectors = sample_vectors[np.arange(rows) % len(sample)]
        how = f"extrapolated from {len(sample):,} ({distinct_count:,} distinct in N)"
    baseline_sample = texts[: settings.baseline_embed_sample]
    baseline_vectors, baseline_cost, _ = timed(lambda: baseline_encode(baseline_sample))
    baseline = baseline_cost.scaled(rows / len(baseline_sample))
    baseline_how = sampled_how(baseline_sample, texts)
    cold = StageResult(variant, rows, "embed", cost, peak, how, baseline, baseline_how)
    cold.mean_cosine_to_baseline = mean_cosine(vectors[: len(baseline_sample)], baseline_vectors)

    cache = EmbeddingCache(folder / f"embedding_cache_{variant}_{rows}")
    embed_texts(sample, load_encoder(), cache=cache)
    _, warm_cost, warm_peak = timed(lambda: embed_texts(sample, load_encoder(), cache=EmbeddingCache(cache.root)))
    warm_cost = warm_cost.scaled(rows / len(sample))
    warm = StageResult(
        variant, rows, "embed-warm", warm_cost, warm_peak, sampled_how(sample, texts), baseline, baseline_how
    )
    return [cold, warm], vectors


def announce(result: StageResult) -> None:
    # Progress on stderr while a size runs (the 1.6M one takes long); the table is printed at the end.
    print(
        f"    {result.stage}: {result.cost.wall_s:,.1f} s wall, {result.cost.cpu_s:,.1f} s CPU, "
        f"peak RSS {result.peak_rss_mib:,.0f} MiB ({result.how})",
        file=sys.stderr,
        flush=True,
    )


def run_size(variant: str, rows: int, settings: Settings, real: tuple, folder: Path) -> list[StageResult]:
    results: list[StageResult] = []

    def stage(name: str, count: int, action: Callable[[], object], how: str = "measured"):
        value, cost, peak = timed(action)
        results.append(StageResult(variant, count, name, cost, peak, how))
        announce(results[-1])
        return value

    source = write_corpus(variant, rows, *real, folder)
    inbound, _, summary = stage("parse", csv_rows(source), lambda: read_twcs(str(source)), PARSE_HOW)
    cleaned = stage("clean", len(inbound), lambda: clean_frame(inbound, summary.brands))
    texts = cleaned["text_clean"].tolist()
    languages = stage("language", len(texts), lambda: detect_languages(texts))
    langdetect_sample = texts[: settings.langdetect_sample]
    _, langdetect_cost, _ = timed(lambda: detect_languages(langdetect_sample, "langdetect"))
    results[-1].baseline = langdetect_cost.scaled(len(texts) / len(langdetect_sample))
    results[-1].baseline_how = sampled_how(langdetect_sample, texts)
    cleaned["language"] = languages
    tweets = cleaned[~cleaned["is_empty"]].reset_index(drop=True)

    embed_results, vectors = embed_stages(variant, tweets["text_clean"].tolist(), settings, folder)
    results.extend(embed_results)
    for result in embed_results:
        announce(result)
    vectors_how = "measured" if embed_results[0].how == "measured" else "measured, embed sample's vectors tiled"
    categories = stage(
        "cluster", len(tweets), lambda: fit_categories(vectors, np.arange(len(tweets)), tweets), vectors_how
    )
    # Outliers ("other") have no category to learn: the classifier trains on the labelled rows, as in the product.
    labelled = categories.tweet_ids
    days = tweets["day"].to_numpy()[labelled]
    classifier = stage(
        "train",
        len(labelled),
        lambda: train_classifier(vectors[labelled], categories.labels, days, categories.names, BUNDLED_MODEL_NAME),
        vectors_how,
    )
    stage("predict", len(tweets), lambda: classifier.predict(vectors, MIN_CONFIDENCE), vectors_how)
    return results


def csv_rows(source: Path) -> int:
    with open(source, "rb") as handle:
        return sum(1 for _ in handle) - 1


# ------------------------------------------------------------------------------------------ report


def machine_description() -> str:
    cpu_model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor() or "unknown CPU",
    )
    cores = available_cores()
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    return f"{cores} cores, {cpu_model}, Python {platform.python_version()}; load average {load}"


def report_table(results: list[StageResult]) -> str:
    header = (
        "| variant | N | stage | rows/s | wall s | CPU s | peak RSS MiB | how | baseline rows/s "
        "| vs baseline (wall) | vs baseline (CPU) | baseline how | mean cos to baseline |\n"
        "|---|---:|---|---:|---:|---:|---:|---|---:|---:|---:|---|---:|"
    )
    lines = [header]
    for r in results:
        baseline_rate = f"{r.rows / r.baseline.wall_s:,.0f}" if r.baseline else "-"
        cosine = f"{r.mean_cosine_to_baseline:.4f}" if r.mean_cosine_to_baseline is not None else "-"
        lines.append(
            f"| {r.variant} | {r.rows:,} | {r.stage} | {r.rows_per_s:,.0f} | {r.cost.wall_s:,.1f} "
            f"| {r.cost.cpu_s:,.1f} | {r.peak_rss_mib:,.0f} | {r.how} | {baseline_rate} "
            f"| {r.speedup('wall_s')} | {r.speedup('cpu_s')} | {r.baseline_how or '-'} | {cosine} |"
        )
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------ end to end


# Distinct texts the classifier and the cascade are trained on: fewer than the bundled sample holds, so that
# the end-to-end run has held-out tweets to score the cascade's agreement on.
TRAINING_ROWS = 12_000


def train_on_corpus(source: Path, work_dir: Path, report=print):
    """(classifier, cascade, texts of the fit and calibration draws) for the real corpus at `source`."""
    inbound, _, summary = read_twcs(str(source))
    tweets = clean_frame(inbound, summary.brands)
    tweets = tweets[~tweets["is_empty"]].drop_duplicates("text_clean").reset_index(drop=True)
    issue = np.asarray(message_kinds(tweets["text"].tolist(), opens_thread(tweets["in_response_to_tweet_id"]))) == ISSUE
    order = np.random.default_rng(0).permutation(len(tweets))
    fit = tweets.iloc[np.sort(order[:TRAINING_ROWS])].reset_index(drop=True)
    # Calibrated on issue messages, as the product's cascade (`cascade_texts_of`): the only tweets it labels.
    others = order[TRAINING_ROWS:]
    calibration = tweets["text_clean"].iloc[others[issue[others]][:DEFAULT_CALIBRATION_ROWS]]
    teacher, cache = load_encoder(BUNDLED_MODEL_NAME, "onnx", "cpu"), EmbeddingCache(work_dir / "embedding_cache")
    fit["language"] = detect_languages(fit["text_clean"].tolist())
    vectors = embed_texts(fit["text_clean"].tolist(), teacher, cache=cache)
    categories = fit_categories(vectors, np.arange(len(fit)), fit, embedding_model=teacher.identity)
    labelled = categories.tweet_ids
    classifier = train_classifier(
        vectors[labelled], categories.labels, fit["day"].to_numpy()[labelled], categories.names, teacher.identity
    )
    texts = CascadeTexts(fit["text_clean"].tolist(), calibration.tolist())
    cascade = load_cascade(
        teacher, classifier, texts, work_dir / "students", UPath(work_dir / "end-to-end-cascade"), teacher_cache=cache
    )
    report(
        f"trained on {len(fit):,} distinct texts: {len(classifier.classes)} categories; cascade calibrated on "
        f"{len(calibration):,} others, escalating below {cascade.escalate_below:.3f}"
    )
    return classifier, cascade, {*fit["text_clean"], *calibration}


def raw_to_predictions(
    source: Path, label: Callable[[list[str]], pd.DataFrame], issues_only: bool
) -> tuple[pd.DataFrame, dict, int]:
    """Predictions of every non-empty inbound tweet of `source`, each stage's cost, and the CSV rows read. Every
    tweet gets its message kind; a conversational message keeps no category (as in the product's `predictions`).
    `issues_only`: only issue messages are labelled (the product's cascade); else every tweet is (the product's
    all-transformer path embeds every tweet in `embeddings`)."""
    costs = {}

    def stage(name: str, action: Callable[[], object]):
        # Not `timed`: resetting the peak-RSS mark here would hide the earlier stages' peak from the caller.
        value, costs[name] = costed(action)
        return value

    inbound, _, summary = stage("parse", lambda: read_twcs(str(source)))
    cleaned = stage("clean", lambda: clean_frame(inbound, summary.brands))
    cleaned["language"] = stage("language", lambda: detect_languages(cleaned["text_clean"].tolist()))
    tweets = cleaned[~cleaned["is_empty"]].reset_index(drop=True)
    opens = opens_thread(tweets["in_response_to_tweet_id"])
    tweets["message_kind"] = stage("kinds", lambda: message_kinds(tweets["text"].tolist(), opens))
    issue = (tweets["message_kind"] == ISSUE).to_numpy()
    labelled = issue if issues_only else np.ones(len(tweets), dtype=bool)
    predicted = stage("embed + predict", lambda: label(tweets.loc[labelled, "text_clean"].tolist()))
    predicted.index = np.flatnonzero(labelled)
    predicted = predicted.reindex(range(len(tweets)))
    predicted.loc[~issue, "category_id"] = CONVERSATIONAL_ID
    if "escalated" in predicted:
        predicted["escalated"] = predicted["escalated"].fillna(False).astype(bool)
    columns = ["tweet_id", "text_clean", "message_kind"]
    return pd.concat([tweets[columns], predicted], axis=1), costs, summary.rows_in


INFERENCE_PATHS = ("all-transformer", "cascade")
AGREEMENT_SAMPLE = 3_000


def end_to_end(
    source: Path, work_dir: Path, paths: tuple[str, ...] = INFERENCE_PATHS, distinct_of_training: bool = False
) -> None:
    """`distinct_of_training`: `source` is the "distinct" corpus of the bundled sample, and the model is trained on
    that real sample (a synthetic corpus's suffixes would shape the categories), so a tweet counts as held out when
    its text without the suffix is outside the training draws."""
    classifier, cascade, training_texts = train_on_corpus(BUNDLED_SAMPLE if distinct_of_training else source, work_dir)

    def all_transformer(texts: list[str]) -> pd.DataFrame:
        # Chunked as the cascade labels, so both paths hold the same bounded working set whatever the corpus size.
        return label_in_chunks(
            texts, lambda chunk: classifier.predict(embed_texts(chunk, cascade.teacher), MIN_CONFIDENCE)
        )

    def through_cascade(texts: list[str]) -> pd.DataFrame:
        return cascade.label(texts, MIN_CONFIDENCE).predictions

    labellers = {"all-transformer": all_transformer, "cascade": through_cascade}
    runs = {}
    for name in paths:
        print(f"... {name}", file=sys.stderr, flush=True)
        runs[name] = timed(lambda name=name: raw_to_predictions(source, labellers[name], name == "cascade"))
    (predicted, _, rows_in), _, _ = next(iter(runs.values()))
    print(f"corpus: {source} ({rows_in:,} CSV rows, {len(predicted):,} non-empty inbound tweets)")
    base_text = untagged if distinct_of_training else None
    agreement = cascade_agreement(runs, training_texts, all_transformer, base_text) if "cascade" in runs else "-"
    print(
        "| path | tweets | wall s | CPU s | tweets/s | tweets/CPU-s | peak RSS MiB | parse / clean / language / "
        "kinds / embed + predict, wall s (CPU s) | issue messages | escalated | agreement, held out issue messages |\n"
        "|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|"
    )
    for name, ((predicted, stages, _), cost, peak) in runs.items():
        escalated = f"{predicted['escalated'].mean():.1%}" if "escalated" in predicted else "-"
        per_stage = " / ".join(f"{stage.wall_s:,.1f} ({stage.cpu_s:,.1f})" for stage in stages.values())
        tweets = len(predicted)
        issues = f"{(predicted['message_kind'] == ISSUE).mean():.1%}"
        print(
            f"| {name} | {tweets:,} | {cost.wall_s:,.1f} | {cost.cpu_s:,.1f} | {tweets / cost.wall_s:,.0f} "
            f"| {tweets / cost.cpu_s:,.0f} | {peak:,.0f} | {per_stage} | {issues} | {escalated} "
            f"| {agreement if name == 'cascade' else '(reference)'} |"
        )


def cascade_agreement(
    runs: dict, training_texts: set[str], all_transformer: Callable, base_text: Callable[[str], str] | None = None
) -> str:
    """The cascade's agreement with the all-transformer labels on the tweets whose (base) text is outside the
    training draws: all of them when the all-transformer path ran, else a seeded sample labelled now."""
    (cascaded, _, _), _, _ = runs["cascade"]
    texts = cascaded["text_clean"].map(base_text) if base_text else cascaded["text_clean"]
    held_out = cascaded[~texts.isin(training_texts) & (cascaded["message_kind"] == ISSUE)]
    if "all-transformer" in runs:
        (reference, _, _), _, _ = runs["all-transformer"]
        reference_ids = reference.loc[held_out.index, "category_id"]
    else:
        held_out = held_out.sample(min(AGREEMENT_SAMPLE, len(held_out)), random_state=0)
        reference_ids = all_transformer(held_out["text_clean"].tolist())["category_id"]
    agrees = held_out["category_id"].to_numpy() == reference_ids.to_numpy()
    return f"{agrees.mean():.1%} of {len(held_out):,}"


def parse_args(argv: list[str] | None) -> Settings:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one size, small embedding samples: a few minutes")
    parser.add_argument("--sizes", help="comma-separated corpus sizes (inbound tweets), e.g. 20000,200000")
    parser.add_argument("--variants", help=f"comma-separated, from {','.join(VARIANTS)}")
    parser.add_argument(
        "--embed-sample",
        type=int,
        help="texts the product's embedding is timed on, then extrapolated (default 3,000; 400 with --quick); "
        "at least N times every text, e.g. on a GPU, where a small sample would mostly time start-up",
    )
    parser.add_argument(
        "--end-to-end",
        type=Path,
        nargs="?",
        const=BUNDLED_SAMPLE,
        help="run this real twcs.csv(.gz) (default: the bundled sample) raw -> predictions on the all-transformer "
        "path and through the cascade",
    )
    parser.add_argument("--work-dir", type=Path, help="--end-to-end: training's vector cache and the cascade")
    parser.add_argument(
        "--distinct-corpus",
        type=int,
        metavar="N",
        help='--end-to-end on the "distinct" corpus of N tweets built from the bundled sample (module doc)',
    )
    parser.add_argument(
        "--paths",
        default=",".join(INFERENCE_PATHS),
        help=f"--end-to-end: comma-separated inference paths to time, from {','.join(INFERENCE_PATHS)}",
    )
    args = parser.parse_args(argv)
    paths = tuple(args.paths.split(","))
    if unknown_paths := set(paths) - set(INFERENCE_PATHS):
        parser.error(f"unknown paths {sorted(unknown_paths)}; choose from {INFERENCE_PATHS}")
    settings = QUICK if args.quick else FULL
    sizes = tuple(int(size) for size in args.sizes.split(",")) if args.sizes else settings.sizes
    variants = tuple(args.variants.split(",")) if args.variants else settings.variants
    if unknown := set(variants) - set(VARIANTS):
        parser.error(f"unknown variants {sorted(unknown)}; choose from {VARIANTS}")
    embed_sample = args.embed_sample or settings.embed_sample
    return Settings(
        sizes,
        variants,
        embed_sample,
        settings.baseline_embed_sample,
        settings.langdetect_sample,
        args.end_to_end or (BUNDLED_SAMPLE if args.distinct_corpus else None),
        args.work_dir,
        args.distinct_corpus,
        paths,
    )


def main(argv: list[str] | None = None) -> None:
    settings = parse_args(argv)
    if settings.end_to_end:
        print(f"# support_nlp end to end, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; machine: {machine_description()}")
        print(f"peak RSS: {PEAK_RSS_METHOD}", flush=True)
        work_dir = settings.work_dir or Path(tempfile.mkdtemp(prefix="support_nlp_e2e_"))
        source = settings.end_to_end
        if settings.distinct_corpus:
            work_dir.mkdir(parents=True, exist_ok=True)
            source = write_corpus("distinct", settings.distinct_corpus, *real_sample(), work_dir)
        end_to_end(source, work_dir, settings.paths, distinct_of_training=bool(settings.distinct_corpus))
        print(f"load average at the end: {', '.join(f'{value:.1f}' for value in os.getloadavg())}")
        return
    # Models are loaded (and exported) before any stage is timed: a one-off cost per process, not per row.
    encoder = load_encoder()
    load_sentence_transformer(BUNDLED_MODEL_NAME, "cpu")
    for detector in ("fasttext", "langdetect"):
        detect_languages(["warming up the language models"], detector)
    print(f"# support_nlp performance, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC", flush=True)
    print(f"machine: {machine_description()}")
    print(f"command: python -m support_nlp.benchmarks.performance {' '.join(sys.argv[1:])}".rstrip())
    print(f"embedding: product encoder {encoder.identity!r}; baseline sentence-transformers fp32, batch 32")
    print(f"peak RSS: {PEAK_RSS_METHOD}", flush=True)
    real = real_sample()
    results: list[StageResult] = []
    with tempfile.TemporaryDirectory(prefix="support_nlp_bench_") as scratch:
        for rows in settings.sizes:
            for variant in settings.variants:
                print(f"... {variant}, N={rows:,}", file=sys.stderr, flush=True)
                results.extend(run_size(variant, rows, settings, real, Path(scratch)))
    print()
    print(report_table(results))
    print(f"\nload average at the end: {', '.join(f'{value:.1f}' for value in os.getloadavg())}")


if __name__ == "__main__":
    main()
