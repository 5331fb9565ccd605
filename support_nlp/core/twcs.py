"""Reading the Kaggle "Customer Support on Twitter" dump (twcs.csv) into typed inbound tweets.

The CSV is parsed once per source version (content hash) into a columnar cache sorted by UTC day, so
materializing N daily partitions reads each row once instead of re-parsing the CSV N times.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import lzma
import os
import re
import shutil
import uuid
import warnings
import zipfile
import zlib
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import BinaryIO

import fsspec
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from support_nlp.core.privacy import KIND_NAMES, mask_personal_data, mask_texts
from support_nlp.core.progress import Progress, ProgressCallback
from support_nlp.core.text import addressed_brand, brand_lookup

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
CACHE_FORMAT_VERSION = "4"
CSV_CHUNK_ROWS = 250_000
CACHE_ROW_GROUP_ROWS = 50_000
CACHE_FILES = ("inbound.parquet", "quarantine.parquet")
SUMMARY_FILE = "summary.json"
# Tweets are at most 280 characters, but the dump escapes HTML entities (`&amp;` is 5) and the @handles that
# open a reply do not count towards the limit; the longest text of the bundled sample is 392. Far beyond
# that is a broken row (a quote left open swallowing the following records) or a deliberate flood.
MAX_TEXT_CHARS = 1_000
QUARANTINE_TEXT_CHARS = 1_000
# Ids are decimal integers as written: no sign, decimals, exponent, spaces or leading zeros (`007` and `7`
# would be the same tweet). They are parsed from their text, never through a float (inexact past 2**53).
ID_PATTERN = r"0|[1-9][0-9]*"
INT64_MAX_TEXT = str(np.iinfo(np.int64).max)
# twcs traffic is dense (thousands of tweets a day): a handful of tweets dated after a month without any are
# not part of the dump's period, and as open-ended daily partitions they would stretch every run to their date.
MAX_SILENT_DAYS = 30
MAX_ISOLATED_SHARE = 0.01
# First bytes of formats that get renamed to .csv by mistake (a spreadsheet export is a zip).
MAGIC_NUMBERS = {
    b"PK\x03\x04": "zip",
    b"PAR1": "parquet",
    b"\x1f\x8b": "gzip",
    b"BZh": "bzip2",
    b"\xfd7zXZ\x00": "xz",
    b"\x28\xb5\x2f\xfd": "zstd",
    b"SQLite format 3\x00": "sqlite",
}
COMPRESSION_BY_SUFFIX = {".gz": "gzip", ".bz2": "bzip2", ".xz": "xz", ".zst": "zstd", ".zip": "zip"}
# What the decompressors raise on a truncated or corrupt stream (BadGzipFile also on a plain file named .gz).
DECOMPRESSION_ERRORS = (EOFError, zlib.error, gzip.BadGzipFile, lzma.LZMAError, zipfile.BadZipFile)
QUARANTINE_COLUMNS = ["record", "line", "reason", "detail", "tweet_id", "author_id", "inbound", "created_at", "text"]
# What `encoding_errors="replace"` puts where the bytes were not UTF-8.
REPLACEMENT_CHARACTER = "\ufffd"
BAD_LINE_PATTERN = re.compile(r"Skipping line (\d+): (.+)")

BUNDLED_SAMPLE = Path(__file__).resolve().parents[1] / "data" / "twcs_sample.csv.gz"


class SourceFormatError(ValueError):
    """The source file as a whole cannot be read as twcs.csv."""


@dataclass(frozen=True)
class SourceSummary:
    """What parsing one source file found: rows_in = rows_outbound + rows_inbound_kept + rows_quarantined."""

    source: str
    rows_in: int
    rows_outbound: int
    rows_inbound_kept: int
    rows_quarantined: int
    quarantined_by_reason: dict[str, int]
    personal_data_masked: dict[str, int]  # masked spans per kind of personal data (core/privacy.py)
    brands: tuple[str, ...]  # author ids of the brand replies, sorted
    inbound_rows_per_day: dict[str, int]
    fingerprint: str = ""  # the source's content hash (source_fingerprint), set by parse_source
    file_sha256: dict[str, str] = field(default_factory=dict)  # of the cache files, set when they are written

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, fields: dict) -> SourceSummary:
        return cls(**{**fields, "brands": tuple(fields["brands"])})


@dataclass(frozen=True)
class ParsedSource:
    """Where the columnar cache of one source version lives, and what parsing it found."""

    directory: Path
    summary: SourceSummary

    @property
    def inbound_path(self) -> Path:
        return self.directory / "inbound.parquet"

    @property
    def quarantine_path(self) -> Path:
        return self.directory / "quarantine.parquet"

    @property
    def rows_per_day(self) -> dict[str, int]:
        return self.summary.inbound_rows_per_day

    def read_days(self, days: list[str]) -> pd.DataFrame:
        """Inbound tweets whose UTC day is in `days`; row groups of other days are skipped unread."""
        if not days:
            return pq.read_schema(self.inbound_path).empty_table().to_pandas()
        table = pq.read_table(self.inbound_path, filters=[("day", "in", days)])
        return table.to_pandas().reset_index(drop=True)

    def read_quarantine(self) -> pd.DataFrame:
        return pq.read_table(self.quarantine_path).to_pandas()

    def damage(self) -> str | None:
        """Why the cached files cannot be trusted (missing, or content unlike when written); None if intact."""
        for name, expected in self.summary.file_sha256.items():
            path = self.directory / name
            if not path.exists():
                return f"{path} is missing"
            if file_sha256(path) != expected:
                return f"{path} differs from what was written (truncated or corrupted)"
        return None if self.summary.file_sha256 else "no content hashes recorded"


def _sha256(handle: BinaryIO, prefix: bytes = b"") -> str:
    digest = hashlib.sha256(prefix)
    for block in iter(lambda: handle.read(8 << 20), b""):
        digest.update(block)
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return _sha256(handle)


def source_fingerprint(source: str, storage_options: dict | None = None) -> str:
    """Content hash of the source file, so an edited or replaced file gets a fresh cache."""
    with fsspec.open(source, "rb", **(storage_options or {})) as handle:
        return _sha256(handle, CACHE_FORMAT_VERSION.encode())[:24]


def parse_source(
    source: str, cache_dir: Path, report: ProgressCallback | None = None, storage_options: dict | None = None
) -> ParsedSource:
    """Return the parsed cache for `source`, parsing the CSV only if this version was never parsed.

    A cache whose files no longer match their recorded hashes is discarded and rebuilt, not reused.
    `storage_options` are fsspec's, for remote sources (e.g. the endpoint of an S3-compatible store).
    """
    fingerprint = source_fingerprint(source, storage_options)
    directory = Path(cache_dir) / fingerprint
    cached = _read_cache(directory, report)
    if cached:
        return cached

    inbound, quarantine, summary = read_twcs(source, report, storage_options)
    summary = replace(summary, fingerprint=fingerprint)
    # Build the cache beside its final place and rename it in one step: a crash leaves no half cache. The staging
    # name is unique to this call, not to the process: run containers sharing the cache volume have the same pids.
    staging = directory.with_name(f"{fingerprint}.tmp-{uuid.uuid4().hex}")
    try:
        _write_cache(staging, inbound, quarantine, summary)
    except OSError as error:
        shutil.rmtree(staging, ignore_errors=True)
        reason = f"cannot write the parse cache of {source}: {error.strerror or error}"
        raise OSError(error.errno, reason, str(directory)) from error
    try:
        os.replace(staging, directory)
    except OSError:
        # Another process finished the same cache first; theirs is identical.
        shutil.rmtree(staging, ignore_errors=True)
    return ParsedSource(directory, read_summary(directory))


def _read_cache(directory: Path, report: ProgressCallback | None) -> ParsedSource | None:
    if not directory.exists():
        return None
    try:
        cached = ParsedSource(directory, read_summary(directory))
        damage = cached.damage()
    except (OSError, ValueError, KeyError, TypeError) as error:
        # TypeError: a summary without a field this version records (or with one it does not know).
        damage = f"{directory / SUMMARY_FILE} is unreadable: {error}"
    if damage is None:
        return cached
    if report:
        report(f"Parse cache {directory} is damaged ({damage}); parsing the source again")
    # Moved aside first so that a concurrent reader never sees a half-deleted cache under its final name.
    discarded = directory.with_name(f"{directory.name}.damaged-{uuid.uuid4().hex}")
    try:
        os.replace(directory, discarded)
    except FileNotFoundError:
        return None  # another process discarded it first
    shutil.rmtree(discarded, ignore_errors=True)
    return None


def read_summary(directory: Path) -> SourceSummary:
    return SourceSummary.from_json(json.loads((directory / SUMMARY_FILE).read_text()))


def _write_cache(staging: Path, inbound: pd.DataFrame, quarantine: pd.DataFrame, summary: SourceSummary) -> None:
    staging.mkdir(parents=True)
    table = pa.Table.from_pandas(inbound.sort_values(["day", "tweet_id"]), preserve_index=False)
    pq.write_table(table, staging / "inbound.parquet", row_group_size=CACHE_ROW_GROUP_ROWS)
    pq.write_table(pa.Table.from_pandas(quarantine, preserve_index=False), staging / "quarantine.parquet")
    summary = replace(summary, file_sha256={name: file_sha256(staging / name) for name in CACHE_FILES})
    (staging / SUMMARY_FILE).write_text(json.dumps(summary.to_json(), indent=1, sort_keys=True))


def read_twcs(
    source: str, report: ProgressCallback | None = None, storage_options: dict | None = None
) -> tuple[pd.DataFrame, pd.DataFrame, SourceSummary]:
    """Parse a twcs.csv(.gz) into (typed inbound tweets, quarantined rows with a reason, counts).

    Personal data in customer texts is masked (core.privacy) before anything is kept or quarantined.
    Whole-file problems (not a CSV, a compressed stream cut short, empty file, header only, missing columns,
    a quote left open at the end) raise SourceFormatError naming the file. Row problems go to the quarantine
    with a reason, so that rows_in = rows_outbound + rows_inbound_kept + rows_quarantined always holds.

    The file is streamed in chunks; only inbound rows and the (id, author) pairs of brand replies are
    kept, which is all that is needed to attribute each customer tweet to the brand that answered it.
    """
    _check_container(source, storage_options)
    _check_header(source, storage_options)
    short_records, counted_records = _short_records(source, storage_options)
    inbound_chunks, quarantine_chunks, replies = [], [], []
    masked_by_kind = Counter({kind: 0 for kind in KIND_NAMES})
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
                short = chunk.index.isin(list(short_records))
                # Everything kept or quarantined is masked here; brand replies are dropped below, unread.
                customer = short | chunk["inbound"].ne("False").to_numpy()
                masked_texts, masked = mask_texts(chunk.loc[customer, "text"])
                chunk.loc[customer, "text"] = masked_texts
                masked_by_kind.update(masked)
                quarantine_chunks.append(_quarantine_short(chunk[short], short_records, len(chunk.columns)))
                chunk = chunk[~short]
                inbound_flag = chunk["inbound"].map(INBOUND_VALUES)
                quarantine_chunks.append(_quarantine(chunk[inbound_flag.isna()], "inbound_not_true_or_false"))
                outbound = chunk[inbound_flag.eq(False)]
                outbound_rows += len(outbound)
                replies.append(outbound[["tweet_id", "author_id", "in_response_to_tweet_id"]])
                typed, quarantined = _type_inbound(chunk[inbound_flag.eq(True)])
                inbound_chunks.append(typed)
                quarantine_chunks.append(quarantined)
                progress.total = records
                progress.advance(len(chunk))
        except (pd.errors.ParserError, ValueError) as error:
            raise SourceFormatError(f"{source}: not a readable twcs.csv: {error}") from error
        except DECOMPRESSION_ERRORS as error:
            raise _undecompressable(source, error) from error
    if records != counted_records:
        raise SourceFormatError(
            f"{source}: {records} records parsed but {counted_records} counted by a second CSV reader; "
            "check the file's quoting"
        )
    bad_lines = _bad_lines(parser_warnings)
    if records == 0 and bad_lines.empty:
        raise SourceFormatError(f"{source}: line 2: the file has a header but no data rows")

    inbound = pd.concat(inbound_chunks)
    inbound, duplicates = _split_duplicates(inbound)
    inbound, late = _split_after_silence(inbound)
    authors = pd.concat(replies, ignore_index=True)
    inbound["thread_brand"] = thread_brands(inbound, authors)
    inbound["thread_id"] = thread_ids(inbound, authors)
    quarantine = pd.concat([*quarantine_chunks, duplicates, late, bad_lines], ignore_index=True)[QUARANTINE_COLUMNS]
    summary = SourceSummary(
        source=str(source),
        rows_in=records + len(bad_lines),
        rows_outbound=outbound_rows,
        rows_inbound_kept=int(len(inbound)),
        rows_quarantined=int(len(quarantine)),
        quarantined_by_reason={k: int(v) for k, v in quarantine["reason"].value_counts().items()},
        personal_data_masked=dict(masked_by_kind),
        brands=tuple(sorted(authors["author_id"].unique().tolist())),
        inbound_rows_per_day={k: int(v) for k, v in inbound["day"].value_counts().sort_index().items()},
    )
    accounted = summary.rows_outbound + summary.rows_inbound_kept + summary.rows_quarantined
    if accounted != summary.rows_in:
        raise AssertionError(f"{source}: {summary.rows_in} rows in but {accounted} accounted for: {summary}")
    return inbound.reset_index(drop=True), quarantine, summary


def _undecompressable(source: str, error: Exception) -> SourceFormatError:
    return SourceFormatError(f"{source}: the compressed file is truncated or corrupt: {error}")


def _check_container(source: str, storage_options: dict | None) -> None:
    """Say what a file is when it is not what its name says (a zip or Parquet named .csv, a plain CSV named
    .csv.gz), instead of parsing its bytes into column names."""
    with fsspec.open(source, "rb", **(storage_options or {})) as handle:
        head = handle.read(16)
    found = next((kind for magic, kind in MAGIC_NUMBERS.items() if head.startswith(magic)), None)
    suffix = PurePosixPath(source).suffix.lower()
    expected = COMPRESSION_BY_SUFFIX.get(suffix)
    if found == expected:
        return
    if expected:
        looks_like = found or ("an empty file" if not head else "plain text")
        raise SourceFormatError(f"{source}: named {suffix} but not {expected}-compressed (looks like {looks_like})")
    raise SourceFormatError(f"{source}: not a CSV (looks like {found})")


def _check_header(source: str, storage_options: dict | None) -> None:
    try:
        header = pd.read_csv(source, nrows=0, dtype=str, encoding_errors="replace", storage_options=storage_options)
    except pd.errors.EmptyDataError as error:
        raise SourceFormatError(f"{source}: line 1: the file is empty") from error
    except DECOMPRESSION_ERRORS as error:
        raise _undecompressable(source, error) from error
    missing = [column for column in TWCS_COLUMNS if column not in header.columns]
    if missing:
        # A file without a header shows its first tweet here: masked, and ascii() so that a binary first line
        # does not reach the terminal as raw bytes.
        found = ascii(mask_personal_data(", ".join(map(str, header.columns)))[0])[1:-1]
        raise SourceFormatError(
            f"{source}: line 1 (header): missing required column(s) {', '.join(missing)}; found {found[:300]}"
        )


def _short_records(source: str, storage_options: dict | None) -> tuple[dict[int, int], int]:
    """({record number: field count} of records with fewer fields than the header, number of records).

    pandas pads a short record with empty strings, which look like empty fields, so the fields are counted
    here with the csv module. Records with too many fields are left out of the numbering, as pandas skips
    them, so record numbers match the parsed chunks'.
    """
    short, records = {}, 0
    field_limit = csv.field_size_limit()
    # A broken row can hold megabytes in one field; it is quarantined, not a reason to stop.
    csv.field_size_limit(np.iinfo(np.int32).max)
    try:
        with fsspec.open(
            source, "rt", compression="infer", encoding="utf-8", errors="replace", newline="", **(storage_options or {})
        ) as handle:
            # pandas skips blank and whitespace-only lines.
            field_counts = (len(fields) for fields in csv.reader(handle) if "".join(fields).strip() or len(fields) > 1)
            expected = next(field_counts, 0)
            for count in field_counts:
                if count <= expected:
                    records += 1
                    if count < expected:
                        short[records] = count
    except DECOMPRESSION_ERRORS as error:
        raise _undecompressable(source, error) from error
    except csv.Error as error:
        raise SourceFormatError(f"{source}: not a readable twcs.csv: {error}") from error
    finally:
        csv.field_size_limit(field_limit)
    return short, records


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


def _quarantine(rows: pd.DataFrame, reason: str | pd.Series, detail: str | pd.Series = "") -> pd.DataFrame:
    out = rows[["tweet_id", "author_id", "inbound", "created_at", "text"]].astype(str).copy()
    # A megabyte-long broken field would bloat the quarantine file; the head is enough to find the row.
    out["text"] = out["text"].str.slice(0, QUARANTINE_TEXT_CHARS)
    out["reason"] = pd.Series(reason, index=rows.index, dtype=str) if len(rows) else pd.Series([], dtype=str)
    out["detail"] = pd.Series(detail, index=rows.index, dtype=str) if len(rows) else pd.Series([], dtype=str)
    out["record"] = pd.array(rows.index, dtype="Int64")
    out["line"] = pd.array([pd.NA] * len(rows), dtype="Int64")
    return out


def _quarantine_short(rows: pd.DataFrame, field_counts: dict[int, int], expected: int) -> pd.DataFrame:
    detail = pd.Series([f"expected {expected} fields, saw {field_counts[r]}" for r in rows.index], index=rows.index)
    return _quarantine(rows, "wrong_field_count", detail)


def _any_field_contains(rows: pd.DataFrame, needle: str) -> np.ndarray:
    found = np.zeros(len(rows), dtype=bool)
    for column in TWCS_COLUMNS:
        found |= rows[column].str.contains(needle, regex=False).to_numpy()
    return found


def parse_ids(texts: pd.Series) -> pd.Series:
    """Ids as exact Int64 from their decimal text (see ID_PATTERN); <NA> where the text is not such an id."""
    length = texts.str.len()
    valid = (
        texts.str.fullmatch(ID_PATTERN)
        & ((length < len(INT64_MAX_TEXT)) | ((length == len(INT64_MAX_TEXT)) & (texts <= INT64_MAX_TEXT)))
    ).to_numpy(dtype=bool)
    values = np.zeros(len(texts), dtype=np.int64)
    # Built from an int64 array and a mask: assigning into an Int64 Series with <NA> rounds through float64.
    values[valid] = texts[valid].to_numpy(dtype=str).astype(np.int64)
    return pd.Series(pd.arrays.IntegerArray(values, ~valid), index=texts.index)


def _type_inbound(rows: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    tweet_id = parse_ids(rows["tweet_id"])
    # The Kaggle file writes this column as floats ("3.0"; it has gaps): a ".0" written after the digits is
    # dropped before parsing the digits exactly. Anything else (2001.5, 1e5) is not an id.
    replied_to = parse_ids(rows["in_response_to_tweet_id"].str.removesuffix(".0"))
    created_at = pd.to_datetime(rows["created_at"], format=CREATED_AT_FORMAT, utc=True, errors="coerce")
    problems = {
        "tweet_id_not_integer": tweet_id.isna().to_numpy(),
        "in_response_to_tweet_id_not_integer": (replied_to.isna() & rows["in_response_to_tweet_id"].ne("")).to_numpy(),
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
            "in_response_to_tweet_id": replied_to[keep],
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


def _split_after_silence(inbound: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Quarantine the few tweets dated after a long silence: after more than MAX_SILENT_DAYS without tweets,
    when what follows holds under MAX_ISOLATED_SHARE of them (a second real period would hold more).

    Only later dates: the partition range has a configured first day, so earlier stragglers are counted
    outside it and never run, but it is open towards today, so one late tweet would stretch every run.
    """
    per_day = inbound["day"].value_counts().sort_index()
    gaps = np.diff(pd.to_datetime(per_day.index).to_numpy()) / np.timedelta64(1, "D")
    share_after = 1 - per_day.cumsum().to_numpy()[:-1] / max(len(inbound), 1)
    cuts = np.flatnonzero((gaps > MAX_SILENT_DAYS) & (share_after < MAX_ISOLATED_SHARE))
    last_day = per_day.index[cuts[0]] if len(cuts) else "9999-12-31"
    late = (inbound["day"] > last_day).to_numpy()
    detail = f"after more than {MAX_SILENT_DAYS} days without tweets following {last_day}"
    return inbound[~late], _quarantine(inbound[late].assign(inbound="True"), "created_at_after_long_silence", detail)


