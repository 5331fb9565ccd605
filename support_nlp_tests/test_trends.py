"""Trends, spikes and alerts on the real bundled sample, with a synthetic burst of real tweets on a real day."""

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from support_nlp.core.classifier import UNCERTAIN_NAME
from support_nlp.core.conversation import ISSUE, NO_TOPIC, conversation_frame
from support_nlp.core.embedding import EmbeddingBatch, embed_texts
from support_nlp.core.encoders import load_encoder
from support_nlp.core.text import clean_frame
from support_nlp.core.trends import (
    ALL_TRAFFIC,
    UNCERTAIN_SHARE_RULE,
    VOLUME_SPIKE_RULE,
    brand_category_exceedances,
    by_day,
    category_exceedances,
    daily_volume,
    every_day,
    exceedances,
    recent_days,
    traffic_tide,
    uncertain_share_by_day,
)
from support_nlp.core.twcs import BUNDLED_SAMPLE, read_twcs
from support_nlp.defs.assets.inference import PREDICTION_COLUMNS
from support_nlp.defs.assets.trends import (
    BRAND_SPIKE_CHECK,
    CONVERSATION_ONLY,
    EMERGING_CLUSTER_CHECK,
    EMERGING_CLUSTER_RULE,
    EMERGING_TOPIC_CHECK,
    TOPIC_NOT_STATED,
    VOLUME_SPIKE_CHECK,
    emerging_cluster,
    emerging_cluster_check,
    trend_category,
)
from support_nlp.defs.sensors import build_alert_sensor
from support_nlp.settings import ALERT_WEBHOOK
from support_nlp_tests.conftest import slice_definitions

BURST_DAY = "2017-11-22"  # a real, ordinary day: 3 AppleSupport tweets against a median of 3 before it
BURST_BRAND = "AppleSupport"
BURST_TWEETS = 40
SYNTHETIC_BURST_TAG = "synthetic_burst"


@pytest.fixture(scope="module")
def real_tweets() -> pd.DataFrame:
    """Every real inbound tweet of the bundled sample inside the partition range, with its brand; each brand
    stands in for a category, so these tests need no model."""
    inbound, _, summary = read_twcs(str(BUNDLED_SAMPLE))
    tweets = clean_frame(inbound, frozenset(summary.brands))
    tweets = tweets[tweets["day"] >= "2017-10-01"].reset_index(drop=True)
    return tweets.assign(category_name=tweets["brand"], language="en", synthetic_burst=False)


def with_synthetic_burst(tweets: pd.DataFrame) -> pd.DataFrame:
    """BURST_TWEETS real BURST_BRAND tweets of other days, copied onto BURST_DAY with new ids, marked synthetic."""
    donors = tweets[(tweets["brand"] == BURST_BRAND) & (tweets["day"] != BURST_DAY)].head(BURST_TWEETS)
    burst = donors.assign(
        day=BURST_DAY,
        tweet_id=-(1 + pd.RangeIndex(len(donors))),
        in_response_to_tweet_id=pd.NA,
        synthetic_burst=True,
    )
    return pd.concat([tweets, burst], ignore_index=True)


def brand_exceedances(tweets: pd.DataFrame) -> pd.DataFrame:
    volume = daily_volume(tweets)
    daily = by_day(volume, "category_name", every_day(volume["day"].min(), volume["day"].max()))
    found = exceedances(daily, VOLUME_SPIKE_RULE)
    return found.set_index(["day", "series"])


def test_a_synthetic_burst_of_real_tweets_on_a_real_day_is_a_spike(real_tweets):
    before = brand_exceedances(real_tweets).loc[(BURST_DAY, BURST_BRAND)]
    assert not before["spike"] and before["value"] == 3
    after = brand_exceedances(with_synthetic_burst(real_tweets)).loc[(BURST_DAY, BURST_BRAND)]
    assert after["spike"] and after["value"] == 3 + BURST_TWEETS
    assert after["threshold"] == before["threshold"] < after["value"]  # the baseline is the days before only
    quiet_day = brand_exceedances(real_tweets).loc[("2017-11-23", BURST_BRAND)]
    assert not quiet_day["spike"]


