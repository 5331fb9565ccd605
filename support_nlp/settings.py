"""Every environment variable the code location reads, declared and read here and nowhere else (no Dagster import,
so benchmarks and scripts use it too).

The same code runs on a laptop and in production because its configuration comes from the environment. The table in
README.md (Configuration) is `python -m support_nlp.settings`; a test keeps the two equal.

An unset variable and an empty one mean the same: the default (an empty `SUPPORT_NLP_SOURCE` names no file).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from support_nlp.core.encoders import BUNDLED_MODEL_NAME
from support_nlp.core.twcs import BUNDLED_SAMPLE


@dataclass(frozen=True)
class Variable:
    name: str
    default: str  # as a person reads it in the table
    meaning: str


SOURCE = Variable(
    "SUPPORT_NLP_SOURCE",
    "bundled `support_nlp/data/twcs_sample.csv.gz`",
    "a `twcs.csv` or `.csv.gz` anywhere, local or `s3://` (e.g. the full 2.8M-row Kaggle file)",
)
HOME = Variable(
    "SUPPORT_NLP_HOME",
    "`./.support_nlp`",
    "local state: `storage/` (artifacts), `cache/` (parsed source), `landing/`, `benchmark_cache/`",
)
STORAGE = Variable(
    "SUPPORT_NLP_STORAGE", "`$SUPPORT_NLP_HOME/storage`", "artifact base path: a folder or `s3://bucket/prefix`"
)
S3_ENDPOINT_URL = Variable(
    "SUPPORT_NLP_S3_ENDPOINT_URL",
    "unset (AWS)",
    "an S3-compatible server (SeaweedFS, MinIO, ...) for every `s3://` location; credentials only from the "
    "environment/instance role",
)
S3_REGION = Variable("SUPPORT_NLP_S3_REGION", "unset (the AWS default)", "the region of every `s3://` location")
EMBEDDING_MODEL = Variable(
    "SUPPORT_NLP_EMBEDDING_MODEL",
    "`all-MiniLM-L6-v2` (bundled, offline)",
    "any sentence-transformers name or local path, e.g. `sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2`, "
    "or `universal-sentence-encoder-multilingual-3` (bundled, offline, 16 languages, CPU; backend `auto`)",
)
EMBEDDING_BACKEND = Variable(
    "SUPPORT_NLP_EMBEDDING_BACKEND",
    "`auto`",
    "`auto` (ONNX int8 on CPU, float16 sentence-transformers on CUDA), `torch`, `onnx`, or `static` (a static "
    "student distilled from the model, [docs/performance.md](docs/performance.md); fast, less faithful)",
)
EMBEDDING_CACHE = Variable(
    "SUPPORT_NLP_EMBEDDING_CACHE",
    "`$SUPPORT_NLP_STORAGE/embedding_cache`",
    "the vector cache, folder or `s3://`; `off` disables it",
)
INFERENCE = Variable(
    "SUPPORT_NLP_INFERENCE",
    "`transformer`",
    "how `predictions` labels tweets: `transformer` (the classifier on every tweet's transformer vector) or "
    "`cascade` (the static student labels every issue message, the unsure ones go to the transformer; the daily "
    "run skips the `embeddings` asset; [docs/performance.md](docs/performance.md))",
)
FIRST_DAY = Variable(
    "SUPPORT_NLP_FIRST_DAY", "`2017-10-01`", "first daily partition; older tweets are counted as outside the range"
)
LAST_DAY = Variable(
    "SUPPORT_NLP_LAST_DAY",
    "`2017-12-03` with the bundled sample; unset otherwise",
    "last daily partition; a live deployment sets none, so each ended day becomes a partition",
)
LANDING = Variable(
    "SUPPORT_NLP_LANDING",
    "`$SUPPORT_NLP_HOME/landing`",
    "where day files `twcs-YYYY-MM-DD.csv(.gz)` land for the `landing_sensor`: a folder or `s3://` prefix",
)
ALERT_WEBHOOK = Variable(
    "SUPPORT_NLP_ALERT_WEBHOOK",
    "unset (no alerts)",
    "URL the `alert_sensor` POSTs failed spike and emerging-topic checks to, as JSON (Slack/Teams incoming "
    "webhooks accept it)",
)
BACKFILL_DAYS_PER_RUN = Variable(
    "SUPPORT_NLP_BACKFILL_DAYS_PER_RUN",
    "unset (a backfill is one run)",
    "split a backfill into runs of this many days, which the run queue starts side by side (docs/scaling.md)",
)
VARIABLES = (
    SOURCE,
    HOME,
    STORAGE,
    S3_ENDPOINT_URL,
    S3_REGION,
    EMBEDDING_MODEL,
    EMBEDDING_BACKEND,
    EMBEDDING_CACHE,
    INFERENCE,
    FIRST_DAY,
    LAST_DAY,
    LANDING,
    ALERT_WEBHOOK,
    BACKFILL_DAYS_PER_RUN,
)

# twcs traffic is overwhelmingly Oct-Dec 2017; older stragglers are counted as outside the range.
DEFAULT_FIRST_DAY = "2017-10-01"
BUNDLED_SAMPLE_LAST_DAY = "2017-12-03"
INFERENCE_PATHS = ("transformer", "cascade")


@dataclass(frozen=True)
class Settings:
    """The configuration of one process, its defaults applied."""

    source: str
    home: Path
    storage: str
    s3_endpoint_url: str | None
    s3_region: str | None
    embedding_model: str
    embedding_backend: str
    embedding_cache: str | None  # None: in the artifact storage
    inference: str  # one of INFERENCE_PATHS
    first_day: str
    last_day: str | None  # None: open-ended, a new partition each day
    landing: str
    alert_webhook: str | None
    backfill_days_per_run: int | None  # None: a backfill is one run
    environment: frozenset[str]  # the variables that were set

    def embedding_cache_in(self, storage: str) -> str | None:
        """The vector cache: where configured, else beside the artifacts in `storage`; None when turned off."""
        configured = self.embedding_cache or f"{storage.rstrip('/')}/embedding_cache"
        return None if configured == "off" else configured


def whole_days(variable: Variable, value: str | None) -> int | None:
    if value is None:
        return None
    if not value.strip().isdigit() or int(value) < 1:
        raise ValueError(f"{variable.name} must be a whole number of days >= 1, not {value!r}")
    return int(value)


def one_of(variable: Variable, value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"{variable.name}={value!r}: choose one of {', '.join(choices)}")
    return value


def read_settings(environ: Mapping[str, str] = os.environ) -> Settings:
    def get(variable: Variable) -> str | None:
        return environ.get(variable.name) or None

    home = Path(get(HOME) or Path.cwd() / ".support_nlp")
    source = get(SOURCE) or str(BUNDLED_SAMPLE)
    storage = get(STORAGE) or str(home / "storage")
    # Reading the bundled sample, the partitions end at its last day: the UI shows 64 days it can fill rather than
    # thousands of empty ones up to today.
    last_day = get(LAST_DAY) or (BUNDLED_SAMPLE_LAST_DAY if source == str(BUNDLED_SAMPLE) else None)
    return Settings(
        source=source,
        home=home,
        storage=storage,
        s3_endpoint_url=get(S3_ENDPOINT_URL),
        s3_region=get(S3_REGION),
        embedding_model=get(EMBEDDING_MODEL) or BUNDLED_MODEL_NAME,
        embedding_backend=get(EMBEDDING_BACKEND) or "auto",
        embedding_cache=get(EMBEDDING_CACHE),
        inference=one_of(INFERENCE, get(INFERENCE) or INFERENCE_PATHS[0], INFERENCE_PATHS),
        first_day=get(FIRST_DAY) or DEFAULT_FIRST_DAY,
        last_day=last_day,
        landing=get(LANDING) or str(home / "landing"),
        alert_webhook=get(ALERT_WEBHOOK),
        backfill_days_per_run=whole_days(BACKFILL_DAYS_PER_RUN, get(BACKFILL_DAYS_PER_RUN)),
        environment=frozenset(variable.name for variable in VARIABLES if get(variable)),
    )


def variables_table() -> str:
    rows = [f"| `{variable.name}` | {variable.default} | {variable.meaning} |" for variable in VARIABLES]
    return "\n".join(["| variable | default | meaning |", "|---|---|---|", *rows])


if __name__ == "__main__":
    print(variables_table())
