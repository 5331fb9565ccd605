"""Plots of category names in Japanese, taken from the bundled sample's real Japanese tweets, draw their glyphs."""

import logging
import re
import warnings

import numpy as np
import pandas as pd
import pytest

from support_nlp.core.categories import MIXED_LANGUAGES
from support_nlp.plots import (
    CJK_FONT,
    CJK_FONT_PACKAGE,
    category_sizes_markdown,
    cjk_font_available,
    confusion_matrix_markdown,
    figure_png,
    projection_markdown,
    stacked_volume_figure,
    top_movers_figure,
)
from support_nlp_tests.system_binaries import missing_system_binary

KANA = re.compile("[\u3040-\u30ff]")


@pytest.fixture(scope="module")
def japanese_openers(real_inbound) -> pd.DataFrame:
    """The sample's Japanese tweets that open a thread, as the mixed-language category's names are made of."""
    opening = real_inbound[(real_inbound["in_response_to_tweet_id"] == "") & real_inbound["text"].str.contains(KANA)]
    assert len(opening) >= 3
    return opening


def test_japanese_category_names_render_without_missing_glyphs(japanese_openers, caplog):
    if not cjk_font_available():
        missing_system_binary(f"the font {CJK_FONT}", f"install the Debian package {CJK_FONT_PACKAGE}")
    names = [f"[{MIXED_LANGUAGES}] {' '.join(text.split())[:30]}" for text in japanese_openers["text"].head(3)]
    names.append("delivery, package")
    japanese_per_day = japanese_openers.groupby("day").size()
    daily = pd.DataFrame({name: japanese_per_day for name in names})
    movers = pd.DataFrame({"change_per_day": [2.0, -1.0, 0.5, 1.5]}, index=names)
    rng = np.random.default_rng(0)
    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.WARNING):
        warnings.simplefilter("always")
        drawn = [
            category_sizes_markdown(names, [len(name) for name in names]),
            confusion_matrix_markdown(np.eye(len(names), dtype=int).tolist(), names),
            projection_markdown(rng.normal(size=(40, 2)), np.arange(40) % len(names), dict(enumerate(names))),
            figure_png(stacked_volume_figure(daily, spike_days=japanese_per_day.index[:1])),
            figure_png(top_movers_figure(movers, japanese_per_day.index[-1])),
        ]
    assert all(drawn)
    assert not [str(w.message) for w in caught if "missing from font" in str(w.message)]
    assert not [record.message for record in caplog.records if "findfont" in record.message]
