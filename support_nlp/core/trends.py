"""How much customers contact support about each category, day by day, and which days stand out.

A day *spikes* when its value is above a robust baseline of the trailing days before it: the median plus
`threshold` times the MAD scaled to a standard deviation (1.4826 * MAD). Median and MAD ignore the very spikes
being looked for, where a mean and standard deviation would be pulled up by them. The same rule applied to the
daily share of uncertain predictions flags *emerging topics*: tweets the deployed categories do not describe.
Spikes are judged per category and per brand and category: a burst at one brand can vanish in a category's total.
A day when all traffic rises (a holiday, an outage everyone tweets about, a gap in the data before it) lifts every
category with it: that is one spike, of all traffic, and a category spikes only when it rises above that tide
(its threshold is scaled by the day's total over its baseline).

An emerging topic can also be a new cluster among the uncertain tweets of the recent days: many distinct texts
saying the same thing, none of which the deployed categories describe. The densest group is the neighbourhood of
the uncertain text with the most others at `EmergingClusterRule.similarity`; its size is the measured value.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

MAD_TO_SIGMA = 1.4826
VOLUME_COLUMNS = ["day", "category_name", "brand", "tweets", "cases"]


@dataclass(frozen=True)
class SpikeRule:
    baseline_days: int = 28
    min_baseline_days: int = 7  # fewer days before it: no baseline, the day is not judged
    threshold: float = 3.0  # scaled MADs above the median
    # Floors: with a flat history the MAD is 0, and a category going from 2 tweets to 5 is no news.
    min_spread: float = 1.0
    min_value: float = 10.0


VOLUME_SPIKE_RULE = SpikeRule()
UNCERTAIN_SHARE_RULE = SpikeRule(min_spread=0.02, min_value=0.05)
BRAND_SEPARATOR = " / "  # brands are Twitter handles: never contain it
ALL_TRAFFIC = "all traffic"


@dataclass(frozen=True)
class EmergingClusterRule:
    recent_days: int = 7  # the judged day and the days before it
    # Two texts at this cosine or above say much the same thing. Measured on the bundled sample: the uncertain
    # issue texts of its last eight 7-day windows form groups of at most 8 this close; 38 real tweets of one topic
    # (iOS 11 battery drain) added to a window's uncertain texts form one of 12 (test_trends).
    similarity: float = 0.55
    min_texts: int = 10  # distinct texts in the densest group for it to be news
    examples: int = 5


def daily_volume(predictions: pd.DataFrame) -> pd.DataFrame:
    """Tweets and cases per day, category and brand. A case is a customer tweet that opens a conversation
    (`in_response_to_tweet_id` empty); its follow-ups in the same thread count as tweets only."""
    opens_case = predictions["in_response_to_tweet_id"].isna()
    grouped = predictions.assign(cases=opens_case).groupby(["day", "category_name", "brand"], sort=True)
    return grouped.agg(tweets=("tweet_id", "size"), cases=("cases", "sum")).reset_index()[VOLUME_COLUMNS]


def by_day(volume: pd.DataFrame, column: str, days: list[str], count: str = "tweets") -> pd.DataFrame:
    """Days (every one of `days`, zero-filled) by values of `column`: summed `count` (tweets or cases)."""
    table = volume.pivot_table(index="day", columns=column, values=count, aggfunc="sum", fill_value=0)
    return table.reindex(days, fill_value=0).astype(float)


def every_day(first_day: str, last_day: str) -> list[str]:
    return pd.date_range(first_day, last_day, freq="D").strftime("%Y-%m-%d").tolist()


def exceedances(series: pd.DataFrame, rule: SpikeRule, tide: pd.Series | None = None) -> pd.DataFrame:
    """For every day and column of `series` (days as index, in order): the value, its trailing baseline and
    threshold, and whether it spikes. Days without `min_baseline_days` of history get no threshold. With `tide`
    (see `traffic_tide`) each day's thresholds are multiplied by it."""
    history = series.shift(1).rolling(rule.baseline_days, min_periods=rule.min_baseline_days)
    median = history.median()
    mad = history.apply(lambda window: np.median(np.abs(window - np.median(window))), raw=True)
    spread = np.maximum(MAD_TO_SIGMA * mad, rule.min_spread)
    threshold = median + rule.threshold * spread
    if tide is not None:
        threshold = threshold.mul(tide, axis=0)
    frame = pd.DataFrame(
        {
            "value": series.stack(),
            "baseline_median": median.stack(),
            "threshold": threshold.stack(),
        }
    )
    frame["spike"] = (frame["value"] > frame["threshold"]) & (frame["value"] >= rule.min_value)
    frame.index.names = ["day", "series"]
    return frame.reset_index()


