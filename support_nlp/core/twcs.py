"""Reading the Kaggle "Customer Support on Twitter" dump (twcs.csv) into typed inbound tweets.

The CSV is parsed once per source version (content hash) into a columnar cache sorted by UTC day, so
materializing N daily partitions reads each row once instead of re-parsing the CSV N times.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import fsspec
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from support_nlp.core.progress import Progress, ProgressCallback

TWCS_COLUMNS = [
    "tweet_id",
    "author_id",
    "inbound",
    "created_at",
    "text",
    "response_tweet_id",
    "in_response_to_tweet_id",
]
CREATED_AT_FORMAT = "%a %b %d %H:%M:%S %z %Y"
INBOUND_VALUES = {"True": True, "False": False}

# Bump when the parsed layout or parsing rules change, so old caches are not reused.
CACHE_FORMAT_VERSION = "1"
CSV_CHUNK_ROWS = 250_000
CACHE_ROW_GROUP_ROWS = 50_000

BUNDLED_SAMPLE = Path(__file__).resolve().parents[1] / "data" / "twcs_sample.csv.gz"


class SourceFormatError(ValueError):
    """The source file as a whole cannot be read as twcs.csv."""


@dataclass(frozen=True)
class ParsedSource:
    """Where the columnar cache of one source version lives, and what parsing it found."""

    directory: Path
    summary: dict

    @property
    def inbound_path(self) -> Path:
        return self.directory / "inbound.parquet"

    @property
    def rejected_path(self) -> Path:
        return self.directory / "rejected.parquet"

    @property
    def rows_per_day(self) -> dict[str, int]:
        return self.summary["inbound_rows_per_day"]

    def read_days(self, days: list[str]) -> pd.DataFrame:
        """Inbound tweets whose UTC day is in `days`; row groups of other days are skipped unread."""
        table = pq.read_table(self.inbound_path, filters=[("day", "in", days)] if days else None)
        return table.to_pandas().reset_index(drop=True)

    def read_rejected(self) -> pd.DataFrame:
        return pq.read_table(self.rejected_path).to_pandas()


def source_fingerprint(source: str) -> str:
    """Content hash of the source file, so an edited or replaced file gets a fresh cache."""
    digest = hashlib.sha256(CACHE_FORMAT_VERSION.encode())
    with fsspec.open(source, "rb") as handle:
        for block in iter(lambda: handle.read(8 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:24]


def parse_source(source: str, cache_dir: Path, report: ProgressCallback | None = None) -> ParsedSource:
    """Return the parsed cache for `source`, parsing the CSV only if this version was never parsed."""
    fingerprint = source_fingerprint(source)
    directory = Path(cache_dir) / fingerprint
    summary_path = directory / "summary.json"
    if summary_path.exists():
        return ParsedSource(directory, json.loads(summary_path.read_text()))

    inbound, rejected, summary = read_twcs(source, report)
    summary["fingerprint"] = fingerprint
    # Build the cache beside its final place and rename it in one step: a crash leaves no half cache.
    staging = directory.with_name(f"{fingerprint}.tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    table = pa.Table.from_pandas(inbound.sort_values(["day", "tweet_id"]), preserve_index=False)
    pq.write_table(table, staging / "inbound.parquet", row_group_size=CACHE_ROW_GROUP_ROWS)
    pq.write_table(pa.Table.from_pandas(rejected, preserve_index=False), staging / "rejected.parquet")
    (staging / "summary.json").write_text(json.dumps(summary, indent=1, sort_keys=True))
    try:
        os.replace(staging, directory)
    except OSError:
        # Another process finished the same cache first; theirs is identical.
        shutil.rmtree(staging, ignore_errors=True)
    return ParsedSource(directory, json.loads(summary_path.read_text()))


def read_twcs(source: str, report: ProgressCallback | None = None) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Parse a twcs.csv(.gz) into (typed inbound tweets, rejected rows with a reason, counts).

    The file is streamed in chunks; only inbound rows and the (id, author) pairs of brand replies are
    kept, which is all that is needed to attribute each customer tweet to the brand that answered it.
    """
    inbound_chunks, rejected_chunks, reply_authors = [], [], []
    rows_read = outbound_rows = 0
    progress = Progress("parse source", total=0, report=report)
    try:
        chunks = pd.read_csv(
            source,
            usecols=TWCS_COLUMNS,
            dtype=str,
            keep_default_na=False,
            chunksize=CSV_CHUNK_ROWS,
        )
        for chunk in chunks:
            rows_read += len(chunk)
            inbound_flag = chunk["inbound"].map(INBOUND_VALUES)
            bad_flag = inbound_flag.isna()
            rejected_chunks.append(_rejected(chunk[bad_flag], "inbound_not_true_or_false"))
            outbound = chunk[inbound_flag.eq(False)]
            outbound_rows += len(outbound)
            reply_authors.append(outbound[["tweet_id", "author_id"]])
            typed, rejected = _type_inbound(chunk[inbound_flag.eq(True)])
            inbound_chunks.append(typed)
            rejected_chunks.append(rejected)
            progress.total = rows_read
            progress.advance(len(chunk))
    except ValueError as error:
        raise SourceFormatError(f"{source}: not a readable twcs.csv ({error})") from error

    inbound = (
        pd.concat(inbound_chunks, ignore_index=True)
        if inbound_chunks
        else _type_inbound(pd.DataFrame(columns=TWCS_COLUMNS))[0]
    )
    duplicated = inbound["tweet_id"].duplicated(keep="first")
    rejected_chunks.append(_rejected(inbound.loc[duplicated, ["tweet_id", "text"]].astype(str), "duplicate_tweet_id"))
    inbound = inbound[~duplicated].reset_index(drop=True)

    authors = pd.concat(reply_authors, ignore_index=True)
    inbound["thread_brand"] = thread_brands(inbound, authors)
    rejected = pd.concat(rejected_chunks, ignore_index=True)
    summary = {
        "source": str(source),
        "rows_read": rows_read,
        "outbound_rows": outbound_rows,
        "inbound_rows": int(len(inbound)),
        "rejected_rows": int(len(rejected)),
        "rejected_by_reason": {k: int(v) for k, v in rejected["reason"].value_counts().items()},
        "brands": sorted(authors["author_id"].unique().tolist()),
        "inbound_rows_per_day": {k: int(v) for k, v in inbound["day"].value_counts().sort_index().items()},
    }
    return inbound, rejected, summary


