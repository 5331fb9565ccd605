"""Configurable resources: where tweets come from, and which embedding model reads them."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
import numpy as np
from pydantic import PrivateAttr
from upath import UPath

from support_nlp.core.cascade import Cascade, default_cascade_texts, load_cascade
from support_nlp.core.classifier import ClassifierModel
from support_nlp.core.embedding import embed_texts
from support_nlp.core.embedding_cache import EmbeddingCache
from support_nlp.core.encoders import BUNDLED_MODEL_NAME, Backend, Encoder, load_encoder
from support_nlp.core.encoders.static_backend import default_student_root
from support_nlp.core.progress import Progress, ProgressCallback
from support_nlp.core.storage import is_local, s3_storage_options, storage_errors, write_atomically
from support_nlp.core.twcs import BUNDLED_SAMPLE, ParsedSource, parse_source

DEFAULT_HOME = Path(os.environ.get("SUPPORT_NLP_HOME", Path.cwd() / ".support_nlp"))
INFERENCE_PATHS = ("transformer", "cascade")


def inference_path(environ=os.environ) -> str:
    """SUPPORT_NLP_INFERENCE: how `predictions` labels tweets. "transformer": from every tweet's transformer vector
    (the `embeddings` asset); "cascade": from the static student, unsure tweets escalated to the transformer, and
    the daily run skips embedding every tweet with the transformer."""
    path = environ.get("SUPPORT_NLP_INFERENCE", "transformer")
    if path not in INFERENCE_PATHS:
        raise ValueError(f"SUPPORT_NLP_INFERENCE={path!r}: choose one of {INFERENCE_PATHS}")
    return path


class TweetSource(dg.ConfigurableResource):
    """A twcs.csv(.gz), local or `s3://`; the bundled real sample by default.

    The CSV is parsed once per content version into a columnar cache under `cache_dir`. An `s3://` source is
    read from `endpoint_url` (an S3-compatible server) when set, with credentials from the environment only.
    """

    path: str = str(BUNDLED_SAMPLE)
    cache_dir: str = str(DEFAULT_HOME / "cache")
    endpoint_url: str | None = None
    region: str | None = None

    def parse(self, report: ProgressCallback | None = None) -> ParsedSource:
        storage_options = s3_storage_options(self.path, self.endpoint_url, self.region)
        return parse_source(self.path, Path(self.cache_dir), report, storage_options)


class EmbeddingModel(dg.ConfigurableResource):
    """A sentence-transformers model (the bundled all-MiniLM-L6-v2, a local path, or a hub id) and how it runs.

    `backend` "auto" runs the ONNX int8 export on CPU and float16 sentence-transformers on CUDA; "torch" or "onnx"
    force one. With `cache_path` (a folder or `s3://` prefix) every text's vector is stored by encoder and text
    hash, so re-runs and texts repeated across days are never embedded again.
    """

    model: str = BUNDLED_MODEL_NAME
    backend: Backend = "auto"
    device: str | None = None  # None: CUDA when available, else CPU
    batch_size: int | None = None  # torch backend only; None: 64 on CPU, 512 on CUDA
    cache_path: str | None = None
    export_dir: str | None = None  # where the ONNX export is kept; None: the user's cache folder
    endpoint_url: str | None = None
    region: str | None = None

    _cache: EmbeddingCache | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        # One cache object per run: segments it has read stay in memory for the run's later days.
        if self.cache_path:
            options = s3_storage_options(self.cache_path, self.endpoint_url, self.region)
            self._cache = EmbeddingCache(UPath(self.cache_path, **options), warn=context.log.warning)

    def encoder(self) -> Encoder:
        return load_encoder(self.model, self.backend, self.device, self.batch_size, self.export_dir)

    def embed(self, texts: list[str], progress: Progress | None = None) -> np.ndarray:
        return embed_texts(texts, self.encoder(), progress, self._cache)

    @property
    def vector_cache(self) -> EmbeddingCache | None:
        return self._cache

    def cascade(self, classifier: ClassifierModel) -> Cascade:
        """The student-then-transformer cascade for `classifier`, built beside the ONNX export on first use."""
        root = Path(self.export_dir) if self.export_dir else default_student_root()
        return load_cascade(self.encoder(), classifier, default_cascade_texts(), root, teacher_cache=self._cache)


class ReportStore(dg.ConfigurableResource):
    """Where files for people (HTML reports, PNG plots) are written: a local folder or `s3://bucket/prefix`."""

    base_path: str
    endpoint_url: str | None = None
    region: str | None = None

    def write(self, name: str, data: bytes) -> str:
        """Replace the file `name` with `data`; returns where it is."""
        folder = UPath(self.base_path, **s3_storage_options(self.base_path, self.endpoint_url, self.region))
        path = folder / name
        with storage_errors("write", path):
            if is_local(folder):
                Path(folder.path).mkdir(parents=True, exist_ok=True)
            write_atomically(path, data)
        return str(path)
