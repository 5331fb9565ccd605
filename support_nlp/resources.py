"""Configurable resources: how object stores are reached, where tweets come from, which embedding model reads
them, where reports and models are kept."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import numpy as np
from pydantic import PrivateAttr
from upath import UPath

from support_nlp.core.cascade import Cascade, load_cascade, stored_cascade_texts
from support_nlp.core.categories import CategoryModel
from support_nlp.core.classifier import ClassifierModel
from support_nlp.core.embedding import embed_texts
from support_nlp.core.embedding_cache import EmbeddingCache
from support_nlp.core.encoders import BUNDLED_MODEL_NAME, Backend, Encoder, load_encoder
from support_nlp.core.encoders.static_backend import default_student_root
from support_nlp.core.model_store import ModelPair, ModelStore
from support_nlp.core.progress import Progress, ProgressCallback
from support_nlp.core.storage import (
    DEFAULT_S3_CONNECT_TIMEOUT_S,
    DEFAULT_S3_MAX_ATTEMPTS,
    CorruptArtifactError,
    s3_storage_options,
    write_file,
)
from support_nlp.core.twcs import BUNDLED_SAMPLE, ParsedSource, parse_source
from support_nlp.settings import read_settings

DEFAULT_HOME = read_settings().home


class ObjectStore(dg.Config):
    """How every `s3://` location is reached: an S3-compatible endpoint, the region, and how long to insist.

    The one place these settings are declared; each resource and IO manager that reaches storage holds one as its
    `store`. Credentials are deliberately not config: s3fs takes them from the environment or the
    instance role.
    """

    endpoint_url: str | None = None
    region: str | None = None
    max_attempts: int = DEFAULT_S3_MAX_ATTEMPTS
    connect_timeout_s: float = DEFAULT_S3_CONNECT_TIMEOUT_S

    def storage_options(self, url: str) -> dict:
        return s3_storage_options(url, self.endpoint_url, self.region, self.max_attempts, self.connect_timeout_s)

    def location(self, url: str) -> UPath:
        return UPath(url, **self.storage_options(url))


# The command that lists stored model versions and deploys an earlier one (support_nlp/model_store.py).
ROLLBACK_COMMAND = "python -m support_nlp.model_store rollback"


class TweetSource(dg.ConfigurableResource):
    """A twcs.csv(.gz), local or `s3://`; the bundled real sample by default.

    The CSV is parsed once per content version into a columnar cache under `cache_dir`. An `s3://` source is
    read through `store`.
    """

    path: str = str(BUNDLED_SAMPLE)
    cache_dir: str = str(DEFAULT_HOME / "cache")
    store: ObjectStore = ObjectStore()

    def parse(self, report: ProgressCallback | None = None) -> ParsedSource:
        return parse_source(self.path, Path(self.cache_dir), report, self.store.storage_options(self.path))


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
    store: ObjectStore = ObjectStore()

    _cache: EmbeddingCache | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        # One cache object per run: segments it has read stay in memory for the run's later days.
        if self.cache_path:
            self._cache = EmbeddingCache(self.store.location(self.cache_path), warn=context.log.warning)

    def encoder(self) -> Encoder:
        return load_encoder(self.model, self.backend, self.device, self.batch_size, self.export_dir)

    def embed(self, texts: list[str], progress: Progress | None = None) -> np.ndarray:
        return embed_texts(texts, self.encoder(), progress, self._cache)

    @property
    def vector_cache(self) -> EmbeddingCache | None:
        return self._cache

    def cascade(self, classifier: ClassifierModel, kept_in: UPath, report: ProgressCallback | None = None) -> Cascade:
        """The student-then-transformer cascade for `classifier`, read from `kept_in` (its model version's folder),
        built and stored there on first use from the texts training recorded there (`report` follows the build); the
        student is distilled beside the ONNX export."""
        student_root = Path(self.export_dir) if self.export_dir else default_student_root()
        texts = stored_cascade_texts(kept_in)
        return load_cascade(
            self.encoder(), classifier, texts, student_root, kept_in, teacher_cache=self._cache, report=report
        )


class StorageLocation(dg.ConfigurableResource):
    """A local folder or `s3://bucket/prefix`, optionally on an S3-compatible endpoint."""

    base_path: str
    store: ObjectStore = ObjectStore()

    def upath(self) -> UPath:
        return self.store.location(self.base_path)


class ReportStore(StorageLocation):
    """Where files for people (HTML reports, PNG plots) are written."""

    def write(self, name: str, data: bytes) -> str:
        """Replace the file `name` with `data`; returns where it is."""
        path = self.upath() / name
        write_file(path, data)
        return str(path)


class ModelStoreResource(StorageLocation):
    """Every trained model pair, versioned by training run, and which one is deployed (core/model_store.py);
    `base_path` is the artifact storage, the store its `models/` folder."""

    def open(self) -> ModelStore:
        return ModelStore(self.upath() / "models")

    def folder(self, pair: ModelPair) -> UPath:
        """Where `pair`'s version keeps its files, its cascade among them."""
        return self.open().folder(pair.version.version)

    def deployed(self) -> ModelPair:
        """The deployed pair; a Failure that says what to do when there is none or it cannot be read (not retried:
        reading again returns the same bytes)."""
        store = self.open()
        try:
            pair = store.deployed()
        except CorruptArtifactError as error:
            raise dg.Failure(
                f"the deployed model cannot be read: {error}. Not retried: reading it again returns the same bytes. "
                f"Deploy another version with `{ROLLBACK_COMMAND}`, or run the `training` job",
                allow_retries=False,
            ) from error
        if pair is None:
            raise dg.Failure(
                f"no model is deployed in {store.root}: run the `training` job (cluster_labels, classifier, "
                "deployed_model) first",
                allow_retries=False,
            )
        return pair

    def previous_categories(self) -> CategoryModel | None:
        """The deployed categories, which a refit inherits its category ids from; None when there are none.

        A damaged deployed version is only reported: failing here would leave training unable to replace it."""
        try:
            pair = self.open().deployed()
        except CorruptArtifactError as error:
            dg.get_dagster_logger().warning(f"the deployed model cannot be read and is ignored: {error}")
            return None
        return pair.categories if pair else None
