"""Sentence embeddings of cleaned texts: identical texts encoded once, and an optional content-addressed cache so
that no text is ever embedded twice by the same encoder. Which encoder: `support_nlp.core.encoders`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from support_nlp.core.encoders import Encoder
from support_nlp.core.progress import Progress

if TYPE_CHECKING:
    from support_nlp.core.embedding_cache import EmbeddingCache


@dataclass(frozen=True)
class EmbeddingBatch:
    """Unit-length float32 vectors, row i belonging to tweet `tweet_ids[i]`."""

    tweet_ids: np.ndarray
    vectors: np.ndarray
    model: str

    def __post_init__(self):
        if len(self.tweet_ids) != len(self.vectors):
            raise ValueError(f"{len(self.tweet_ids)} tweet ids for {len(self.vectors)} vectors")

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def __len__(self) -> int:
        return len(self.tweet_ids)

    def to_arrays(self) -> tuple[dict[str, np.ndarray], dict]:
        return {"tweet_ids": self.tweet_ids, "vectors": self.vectors}, {"model": self.model}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], meta: dict) -> EmbeddingBatch:
        return cls(tweet_ids=arrays["tweet_ids"], vectors=arrays["vectors"], model=meta["model"])

    @classmethod
    def concat(cls, batches: list[EmbeddingBatch]) -> EmbeddingBatch:
        models = {b.model for b in batches}
        if len(models) != 1:
            raise ValueError(f"cannot combine embeddings of different models: {sorted(models)}")
        return cls(
            tweet_ids=np.concatenate([b.tweet_ids for b in batches]),
            vectors=np.concatenate([b.vectors for b in batches]),
            model=models.pop(),
        )


def embed_texts(
    texts: list[str], encoder: Encoder, progress: Progress | None = None, cache: EmbeddingCache | None = None
) -> np.ndarray:
    """L2-normalised float32 embeddings, one row per text; identical texts are encoded once, and with a `cache`
    texts it already holds for this encoder are not encoded at all (their stored vectors are returned)."""
    unique_texts, inverse = distinct_texts(texts)
    unique_vectors = np.empty((len(unique_texts), encoder.dimension), dtype=np.float32)
    stored = cache.lookup(encoder.identity, unique_texts.tolist()) if cache else {}
    missing = []
    for row, text in enumerate(unique_texts):
        if text in stored:
            unique_vectors[row] = stored[text]
        else:
            missing.append(row)
    if progress and stored:
        progress.advance(len(stored))
    if missing:
        missing_texts = unique_texts[missing].tolist()
        unique_vectors[missing] = encoder.encode(missing_texts, progress)
        if cache:
            cache.store(encoder.identity, missing_texts, unique_vectors[missing])
    return unique_vectors[inverse] if len(texts) else unique_vectors


def distinct_texts(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """The distinct texts in sorted order, and for each input text its position among them.

    Hashing keeps memory proportional to the texts; NumPy's unique would first copy them into a fixed-width array
    as wide as the longest text, which took over 20 GB for 1.6M tweets.
    """
    positions, unique = pd.factorize(np.asarray([str(text) for text in texts], dtype=object), sort=True)
    return unique, positions
