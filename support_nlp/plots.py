"""PNG charts embedded in markdown metadata, so the Dagster UI shows pictures rather than numbers."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterable, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib import font_manager  # noqa: E402

from support_nlp.core.category_schema import KCandidate  # noqa: E402

# Category names hold Japanese (and any CJK) words, which DejaVu Sans lacks: matplotlib falls back per glyph to the
# next family of font.family. The font is Debian's fonts-wqy-microhei (Makefile's SYSTEM_PACKAGES, the Dockerfile).
LATIN_FONT = "DejaVu Sans"
CJK_FONT = "WenQuanYi Micro Hei"
CJK_FONT_PACKAGE = "fonts-wqy-microhei"
CJK_FONT_FILE = "wqy-microhei.ttc"


def cjk_font_available() -> bool:
    """Whether matplotlib can use CJK_FONT. matplotlib's font cache does not see fonts installed after it was built,
    so the font's file is looked for among the system's fonts and registered when the cache lacks it."""
    if any(font.name == CJK_FONT for font in font_manager.fontManager.ttflist):
        return True
    for path in font_manager.findSystemFonts():
        if path.endswith(CJK_FONT_FILE):
            font_manager.fontManager.addfont(path)
    return any(font.name == CJK_FONT for font in font_manager.fontManager.ttflist)


# Without the font the defaults stay (DejaVu Sans, CJK glyphs drawn as boxes): an absent family warns at every text.
if cjk_font_available():
    matplotlib.rcParams["font.family"] = [LATIN_FONT, CJK_FONT]


def figure_png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def png_markdown(png: bytes, alt: str) -> str:
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})"


def figure_markdown(fig, alt: str) -> str:
    return png_markdown(figure_png(fig), alt)


def k_curve_markdown(curve: tuple[KCandidate, ...], chosen_k: int) -> str:
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.plot([p.k for p in curve], [p.silhouette for p in curve], marker="o")
    ax.axvline(chosen_k, color="tab:red", linestyle="--", label=f"chosen k={chosen_k}")
    ax.set(xlabel="k (categories)", ylabel="silhouette (sample)", title="Choosing k")
    ax.legend()
    return figure_markdown(fig, "silhouette by k")


def category_sizes_markdown(names: list[str], sizes: list[int]) -> str:
    order = np.argsort(sizes)
    fig, ax = plt.subplots(figsize=(7, 0.3 * len(names) + 1))
    ax.barh([names[i] for i in order], [sizes[i] for i in order])
    ax.set(xlabel="tweets", title="Category sizes")
    return figure_markdown(fig, "category sizes")


def confusion_matrix_markdown(matrix: Sequence[Sequence[int]], labels: list[str]) -> str:
    values = np.asarray(matrix, dtype=float)
    rates = values / np.maximum(values.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(0.35 * len(labels) + 3, 0.35 * len(labels) + 2))
    image = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.set(xlabel="predicted", ylabel="pseudo-label", title="Holdout confusion (row-normalised)")
    fig.colorbar(image, ax=ax)
    return figure_markdown(fig, "confusion matrix")


def projection_markdown(points: np.ndarray, labels: np.ndarray, names: dict[int, str]) -> str:
    """2-D scatter of tweets coloured by category, legend by name."""
    fig, ax = plt.subplots(figsize=(8, 6))
    colors = plt.get_cmap("tab20")
    for i, category_id in enumerate(sorted(names)):
        members = labels == category_id
        if members.any():
            ax.scatter(*points[members].T, s=4, alpha=0.5, color=colors(i % 20), label=names[category_id][:30])
    ax.set(xlabel="component 1", ylabel="component 2", title="Tweets by category (first two principal components)")
    ax.legend(markerscale=4, fontsize=7, loc="center left", bbox_to_anchor=(1, 0.5))
    return figure_markdown(fig, "2-D projection by category")


SMALLER_CATEGORIES = "smaller categories"


def stacked_volume_figure(daily: pd.DataFrame, spike_days: Iterable[str] = (), top: int = 9, unit: str = "tweets"):
    """`unit` (tweets, or cases opened) per day stacked by category (the `top` largest, the rest summed), spike
    days marked. Up to ten series take the default colour cycle's ten colours, up to twenty tab20's."""
    order = daily.sum().sort_values(ascending=False).index
    shown = daily[order[:top]].copy()
    if len(order) > top:
        shown[SMALLER_CATEGORIES] = daily[order[top:]].sum(axis=1)
    fig, ax = plt.subplots(figsize=(10, 4.5))
    days = pd.to_datetime(shown.index)
    colours = {} if len(shown.columns) <= 10 else {"colors": plt.get_cmap("tab20").colors}
    ax.stackplot(days, shown.T.to_numpy(), labels=[str(name)[:30] for name in shown.columns], alpha=0.85, **colours)
    marked = sorted(set(spike_days))
    for day in marked:
        ax.axvline(pd.Timestamp(day), color="black", linestyle=":", linewidth=1)
    spikes = " (dotted: a category spikes)" if marked else ""
    ax.set(ylabel=f"{unit} per day", title=f"{unit.capitalize()} per day by category{spikes}")
    ax.xaxis.set_major_locator(matplotlib.dates.DayLocator(interval=max(1, len(days) // 12)))
    ax.xaxis.set_major_formatter(matplotlib.dates.DateFormatter("%b %d"))
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1, 0.5))
    fig.autofmt_xdate()
    return fig


def top_movers_figure(movers: pd.DataFrame, day: str):
    fig, ax = plt.subplots(figsize=(7, 0.4 * len(movers) + 1.2))
    changes = movers["change_per_day"][::-1]
    ax.barh([str(name)[:40] for name in changes.index], changes, color=np.where(changes > 0, "tab:red", "tab:blue"))
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set(xlabel="change in tweets per day, last 7 days vs the 7 before", title=f"Top movers up to {day}")
    return fig
