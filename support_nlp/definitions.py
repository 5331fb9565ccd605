"""The Dagster code location: the definitions of support_nlp/defs/ with their resources and IO managers.

Configuration comes from the environment (`support_nlp.settings`), so that the same code runs on a laptop and in
production.
"""

from pathlib import Path

import dagster as dg

from support_nlp.defs.assets.ingestion import READS_SOURCE_TAG
from support_nlp.io_managers import ArtifactIOManagerFactory, ParquetIOManagerFactory
from support_nlp.resources import EmbeddingModel, ModelStoreResource, ObjectStore, ReportStore, TweetSource
from support_nlp.settings import (
    EMBEDDING_MODEL,
    S3_ENDPOINT_URL,
    S3_REGION,
    SOURCE,
    STORAGE,
    Settings,
    Variable,
    read_settings,
)


def build_resources(storage: str | None = None, source: str | None = None, cache_dir: str | None = None) -> dict:
    """Resources from arguments, else from the environment, else local defaults under .support_nlp/."""
    settings = read_settings()
    store = ObjectStore(
        endpoint_url=in_config(settings, S3_ENDPOINT_URL, settings.s3_endpoint_url),
        region=in_config(settings, S3_REGION, settings.s3_region),
    )
    storage_config = storage or in_config(settings, STORAGE, settings.storage)
    storage = storage or settings.storage
    return {
        "table_io_manager": ParquetIOManagerFactory(base_path=storage_config, store=store),
        "artifact_io_manager": ArtifactIOManagerFactory(base_path=storage_config, store=store),
        "tweet_source": TweetSource(
            path=source or in_config(settings, SOURCE, settings.source),
            cache_dir=cache_dir or str(settings.home / "cache"),
            store=store,
        ),
        "embedding_model": EmbeddingModel(
            model=in_config(settings, EMBEDDING_MODEL, settings.embedding_model),
            backend=settings.embedding_backend,
            cache_path=settings.embedding_cache_in(storage),
            store=store,
        ),
        "report_store": ReportStore(base_path=f"{storage.rstrip('/')}/reports", store=store),
        "model_store": ModelStoreResource(base_path=storage_config, store=store),
    }


def in_config(settings: Settings, variable: Variable, value):
    """`value` as resource config: a `dg.EnvVar` when `variable` set it, so the UI names the variable (and the run
    resolves it where it executes) instead of showing a copy."""
    return dg.EnvVar(variable.name) if variable.name in settings.environment else value


def build_definitions(resources: dict) -> dg.Definitions:
    """Everything in support_nlp/defs/ (assets, jobs, schedules, sensors), found by Dagster, bound to `resources`."""
    return dg.Definitions.merge(
        # The project is found upwards from here: pyproject.toml's [tool.dg] names support_nlp.defs.
        dg.load_from_defs_folder(path_within_project=Path(__file__).parent),
        dg.Definitions(
            resources=resources,
            executor=dg.multiprocess_executor.configured(
                {"tag_concurrency_limits": [{"key": READS_SOURCE_TAG, "value": "true", "limit": 1}]}
            ),
        ),
    )


defs = build_definitions(build_resources())
