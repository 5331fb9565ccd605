"""clean_text, addressed_brand and clean_frame on real tweets of the bundled sample."""

import html
import re
import sys
import unicodedata

import emoji
import pandas as pd
import pytest

from support_nlp.core.text import (
    ANSI_ESCAPE_PATTERN,
    INVISIBLE_PATTERN,
    MENTION_PATTERN,
    URL_PATTERN,
    _emoji_as_words,
    addressed_brand,
    brand_lookup,
    clean_frame,
    clean_text,
    mentions,
)
from support_nlp.core.twcs import BUNDLED_SAMPLE, read_twcs


def first_text(tweets: pd.DataFrame, pattern: str, flags: int = 0) -> str:
    """The first real tweet whose text matches `pattern` (the example must exist in the sample)."""
    regex = re.compile(pattern, flags)
    matches = [text for text in tweets["text"] if regex.search(text)]
    assert matches, f"no real tweet matches {pattern!r}"
    return matches[0]


@pytest.fixture(scope="module")
def typed_slice(real_slice_csv):
    inbound, _, summary = read_twcs(real_slice_csv)
    return inbound, frozenset(summary.brands)


@pytest.fixture(scope="module")
def cleaned_inbound(real_inbound) -> pd.DataFrame:
    texts = real_inbound["text"]
    return pd.DataFrame({"text": texts, "clean": [clean_text(t) for t in texts]})


def test_urls_are_removed(real_inbound):
    text = first_text(real_inbound, r"https://t\.co/\w+")
    cleaned = clean_text(text)
    for url in URL_PATTERN.findall(text):
        assert url not in cleaned
    assert "https://" not in cleaned and "t.co/" not in cleaned
    # The words around the link survive.
    words = URL_PATTERN.sub(" ", MENTION_PATTERN.sub(" ", text)).split()
    assert cleaned.split() == words


def test_mentions_are_removed_including_anonymised_ids(real_inbound):
    text = first_text(real_inbound, r"^@\d+ @[A-Za-z]\w* \w")
    handles = mentions(text)
    assert len(handles) >= 2 and handles[0].isdigit()
    cleaned = clean_text(text)
    for handle in handles:
        assert f"@{handle}" not in cleaned
    assert MENTION_PATTERN.search(cleaned) is None


def test_html_entities_are_unescaped(real_inbound):
    text = first_text(real_inbound, r"&amp;(?!amp;)")
    cleaned = clean_text(text)
    assert "&amp;" not in cleaned and "&" in cleaned
    hearts = first_text(real_inbound, r"&lt;3")
    assert "<3" in clean_text(hearts) and "&lt;" not in clean_text(hearts)


def test_emoji_become_words(real_inbound):
    text = first_text(real_inbound, "😂")
    cleaned = clean_text(text)
    assert "face with tears of joy" in cleaned
    assert cleaned.count("face with tears of joy") == text.count("😂")
    assert emoji.emoji_count(cleaned) == 0


def test_whitespace_is_normalised_exactly(real_inbound):
    text = first_text(real_inbound, r"VERIZON IS DOWN")
    assert "\n" in text and "  " in text
    assert clean_text(text) == ". >All of VERIZON IS DOWN< When can we expect a fix ?"


def test_spanish_accents_are_kept(real_inbound):
    text = first_text(real_inbound, r"actualización de software")
    cleaned = clean_text(text)
    assert cleaned.startswith(
        "Hola necesito urgente la actualización de software. La batería me dura literal medio día"
    )
    assert "@AppleSupport" not in cleaned


def test_french_accents_and_entities(real_inbound):
    text = first_text(real_inbound, r"ne ressemble pas à celui")
    assert clean_text(text) == (
        "Quand ton ne ressemble pas à celui que tu as réservé, & qu'en + d'être sale et en sous-sol, "
        "tu te retrouves à 10 dans 1 #logement !"
    )


def test_invariants_over_every_real_inbound_tweet(cleaned_inbound):
    assert len(cleaned_inbound) > 20_000
    for text, cleaned in zip(cleaned_inbound["text"], cleaned_inbound["clean"], strict=True):
        assert URL_PATTERN.search(cleaned) is None, text
        assert MENTION_PATTERN.search(cleaned) is None, text
        assert cleaned == " ".join(cleaned.split()), text
        assert emoji.emoji_count(cleaned) == 0, text
    # Cleaning is idempotent on already clean text.
    sample = cleaned_inbound["clean"].head(500)
    assert [clean_text(c) for c in sample] == sample.tolist()


