"""Reading the Kaggle "Customer Support on Twitter" dump (twcs.csv) into typed inbound tweets.

The CSV is parsed once per source version (content hash) into a columnar cache sorted by UTC day, so
materializing N daily partitions reads each row once instead of re-parsing the CSV N times.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path

import fsspec
import numpy as np
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
CACHE_FORMAT_VERSION = "2"
CSV_CHUNK_ROWS = 250_000
CACHE_ROW_GROUP_ROWS = 50_000
# Tweets are at most 280 characters (a little more with entities); far longer means a broken row.
MAX_TEXT_CHARS = 10_000
QUARANTINE_TEXT_CHARS = 2_000
QUARANTINE_COLUMNS = ["record", "line", "reason", "detail", "tweet_id", "author_id", "inbound", "created_at", "text"]
# What `encoding_errors="replace"` puts where the bytes were not UTF-8.
REPLACEMENT_CHARACTER = "\ufffd"
BAD_LINE_PATTERN = re.compile(r"Skipping line (\d+): (.+)")

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
    def quarantine_path(self) -> Path:
        return self.directory / "quarantine.parquet"

    @property
    def rows_per_day(self) -> dict[str, int]:
        return self.summary["inbound_rows_per_day"]

    def read_days(self, days: list[str]) -> pd.DataFrame:
        """Inbound tweets whose UTC day is in `days`; row groups of other days are skipped unread."""
        if not days:
            return pq.read_schema(self.inbound_path).empty_table().to_pandas()
        table = pq.read_table(self.inbound_path, filters=[("day", "in", days)])
        return table.to_pandas().reset_index(drop=True)

    def read_quarantine(self) -> pd.DataFrame:
        return pq.read_table(self.quarantine_path).to_pandas()


def source_fingerprint(source: str, storage_options: dict | None = None) -> str:
    """Content hash of the source file, so an edited or replaced file gets a fresh cache."""
    digest = hashlib.sha256(CACHE_FORMAT_VERSION.encode())
    with fsspec.open(source, "rb", **(storage_options or {})) as handle:
        for block in iter(lambda: handle.read(8 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:24]


def parse_source(
    source: str, cache_dir: Path, report: ProgressCallback | None = None, storage_options: dict | None = None
) -> ParsedSource:
    """Return the parsed cache for `source`, parsing the CSV only if this version was never parsed.

    `storage_options` are fsspec's, for remote sources (e.g. the endpoint of an S3-compatible store).
    """
    fingerprint = source_fingerprint(source, storage_options)
    directory = Path(cache_dir) / fingerprint
    summary_path = directory / "summary.json"
    if summary_path.exists():
        return ParsedSource(directory, json.loads(summary_path.read_text()))

    inbound, quarantine, summary = read_twcs(source, report, storage_options)
    summary["fingerprint"] = fingerprint
    # Build the cache beside its final place and rename it in one step: a crash leaves no half cache.
    staging = directory.with_name(f"{fingerprint}.tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    table = pa.Table.from_pandas(inbound.sort_values(["day", "tweet_id"]), preserve_index=False)
    pq.write_table(table, staging / "inbound.parquet", row_group_size=CACHE_ROW_GROUP_ROWS)
    pq.write_table(pa.Table.from_pandas(quarantine, preserve_index=False), staging / "quarantine.parquet")
    (staging / "summary.json").write_text(json.dumps(summary, indent=1, sort_keys=True))
    try:
        os.replace(staging, directory)
    except OSError:
        # Another process finished the same cache first; theirs is identical.
        shutil.rmtree(staging, ignore_errors=True)
    return ParsedSource(directory, json.loads(summary_path.read_text()))


def read_twcs(
    source: str, report: ProgressCallback | None = None, storage_options: dict | None = None
) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Parse a twcs.csv(.gz) into (typed inbound tweets, quarantined rows with a reason, counts).

    Whole-file problems (empty file, header only, missing columns, a quote left open at the end) raise
    SourceFormatError naming the file and line. Row problems go to the quarantine with a reason, so that
    rows_in = rows_outbound + rows_inbound_kept + rows_quarantined always holds.

    The file is streamed in chunks; only inbound rows and the (id, author) pairs of brand replies are
    kept, which is all that is needed to attribute each customer tweet to the brand that answered it.
    """
    _check_header(source, storage_options)
    inbound_chunks, quarantine_chunks, reply_authors = [], [], []
    records = outbound_rows = 0
    progress = Progress("parse source", total=0, report=report)
    with warnings.catch_warnings(record=True) as parser_warnings:
        warnings.simplefilter("always", pd.errors.ParserWarning)
        try:
            for chunk in pd.read_csv(
                # No usecols: with it the parser silently accepts lines with extra fields.
                source,
                dtype=str,
                keep_default_na=False,
                chunksize=CSV_CHUNK_ROWS,
                on_bad_lines="warn",
                encoding_errors="replace",
                storage_options=storage_options,
            ):
                # Index rows by their 1-based record number in the file, reported with quarantined rows.
                chunk.index = pd.RangeIndex(records + 1, records + 1 + len(chunk), name="record")
                records += len(chunk)
                inbound_flag = chunk["inbound"].map(INBOUND_VALUES)
                quarantine_chunks.append(_quarantine(chunk[inbound_flag.isna()], "inbound_not_true_or_false"))
                outbound = chunk[inbound_flag.eq(False)]
                outbound_rows += len(outbound)
                reply_authors.append(outbound[["tweet_id", "author_id"]])
                typed, quarantined = _type_inbound(chunk[inbound_flag.eq(True)])
                inbound_chunks.append(typed)
                quarantine_chunks.append(quarantined)
                progress.total = records
                progress.advance(len(chunk))
        except (pd.errors.ParserError, ValueError) as error:
            raise SourceFormatError(f"{source}: not a readable twcs.csv: {error}") from error
    bad_lines = _bad_lines(parser_warnings)
    if records == 0 and bad_lines.empty:
        raise SourceFormatError(f"{source}: line 2: the file has a header but no data rows")

    inbound = pd.concat(inbound_chunks)
    inbound, duplicates = _split_duplicates(inbound)
    authors = pd.concat(reply_authors, ignore_index=True)
    inbound["thread_brand"] = thread_brands(inbound, authors)
    quarantine = pd.concat([*quarantine_chunks, duplicates, bad_lines], ignore_index=True)[QUARANTINE_COLUMNS]
    summary = {
        "source": str(source),
        "rows_in": records + len(bad_lines),
        "rows_outbound": outbound_rows,
        "rows_inbound_kept": int(len(inbound)),
        "rows_quarantined": int(len(quarantine)),
        "quarantined_by_reason": {k: int(v) for k, v in quarantine["reason"].value_counts().items()},
        "brands": sorted(authors["author_id"].unique().tolist()),
        "inbound_rows_per_day": {k: int(v) for k, v in inbound["day"].value_counts().sort_index().items()},
    }
    accounted = summary["rows_outbound"] + summary["rows_inbound_kept"] + summary["rows_quarantined"]
    if accounted != summary["rows_in"]:
        raise AssertionError(f"{source}: {summary['rows_in']} rows in but {accounted} accounted for: {summary}")
    return inbound.reset_index(drop=True), quarantine, summary


