"""Trends, spikes and alerts on the real bundled sample, with a synthetic burst of real tweets on a real day."""

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import dagster as dg
import pandas as pd
import pytest

from support_nlp.assets.inference import PREDICTION_COLUMNS
from support_nlp.assets.trends import EMERGING_TOPIC_CHECK, VOLUME_SPIKE_CHECK
from support_nlp.core.classifier import UNCERTAIN_NAME
from support_nlp.core.conversation import ISSUE
from support_nlp.core.text import clean_frame
from support_nlp.core.trends import (
    UNCERTAIN_SHARE_RULE,
    VOLUME_SPIKE_RULE,
    by_day,
    daily_volume,
    every_day,
    exceedances,
    uncertain_share_by_day,
)
from support_nlp.core.twcs import BUNDLED_SAMPLE, read_twcs
from support_nlp.sensors import ALERT_WEBHOOK_ENV, build_alert_sensor
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
    assert evaluations[EMERGING_TOPIC_CHECK].passed
    metadata = result.asset_materializations_for_node("category_trends")[0].metadata
    assert (storage / "reports" / "category_trends.png").read_bytes().startswith(b"\x89PNG")
    assert metadata["trend_plot"].value == str(storage / "reports" / "category_trends.png")

    sensor = build_alert_sensor()
    monkeypatch.delenv(ALERT_WEBHOOK_ENV, raising=False)
    assert sensor(dg.build_sensor_context(instance=instance)).skip_reason
    monkeypatch.setenv(ALERT_WEBHOOK_ENV, url)
    first = sensor(dg.build_sensor_context(instance=instance))
    assert [alert["check"] for alert in received] == [VOLUME_SPIKE_CHECK]
    assert received[0]["metadata"]["day"] == BURST_DAY and received[0]["severity"] == "WARN"
    again = sensor(dg.build_sensor_context(instance=instance, cursor=first.cursor))
    assert len(received) == 1 and again.skip_reason