def test_addressed_brand_thread_brand_wins_over_mentioned_brand(typed_slice):
    inbound, brands = typed_slice
    chosen = (inbound["thread_brand"] == "Tesco") & inbound["text"].str.startswith("@sainsburys")
    row = inbound[chosen].iloc[0]
    assert "sainsburys" in brands
    assert addressed_brand(row["text"], row["thread_brand"], brand_lookup(brands)) == "Tesco"


def test_addressed_brand_known_brand_beats_earlier_handles(typed_slice, real_inbound):
    _, brands = typed_slice
    # A non-brand handle ('delta' is not the brand's spelling) before the known brand handle 'Delta'.
    text = first_text(real_inbound, r"live representative at @delta,")
    assert mentions(text) == ["delta", "Delta"] and "Delta" in brands and "delta" not in brands
    assert addressed_brand(text, "", brand_lookup(brands)) == "Delta"
    # An anonymised id first, then a known brand.
    text = first_text(real_inbound, r"^@\d+ @UPSHELP ")
    # Handles ignore case: '@UPSHELP' is the known brand, written as the brand writes it.
    assert addressed_brand(text, "", brand_lookup(brands)) == "UPSHelp"


def test_addressed_brand_skips_numeric_ids(typed_slice, real_inbound):
    _, brands = typed_slice
    text = first_text(real_inbound, r"^@\d+ @AskTigogh ")
    assert "AskTigogh" not in brands
    assert addressed_brand(text, "", brand_lookup(brands)) == "AskTigogh"


def test_addressed_brand_unknown(typed_slice, real_inbound):
    _, brands = typed_slice
    only_ids = first_text(real_inbound, r"^@\d+ [^@]*$")
    assert addressed_brand(only_ids, "", brand_lookup(brands)) == "unknown"
    no_mention = first_text(real_inbound, r"^[^@]+$")
    assert addressed_brand(no_mention, "", brand_lookup(brands)) == "unknown"


def test_addressed_brand_matches_known_brands_case_insensitively(typed_slice, real_inbound):
    _, brands = typed_slice
    text = first_text(real_inbound, r"^@\d+ @tesco ")
    assert "Tesco" in brands and "tesco" not in brands
    assert addressed_brand(text, "", brand_lookup(brands)) == "Tesco"


def test_clean_frame_keeps_columns_and_flags_empty_texts(typed_slice):
    inbound, brands = typed_slice
    out = clean_frame(inbound, brands)
    assert list(out.columns) == [*inbound.columns, "text_clean", "brand", "is_empty"]
    pd.testing.assert_frame_equal(out[inbound.columns], inbound)
    assert out["text_clean"].tolist() == [clean_text(t) for t in inbound["text"]]
    assert out["is_empty"].tolist() == [c == "" for c in out["text_clean"]]
    # Real tweets that are only mentions and/or a link are flagged empty.
    empty_texts = out.loc[out["is_empty"], "text"]
    assert len(empty_texts) > 0
    assert "@SpotifyCares @593246 \n@593247" in set(empty_texts)
    assert any(text.startswith("@SpotifyCares") and "https://t.co/" in text for text in empty_texts)
    for text in empty_texts:
        assert URL_PATTERN.sub("", MENTION_PATTERN.sub("", text)).strip() == ""
    # Brands: the thread's brand when known, otherwise a mentioned handle; never empty.
    threaded = out["thread_brand"] != ""
    assert (out.loc[threaded, "brand"] == out.loc[threaded, "thread_brand"]).all()
    assert (out["brand"] != "").all()
    # The input is not modified.
    assert "text_clean" not in inbound.columns


# Injected into real tweets (so the edited texts are synthetic): none of it is visible, none may reach the model.
INVISIBLE_INJECTIONS = {
    "ansi_colour": ("\x1b[31m", "\x1b[0m"),
    "c0_bell_and_backspace": ("\x07", "\x08"),
    "c1_csi_cursor_move": ("\x9b2J", "\x85"),
    "zero_width_space_and_joiner": ("\u200b", "\u2060"),
    "bidi_override_and_isolate": ("\u202e", "\u2066\u2069"),
    "byte_order_mark_and_soft_hyphen": ("\ufeff", "\u00ad"),
}