def test_a_burst_at_one_brand_is_a_brand_spike_though_its_category_total_is_not(real_tweets):
    # Categories without a model: each tweet's real message kind (most of the burst's tweets are issues).
    by_kind = real_tweets.assign(category_name=conversation_frame(real_tweets)["message_kind"].to_numpy())
    days = every_day("2017-10-01", "2017-12-03")

    def judged(tweets):
        volume = daily_volume(tweets)
        per_brand = brand_category_exceedances(volume, days, excluded_categories=[])
        per_category = exceedances(by_day(volume, "category_name", days), VOLUME_SPIKE_RULE)
        return (
            per_brand.set_index(["day", "brand", "category"]).loc[(BURST_DAY, BURST_BRAND, ISSUE)],
            per_category.set_index(["day", "series"]).loc[(BURST_DAY, ISSUE)],
        )

    brand_before, total_before = judged(by_kind)
    brand_after, total_after = judged(with_synthetic_burst(by_kind))
    assert not brand_before["spike"] and not total_before["spike"]
    assert brand_after["spike"] and brand_after["value"] > brand_after["threshold"] == brand_before["threshold"]
    assert not total_after["spike"] and total_after["value"] > total_before["value"]


def test_a_day_when_all_traffic_rises_is_a_spike_of_all_traffic_and_of_the_categories_above_that_tide(real_tweets):
    daily = by_day(daily_volume(real_tweets), "category_name", every_day("2017-10-01", "2017-12-03"))
    tide = traffic_tide(daily)
    surge = tide.idxmax()  # 2017-10-31 in the bundled sample: its busiest day by far
    assert tide.min() == 1.0 and tide[surge] > 2
    plain = exceedances(daily, VOLUME_SPIKE_RULE)
    found = category_exceedances(daily).set_index(["day", "series"])
    assert found.loc[(surge, ALL_TRAFFIC), "spike"]
    on_surge = found.loc[surge].drop(index=ALL_TRAFFIC)
    plain_on_surge = plain[plain["day"] == surge].set_index("series")
    assert on_surge["spike"].sum() < plain_on_surge["spike"].sum()
    rose_above_tide = on_surge["value"] > plain_on_surge["threshold"] * tide[surge]
    assert (on_surge["spike"] == rose_above_tide).all()
    # An ordinary day's tide is ~1: a burst at one category still spikes there, and all traffic does not.
    burst = category_exceedances(by_day(daily_volume(with_synthetic_burst(real_tweets)), "category_name", daily.index))
    burst = burst.set_index(["day", "series"])
    assert burst.loc[(BURST_DAY, BURST_BRAND), "spike"] and not burst.loc[(BURST_DAY, ALL_TRAFFIC), "spike"]


EMERGING_TOPIC_WORD = "battery"  # real tweets of the iOS 11 battery drain complaints
UNCERTAIN_EVERY = 14  # about the share of issue messages the classifier leaves uncertain on the bundled sample


@pytest.fixture(scope="module")
def uncertain_week(real_tweets) -> pd.DataFrame:
    """Predictions as category_trends sees them: the real issue messages of the 7 days up to BURST_DAY, one in
    UNCERTAIN_EVERY uncertain; plus (synthetic_burst) every real battery tweet of the other days, copied onto
    BURST_DAY as uncertain issues with new ids."""
    kinds = conversation_frame(real_tweets)["message_kind"].to_numpy()
    week = recent_days(BURST_DAY, EMERGING_CLUSTER_RULE.recent_days)
    issues = real_tweets[(kinds == ISSUE) & real_tweets["day"].isin(week)]
    background = issues.assign(category_name=issues["brand"], message_kind=ISSUE)
    # Chosen by id, not position: which tweets are uncertain must not shift when a kind rule takes other tweets.
    background.loc[background["tweet_id"] % UNCERTAIN_EVERY == 0, "category_name"] = UNCERTAIN_NAME
    topic = real_tweets[
        real_tweets["text"].str.contains(EMERGING_TOPIC_WORD, case=False) & ~real_tweets["day"].isin(week)
    ].drop_duplicates("text_clean")
    burst = topic.assign(
        day=BURST_DAY,
        tweet_id=-(1 + pd.RangeIndex(len(topic))),
        category_name=UNCERTAIN_NAME,
        message_kind=ISSUE,
        synthetic_burst=True,
    )
    return pd.concat([background, burst], ignore_index=True)