def _check_header(source: str, storage_options: dict | None) -> None:
    try:
        header = pd.read_csv(source, nrows=0, dtype=str, encoding_errors="replace", storage_options=storage_options)
    except pd.errors.EmptyDataError as error:
        raise SourceFormatError(f"{source}: line 1: the file is empty") from error
    missing = [column for column in TWCS_COLUMNS if column not in header.columns]
    if missing:
        raise SourceFormatError(
            f"{source}: line 1 (header): missing required column(s) {', '.join(missing)}; "
            f"found {', '.join(map(str, header.columns))}"
        )


def _bad_lines(caught: list[warnings.WarningMessage]) -> pd.DataFrame:
    """Lines the CSV parser skipped (wrong number of fields), as quarantine rows with their line number."""
    found = [
        (int(line), detail)
        for warning in caught
        if issubclass(warning.category, pd.errors.ParserWarning)
        for line, detail in BAD_LINE_PATTERN.findall(str(warning.message))
    ]
    return pd.DataFrame(
        {
            "record": pd.array([pd.NA] * len(found), dtype="Int64"),
            "line": pd.array([line for line, _ in found], dtype="Int64"),
            "reason": ["wrong_field_count"] * len(found),
            "detail": [detail for _, detail in found],
        }
    )


def _quarantine(rows: pd.DataFrame, reason: str | pd.Series) -> pd.DataFrame:
    out = rows[["tweet_id", "author_id", "inbound", "created_at", "text"]].astype(str).copy()
    # A megabyte-long broken field would bloat the quarantine file; the head is enough to find the row.
    out["text"] = out["text"].str.slice(0, QUARANTINE_TEXT_CHARS)
    out["reason"] = pd.Series(reason, index=rows.index, dtype=str) if len(rows) else pd.Series([], dtype=str)
    out["detail"] = ""
    out["record"] = pd.array(rows.index, dtype="Int64")
    out["line"] = pd.array([pd.NA] * len(rows), dtype="Int64")
    return out


def _any_field_contains(rows: pd.DataFrame, needle: str) -> np.ndarray:
    found = np.zeros(len(rows), dtype=bool)
    for column in TWCS_COLUMNS:
        found |= rows[column].str.contains(needle, regex=False).to_numpy()
    return found


def _type_inbound(rows: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    tweet_id = pd.to_numeric(rows["tweet_id"], errors="coerce")
    created_at = pd.to_datetime(rows["created_at"], format=CREATED_AT_FORMAT, utc=True, errors="coerce")
    problems = {
        "tweet_id_not_integer": (tweet_id.isna() | (tweet_id % 1 != 0)).to_numpy(),
        "created_at_unparsable": created_at.isna().to_numpy(),
        "not_utf8": _any_field_contains(rows, REPLACEMENT_CHARACTER),
        "contains_nul_byte": _any_field_contains(rows, "\x00"),
        "text_too_long": (rows["text"].str.len() > MAX_TEXT_CHARS).to_numpy(),
    }
    reason = pd.Series(np.select(list(problems.values()), list(problems), default=""), index=rows.index)
    keep = (reason == "").to_numpy()
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
    return typed, _quarantine(rows[~keep], reason[~keep])


def _split_duplicates(inbound: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Keep the first row of each tweet_id; later ones are quarantined, saying whether their text differs."""
    repeated = inbound["tweet_id"].duplicated(keep="first").to_numpy()
    first_text = inbound[~repeated].set_index("tweet_id")["text"]
    later = inbound[repeated]
    conflicting = later["text"].to_numpy() != first_text.loc[later["tweet_id"]].to_numpy()
    reason = np.where(conflicting, "duplicate_tweet_id_conflicting_text", "duplicate_tweet_id_same_text")
    return inbound[~repeated], _quarantine(later.assign(inbound="True"), pd.Series(reason, index=later.index))


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
    answered_by = inbound["in_response_to_tweet_id"].map(author_by_id).astype(object)
    responses = inbound["response_tweet_id"].str.split(",").explode()
    responses = pd.to_numeric(responses.str.strip(), errors="coerce").map(author_by_id).dropna()
    first_responder = responses.groupby(level=0).first()
    brand = answered_by.fillna(first_responder.reindex(inbound.index))
    return brand.where(brand.notna(), "").astype(str)