@pytest.mark.parametrize("injection", list(INVISIBLE_INJECTIONS), ids=str)
def test_synthetic_controls_and_invisible_characters_are_stripped(real_inbound, injection):
    before, after = INVISIBLE_INJECTIONS[injection]
    text = first_text(real_inbound, r"VERIZON IS DOWN")
    words = text.split(" ")
    edited = " ".join([before + words[0], *words[1:-1], words[-1] + after])
    assert clean_text(edited) == clean_text(text)


def test_synthetic_invisible_characters_inside_words_do_not_split_them(real_inbound):
    text = first_text(real_inbound, r"VERIZON IS DOWN")
    edited = text.replace("VERIZON", "VER\u200bIZ\u00adON").replace("fix", "f\u2060i\ufeffx")
    assert clean_text(edited) == clean_text(text)


def test_synthetic_fullwidth_and_compatibility_forms_are_nfkc_normalised(real_inbound):
    text = first_text(real_inbound, r"VERIZON IS DOWN")
    fullwidth = "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)
    assert clean_text(fullwidth) == clean_text(text)
    assert clean_text("ﬁle ① … ＠AmazonHelp") == "file 1 ..."


def test_synthetic_texts_of_only_invisible_characters_are_empty(typed_slice):
    inbound, brands = typed_slice
    only_invisible = ["\u200b\u200c\u200d", "\u202e\u202d\u2067", "\x1b[2J\x1b[H\x07", "\ufeff \u00ad \x85"]
    edited = inbound.head(len(only_invisible)).assign(text=only_invisible)
    cleaned = clean_frame(edited, brands)
    assert cleaned["text_clean"].tolist() == [""] * len(only_invisible)
    assert cleaned["is_empty"].all()


def test_emoji_sequences_with_joiners_become_one_description():
    family = "👨\u200d👩\u200d👧"
    assert clean_text(f"synthetic: {family} at the airport") == "synthetic: family man woman girl at the airport"


def reference_clean_text(text: str) -> str:
    """clean_text done the slow, obvious way: every text through the emoji replacer, controls and invisible
    characters found by their Unicode category, one character at a time."""
    text = ANSI_ESCAPE_PATTERN.sub(" ", html.unescape(unicodedata.normalize("NFKC", text)))
    text = emoji.replace_emoji(text, replace=_emoji_as_words)
    text = "".join(" " if unicodedata.category(char) == "Cc" else char for char in text)
    text = "".join(char for char in text if unicodedata.category(char) != "Cf")
    return " ".join(MENTION_PATTERN.sub(" ", URL_PATTERN.sub(" ", text)).split())


def test_clean_frame_equals_the_reference_on_the_whole_real_sample():
    inbound, _, summary = read_twcs(BUNDLED_SAMPLE)
    # Every real tweet twice, the second time shuffled: texts cleaned once must still reach each of their rows.
    tweets = pd.concat([inbound, inbound.sample(frac=1, random_state=0)], ignore_index=True)
    texts = tweets["text"]
    assert sum(emoji.emoji_count(text) > 0 for text in texts) > 1000
    assert sum(INVISIBLE_PATTERN.search(text) is not None for text in texts) > 50
    reference = {text: reference_clean_text(text) for text in set(texts)}
    brand_by_handle = brand_lookup(summary.brands)
    brands = [
        addressed_brand(text, brand, brand_by_handle) for text, brand in zip(texts, tweets["thread_brand"], strict=True)
    ]
    expected = tweets.assign(text_clean=pd.Series([reference[text] for text in texts], dtype=str), brand=brands)
    expected["is_empty"] = expected["text_clean"] == ""
    pd.testing.assert_frame_equal(clean_frame(tweets, summary.brands), expected)


def test_invisible_pattern_matches_exactly_the_format_characters():
    every_character = [chr(code_point) for code_point in range(sys.maxunicode + 1)]
    matched = [char for char in every_character if INVISIBLE_PATTERN.fullmatch(char)]
    assert matched == [char for char in every_character if unicodedata.category(char) == "Cf"]


def test_synthetic_stray_variation_selectors_are_dropped_as_the_emoji_replacer_drops_them(real_inbound):
    text = first_text(real_inbound, r"VERIZON IS DOWN")
    edited = text.replace("VERIZON", "VERIZON\ufe0e").replace("fix", "fix\ufe0e")
    assert clean_text(edited) == reference_clean_text(edited) == clean_text(text)
