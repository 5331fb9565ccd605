"""A corpus of SYNTHETIC bad twcs.csv inputs (not real data): one builder per kind of breakage.

Each case is valid twcs.csv except for the one problem it names, so a test can tell exactly which
rows must be kept, which quarantined (and why), or which whole-file error must stop the run.
"""

import gzip
import io
import zipfile
from dataclasses import dataclass, field

import pandas as pd

HEADER = '"tweet_id","author_id","inbound","created_at","text","response_tweet_id","in_response_to_tweet_id"\n'
DATE = "Tue Oct 31 22:10:47 +0000 2017"


def row(
    tweet_id="1001", author="900001", inbound="True", created_at=DATE, text="synthetic: my order is late", replied_to=""
):
    return f'"{tweet_id}","{author}","{inbound}","{created_at}","{text}","","{replied_to}"\n'


BUSY_DAY = [row(str(tweet_id)) for tweet_id in range(3000, 3200)]
GOOD_ROWS = row("1001") + row("1002", text="synthetic: app keeps crashing") + row("2001", "SyntheticBrand", "False")


@dataclass(frozen=True)
class BadInput:
    name: str
    content: bytes
    error_mentions: tuple[str, ...] = ()  # a whole-file error must mention all of these
    quarantined: dict[str, int] = field(default_factory=dict)  # reason -> rows
    inbound_kept: int = 0
    suffix: str = ".csv"


def _csv(*parts: str) -> bytes:
    return "".join(parts).encode()


