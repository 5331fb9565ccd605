"""Sentence embeddings with the bundled all-MiniLM-L6-v2 model (loads offline)."""

from pathlib import Path

import numpy as np
import pytest

from support_nlp.core.embedding import EmbeddingBatch, embed_texts
from support_nlp.core.encoders import BUNDLED_MODEL_NAME, load_encoder, resolve_model_location
from support_nlp.core.encoders.torch_backend import load_sentence_transformer
from support_nlp.core.progress import Progress
from support_nlp.core.text import clean_text

DIM = 384

# Synthetic sentences, written for this test: a paraphrase pair and an unrelated sentence.
SYNTHETIC_PARAPHRASE = ("My package has not arrived yet", "My order still hasn't been delivered")
SYNTHETIC_UNRELATED = "The song keeps skipping in my playlist"


@pytest.fixture(scope="module")
def real_texts(real_inbound) -> list[str]:
    """24 distinct real cleaned tweets of different lengths."""
    distinct = list(dict.fromkeys(t for t in (clean_text(x) for x in real_inbound["text"]) if t))
    return distinct[:24]


@pytest.fixture(scope="module")
def real_vectors(real_texts) -> np.ndarray:
    return embed_texts(real_texts, load_encoder())


def test_shape_dtype_and_unit_norm(real_texts, real_vectors):
    assert real_vectors.shape == (len(real_texts), DIM)
    assert real_vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(real_vectors, axis=1), 1.0, atol=1e-5)
    # Distinct texts get distinct vectors.
    assert len(np.unique(real_vectors.round(5), axis=0)) == len(real_texts)


def test_rows_follow_the_input_order_and_duplicates_share_a_vector(real_texts, real_vectors):
    texts = [real_texts[3], real_texts[0], real_texts[3], real_texts[7], real_texts[0]]
    vectors = embed_texts(texts, load_encoder())
    assert vectors.shape == (5, DIM)
    np.testing.assert_array_equal(vectors[0], vectors[2])
    np.testing.assert_array_equal(vectors[1], vectors[4])
    # Each row is the vector of its own text (batch composition changes padding, hence the tolerance).
    for row, index in enumerate([3, 0, 3, 7, 0]):
        np.testing.assert_allclose(vectors[row], real_vectors[index], atol=1e-4)


def test_same_texts_give_bit_identical_vectors(real_texts, real_vectors):
    np.testing.assert_array_equal(embed_texts(real_texts, load_encoder()), real_vectors)
    # Input order does not change how the batches are formed, so not the vectors either.
    np.testing.assert_array_equal(embed_texts(real_texts[::-1], load_encoder()), real_vectors[::-1])


def test_paraphrases_are_closer_than_unrelated_texts():
    vectors = embed_texts([*SYNTHETIC_PARAPHRASE, SYNTHETIC_UNRELATED], load_encoder())
    paraphrase = float(vectors[0] @ vectors[1])
    unrelated = max(float(vectors[0] @ vectors[2]), float(vectors[1] @ vectors[2]))
    assert paraphrase > unrelated + 0.1


def test_empty_input():
    vectors = embed_texts([], load_encoder())
    assert vectors.shape == (0, DIM)
    assert vectors.dtype == np.float32


def test_progress_is_reported(real_texts):
    lines: list[str] = []
    progress = Progress("embed", total=5, report=lines.append)
    embed_texts(real_texts[:5] + real_texts[:5], load_encoder(), progress)
    assert progress.done == 5  # distinct texts are encoded once
    assert lines and lines[-1].startswith("embed: 5/5 rows")


@pytest.mark.parametrize("name", [BUNDLED_MODEL_NAME, f"sentence-transformers/{BUNDLED_MODEL_NAME}"])
def test_bundled_model_resolves_to_a_local_directory(name):
    location = Path(resolve_model_location(name))
    assert location.is_dir()
    assert any(location.glob("*.safetensors")) or any(location.glob("*.bin"))


def test_other_names_are_passed_through():
    assert resolve_model_location("sentence-transformers/other-model") == "sentence-transformers/other-model"


def test_bogus_model_name_is_rejected():
    with pytest.raises(ValueError, match="no-such-model"):
        load_sentence_transformer("no-such-model")


def test_embedding_batch_checks_lengths():
    with pytest.raises(ValueError, match="3 tweet ids for 2 vectors"):
        EmbeddingBatch(np.arange(3), np.zeros((2, DIM), np.float32), BUNDLED_MODEL_NAME)


def test_embedding_batch_concat(real_vectors):
    first = EmbeddingBatch(np.arange(10), real_vectors[:10], BUNDLED_MODEL_NAME)
    second = EmbeddingBatch(np.arange(10, 24), real_vectors[10:], BUNDLED_MODEL_NAME)
    both = EmbeddingBatch.concat([first, second])
    assert len(both) == 24 and both.dim == DIM and both.model == BUNDLED_MODEL_NAME
    np.testing.assert_array_equal(both.tweet_ids, np.arange(24))
    np.testing.assert_array_equal(both.vectors, real_vectors)
    other = EmbeddingBatch(np.arange(3), real_vectors[:3], "paraphrase-multilingual-MiniLM-L12-v2")
    with pytest.raises(ValueError, match="different models"):
        EmbeddingBatch.concat([first, other])