def thread_ids(inbound: pd.DataFrame, replies: pd.DataFrame) -> pd.Series:
    """Per customer tweet, the tweet_id of the first tweet of its conversation, computed over the whole source so
    that a tweet's thread never depends on which days a run reads.

    The reply chain decides where the source holds it: a tweet's chain (customer and agent tweets alike, through
    `in_response_to_tweet_id`) leads back to the customer tweet that answered nothing. Where a link is missing (an
    extract of twcs lacks most agent tweets), the tweet continues the customer's latest thread with the same brand.
    """
    root = chain_roots(inbound, replies)
    opened = inbound["in_response_to_tweet_id"].isna().to_numpy()
    chain_reaches_an_opener = np.isin(root, inbound.loc[opened, "tweet_id"].to_numpy(np.int64))
    return pd.Series(
        np.where(chain_reaches_an_opener, root, customer_brand_runs(inbound, replies)), index=inbound.index
    )


def chain_roots(inbound: pd.DataFrame, replies: pd.DataFrame) -> np.ndarray:
    """Per customer tweet, the earliest tweet of its reply chain that the source holds."""
    reply_ids = parse_ids(replies["tweet_id"]).to_numpy(np.int64, na_value=-1)
    ids = np.concatenate([inbound["tweet_id"].to_numpy(np.int64), reply_ids])
    parents = pd.concat(
        [inbound["in_response_to_tweet_id"], parse_ids(replies["in_response_to_tweet_id"].str.removesuffix(".0"))],
        ignore_index=True,
    )
    chain = pd.DataFrame({"id": ids, "parent": parents.to_numpy(np.int64, na_value=-1)})
    chain = chain[chain["id"] >= 0].drop_duplicates("id")
    # A tweet answering nothing, or answering a tweet the source does not hold, ends the chain.
    held = chain["parent"].isin(chain["id"])
    root = pd.Series(np.where(held, chain["parent"], chain["id"]), index=chain["id"].to_numpy())
    # Pointer jumping: each pass doubles the length of chain followed, so a few dozen passes cover any thread;
    # the cap only guards against reply cycles in a malformed file.
    for _ in range(64):
        jumped = root.reindex(root.to_numpy()).to_numpy()
        if np.array_equal(jumped, root.to_numpy()):
            break
        root = pd.Series(jumped, index=root.index)
    return root.reindex(inbound["tweet_id"].to_numpy()).to_numpy(np.int64)


