"""Language identification accuracy on real short texts, and its throughput, with the product's own code.

    python -m support_nlp.benchmarks.language               # every detector, throughput on 20,000 rows (~2 min)
    python -m support_nlp.benchmarks.language --rows 2000   # a quicker throughput run

The labelled set is support_nlp/benchmarks/data/language/short_texts.csv.gz (see the PROVENANCE.md next to it):
3,198 real short texts whose language is known from where they come from, never from a detector:
English 1,598 (1,000 BANKING77 queries and the 598 non-empty English twcs tweets of twcs_topic_labeled_ericsson)
and Spanish 1,600 (Facebook multilingual task-oriented dialog utterances). No other language could be sourced.

Every text goes through the product's `clean_text` first, as the pipeline does, and then `detect_languages`.
A text the product marks "und" (too few letters) counts as wrong: a caller gets no language for it.

Throughput is measured on a larger set made by repeating the cleaned texts up to `--rows` rows, because 3,198 texts
take too little time to measure reliably; the accuracy figures are computed on the first pass of that same run (the
detectors are deterministic, so repeats give the same answers). Cleaning is not timed, and each detector is called
once before timing so that loading its models is reported separately. The machine may be shared, so wall-clock,
CPU-seconds and the load average before and after each timed run are printed side by side.
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from support_nlp.core.language import DETECTORS, UNDETERMINED, detect_languages
from support_nlp.core.text import clean_text

DATA = Path(__file__).parent / "data" / "language" / "short_texts.csv.gz"
DEFAULT_ROWS = 20_000
DETECTOR_TITLES = {
    "fasttext": "fasttext (default: fastText, lingua where fastText is unsure)",
    "lingua": "lingua (option)",
    "langdetect": "langdetect (option)",
}


@dataclass(frozen=True)
class Run:
    detector: str
    predictions: list[str]  # one per labelled text
    load_seconds: float  # the first call, which loads the detector's models
    rows: int
    wall_seconds: float
    cpu_seconds: float
    load_average_before: float
    load_average_after: float

    @property
    def texts_per_second(self) -> float:
        return self.rows / self.wall_seconds


def load_set(path: Path = DATA) -> pd.DataFrame:
    """The labelled set with a `text_clean` column: what the pipeline would hand to the detector."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame["text_clean"] = [clean_text(text) for text in frame["text"]]
    return frame


def repeated(texts: list[str], rows: int) -> list[str]:
    return [texts[i % len(texts)] for i in range(rows)]


def run_detector(detector: str, texts: list[str], rows: int = DEFAULT_ROWS) -> Run:
    start = time.perf_counter()
    detect_languages(["This warms the detector up."], detector)
    load_seconds = time.perf_counter() - start

    workload = repeated(texts, max(rows, len(texts)))
    load_before = os.getloadavg()[0]
    wall_start, cpu_start = time.perf_counter(), time.process_time()
    codes = detect_languages(workload, detector)
    wall, cpu = time.perf_counter() - wall_start, time.process_time() - cpu_start
    return Run(
        detector=detector,
        predictions=codes[: len(texts)],
        load_seconds=load_seconds,
        rows=len(workload),
        wall_seconds=wall,
        cpu_seconds=cpu,
        load_average_before=load_before,
        load_average_after=os.getloadavg()[0],
    )


def accuracy_table(truth: list[str], predictions: list[str]) -> pd.DataFrame:
    """Per language and overall: texts, correct, accuracy, and the share the product left undetermined."""
    frame = pd.DataFrame({"language": truth, "predicted": predictions})
    frame["correct"] = frame["language"] == frame["predicted"]
    frame["und"] = frame["predicted"] == UNDETERMINED
    rows = []
    for language, group in [*frame.groupby("language"), ("all", frame)]:
        rows.append(
            {
                "language": language,
                "texts": len(group),
                "correct": int(group["correct"].sum()),
                "accuracy": group["correct"].mean(),
                "und share": group["und"].mean(),
            }
        )
    return pd.DataFrame(rows)


def markdown(table: pd.DataFrame) -> str:
    header = "| " + " | ".join(table.columns) + " |"
    rule = "|" + "|".join("---" for _ in table.columns) + "|"
    lines = [header, rule]
    for row in table.itertuples(index=False):
        cells = [f"{v:.4f}" if isinstance(v, float) else str(v) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def listing(counts: pd.Series, most: int = 10) -> str:
    # langdetect spreads its mistakes over dozens of languages; the first few say enough.
    shown = ", ".join(f"{key} {n}" for key, n in counts.head(most).items()) or "none"
    return shown + (f", … ({len(counts) - most} more kinds)" if len(counts) > most else "")


def report(labelled: pd.DataFrame, run: Run) -> str:
    table = accuracy_table(labelled["language"].tolist(), run.predictions)
    mistakes = pd.Series(
        [f"{t}→{p}" for t, p in zip(labelled["language"], run.predictions, strict=True) if t != p], dtype=str
    ).value_counts()
    return "\n".join(
        [
            f"### {DETECTOR_TITLES[run.detector]}",
            "",
            markdown(table),
            "",
            f"- mistakes (true→predicted), most common first: {listing(mistakes)}",
            f"- throughput: {run.texts_per_second:,.0f} texts/s on {run.rows:,} rows "
            f"(the {len(labelled):,} cleaned texts repeated), wall {run.wall_seconds:.2f} s, "
            f"CPU {run.cpu_seconds:.2f} s (CPU/wall {run.cpu_seconds / run.wall_seconds:.2f})",
            f"- first call (loads the models): {run.load_seconds:.2f} s, not included above",
            f"- 1-min load average before/after the timed run: {run.load_average_before:.2f} / "
            f"{run.load_average_after:.2f}",
            "",
        ]
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS, help="rows in the throughput set (default 20,000)")
    parser.add_argument("--detectors", nargs="+", choices=DETECTORS, default=list(DETECTORS))
    args = parser.parse_args(argv)

    started = time.perf_counter()
    load_at_start = os.getloadavg()
    labelled = load_set()
    sizes = labelled["language"].value_counts().sort_index()
    print("## Language identification on real short texts")
    print()
    print(
        f"Labelled set: {len(labelled):,} texts ({', '.join(f'{k} {v:,}' for k, v in sizes.items())}), "
        f"cleaned with clean_text; 'und' counts as wrong. Throughput is measured on {args.rows:,} rows made by "
        f"repeating these real texts. Machine: {os.cpu_count()} CPUs, {len(os.sched_getaffinity(0))} usable; "
        f"load average at start {' '.join(f'{x:.2f}' for x in load_at_start)}."
    )
    print()
    for detector in args.detectors:
        print(report(labelled, run_detector(detector, labelled["text_clean"].tolist(), args.rows)))
    print(
        f"Load average at end {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
        f"whole run {time.perf_counter() - started:.1f} s."
    )


if __name__ == "__main__":
    main()