def traffic_tide(daily: pd.DataFrame, rule: SpikeRule = VOLUME_SPIKE_RULE) -> pd.Series:
    """Per day, the total of `daily`'s columns over the median total of the trailing days, at least 1 (1 where
    there is no baseline yet): how far all traffic rose."""
    total = daily.sum(axis=1)
    baseline = total.shift(1).rolling(rule.baseline_days, min_periods=rule.min_baseline_days).median()
    return (total / baseline.where(baseline > 0)).fillna(1.0).clip(lower=1.0)


def category_exceedances(daily: pd.DataFrame, rule: SpikeRule = VOLUME_SPIKE_RULE) -> pd.DataFrame:
    """`exceedances` of all traffic (the series ALL_TRAFFIC) and of each category above the day's tide."""
    total = daily.sum(axis=1).to_frame(ALL_TRAFFIC)
    return pd.concat([exceedances(total, rule), exceedances(daily, rule, traffic_tide(daily, rule))], ignore_index=True)


def brand_category_exceedances(
    volume: pd.DataFrame,
    days: list[str],
    excluded_categories: list[str],
    rule: SpikeRule = VOLUME_SPIKE_RULE,
    tide: pd.Series | None = None,
) -> pd.DataFrame:
    """`exceedances` of every brand's tweets per category (columns `brand` and `category` added), above `tide`
    when given. A pair that never reaches `rule.min_value` tweets on a day cannot spike, so it is not judged."""
    judged = volume[~volume["category_name"].isin(excluded_categories)]
    daily = by_day(judged.assign(pair=judged["brand"] + BRAND_SEPARATOR + judged["category_name"]), "pair", days)
    found = exceedances(daily.loc[:, daily.max() >= rule.min_value], rule, tide)
    brand_and_category = found["series"].str.split(BRAND_SEPARATOR, n=1, expand=True)
    return found.assign(brand=brand_and_category[0], category=brand_and_category[1]).drop(columns="series")


def recent_days(day: str, count: int) -> list[str]:
    return every_day((pd.Timestamp(day) - pd.Timedelta(days=count - 1)).strftime("%Y-%m-%d"), day)


def densest_group(vectors: np.ndarray, rule: EmergingClusterRule) -> tuple[np.ndarray, np.ndarray]:
    """Rows (unit vectors of distinct texts) of the densest neighbourhood, closest to its centre first, and their
    similarity to the centre."""
    if len(vectors) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    similarity = vectors @ vectors.T
    centre = int((similarity >= rule.similarity).sum(axis=1).argmax())
    members = np.flatnonzero(similarity[centre] >= rule.similarity)
    order = np.argsort(-similarity[centre, members], kind="stable")
    return members[order], similarity[centre, members[order]]


def uncertain_share_by_day(predictions: pd.DataFrame, uncertain_name: str, days: list[str]) -> pd.DataFrame:
    counts = predictions.groupby("day")["category_name"].agg(["size", lambda names: (names == uncertain_name).sum()])
    share = (counts.iloc[:, 1] / counts["size"]).reindex(days)
    # A day without tweets says nothing about the share; carrying the last one forward keeps it out of the baseline.
    return share.ffill().fillna(0.0).to_frame("uncertain_share")


def top_movers(daily: pd.DataFrame, day: str, window: int = 7, count: int = 5) -> pd.DataFrame:
    """Categories whose volume changed most: mean of the `window` days up to `day` against the `window` before."""
    position = daily.index.get_loc(day)
    recent = daily.iloc[max(position - window + 1, 0) : position + 1].mean()
    before = daily.iloc[max(position - 2 * window + 1, 0) : max(position - window + 1, 0)].mean()
    change = (recent - before).rename("change_per_day")
    table = pd.DataFrame({"recent_per_day": recent, "before_per_day": before, "change_per_day": change})
    return table.reindex(change.abs().sort_values(ascending=False).index).head(count).round(1)
