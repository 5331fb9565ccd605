"""The Dagster code location: assets, resources, IO managers, jobs and the schedule.

Configuration comes from the environment (`support_nlp.settings`), so that the same code runs on a laptop and in
production.
"""

import dagster as dg

from support_nlp.assets import categories, features, inference, ingestion, report, trends
from support_nlp.assets.ingestion import READS_SOURCE_TAG
from support_nlp.io_managers import ArtifactIOManagerFactory, ParquetIOManagerFactory
from support_nlp.jobs import (
    daily_inference_job,
    daily_inference_schedule,
    features_job,
    training_job,
    trends_job,
    trends_schedule,
)
from support_nlp.resources import EmbeddingModel, ObjectStore, ReportStore, TweetSource
from support_nlp.sensors import build_alert_sensor, build_drift_retrain_sensor, build_landing_sensor
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
    }


def in_config(settings: Settings, variable: Variable, value):
    """`value` as resource config: a `dg.EnvVar` when `variable` set it, so the UI names the variable (and the run
    resolves it where it executes) instead of showing a copy."""
    return dg.EnvVar(variable.name) if variable.name in settings.environment else value


def build_definitions(resources: dict) -> dg.Definitions:
    return dg.Definitions(
        assets=dg.load_assets_from_modules([ingestion, features, categories, inference, report, trends]),
        jobs=[features_job, training_job, daily_inference_job, trends_job],
        schedules=[daily_inference_schedule, trends_schedule],
        sensors=[build_landing_sensor(read_settings().landing), build_drift_retrain_sensor(), build_alert_sensor()],
        resources=resources,
        executor=dg.multiprocess_executor.configured(
            {"tag_concurrency_limits": [{"key": READS_SOURCE_TAG, "value": "true", "limit": 1}]}
        ),
    )


defs = build_definitions(build_resources())