def _zipped(content: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("twcs.csv", content)
    return buffer.getvalue()


def _parquet(content: bytes) -> bytes:
    buffer = io.BytesIO()
    pd.read_csv(io.BytesIO(content), dtype=str).to_parquet(buffer)
    return buffer.getvalue()


CORPUS = [
    BadInput("empty_file", b"", error_mentions=("line 1", "empty")),
    BadInput("header_only", _csv(HEADER), error_mentions=("line 2", "no data rows")),
    BadInput(
        "missing_required_column",
        _csv(HEADER.replace('"created_at",', ""), '"1001","900001","True","synthetic","",""\n'),
        error_mentions=("line 1", "created_at"),
    ),
    BadInput(
        "unbalanced_quote_at_end",
        _csv(HEADER, GOOD_ROWS, '"1003","900001","True","' + DATE + '","synthetic: never closed,"",""\n'),
        error_mentions=("EOF inside string", "row"),
    ),
    BadInput(
        # A quote left open mid-file runs on into the next record; the parser reports one bad line.
        "unbalanced_quote_mid_file",
        _csv(HEADER, row("1001"), '"1003","900001","True","' + DATE + '","synthetic: open,"",""\n', row("1004")),
        quarantined={"wrong_field_count": 1},
        inbound_kept=1,
    ),
    BadInput(
        "wrong_column_count",
        _csv(HEADER, GOOD_ROWS, row("1003").replace('""\n', '"","extra","fields"\n')),
        quarantined={"wrong_field_count": 1},
        inbound_kept=2,
    ),
    BadInput(
        "non_utf8_bytes",
        _csv(HEADER, GOOD_ROWS) + row("1003", text="synthetic: caf\udce9").encode("utf-8", "surrogateescape"),
        quarantined={"not_utf8": 1},
        inbound_kept=2,
    ),
    BadInput(
        "nul_bytes", _csv(HEADER, GOOD_ROWS, row("1003", text="synthetic:\x00nul")), {}, {"contains_nul_byte": 1}, 2
    ),
    BadInput(
        "unparsable_created_at",
        _csv(HEADER, GOOD_ROWS, row("1003", created_at="yesterday at noon")),
        quarantined={"created_at_unparsable": 1},
        inbound_kept=2,
    ),
    BadInput(
        "non_numeric_tweet_id",
        _csv(HEADER, GOOD_ROWS, row("12ab")),
        quarantined={"tweet_id_not_integer": 1},
        inbound_kept=2,
    ),
    BadInput(
        "duplicate_tweet_id_different_text",
        _csv(HEADER, GOOD_ROWS, row("1001", text="synthetic: a different text")),
        quarantined={"duplicate_tweet_id_conflicting_text": 1},
        inbound_kept=2,
    ),
    BadInput(
        "one_megabyte_text",
        _csv(HEADER, GOOD_ROWS, row("1003", text="x" * 1_000_000)),
        quarantined={"text_too_long": 1},
        inbound_kept=2,
    ),
    BadInput(
        # Far over a tweet's 280 characters, yet under the old 10,000 limit: its repeated words renamed a category.
        "text_of_9999_characters",
        _csv(HEADER, GOOD_ROWS, row("1003", text=("synthetic: arrived package finger " * 300)[:9_999])),
        quarantined={"text_too_long": 1},
        inbound_kept=2,
    ),
    BadInput(
        "inbound_not_true_or_false",
        _csv(HEADER, GOOD_ROWS, row("1003", inbound="yes"), row("1004", inbound="1"), row("1005", inbound="")),
        quarantined={"inbound_not_true_or_false": 3},
        inbound_kept=2,
    ),
    BadInput(
        # Each of these went through a float before: 42.0 and 1e5 became ids, -17 and " 123 " were accepted.
        "tweet_id_not_a_plain_integer",
        _csv(HEADER, GOOD_ROWS, *(row(i) for i in ("42.0", "1e5", "-17", " 123 ", "01003", "9223372036854775808"))),
        quarantined={"tweet_id_not_integer": 6},
        inbound_kept=2,
    ),
    BadInput(
        "in_response_to_tweet_id_not_integer",
        _csv(HEADER, GOOD_ROWS, row("1003", replied_to="2001.5")),
        quarantined={"in_response_to_tweet_id_not_integer": 1},
        inbound_kept=2,
    ),
    BadInput(
        "short_row_mid_file",
        _csv(HEADER, row("1001"), f'"1003","900001","True","{DATE}"\n', row("1002")),
        quarantined={"wrong_field_count": 1},
        inbound_kept=2,
    ),
    BadInput(
        "file_cut_after_the_fourth_field",
        _csv(HEADER, GOOD_ROWS, f'"1003","900001","True","{DATE}"'),
        quarantined={"wrong_field_count": 1},
        inbound_kept=2,
    ),
    BadInput(
        # Skipped by the parser, so they must not shift the record numbers that find short rows.
        "blank_and_whitespace_only_lines",
        _csv(HEADER, row("1001"), "\n", "   \n", row("1002"), f'"1003","900001","True","{DATE}"\n'),
        quarantined={"wrong_field_count": 1},
        inbound_kept=2,
    ),
    BadInput(
        # One tweet dated years after the other 200 would stretch the open-ended run up to its day.
        "isolated_far_future_date",
        _csv(HEADER, *BUSY_DAY, row("1003", created_at="Mon Jan 01 09:00:00 +0000 2024")),
        quarantined={"created_at_after_long_silence": 1},
        inbound_kept=len(BUSY_DAY),
    ),
    BadInput(
        # A second period after a silence, too large to be strays: kept, it is data.
        "second_period_after_a_silence",
        _csv(HEADER, *BUSY_DAY, *(row(str(5000 + i), created_at="Mon Jan 01 09:00:00 +0000 2018") for i in range(10))),
        inbound_kept=len(BUSY_DAY) + 10,
    ),
    BadInput("zip_named_csv", _zipped(_csv(HEADER, GOOD_ROWS)), error_mentions=("not a CSV", "looks like zip")),
    BadInput(
        "parquet_named_csv", _parquet(_csv(HEADER, GOOD_ROWS)), error_mentions=("not a CSV", "looks like parquet")
    ),
    BadInput(
        "plain_csv_named_csv_gz",
        _csv(HEADER, GOOD_ROWS),
        error_mentions=("not gzip-compressed", "plain text"),
        suffix=".csv.gz",
    ),
    BadInput(
        "truncated_csv_gz",
        gzip.compress(_csv(HEADER, *(row(str(1000 + i)) for i in range(2000))))[:-100],
        error_mentions=("truncated or corrupt",),
        suffix=".csv.gz",
    ),
]
