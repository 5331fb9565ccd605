"""Category names from keyphrases, on the real tweets and categories test_categories discovers."""

import numpy as np
import pytest

from support_nlp.core.categories import fit_categories
from support_nlp.core.encoders import BUNDLED_MODEL_NAME
from support_nlp.core.naming import (
    NamingConfig,
    brand_words,
    class_tfidf,
    keyword_tokens,
    name_categories,
    name_from,
    stop_words,
    swear_words,
)
from support_nlp_tests.test_categories import SEARCH, real_training_set


@pytest.fixture(scope="module")
def named(real_slice_csv):
    tweets, vectors = real_training_set(real_slice_csv)
    model = fit_categories(vectors, tweets["tweet_id"].to_numpy(), tweets, SEARCH, BUNDLED_MODEL_NAME)
    features = model.project(vectors)
    brands = tweets["brand"].unique()
    return tweets, features, model.labels, name_categories(tweets["text"].tolist(), model.labels, features, brands)


def test_stop_words_cover_every_supported_language_but_keep_support_words():
    words = stop_words()
    assert {"the", "que", "la", "les", "und", "não", "di", "het", "これ"} <= words
    assert not {"order", "problem", "help", "working", "refund", "not", "no"} & words


def test_tokens_leave_out_handles_brands_emoji_numbers_urls_and_placeholders():
    # Real twcs tweets (sample ids 1852 and 11893), with a placeholder as twcs anonymises e-mail addresses.
    excluded = stop_words() | brand_words(["SpotifyCares", "AmazonHelp"])
    text = "@SpotifyCares my spotify playlist 😭😭 lost 2 songs https://t.co/x send to __email__ &amp; <PHONE> #help"
    assert keyword_tokens(text, excluded, max_tokens=60) == ["playlist", "lost", "songs", "send", "help"]
    assert "amazon" in brand_words(["AmazonHelp"]) and "uber" in brand_words(["Uber_Support"])
    # Handles of the bundled sample: "Ask" handles and possessives ("McDonald's" tokenizes to "mcdonald").
    assert {"playstation", "mcdonald"} <= brand_words(["AskPlayStation", "McDonalds"])
    # A real tweet of the sample (id 4827): the handle Ask_WellsFargo written as two words is still the brand.
    text = "Everytime i turn around i Wells Fargo taking money out my account, I’m bout to stop turning around‼️😒"
    tokens = keyword_tokens(text, stop_words() | brand_words(["Ask_WellsFargo"]), max_tokens=60)
    assert {"money", "account"} <= set(tokens) and not {"wells", "fargo"} & set(tokens)


def test_swear_words_never_become_keyphrases():
    # Real tweets of the bundled sample (ids 5835 and 787483) from the category once named "fix shit"; "sucks" is a
    # plural the word list leaves out.
    excluded = stop_words() | swear_words()
    apple = "You dropped an update and I️ still see boxed question marks. Fix this shit @AppleSupport @115858."
    assert keyword_tokens(apple, excluded, max_tokens=60) == ["dropped", "update", "boxed", "question", "marks", "fix"]
    spotify = (
        '@SpotifyCares Fix your shit. Google "Spotify shuffle problem" and you will see that people aren\'t satisfied.'
    )
    assert "shit" not in keyword_tokens(spotify, excluded, max_tokens=60)
    assert {"shit", "sucks", "wtf", "merde", "mierda"} <= swear_words()


def test_two_words_that_are_a_keyphrase_together_name_as_that_phrase():
    # The keyphrases of the bundled sample's Halloween category, best first, as `name_categories` ranked them.
    ranked = ["halloween", "happy", "christmas", "thankenstein", "dressed", "happy halloween", "love", "party"]
    assert name_from(ranked, NamingConfig()) == "happy halloween"
    assert name_from(["music", "watch", "songs", "play", "season"], NamingConfig()) == "music, watch"


def test_class_tfidf_prefers_phrases_distinctive_of_the_category():
    counts = np.array([[10, 10, 0], [0, 10, 10]], dtype=float)  # phrase 1 is in both categories
    scores = class_tfidf(counts)
    assert scores[0, 0] > scores[0, 1] and scores[1, 2] > scores[1, 1]


def test_names_are_unique_short_phrases_from_the_categories_own_tweets(named):
    tweets, _, labels, namings = named
    names = [naming.name for naming in namings]
    assert len(set(names)) == len(names)
    excluded = stop_words() | brand_words(tweets["brand"].unique()) | swear_words()
    for category, naming in enumerate(namings):
        # A category whose every phrase already leads another name carries its id: "thank (25)".
        phrases = naming.name.removesuffix(f" ({category})")
        words = phrases.replace(",", "").split()
        assert 1 <= len(words) <= 3, naming.name
        assert not set(words) & excluded
        members = " ".join(tweets["text"][labels == category]).lower()
        assert all(phrase in members for phrase in phrases.split(", "))
        relevance = [score for _, score in naming.keyphrases]
        assert all(0 <= score <= 1 for score in relevance)


def test_one_huge_text_cannot_rename_a_category(named):
    tweets, features, labels, namings = named
    # Issue 14's case: one 9,999-character text. Here a real tweet repeated until that length joins category 0.
    flood_text = (tweets["text"].iloc[0] + " ") * (9_999 // (len(tweets["text"].iloc[0]) + 1))
    texts = [*tweets["text"], flood_text]
    vectors = np.vstack([features, features[labels == 0].mean(axis=0)])
    flooded = name_categories(texts, np.append(labels, 0), vectors, tweets["brand"].unique())
    # It counts as that tweet would once: one more text in category 0, no more weight for its words.
    once = name_categories(
        [*tweets["text"], tweets["text"].iloc[0]], np.append(labels, 0), vectors, tweets["brand"].unique()
    )
    assert [n.name for n in flooded] == [n.name for n in once]
