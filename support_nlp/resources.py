"""Configurable resources: where tweets come from, and which embedding model reads them."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
import numpy as np

from support_nlp.core.embedding import BUNDLED_MODEL_NAME, embed_texts, load_model
from support_nlp.core.progress import Progress, ProgressCallback
from support_nlp.core.twcs import BUNDLED_SAMPLE, ParsedSource, parse_source
from support_nlp.io_managers import s3_storage_options

DEFAULT_HOME = Path(os.environ.get("SUPPORT_NLP_HOME", Path.cwd() / ".support_nlp"))


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
    """A sentence-transformers model: the bundled all-MiniLM-L6-v2, a local path, or a hub id."""

    model: str = BUNDLED_MODEL_NAME
    batch_size: int = 64
    device: str | None = None

    def embed(self, texts: list[str], progress: Progress | None = None) -> np.ndarray:
        return embed_texts(texts, self.model, self.batch_size, self.device, progress)

    def dimension(self) -> int:
        return int(load_model(self.model, self.device).get_embedding_dimension())
