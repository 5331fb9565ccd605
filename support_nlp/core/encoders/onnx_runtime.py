"""The fast CPU encoder: the int8 ONNX export of a sentence-transformers model, run by ONNX Runtime without torch.

The export is made once per model and library versions, offline, cached on disk (`ensure_exported`; how it is
made: `onnx_export`). Inference runs each text on its own. There is then no padding to compute, and since dynamic
quantization derives activation scales from the whole input of a call, a text's vector depends on that text alone,
never on which other texts are embedded alongside it. Texts run in parallel, one single-threaded ORT run per core.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from support_nlp.core.encoders.built_folder import build_once, keyed_folder, library_versions
from support_nlp.core.parallel import available_cores
from support_nlp.core.progress import Progress

RECIPE_VERSION = "1"
PRECISION = "int8"
MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
DESCRIPTION_FILE = "encoder.json"
LIBRARIES = ("torch", "transformers", "sentence-transformers", "onnx", "onnxruntime")
PROGRESS_CHUNK_ROWS = 256


def is_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def default_export_root() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "support_nlp" / "onnx"


def _weights_fingerprint(location: str) -> list:
    """Size and mtime of local weight files, so a model replaced at the same path is exported again."""
    folder = Path(location)
    if not folder.is_dir():
        return []
    return [
        [path.name, path.stat().st_size, path.stat().st_mtime_ns]
        for path in sorted(folder.iterdir())
        if path.suffix in (".safetensors", ".bin")
    ]


def export_folder(model: str, location: str, root: Path, layers: int | None = None) -> Path:
    """Where the export of `model` (of its first `layers` transformer layers; None: all) for the installed library
    versions lives (whether or not it exists yet)."""
    key = {
        "model": model,
        "location": location,
        "weights": _weights_fingerprint(location),
        "recipe": RECIPE_VERSION,
        "libraries": library_versions(LIBRARIES),
    }
    if layers is None:
        return keyed_folder(root, model, key)
    return keyed_folder(root, f"{model}-layers{layers}", {**key, "layers": layers})


def ensure_exported(model: str, location: str, root: Path, layers: int | None = None) -> Path:
    """The folder with the quantized model, tokenizer and description of `model` (of its first `layers`
    transformer layers; None: all), exporting it if needed."""

    def export(staging: Path) -> None:
        from support_nlp.core.encoders import onnx_export

        onnx_export.export_model(model, staging, layers)

    return build_once(export_folder(model, location, root, layers), DESCRIPTION_FILE, export)


class OnnxEncoder:
    """Unit-length float32 embeddings from the exported int8 model; see the module docstring."""

    def __init__(self, folder: Path, workers: int | None = None):
        import onnxruntime as ort
        from tokenizers import Tokenizer

        description = json.loads((folder / DESCRIPTION_FILE).read_text())
        self.folder = folder
        self.model = description["model"]
        self.dimension = int(description["dimension"])
        self.layers = description.get("layers")  # None: the whole model
        truncated = "" if self.layers is None else f"-layers{self.layers}"
        self.identity = f"{self.model}|onnx-{PRECISION}-r{RECIPE_VERSION}{truncated}"
        self.workers = workers or available_cores()
        self._tokenizer = Tokenizer.from_file(str(folder / TOKENIZER_FILE))
        # The saved tokenizer pads to a fixed length for batches; one text per run needs no padding at all.
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(description["max_seq_length"])
        options = ort.SessionOptions()
        # Parallelism comes from running texts side by side; each run stays on one core and so stays
        # deterministic and free of thread hand-offs, which dominate for inputs of a few dozen tokens.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(str(folder / MODEL_FILE), options, providers=["CPUExecutionProvider"])

    def _embed_one(self, token_ids: list[int]) -> np.ndarray:
        input_ids = np.asarray([token_ids], dtype=np.int64)
        feeds = {"input_ids": input_ids, "attention_mask": np.ones_like(input_ids)}
        return self._session.run(None, feeds)[0][0]

    def encode(self, texts: list[str], progress: Progress | None = None) -> np.ndarray:
        # Tokenized a chunk at a time: the tokenizer's encodings of a whole large corpus at once held several GiB.
        return self._encode_chunks(
            len(texts),
            lambda start, stop: [encoding.ids for encoding in self._tokenizer.encode_batch(texts[start:stop])],
            progress,
        )

    def encode_token_ids(self, token_ids: list[list[int]], progress: Progress | None = None) -> np.ndarray:
        """`encode` for inputs already tokenized (special tokens included), e.g. single vocabulary tokens."""
        return self._encode_chunks(len(token_ids), lambda start, stop: token_ids[start:stop], progress)

    def _encode_chunks(
        self, rows: int, token_ids_of: Callable[[int, int], list[list[int]]], progress: Progress | None
    ) -> np.ndarray:
        vectors = np.empty((rows, self.dimension), dtype=np.float32)
        with ThreadPoolExecutor(self.workers) as pool:
            for start in range(0, rows, PROGRESS_CHUNK_ROWS):
                stop = min(start + PROGRESS_CHUNK_ROWS, rows)
                vectors[start:stop] = list(pool.map(self._embed_one, token_ids_of(start, stop)))
                if progress:
                    progress.advance(stop - start)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors
