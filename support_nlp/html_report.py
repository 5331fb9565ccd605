"""The category report as one self-contained HTML file (plots inlined), for people who do not open Dagster."""

from __future__ import annotations

import base64
import html
import math
from dataclasses import dataclass

import pandas as pd

from support_nlp.core.category_schema import Category
from support_nlp.core.seeds import ADOPTION_SHARE, overlap_note, suggested_categories

BRANDS_SHOWN = 10
EXAMPLES_PER_CATEGORY = 10
EXAMPLES_PER_SUGGESTION = 3
PROBLEM_CUE_LANGUAGES = ("en", "es")  # the languages of conversation.PROBLEM_CUES


@dataclass(frozen=True)
class ReportInputs:
    categories: list[Category]  # largest first
    training_days: tuple[str, str]
    predicted_days: tuple[str, str]
    volume: pd.DataFrame  # category_trends: day, category_name, brand, tweets, cases
    examples: dict[str, list[str]]  # category name -> most confidently predicted tweets
    problem_shares: dict[str, float]  # category name -> share of its predicted issue messages that state a problem
    cases_png: bytes  # cases opened per day by category
    tweets_png: bytes  # tweets per day by category
    generated_at: str


def image(png: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def brand_table(volume: pd.DataFrame) -> pd.DataFrame:
    """Cases opened per category (most first) and brand (the BRANDS_SHOWN with most cases), then each brand's cases
    and tweets over all categories. Categories run down and brands across: the categories outnumber the brands
    shown, and a table as wide as the categories ran off the page."""
    table = volume.pivot_table(index="category_name", columns="brand", values="cases", aggfunc="sum", fill_value=0)
    brands = table.sum().sort_values(ascending=False).index[:BRANDS_SHOWN]
    totals = pd.DataFrame(
        {"cases, all categories": table.sum(), "tweets with follow-ups": volume.groupby("brand")["tweets"].sum()}
    ).T
    table = pd.concat([table.loc[table.sum(axis=1).sort_values(ascending=False).index], totals])[brands]
    return table.rename_axis(index=None, columns=None)


def predicted_counts(volume: pd.DataFrame) -> pd.DataFrame:
    """Per category name: cases opened and tweets (follow-ups included) of the predicted days."""
    return volume.groupby("category_name")[["cases", "tweets"]].sum()


def predicted_count(counts: pd.DataFrame, name: str, count: str) -> int:
    return int(counts[count].get(name, 0))


def problem_share(category: Category, shares: dict[str, float]) -> float | None:
    """The share of the category's predicted issue messages that state a problem; None where the problem cues
    (English and Spanish) do not read most of its tweets, or nothing was predicted in it."""
    cue_languages = sum(category.languages.get(code, 0.0) for code in PROBLEM_CUE_LANGUAGES)
    return shares.get(category.name) if cue_languages >= 0.5 else None


def problem_share_text(share: float | None) -> str:
    return "–" if share is None else f"{share:.0%}"


def category_section(category: Category, counts: pd.DataFrame, examples: list[str], problem: float | None) -> str:
    keyphrases = ", ".join(html.escape(phrase) for phrase, _ in category.keywords)
    brands = ", ".join(f"{html.escape(b)} {share:.0%}" for b, share in category.brands.items())
    languages = ", ".join(f"{html.escape(code)} {share:.0%}" for code, share in category.languages.items())
    quotes = "".join(f"<li>{html.escape(' '.join(text.split()))}</li>" for text in examples)
    closest = "".join(f"<li>{html.escape(' '.join(text.split()))}</li>" for text in category.representatives)
    return f"""
<section id="category-{category.id}">
<h3>{html.escape(category.name)}</h3>
<p><b>{category.size:,}</b> training tweets ({category.share:.1%}); predicted:
<b>{predicted_count(counts, category.name, "cases"):,}</b> cases opened,
{predicted_count(counts, category.name, "tweets"):,} tweets with follow-ups; {problem_share_text(problem)} state a
problem.<br>Keyphrases: {keyphrases}.<br>Brands: {brands}. Languages: {languages}.</p>
<details open><summary>Closest to the category's centre</summary><ol>{closest}</ol></details>
<details><summary>Most confidently predicted ({len(examples)})</summary><ol>{quotes}</ol></details>
</section>"""


def overlap_hint(category: Category, seed_category_ids: dict[str, int]) -> str:
    """Why a suggested category sits beside a seed and how to make it the seed's, when it overlaps one
    (core/seeds.overlap_note); empty otherwise."""
    note = overlap_note(category)
    if note is None:
        return ""
    seed_id = seed_category_ids.get(category.overlapping_seed)
    # Adoption takes a share at least the configured one: round down, so the value given does adopt the category.
    adopting_share = math.floor(category.overlapping_seed_share * 100) / 100
    lower_share = (
        f"configure cluster_labels with <code>seed_adoption_share: {adopting_share}</code> (it applies to every seed; "
        "the default was chosen on the dev sets)"
    )
    if seed_id is None:
        where = "the seed has too few tweets for a category of its own (<code>min_category_share</code>), so they stay"
        act = f"{lower_share}; or name this category in the category map: <code>{category.id}: {{name: ...}}</code>"
    else:
        where = f"those went to the seed's category (id {seed_id}), the rest stays"
        act = f"in the category map, <code>{category.id}: {{merge_into: {seed_id}}}</code>; or {lower_share}"
    return (
        f'<br><span class="hint">As discovered, {html.escape(note)}: {where} here, as a seed adopts a whole category '
        f"only from <code>seed_adoption_share</code> of its tweets close ({ADOPTION_SHARE:.0%} by default). "
        f"To count it as the seed's: {act}.</span>"
    )


def suggestions_section(categories: tuple[Category, ...]) -> str:
    """Discovered categories, largest first, as candidates for the team's taxonomy (seeds in the category map)."""
    suggested = suggested_categories(categories)
    if not suggested:
        return "<p>Every category is one of the team's seeds.</p>"
    seed_category_ids = {c.seed: c.id for c in categories if c.seed}
    items = "".join(
        f"<li><b>{html.escape(c.name)}</b> ({c.size:,} training tweets, {c.share:.1%}): "
        + "; ".join(
            f"&ldquo;{html.escape(' '.join(text.split()))}&rdquo;"
            for text in c.representatives[:EXAMPLES_PER_SUGGESTION]
        )
        + overlap_hint(c, seed_category_ids)
        + "</li>"
        for c in suggested
    )
    return f"""<p class="note">Categories discovered outside the team's seeds, largest first. To adopt one, add a seed
(a name and a few example phrases) to the category map.</p><ol>{items}</ol>"""


def category_table(categories: list[Category], volume: pd.DataFrame, problem_shares: dict[str, float]):
    """One row per category, in the given order: who defined it, its training and predicted counts, the share of
    its issue messages that state a problem and its first keyphrases."""
    counts = predicted_counts(volume)
    return pd.DataFrame(
        {
            "category": c.name,
            "defined by": "team (seed)" if c.seed else "discovered",
            "training tweets": f"{c.size:,}",
            "share": f"{c.share:.1%}",
            "cases opened": f"{predicted_count(counts, c.name, 'cases'):,}",
            "tweets with follow-ups": f"{predicted_count(counts, c.name, 'tweets'):,}",
            "state a problem": problem_share_text(problem_share(c, problem_shares)),
            "keyphrases": ", ".join(phrase for phrase, _ in c.keywords[:4]),
        }
        for c in categories
    )


def render_report(inputs: ReportInputs) -> str:
    categories = inputs.categories
    counts = predicted_counts(inputs.volume)
    summary = category_table(categories, inputs.volume, inputs.problem_shares)
    brands = brand_table(inputs.volume).map(lambda n: f"{n:,}")
    sections = "".join(
        category_section(c, counts, inputs.examples.get(c.name, []), problem_share(c, inputs.problem_shares))
        for c in categories
    )
    first, last = inputs.training_days
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Support categories</title>
<style>
body {{ font-family: sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }}
table {{ border-collapse: collapse; font-size: 0.9em; }} td, th {{ border: 1px solid #ccc; padding: 3px 8px; }}
td {{ text-align: right; }} td:first-child, table.summary td:last-child {{ text-align: left; }}
tbody th {{ text-align: left; }}
.note {{ color: #555; font-size: 0.9em; }} img {{ max-width: 100%; }} .hint {{ color: #8a5a00; }}
</style></head><body>
<h1>What customers contact support about</h1>
<p class="note">Generated {html.escape(inputs.generated_at)}.
Categories were discovered on the tweets of {first}..{last} (training tweets, in-sample);
predicted counts are those of {inputs.predicted_days[0]}..{inputs.predicted_days[1]}.
A <b>case</b> is a customer's first tweet of a conversation, where the issue is stated; the conversation's later
tweets count with it under <b>tweets with follow-ups</b> (a follow-up whose conversation began before the data,
under its own predicted category). <b>State a problem</b>: the share of a category's predicted issue messages with
a problem word (not, still, refund, why, …; English and Spanish words, so "–" for categories mostly in other
languages). A low share hints at chatter or a promotion rather than an issue to act on; a hint only, since some
complaints ("left at 2pm, back at 4pm. A record.") state the problem without such a word.</p>
<h2 id="categories">Categories, largest first</h2>
{summary.to_html(index=False, escape=True, classes="summary")}
<h2 id="suggested">Suggested new categories</h2>
{suggestions_section(categories)}
<h2 id="trend">Cases opened per day</h2>
{image(inputs.cases_png, "cases opened per day by category")}
<h2 id="tweets">Tweets per day, follow-ups included</h2>
{image(inputs.tweets_png, "tweets per day by category")}
<h2 id="brands">By brand (cases opened)</h2>
{brands.to_html(escape=True)}
<h2 id="examples">Each category</h2>
{sections}
</body></html>
"""
