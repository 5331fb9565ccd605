"""The multilingual encoder by config (USE multilingual v3, core/encoders/use_multilingual.py) on real tweets:
unit vectors, a Spanish and an English tweet of one issue close, its selection and refusals, and categories that
mix languages."""

import numpy as np
import pandas as pd
import pytest

from support_nlp.benchmarks import encoder_speed
from support_nlp.benchmarks.quality import FIRST_CONTACT_FILE
from support_nlp.core.categories import ClusteringConfig, fit_categories, is_multilingual, language_groups
from support_nlp.core.embedding import embed_texts
from support_nlp.core.encoders import BUNDLED_MODEL_NAME, UnsupportedModelError, load_encoder
from support_nlp.core.encoders.use_multilingual import DIMENSION, MODEL_NAME, UseMultilingualEncoder
from support_nlp.core.language import detect_languages
from support_nlp.core.progress import Progress
from support_nlp.core.text import clean_text
from support_nlp.resources import EmbeddingModel

# Rows of the real first-contact tweets (benchmarks/data/twcs_first_contact): a Spanish customer and an English
# one with the same issue, row for row, and English tweets about other issues.
SPANISH_ISSUES = [3979, 1444, 1778]  # charged twice for one order; how to cancel an order; the order arrived late
ENGLISH_SAME_ISSUES = [5624, 3819, 3817]
ENGLISH_OTHER_ISSUES = [1947, 656, 2657, 1783]  # internet outage, login and password, crowded train, iOS update
ENGLISH_ROWS = 230


@pytest.fixture(scope="module")
def first_contact() -> pd.Series:
    return pd.read_csv(FIRST_CONTACT_FILE)["text"].map(clean_text)


@pytest.fixture(scope="module")
def encoder():
    return load_encoder(MODEL_NAME)


def test_real_tweets_become_unit_float32_rows(encoder, first_contact):
    texts = first_contact.head(300).tolist()
    progress = Progress("embed", len(texts), None)
    vectors = encoder.encode(texts, progress)
    assert vectors.dtype == np.float32 and vectors.shape == (len(texts), DIMENSION) == (300, encoder.dimension)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    assert progress.done == len(texts)
    assert len(np.unique(vectors.round(4), axis=0)) == len(set(texts))


def test_a_spanish_tweet_is_closest_to_the_english_one_about_its_issue(encoder, first_contact):
    spanish = encoder.encode(first_contact[SPANISH_ISSUES].tolist())
    english = encoder.encode(first_contact[ENGLISH_SAME_ISSUES + ENGLISH_OTHER_ISSUES].tolist())
    nearest = (spanish @ english.T).argmax(axis=1)
    assert nearest.tolist() == list(range(len(SPANISH_ISSUES)))


def test_the_model_name_selects_it_and_other_backends_or_devices_are_refused(encoder):
    assert isinstance(encoder, UseMultilingualEncoder)
    assert load_encoder(MODEL_NAME, "auto", "cpu") is encoder
    assert EmbeddingModel(model=MODEL_NAME).encoder() is encoder
    # Its own cache namespace: never the identity of another encoder.
    assert encoder.identity.startswith(f"{MODEL_NAME}|") and encoder.identity != load_encoder().identity
    for backend in ("torch", "onnx", "static"):
        with pytest.raises(UnsupportedModelError, match=f"not on backend '{backend}'; use backend 'auto'"):
            load_encoder(MODEL_NAME, backend)
    with pytest.raises(ValueError, match="runs on CPU, not on device 'cuda'"):
        load_encoder(MODEL_NAME, "auto", "cuda")
    with pytest.raises(ValueError, match="unknown embedding backend"):
        load_encoder(MODEL_NAME, "numpy")


def test_categories_mix_languages_with_it_and_keep_them_apart_without(encoder, first_contact):
    texts = first_contact.loc[first_contact != ""]
    tweets = pd.DataFrame({"text": texts, "text_clean": texts, "language": detect_languages(texts.tolist())})
    # Every Spanish tweet and the first English ones, so that the Spanish are a sizeable share.
    tweets = pd.concat(
        [tweets.loc[tweets["language"] == "es"], tweets.loc[tweets["language"] == "en"].head(ENGLISH_ROWS)]
    )
    tweets = tweets.assign(brand="", tweet_id=np.arange(len(tweets)))
    vectors = embed_texts(tweets["text_clean"].tolist(), encoder)
    config = ClusteringConfig(algorithm="kmeans", smoothing_neighbours=0, k=8, seed=0, max_outlier_share=0)

    def categories_with_spanish_and_english(model_name: str) -> int:
        groups = language_groups(tweets["language"], config.min_group_rows, together=is_multilingual(model_name))
        model = fit_categories(vectors, tweets["tweet_id"].to_numpy(), tweets, config, model_name, groups=groups)
        members = model.assignments().merge(tweets[["tweet_id", "language"]], on="tweet_id")
        return int(members.groupby("category_id")["language"].agg(lambda found: {"en", "es"} <= set(found)).sum())

    assert (tweets["language"] == "es").sum() >= config.min_group_rows
    # The embeddings asset records the encoder identity; categories read the model from it.
    assert is_multilingual(encoder.identity) and not is_multilingual(load_encoder().identity)
    assert categories_with_spanish_and_english(encoder.identity) > 0
    assert categories_with_spanish_and_english(BUNDLED_MODEL_NAME) == 0


@pytest.mark.benchmark
def test_the_speed_command_times_each_model_on_real_tweets(encoder, capsys):
    encoder_speed.main(["--rows", "50", "--models", MODEL_NAME])
    printed = capsys.readouterr().out
    assert "50 distinct real tweets" in printed and encoder.identity in printed and "warm texts/s" in printed
