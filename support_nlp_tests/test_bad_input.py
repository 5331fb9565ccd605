"""Bad input gives a clear whole-file error or a counted quarantine, never silent loss (synthetic corpus)."""

import csv

import pytest

from support_nlp.core.language import detect_languages
from support_nlp.core.text import clean_frame
from support_nlp.core.twcs import SourceFormatError, parse_source, read_twcs
from support_nlp.pipeline import days_with_data
from support_nlp_tests.bad_inputs import CORPUS, HEADER, row


@pytest.fixture
def write_source(tmp_path):
    def write(name: str, content: bytes, suffix: str = ".csv") -> str:
        path = tmp_path / f"synthetic_{name}{suffix}"
        path.write_bytes(content)
        return str(path)

    return write


@pytest.mark.parametrize("case", [c for c in CORPUS if c.error_mentions], ids=lambda c: c.name)
def test_whole_file_problems_stop_with_an_error_naming_the_file_and_line(case, write_source):
    path = write_source(case.name, case.content, case.suffix)
    with pytest.raises(SourceFormatError) as raised:
        read_twcs(path)
    message = str(raised.value)
    assert path in message
    for words in case.error_mentions:
        assert words in message
    assert message.isprintable()  # no binary bytes on the terminal


@pytest.mark.parametrize("case", [c for c in CORPUS if not c.error_mentions], ids=lambda c: c.name)
def test_row_problems_are_quarantined_with_a_reason_and_counted(case, write_source):
    inbound, quarantine, summary = read_twcs(write_source(case.name, case.content))
    assert quarantine["reason"].value_counts().to_dict() == case.quarantined
    assert len(inbound) == case.inbound_kept
    assert summary.rows_in == summary.rows_outbound + summary.rows_inbound_kept + summary.rows_quarantined
    assert set(inbound["tweet_id"]) <= {1001, 1002, 1003, 1004} | set(range(3000, 3200)) | set(range(5000, 5010))
    # Too many fields: pandas skips the line and names it; too few: the record number (lines can hold newlines).
    bad_lines = quarantine[quarantine["reason"] == "wrong_field_count"]
    assert (bad_lines["line"].notna() | bad_lines["record"].notna()).all()
    assert bad_lines["detail"].str.contains("expected 7 fields").all()
    # Quarantined texts are truncated, so a megabyte-long broken field cannot bloat the quarantine file.
    assert (quarantine["text"].fillna("").str.len() <= 2_000).all()


def test_texts_of_only_urls_mentions_or_emoji_are_kept_and_flagged(write_source):
    path = write_source(
        "only_urls_mentions_emoji",
        (
            HEADER
            + row("1001", text="@SyntheticBrand https://t.co/abc123")
            + row("1002", text="@SyntheticBrand @900002")
            + row("1003", text="@SyntheticBrand 😡😡")
        ).encode(),
    )
    inbound, quarantine, _ = read_twcs(path)
    assert len(quarantine) == 0
    cleaned = clean_frame(inbound, known_brands=frozenset({"SyntheticBrand"}))
    flags = dict(zip(cleaned["tweet_id"], cleaned["is_empty"], strict=True))
    assert flags == {1001: True, 1002: True, 1003: False}
    assert "enraged face" in cleaned.loc[cleaned["tweet_id"] == 1003, "text_clean"].item()
    assert detect_languages(cleaned["text_clean"].tolist())[:2] == ["und", "und"]


def test_a_source_whose_every_inbound_row_is_quarantined_says_so_with_counts(real_inbound, tmp_path):
    """Real tweets with their ids and dates broken (edited, so synthetic): the run stops naming the reasons."""
    rows = real_inbound.drop(columns="day").head(30).copy()
    rows.loc[rows.index[:20], "tweet_id"] = rows["tweet_id"].head(20) + ".0"
    rows.loc[rows.index[20:], "created_at"] = "yesterday"
    path = tmp_path / "synthetic_all_quarantined.csv"
    rows.to_csv(path, index=False, quoting=csv.QUOTE_ALL)
    parsed = parse_source(str(path), tmp_path / "cache")
    with pytest.raises(ValueError) as raised:
        days_with_data(parsed)
    message = str(raised.value)
    assert "no inbound tweet was kept: 30 rows quarantined" in message
    assert "tweet_id_not_integer 20" in message and "created_at_unparsable 10" in message
    assert str(parsed.quarantine_path) in message


def test_a_file_without_header_shows_its_first_tweet_masked_in_the_error(real_inbound, write_source):
    """Real rows written without their header (synthetic): the error quotes the first row, never its phone number."""
    text = real_inbound.loc[real_inbound["text"].str.contains(r"\(706\)614-7640"), "text"].iloc[0]
    rows = real_inbound.drop(columns="day")
    first = rows[rows["text"] == text]
    path = write_source("no_header", first.to_csv(index=False, header=False).encode())
    with pytest.raises(SourceFormatError, match="missing required column") as raised:
        read_twcs(path)
    assert "<PHONE>" in str(raised.value) and "614-7640" not in str(raised.value)
