"""Reading a real twcs.csv slice: typed inbound tweets, thread brands, the parsed cache, its fingerprint."""

import csv
import errno
import json
import pathlib

import pandas as pd
import pytest

from support_nlp.core import twcs
from support_nlp.core.privacy import KIND_NAMES, mask_texts
from support_nlp.core.twcs import (
    CREATED_AT_FORMAT,
    SourceFormatError,
    SourceSummary,
    parse_source,
    read_twcs,
    source_fingerprint,
)
from support_nlp_tests.conftest import OUT_OF_RANGE_TWEET_IDS, SLICE_DAYS


@pytest.fixture(scope="module")
def raw_file(real_slice_csv) -> pd.DataFrame:
    """The slice file exactly as written, every column a string."""
    return pd.read_csv(real_slice_csv, dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def parsed(real_slice_csv):
    return read_twcs(real_slice_csv)


@pytest.fixture(scope="module")
def cached(real_slice_csv, tmp_path_factory):
    cache_dir = tmp_path_factory.mktemp("cache")
    return cache_dir, parse_source(real_slice_csv, cache_dir)


def expected_thread_brand(row: pd.Series, author_by_id: dict[str, str]) -> str:
    """Independent reimplementation of the documented rule: the brand answered, else the first brand reply."""
    if row["in_response_to_tweet_id"] in author_by_id:
        return author_by_id[row["in_response_to_tweet_id"]]
    for reply in row["response_tweet_id"].split(","):
        if reply.strip() in author_by_id:
            return author_by_id[reply.strip()]
    return ""


def test_every_inbound_row_is_read(raw_file, parsed, slice_inbound_count):
    inbound, quarantine, summary = parsed
    file_inbound = raw_file[raw_file["inbound"] == "True"]
    assert len(inbound) == len(file_inbound) == slice_inbound_count + OUT_OF_RANGE_TWEET_IDS
    assert sorted(inbound["tweet_id"].tolist()) == sorted(file_inbound["tweet_id"].astype(int).tolist())
    assert len(quarantine) == summary.rows_quarantined == 0
    assert summary.rows_in == len(raw_file)
    assert summary.rows_inbound_kept == len(inbound)
    assert summary.rows_outbound == int((raw_file["inbound"] == "False").sum())
    assert list(summary.brands) == sorted(raw_file.loc[raw_file["inbound"] == "False", "author_id"].unique())
    # Texts come through with personal data masked and nothing else changed; authors unchanged.
    by_id = file_inbound.set_index(file_inbound["tweet_id"].astype(int))
    file_texts = by_id.loc[inbound["tweet_id"], "text"]
    masked, masked_by_kind = mask_texts(file_texts)
    assert inbound["text"].tolist() == masked.tolist()
    assert summary.personal_data_masked == {kind: masked_by_kind[kind] for kind in KIND_NAMES}
    assert summary.personal_data_masked["email"] > 0  # twcs' own __email__ tokens
    assert inbound["author_id"].tolist() == by_id.loc[inbound["tweet_id"], "author_id"].tolist()


def test_column_types(parsed):
    inbound, _, _ = parsed
    assert inbound["tweet_id"].dtype == "int64"
    assert isinstance(inbound["created_at"].dtype, pd.DatetimeTZDtype)
    assert str(inbound["created_at"].dt.tz) == "UTC"
    assert inbound["in_response_to_tweet_id"].dtype == pd.Int64Dtype()
    replies_to = inbound["in_response_to_tweet_id"]
    assert replies_to.isna().any() and replies_to.notna().any()


def test_every_row_has_its_utc_day(raw_file, parsed):
    inbound, _, summary = parsed
    assert inbound["day"].notna().all()
    assert (inbound["day"] == inbound["created_at"].dt.strftime("%Y-%m-%d")).all()
    assert set(SLICE_DAYS) <= set(inbound["day"])
    assert sum(day < "2017-10-01" for day in inbound["day"]) == OUT_OF_RANGE_TWEET_IDS
    created = pd.to_datetime(raw_file["created_at"], format=CREATED_AT_FORMAT, utc=True)
    file_days = created[raw_file["inbound"] == "True"].dt.strftime("%Y-%m-%d").value_counts().to_dict()
    assert summary.inbound_rows_per_day == file_days


def test_thread_brand_is_the_author_of_the_brand_reply(raw_file, parsed):
    inbound, _, _ = parsed
    outbound = raw_file[raw_file["inbound"] == "False"]
    author_by_id = dict(zip(outbound["tweet_id"], outbound["author_id"], strict=True))
    file_inbound = raw_file[raw_file["inbound"] == "True"].set_index("tweet_id")
    expected = [expected_thread_brand(file_inbound.loc[str(i)], author_by_id) for i in inbound["tweet_id"]]
    assert inbound["thread_brand"].tolist() == expected
    brands = set(inbound["thread_brand"]) - {""}
    assert brands <= set(outbound["author_id"])
    # In this real slice most replies in the threads are not part of the sample, yet dozens resolve.
    assert (inbound["thread_brand"] != "").sum() >= 40 and len(brands) >= 5


def test_parse_source_builds_the_cache_once(real_slice_csv, cached, monkeypatch):
    cache_dir, first = cached
    assert first.directory == cache_dir / source_fingerprint(real_slice_csv)
    assert first.summary.fingerprint == first.directory.name
    assert sorted(p.name for p in cache_dir.iterdir()) == [first.directory.name]  # no staging folder left

    def no_reparse(*args, **kwargs):
        raise AssertionError("read_twcs called although this source version is cached")

    monkeypatch.setattr(twcs, "read_twcs", no_reparse)
    second = parse_source(real_slice_csv, cache_dir)
    assert second.directory == first.directory
    assert second.summary == first.summary
    # A fresh cache folder does parse (and so hits the patched reader).
    with pytest.raises(AssertionError, match="read_twcs called"):
        parse_source(real_slice_csv, cache_dir / "elsewhere")


def test_read_days_returns_exactly_the_requested_days(cached, real_inbound):
    _, source = cached
    days = [SLICE_DAYS[0], SLICE_DAYS[3]]
    rows = source.read_days(days)
    expected = real_inbound[real_inbound["day"].isin(days)]
    assert len(rows) == len(expected)
    assert set(rows["day"]) == set(days)
    assert sorted(rows["tweet_id"].tolist()) == sorted(expected["tweet_id"].astype(int).tolist())
    assert rows["tweet_id"].dtype == "int64" and rows["in_response_to_tweet_id"].dtype == pd.Int64Dtype()
    assert isinstance(rows["created_at"].dtype, pd.DatetimeTZDtype)
    assert source.rows_per_day[SLICE_DAYS[0]] == int((rows["day"] == SLICE_DAYS[0]).sum())
    assert len(source.read_days(["2017-11-07"])) == 0  # the gap day of the slice
    assert len(source.read_quarantine()) == 0


def test_read_days_of_no_day_is_empty(cached):
    _, source = cached
    assert len(source.read_days([])) == 0


def test_fingerprint_follows_the_file_content(real_slice_csv, raw_file, tmp_path):
    original = source_fingerprint(real_slice_csv)
    copy = tmp_path / "copy.csv.gz"
    copy.write_bytes(pathlib.Path(real_slice_csv).read_bytes())
    assert source_fingerprint(str(copy)) == original
    modified = tmp_path / "modified.csv.gz"
    raw_file.iloc[1:].to_csv(modified, index=False, quoting=csv.QUOTE_ALL)  # one real row fewer
    assert source_fingerprint(str(modified)) != original
    edited = parse_source(str(modified), tmp_path / "cache")
    assert edited.directory.name == source_fingerprint(str(modified))
    assert edited.summary.rows_in == len(raw_file) - 1


def test_missing_column_is_a_source_format_error(bundled_sample, tmp_path):
    broken = tmp_path / "no_reply_ids.csv"
    bundled_sample.head(50).drop(columns="in_response_to_tweet_id").to_csv(broken, index=False)
    with pytest.raises(SourceFormatError, match="no_reply_ids.csv") as error:
        read_twcs(str(broken))
    assert "in_response_to_tweet_id" in str(error.value)


def test_summary_file_matches_the_returned_summary(cached):
    _, source = cached
    assert SourceSummary.from_json(json.loads((source.directory / "summary.json").read_text())) == source.summary
    assert source.inbound_path.exists() and source.quarantine_path.exists()


def test_synthetic_18_digit_ids_survive_exactly_beside_a_bad_id(raw_file, parsed, tmp_path):
    """Real rows with their ids moved into Twitter's 18-digit range (edited, so synthetic), plus one unparsable id:
    every id stays exact and thread brands resolve as before, instead of the whole chunk going through float64."""
    offset = 10**17 * 9 + 1  # past 2**53: a float would round these ids

    def widened(ids: pd.Series) -> pd.Series:
        return ids.str.split(",").map(lambda parts: ",".join(str(int(p) + offset) if p else "" for p in parts))

    edited = raw_file.assign(
        tweet_id=widened(raw_file["tweet_id"]),
        response_tweet_id=widened(raw_file["response_tweet_id"]),
        in_response_to_tweet_id=widened(raw_file["in_response_to_tweet_id"]),
    )
    bad = edited.iloc[[0]].assign(tweet_id="9.00000000000000001e17", inbound="True")
    path = tmp_path / "synthetic_18_digit_ids.csv"
    pd.concat([edited, bad]).to_csv(path, index=False, quoting=csv.QUOTE_ALL)
    inbound, quarantine, _ = read_twcs(str(path))
    original, _, _ = parsed
    assert quarantine["reason"].tolist() == ["tweet_id_not_integer"]
    assert sorted(inbound["tweet_id"]) == sorted(original["tweet_id"] + offset)
    assert inbound["tweet_id"].min() > 2**53
    by_id = inbound.set_index(inbound["tweet_id"] - offset)
    assert by_id.loc[original["tweet_id"], "thread_brand"].tolist() == original["thread_brand"].tolist()
    replied = original.dropna(subset=["in_response_to_tweet_id"])
    widened_replies = by_id.loc[replied["tweet_id"], "in_response_to_tweet_id"].to_numpy()
    assert (widened_replies == replied["in_response_to_tweet_id"].to_numpy() + offset).all()


def test_a_damaged_parse_cache_is_rebuilt_not_reused(real_slice_csv, tmp_path):
    first = parse_source(real_slice_csv, tmp_path)
    intact = first.inbound_path.read_bytes()
    first.inbound_path.write_bytes(intact[: len(intact) // 2])  # summary.json still there, the Parquet cut
    reports: list[str] = []
    rebuilt = parse_source(real_slice_csv, tmp_path, report=reports.append)
    assert any("damaged" in line and str(first.inbound_path) in line for line in reports)
    assert rebuilt.directory == first.directory and rebuilt.inbound_path.read_bytes() == intact
    assert len(rebuilt.read_days(SLICE_DAYS)) == sum(rebuilt.rows_per_day[day] for day in SLICE_DAYS)
    assert sorted(p.name for p in tmp_path.iterdir()) == [first.directory.name]  # nothing damaged left beside it


def test_a_full_disk_while_caching_names_the_cache_and_leaves_no_staging(real_slice_csv, tmp_path, monkeypatch):
    def disk_full(table, where, **kwargs):
        pathlib.Path(where).write_bytes(b"PAR1")  # a partial file, as a real ENOSPC leaves one
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(twcs.pq, "write_table", disk_full)
    with pytest.raises(OSError, match="No space left on device") as raised:
        parse_source(real_slice_csv, tmp_path)
    assert raised.value.errno == errno.ENOSPC
    assert str(tmp_path / source_fingerprint(real_slice_csv)) in str(raised.value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("damage", ["summary_deleted", "summary_field_missing", "quarantine_bit_flipped"])
def test_other_damage_to_the_parse_cache_is_rebuilt_too(real_slice_csv, tmp_path, damage):
    first = parse_source(real_slice_csv, tmp_path)
    if damage == "summary_deleted":
        (first.directory / "summary.json").unlink()
    elif damage == "summary_field_missing":  # e.g. written by a version that recorded less
        written = json.loads((first.directory / "summary.json").read_text())
        del written["personal_data_masked"]
        (first.directory / "summary.json").write_text(json.dumps(written))
    else:
        content = bytearray(first.quarantine_path.read_bytes())
        content[len(content) // 2] ^= 0x01
        first.quarantine_path.write_bytes(bytes(content))
    rebuilt = parse_source(real_slice_csv, tmp_path)
    assert rebuilt.summary == first.summary and rebuilt.damage() is None


def test_reply_ids_written_as_floats_like_the_kaggle_file_are_read_exactly(raw_file, parsed, tmp_path):
    """The Kaggle twcs.csv writes in_response_to_tweet_id as "3.0"; the same real rows written that way
    (edited, so synthetic) give the same tweets and thread brands."""
    with_floats = raw_file.assign(
        in_response_to_tweet_id=raw_file["in_response_to_tweet_id"].where(
            raw_file["in_response_to_tweet_id"].eq(""), raw_file["in_response_to_tweet_id"] + ".0"
        )
    )
    path = tmp_path / "synthetic_float_reply_ids.csv"
    with_floats.to_csv(path, index=False, quoting=csv.QUOTE_ALL)
    inbound, quarantine, _ = read_twcs(str(path))
    original, _, _ = parsed
    assert len(quarantine) == 0
    pd.testing.assert_frame_equal(inbound, original)