def customer_brand_runs(inbound: pd.DataFrame, replies: pd.DataFrame) -> np.ndarray:
    """Per customer tweet, the first tweet of its run of tweets to one brand, a run starting anew at each tweet
    that answers nothing."""
    lookup = brand_lookup(replies["author_id"].unique())
    brand = [
        addressed_brand(text, thread_brand, lookup)
        for text, thread_brand in zip(inbound["text"], inbound["thread_brand"], strict=True)
    ]
    tweets = inbound[["tweet_id", "author_id", "created_at", "in_response_to_tweet_id"]].assign(brand=brand)
    order = tweets.sort_values(["author_id", "brand", "created_at", "tweet_id"]).index
    ordered = tweets.loc[order]
    same_pair = (ordered["author_id"] == ordered["author_id"].shift()) & (ordered["brand"] == ordered["brand"].shift())
    starts = ~same_pair.to_numpy() | ordered["in_response_to_tweet_id"].isna().to_numpy()
    first_row = np.maximum.accumulate(np.where(starts, np.arange(len(ordered)), 0))
    run = pd.Series(ordered["tweet_id"].to_numpy(np.int64)[first_row], index=order)
    return run.loc[inbound.index].to_numpy(np.int64)


def thread_brands(inbound: pd.DataFrame, reply_authors: pd.DataFrame) -> pd.Series:
    """The brand handle that took part in each customer tweet's thread ("" when none is in the source).

    A customer tweet either answers a brand reply (`in_response_to_tweet_id`) or is answered by one
    (`response_tweet_id`, a comma-separated list); the author of that reply is the addressed brand.
    """
    author_by_id = (
        reply_authors.assign(tweet_id=parse_ids(reply_authors["tweet_id"]))
        .dropna(subset=["tweet_id"])
        .drop_duplicates("tweet_id")
        .set_index("tweet_id")["author_id"]
    )
    answered_by = inbound["in_response_to_tweet_id"].map(author_by_id).astype(object)
    responses = inbound["response_tweet_id"].str.split(",").explode()
    responses = parse_ids(responses.str.strip()).dropna().map(author_by_id).dropna()
    first_responder = responses.groupby(level=0).first()
    brand = answered_by.fillna(first_responder.reindex(inbound.index))
    return brand.where(brand.notna(), "").astype(str)
