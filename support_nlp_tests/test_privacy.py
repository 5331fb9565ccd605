"""Personal data is masked before it leaves raw_tweets: real tweets of the bundled sample, and synthetic fixtures
for the kinds twcs lacks (it masked e-mail addresses itself and holds no IBAN)."""

import re
from collections import Counter

import dagster as dg
import pandas as pd
import pytest

from support_nlp.core import privacy
from support_nlp.core.privacy import KIND_NAMES, mask_personal_data, mask_texts
from support_nlp.core.text import MENTION_PATTERN, URL_PATTERN, mentions
from support_nlp.core.twcs import read_twcs
from support_nlp_tests.bad_inputs import GOOD_ROWS, HEADER, row
from support_nlp_tests.conftest import slice_definitions
from support_nlp_tests.test_text import first_text

# (a pattern that finds the real tweet, the personal data in it, its placeholder)
REAL_PERSONAL_DATA = [
    (r"CAS-19708536-CB92N2", "CAS-19708536-CB92N2", "<REFERENCE>"),
    (r"Order# 3632693-6196346", "3632693-6196346", "<REFERENCE>"),
    (r"Order 111-5014070-4118645", "111-5014070-4118645", "<REFERENCE>"),
    (r"Reference number is 16934380", "16934380", "<REFERENCE>"),
    (r"\+1\(818\)930-5703", "+1(818)930-5703", "<PHONE>"),
    (r"\(706\)614-7640", "(706)614-7640", "<PHONE>"),
    (r"^@British_Airways 00447900248601", "00447900248601", "<PHONE>"),
    (r"\+91-90002-89198", "+91-90002-89198", "<PHONE>"),
    (r"Paul Garrison 850\.266\.3576", "850.266.3576", "<PHONE>"),
    (r"^@British_Airways can I just confirm the email", "__email__", "<EMAIL>"),
]
# Numbers in real tweets that say what went wrong, when or where, and whose masking would only blur the topic.
REAL_NOT_PERSONAL = [
    r"version 61\.0\.3163\.100",  # a software version
    r"\[137\.221\.83\.74\]",  # an IP address of a traceroute
    r"error msg\( 0xc1900107\)",  # a Windows update error code
    r"afternoon 3:00 pm",  # a time (the tweet's phone number aside)
    r"London on 28/11/17",  # dates (the tweet's phone number aside)
]


@pytest.mark.parametrize(
    ("pattern", "secret", "placeholder"), REAL_PERSONAL_DATA, ids=[r[1] for r in REAL_PERSONAL_DATA]
)
def test_personal_data_in_real_tweets_is_replaced_by_its_placeholder(real_inbound, pattern, secret, placeholder):
    text = first_text(real_inbound, pattern)
    masked, counts = mask_personal_data(text)
    assert secret not in masked
    assert masked.replace(placeholder, secret, 1) == text  # only that span changed
    assert counts[placeholder.strip("<>").lower()] == 1


@pytest.mark.parametrize("pattern", REAL_NOT_PERSONAL)
def test_versions_addresses_codes_times_and_dates_in_real_tweets_stay(real_inbound, pattern):
    text = first_text(real_inbound, pattern)
    masked, _ = mask_personal_data(text)
    assert re.search(pattern, masked)


def test_every_real_tweet_keeps_its_handles_and_links_and_loses_its_long_numbers(real_inbound):
    masked, counts = mask_texts(real_inbound["text"])
    for text, clean in zip(real_inbound["text"], masked, strict=True):
        assert mentions(clean) == mentions(text)  # the addressed brand is still found
        assert URL_PATTERN.findall(clean) == URL_PATTERN.findall(text)
        outside_handles_and_links = MENTION_PATTERN.sub(" ", URL_PATTERN.sub(" ", clean))
        assert not re.search(r"\d{8}", outside_handles_and_links.replace("0x", "")), clean
    assert set(counts) <= set(KIND_NAMES)
    assert counts["email"] >= 100 and counts["phone"] >= 20 and counts["reference"] >= 20