def embeddings_of_uncertain(predicted: pd.DataFrame) -> dict[str, EmbeddingBatch]:
    uncertain = predicted[predicted["category_name"] == UNCERTAIN_NAME]
    vectors = embed_texts(uncertain["text_clean"].tolist(), load_encoder())
    return {
        day: EmbeddingBatch(uncertain["tweet_id"].to_numpy()[rows], vectors[rows], "all-MiniLM-L6-v2")
        for day, rows in uncertain.reset_index(drop=True).groupby("day").indices.items()
    }


def test_a_new_cluster_among_the_uncertain_tweets_is_an_emerging_topic(uncertain_week):
    embeddings = embeddings_of_uncertain(uncertain_week)
    ordinary = uncertain_week[~uncertain_week["synthetic_burst"]]
    group, texts = emerging_cluster(ordinary, embeddings, BURST_DAY, EMERGING_CLUSTER_RULE)
    assert emerging_cluster_check(group, texts, BURST_DAY, EMERGING_CLUSTER_RULE).passed
    assert 0 < len(group) < EMERGING_CLUSTER_RULE.min_texts and texts > 50

    group, texts = emerging_cluster(uncertain_week, embeddings, BURST_DAY, EMERGING_CLUSTER_RULE)
    check = emerging_cluster_check(group, texts, BURST_DAY, EMERGING_CLUSTER_RULE)
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    assert check.metadata["densest_group_texts"].value == len(group) >= EMERGING_CLUSTER_RULE.min_texts
    assert group["synthetic_burst"].mean() >= 0.8  # the group is the burst's topic, not background
    assert EMERGING_TOPIC_WORD in check.metadata["examples"].value.lower()
    assert (np.diff(group["similarity"].to_numpy()) <= 0).all()  # closest to the group's centre first
    # Outside the window the same tweets are old news.
    later = (pd.Timestamp(BURST_DAY) + pd.Timedelta(days=EMERGING_CLUSTER_RULE.recent_days)).strftime("%Y-%m-%d")
    assert emerging_cluster(uncertain_week, embeddings, later, EMERGING_CLUSTER_RULE)[1] == 0


def test_days_without_enough_history_are_not_judged(real_tweets):
    found = brand_exceedances(real_tweets).reset_index()
    first_days = every_day("2017-10-01", "2017-10-07")
    judged = found[found["day"].isin(first_days)]
    assert judged["threshold"].isna().all() and not judged["spike"].any()


def test_cases_are_the_tweets_that_open_a_conversation(real_tweets):
    volume = daily_volume(real_tweets)
    assert volume["tweets"].sum() == len(real_tweets)
    assert volume["cases"].sum() == real_tweets["in_response_to_tweet_id"].isna().sum()
    assert 0 < volume["cases"].sum() < len(real_tweets)


def test_every_tweet_of_a_thread_counts_in_the_category_its_first_issue_message_stated():
    # Synthetic rows: one per case the rule distinguishes.
    predicted = pd.DataFrame(
        [
            ("delivery", "delivery", ISSUE),  # the thread's first issue message
            ("fix, type", "delivery", ISSUE),  # "still not here": classified alone into a vague category
            ("", "delivery", "thanks_or_praise"),
            ("refund", UNCERTAIN_NAME, ISSUE),  # the thread's first issue message was uncertain: its own says more
            ("", UNCERTAIN_NAME, "dm_sent"),
            ("", "", "greeting"),  # no issue in its thread
            ("", "", NO_TOPIC),  # "I have a problem", and the thread never says which
            ("", "delivery", NO_TOPIC),  # "still nothing??"
        ],
        columns=["category_name", "thread_category", "message_kind"],
    )
    assert trend_category(predicted).tolist() == [
        "delivery",
        "delivery",
        "delivery",
        "refund",
        UNCERTAIN_NAME,
        CONVERSATION_ONLY,
        TOPIC_NOT_STATED,
        "delivery",
    ]