def _rejected(rows: pd.DataFrame, reason: str) -> pd.DataFrame:
    out = pd.DataFrame(
        {
            "tweet_id": rows["tweet_id"].astype(str).to_numpy() if len(rows) else [],
            "text": rows["text"].astype(str).to_numpy() if len(rows) else [],
        }
    )
    out["reason"] = reason
    return out


def _type_inbound(rows: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    tweet_id = pd.to_numeric(rows["tweet_id"], errors="coerce")
    created_at = pd.to_datetime(rows["created_at"], format=CREATED_AT_FORMAT, utc=True, errors="coerce")
    bad_id = tweet_id.isna() | (tweet_id % 1 != 0)
    bad_date = created_at.isna() & ~bad_id
    rejected = pd.concat(
        [_rejected(rows[bad_id], "tweet_id_not_integer"), _rejected(rows[bad_date], "created_at_unparsable")],
        ignore_index=True,
    )
    keep = ~(bad_id | bad_date)
    created = created_at[keep].astype("datetime64[ns, UTC]")
    typed = pd.DataFrame(
        {
            "tweet_id": tweet_id[keep].astype("int64"),
            "author_id": rows.loc[keep, "author_id"].astype(str),
            "created_at": created,
            "text": rows.loc[keep, "text"].astype(str),
            "response_tweet_id": rows.loc[keep, "response_tweet_id"].astype(str),
            "in_response_to_tweet_id": pd.to_numeric(rows.loc[keep, "in_response_to_tweet_id"], errors="coerce").astype(
                "Int64"
            ),
            "day": created.dt.strftime("%Y-%m-%d"),
        }
    )
    return typed.reset_index(drop=True), rejected


def thread_brands(inbound: pd.DataFrame, reply_authors: pd.DataFrame) -> pd.Series:
    """The brand handle that took part in each customer tweet's thread ("" when none is in the source).

    A customer tweet either answers a brand reply (`in_response_to_tweet_id`) or is answered by one
    (`response_tweet_id`, a comma-separated list); the author of that reply is the addressed brand.
    """
    author_by_id = (
        reply_authors.assign(tweet_id=pd.to_numeric(reply_authors["tweet_id"], errors="coerce"))
        .dropna(subset=["tweet_id"])
        .astype({"tweet_id": "int64"})
        .drop_duplicates("tweet_id")
        .set_index("tweet_id")["author_id"]
    )
    answered_by = inbound["in_response_to_tweet_id"].map(author_by_id)
    responses = inbound["response_tweet_id"].str.split(",").explode()
    responses = pd.to_numeric(responses.str.strip(), errors="coerce").map(author_by_id).dropna()
    first_responder = responses.groupby(level=0).first()
    brand = answered_by.fillna(first_responder.reindex(inbound.index))
    return brand.fillna("").astype(str)