def test_synthetic_kinds_twcs_lacks_are_masked_only_with_a_valid_checksum():
    masked, counts = mask_personal_data(
        "synthetic: write to jane.doe+support@example.co.uk, IBAN GB82 WEST 1234 5698 7654 32 or "
        "DE89370400440532013000, card 4111 1111 1111 1111 or 378282246310005, call +44 20 7946 0958"
    )
    assert masked == ("synthetic: write to <EMAIL>, IBAN <IBAN> or <IBAN>, card <CARD> or <CARD>, call <PHONE>")
    assert counts == Counter({"email": 1, "iban": 2, "card": 2, "phone": 1})
    # One digit off: the IBAN's mod-97 and the card's Luhn check fail, so they are not called IBAN or card.
    masked, counts = mask_personal_data("synthetic: GB82 WEST 1234 5698 7654 33 and 4111 1111 1111 1112")
    assert "<IBAN>" not in masked and "<CARD>" not in masked


def test_synthetic_source_is_masked_in_kept_and_quarantined_rows_and_counted(tmp_path):
    path = tmp_path / "synthetic_personal_data.csv"
    path.write_text(
        HEADER
        + GOOD_ROWS
        + row("1003", text="synthetic: reach me on +1 (415) 555-2671 or jane@example.com")
        + row("1004", text="synthetic: order 408-2997439-0864351, card 4111-1111-1111-1111")
        + row("1005", created_at="tomorrow", text="synthetic: IBAN DE89370400440532013000, call 0207 946 0958")
    )
    inbound, quarantine, summary = read_twcs(str(path))
    texts = dict(zip(inbound["tweet_id"], inbound["text"], strict=True))
    assert texts[1003] == "synthetic: reach me on <PHONE> or <EMAIL>"
    assert texts[1004] == "synthetic: order <REFERENCE>, card <CARD>"
    assert quarantine["text"].tolist() == ["synthetic: IBAN <IBAN>, call <PHONE>"]
    assert summary.personal_data_masked == {"email": 1, "iban": 1, "card": 1, "phone": 2, "reference": 1}


def test_raw_tweets_metadata_counts_masking_and_previews_only_masked_text(tmp_path, real_inbound):
    day_rows = real_inbound[real_inbound["day"] == "2017-11-05"].drop(columns="day")
    secret_row = day_rows.head(1).assign(tweet_id="1", text="synthetic: my number is +1 (415) 555-2671")
    broken_row = day_rows.head(1).assign(tweet_id="2", created_at="never", text="synthetic: card 4111111111111111")
    path = tmp_path / "synthetic_day.csv"
    pd.concat([day_rows.head(20), secret_row, broken_row]).to_csv(path, index=False)
    defs = slice_definitions(tmp_path, str(path))
    result = defs.resolve_job_def("daily_inference").execute_in_process(
        partition_key="2017-11-05", asset_selection=[dg.AssetKey("raw_tweets")], instance=dg.DagsterInstance.ephemeral()
    )
    metadata = {
        key: value.value
        for materialization in result.asset_materializations_for_node("raw_tweets")
        for key, value in materialization.metadata.items()
    }
    assert (
        metadata["source_personal_data_masked"]["phone"] >= 1 and metadata["source_personal_data_masked"]["card"] == 1
    )
    shown = str(metadata["preview"]) + str(metadata["quarantine_preview"])
    assert "<PHONE>" in shown and "<CARD>" in shown
    assert "555-2671" not in shown and "4111111111111111" not in shown


def test_the_quick_pre_check_changes_no_real_tweet(real_inbound, monkeypatch):
    """MAY_HOLD_PERSONAL_DATA only skips work: without it every real tweet is masked the same."""
    masked, counts = mask_texts(real_inbound["text"])
    monkeypatch.setattr(privacy, "MAY_HOLD_PERSONAL_DATA", re.compile(""))
    unfiltered, unfiltered_counts = mask_texts(real_inbound["text"])
    assert unfiltered.tolist() == masked.tolist() and unfiltered_counts == counts


def test_synthetic_reference_with_letters_between_its_digits_is_masked():
    masked, counts = mask_personal_data("synthetic: booking X12345Y678Z90 is missing")
    assert masked == "synthetic: booking <REFERENCE> is missing" and counts == Counter({"reference": 1})