def test_a_rising_uncertain_share_is_an_emerging_topic(real_tweets):
    days = every_day("2017-10-01", "2017-12-03")
    predicted = real_tweets.copy()
    on_burst_day = predicted.index[predicted["day"] == BURST_DAY]
    # A third of the day's real tweets predicted uncertain, as when customers start writing about something new.
    predicted.loc[on_burst_day[::3], "category_name"] = UNCERTAIN_NAME
    found = exceedances(uncertain_share_by_day(predicted, UNCERTAIN_NAME, days), UNCERTAIN_SHARE_RULE)
    flagged = found[found["spike"]]
    assert flagged["day"].tolist() == [BURST_DAY]
    assert flagged["value"].iloc[0] == pytest.approx(len(on_burst_day[::3]) / len(on_burst_day))


class WebhookReceiver(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        WebhookReceiver.received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def webhook():
    WebhookReceiver.received = []
    server = HTTPServer(("127.0.0.1", 0), WebhookReceiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/alerts", WebhookReceiver.received
    server.shutdown()


def test_a_spike_fails_the_warn_check_and_the_alert_sensor_posts_it_once(tmp_path, real_tweets, webhook, monkeypatch):
    url, received = webhook
    storage = tmp_path / "storage"
    tweets = with_synthetic_burst(real_tweets)
    # Stored as the predictions and clean_text partitions the daily runs write (brand standing in for category).
    for asset in ("predictions", "clean_text"):
        (storage / asset).mkdir(parents=True)
    for day, frame in tweets.groupby("day"):
        predicted = frame[[*PREDICTION_COLUMNS, "category_name"]].assign(
            category_id=0, confidence=0.9, message_kind=ISSUE, thread_category=frame["category_name"]
        )
        predicted.to_parquet(storage / "predictions" / f"{day}.parquet")
        frame[["tweet_id", "in_response_to_tweet_id"]].to_parquet(storage / "clean_text" / f"{day}.parquet")
    instance = dg.DagsterInstance.ephemeral()
    defs = slice_definitions(tmp_path, str(BUNDLED_SAMPLE))
    run_config = {"ops": {"category_trends": {"config": {"judged_day": BURST_DAY}}}}
    result = defs.resolve_job_def("trends").execute_in_process(
        instance=instance, run_config=run_config, asset_selection=[dg.AssetKey("category_trends")]
    )
    assert result.success
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    spike = evaluations[VOLUME_SPIKE_CHECK]
    assert not spike.passed and spike.severity == dg.AssetCheckSeverity.WARN
    assert spike.metadata["spiking_categories"].value >= 1 and BURST_BRAND in spike.metadata["spikes"].value
    brand_spike = evaluations[BRAND_SPIKE_CHECK]
    assert not brand_spike.passed and brand_spike.severity == dg.AssetCheckSeverity.WARN
    assert f"| {BURST_BRAND} " in brand_spike.metadata["spikes"].value
    assert evaluations[EMERGING_TOPIC_CHECK].passed
    # No embeddings stored here: there are no uncertain texts to group.
    assert evaluations[EMERGING_CLUSTER_CHECK].passed
    assert evaluations[EMERGING_CLUSTER_CHECK].metadata["uncertain_texts"].value == 0
    metadata = result.asset_materializations_for_node("category_trends")[0].metadata
    assert (storage / "reports" / "category_trends.png").read_bytes().startswith(b"\x89PNG")
    assert metadata["trend_plot"].value == str(storage / "reports" / "category_trends.png")

    sensor = build_alert_sensor()
    monkeypatch.delenv(ALERT_WEBHOOK.name, raising=False)
    assert sensor(dg.build_sensor_context(instance=instance)).skip_reason
    monkeypatch.setenv(ALERT_WEBHOOK.name, url)
    first = sensor(dg.build_sensor_context(instance=instance))
    assert sorted(alert["check"] for alert in received) == sorted([VOLUME_SPIKE_CHECK, BRAND_SPIKE_CHECK])
    assert all(alert["metadata"]["day"] == BURST_DAY and alert["severity"] == "WARN" for alert in received)
    again = sensor(dg.build_sensor_context(instance=instance, cursor=first.cursor))
    assert len(received) == 2 and again.skip_reason
