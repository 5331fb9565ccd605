"""Cleaning tweet text for the embedding model and finding the brand a customer addressed."""

from __future__ import annotations

import html
import itertools
import re
import sys
import unicodedata
from collections.abc import Iterable, Mapping

import emoji
import pandas as pd

from support_nlp.core.parallel import map_in_chunks

URL_PATTERN = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
MENTION_PATTERN = re.compile(r"(?<![\w@])@(\w{1,30})")
WHITESPACE_PATTERN = re.compile(r"\s+")
# Terminal escape sequences (CSI: colours, cursor moves; 7-bit ESC or C1 CSI) and other two-character escapes:
# removed whole, or their parameters ("[31m") would stay behind as text.
ANSI_ESCAPE_PATTERN = re.compile(r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")
# C0 and C1 controls and DEL (Unicode Cc) separate words as whitespace would.
CONTROL_PATTERN = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _character_class(code_points: Iterable[int]) -> str:
    """A regex class of these code points, consecutive ones as ranges: `re` matches a class of many single
    characters beyond the Basic Multilingual Plane an order of magnitude slower than the same class as ranges."""
    runs = itertools.groupby(enumerate(sorted(code_points)), key=lambda position: position[1] - position[0])
    ranges = [[code_point for _, code_point in run] for _, run in runs]
    return "[" + "".join(f"{re.escape(chr(run[0]))}-{re.escape(chr(run[-1]))}" for run in ranges) + "]"


# Format characters (Unicode Cf: zero-width spaces and joiners, bidi controls, soft hyphens, tags) are invisible;
# taken from this Python's Unicode tables rather than a hand-kept list.
INVISIBLE_PATTERN = re.compile(
    _character_class(c for c in range(sys.maxunicode + 1) if unicodedata.category(chr(c)) == "Cf")
)
# `emoji.replace_emoji` walks a text character by character in Python, the bulk of cleaning's time. It changes a
# text only where an emoji of its table starts or a variation selector stands (it drops those even alone), and every
# emoji holds at least one of these characters (its non-ASCII ones, all of them for an all-ASCII one): texts
# without any, most tweets, skip the walk with the same result.
EMOJI_CHARACTERS = frozenset(
    {char for key in emoji.EMOJI_DATA for char in key if not char.isascii() or key.isascii()} | {"\ufe0e", "\ufe0f"}
)


def _emoji_as_words(chars: str, data: dict) -> str:
    # ":face_with_tears_of_joy:" -> " face with tears of joy ": models read words, not pictographs.
    return " " + data["en"].strip(":").replace("_", " ") + " "


def clean_text(text: str) -> str:
    """Text for the model: entities unescaped, NFKC-normalised, terminal escapes, controls and invisible characters
    removed, emoji as words, URLs and @mentions removed, spaces normalised. Nothing visible left gives ""."""
    text = html.unescape(unicodedata.normalize("NFKC", text))
    text = ANSI_ESCAPE_PATTERN.sub(" ", text)
    # Emoji first: zero-width joiners and tags are part of emoji sequences (families, subdivision flags).
    if not EMOJI_CHARACTERS.isdisjoint(text):
        text = emoji.replace_emoji(text, replace=_emoji_as_words)
    text = INVISIBLE_PATTERN.sub("", CONTROL_PATTERN.sub(" ", text))
    text = URL_PATTERN.sub(" ", text)
    text = MENTION_PATTERN.sub(" ", text)
    return WHITESPACE_PATTERN.sub(" ", text).strip()


def mentions(text: str) -> list[str]:
    return MENTION_PATTERN.findall(text)


def brand_lookup(known_brands: Iterable[str]) -> dict[str, str]:
    """Lower-cased handle -> brand handle as the brand writes it (Twitter handles ignore case)."""
    return {brand.lower(): brand for brand in known_brands}


def addressed_brand(text: str, thread_brand: str, brand_by_handle: Mapping[str, str]) -> str:
    """The company handle a customer tweet is addressed to.

    The brand that replied in the thread is authoritative; otherwise the first mention of a handle known
    to be a brand (see `brand_lookup`); otherwise the first mention that is not an anonymised numeric id;
    else "unknown".
    """
    if thread_brand:
        return thread_brand
    handles = mentions(text)
    for handle in handles:
        if handle.lower() in brand_by_handle:
            return brand_by_handle[handle.lower()]
    for handle in handles:
        if not handle.isdigit():
            return handle
    return "unknown"


def clean_texts(texts: list[str]) -> list[str]:
    return [clean_text(text) for text in texts]


def clean_frame(tweets: pd.DataFrame, known_brands: Iterable[str]) -> pd.DataFrame:
    """Add `text_clean`, `brand` and `is_empty` to typed tweets, keeping every original column."""
    brand_by_handle = brand_lookup(known_brands)
    out = tweets.copy()
    # Some tweets repeat an earlier text word for word: each distinct text is cleaned once.
    distinct = list(dict.fromkeys(out["text"]))
    cleaned = dict(zip(distinct, map_in_chunks(clean_texts, distinct), strict=True))
    out["text_clean"] = pd.Series([cleaned[text] for text in out["text"]], index=out.index, dtype=str)
    out["brand"] = [
        addressed_brand(text, thread_brand, brand_by_handle)
        for text, thread_brand in zip(out["text"], out["thread_brand"], strict=True)
    ]
    out["is_empty"] = [not text for text in out["text_clean"]]
    return out
