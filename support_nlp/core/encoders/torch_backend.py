"""sentence-transformers on torch: float32 on CPU; on CUDA float16, large batches, tokenization overlapping the GPU."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path

import numpy as np

from support_nlp.core.encoders.base import BUNDLED_MODEL_NAME, resolve_model_location
from support_nlp.core.progress import Progress

ENCODE_CHUNK_ROWS = 2048
CPU_BATCH_SIZE = 64
# Enough rows per call to keep a GPU busy on tweets; the tokenizer thread prepares the next batch meanwhile.
CUDA_BATCH_SIZE = 512


@lru_cache(maxsize=4)
def load_sentence_transformer(model: str, device: str | None = None):
    from sentence_transformers import SentenceTransformer

    location = resolve_model_location(model)
    if not (Path(location).exists() or "/" in location):
        raise ValueError(
            f"embedding model {model!r} is neither the bundled {BUNDLED_MODEL_NAME!r}, a local path, "
            "nor a hub id like 'sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2'"
        )
    return SentenceTransformer(location, device=device)


class TorchEncoder:
    """sentence-transformers: float32 on CPU; on CUDA float16, large batches, tokenization overlapping the GPU."""

    def __init__(self, model: str, device: str, batch_size: int | None):
        self.on_cuda = device.startswith("cuda")
        self.sentence_transformer = load_sentence_transformer(model, device)
        if self.on_cuda:
            # In place: load_sentence_transformer(model, "cuda") serves only this encoder.
            self.sentence_transformer.half()
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
