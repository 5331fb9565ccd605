"""How much customers contact support about each category, day by day, and which days stand out.

A day *spikes* when its value is above a robust baseline of the trailing days before it: the median plus
`threshold` times the MAD scaled to a standard deviation (1.4826 * MAD). Median and MAD ignore the very spikes
being looked for, where a mean and standard deviation would be pulled up by them. The same rule applied to the
daily share of uncertain predictions flags *emerging topics*: tweets the deployed categories do not describe.
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


def daily_volume(predictions: pd.DataFrame) -> pd.DataFrame:
    """Tweets and cases per day, category and brand. A case is a customer tweet that opens a conversation
    (`in_response_to_tweet_id` empty); its follow-ups in the same thread count as tweets only."""
    opens_case = predictions["in_response_to_tweet_id"].isna()
    grouped = predictions.assign(cases=opens_case).groupby(["day", "category_name", "brand"], sort=True)
    return grouped.agg(tweets=("tweet_id", "size"), cases=("cases", "sum")).reset_index()[VOLUME_COLUMNS]


def by_day(volume: pd.DataFrame, column: str, days: list[str]) -> pd.DataFrame:
    """Days (every one of `days`, zero-filled) by values of `column`: summed tweets."""
    table = volume.pivot_table(index="day", columns=column, values="tweets", aggfunc="sum", fill_value=0)
    return table.reindex(days, fill_value=0).astype(float)


def every_day(first_day: str, last_day: str) -> list[str]:
    return pd.date_range(first_day, last_day, freq="D").strftime("%Y-%m-%d").tolist()


def exceedances(series: pd.DataFrame, rule: SpikeRule) -> pd.DataFrame:
    """For every day and column of `series` (days as index, in order): the value, its trailing baseline and
    threshold, and whether it spikes. Days without `min_baseline_days` of history get no threshold."""
    history = series.shift(1).rolling(rule.baseline_days, min_periods=rule.min_baseline_days)
    median = history.median()
    mad = history.apply(lambda window: np.median(np.abs(window - np.median(window))), raw=True)
    spread = np.maximum(MAD_TO_SIGMA * mad, rule.min_spread)
    threshold = median + rule.threshold * spread
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
