"""The Dagster code location: assets, resources, IO managers, jobs and the schedule.

Configuration comes from the environment so that the same code runs on a laptop and in production:
- SUPPORT_NLP_SOURCE: twcs.csv(.gz) path or s3:// URI (default: the bundled real sample)
- SUPPORT_NLP_STORAGE: artifact base path, local folder or s3://bucket/prefix (default: .support_nlp/storage)
- SUPPORT_NLP_S3_ENDPOINT_URL / SUPPORT_NLP_S3_REGION: for S3-compatible servers
- SUPPORT_NLP_EMBEDDING_MODEL: sentence-transformers name or path (default: bundled all-MiniLM-L6-v2)
- SUPPORT_NLP_EMBEDDING_BACKEND: auto (default: ONNX int8 on CPU, fp16 torch on CUDA), torch or onnx
- SUPPORT_NLP_EMBEDDING_CACHE: content-addressed vector cache, folder or s3:// (default: <storage>/embedding_cache;
  "off" disables it)
- SUPPORT_NLP_INFERENCE: how predictions label tweets: transformer (default: the deployed classifier on every
  tweet's transformer vector) or cascade (the static student, unsure tweets escalated to the transformer)
- SUPPORT_NLP_LAST_DAY: the last daily partition (default: 2017-12-03 for the bundled sample, none for another source)
- SUPPORT_NLP_ALERT_WEBHOOK: URL the alert sensor POSTs failed spike / emerging-topic checks to (unset: no alerts)
- SUPPORT_NLP_LANDING: where day files twcs-YYYY-MM-DD.csv(.gz) land, folder or s3:// (default: .support_nlp/landing)
"""

import os

import dagster as dg
from upath import UPath

from support_nlp.assets import cascade_inference, categories, features, inference, ingestion, report, trends
from support_nlp.core.encoders import BUNDLED_MODEL_NAME
from support_nlp.core.storage import s3_storage_options
from support_nlp.core.twcs import BUNDLED_SAMPLE
from support_nlp.io_managers import ArtifactIOManagerFactory, ParquetIOManagerFactory
from support_nlp.jobs import (
    daily_inference_job,
    daily_inference_schedule,
    features_job,
    training_job,
    trends_job,
    trends_schedule,
)
from support_nlp.resources import DEFAULT_HOME, EmbeddingModel, ReportStore, TweetSource, inference_path
from support_nlp.sensors import build_alert_sensor, build_drift_retrain_sensor, build_landing_sensor


def build_resources(storage: str | None = None, source: str | None = None, cache_dir: str | None = None) -> dict:
    """Resources from arguments, else from the environment, else local defaults under .support_nlp/."""
    storage = storage or os.environ.get("SUPPORT_NLP_STORAGE", str(DEFAULT_HOME / "storage"))
    s3 = {
        "endpoint_url": os.environ.get("SUPPORT_NLP_S3_ENDPOINT_URL"),
        "region": os.environ.get("SUPPORT_NLP_S3_REGION"),
    }
    return {
        "table_io_manager": ParquetIOManagerFactory(base_path=storage, **s3),
        "artifact_io_manager": ArtifactIOManagerFactory(base_path=storage, **s3),
        "tweet_source": TweetSource(
            path=source or os.environ.get("SUPPORT_NLP_SOURCE", str(BUNDLED_SAMPLE)),
            cache_dir=cache_dir or str(DEFAULT_HOME / "cache"),
            **s3,
        ),
        "embedding_model": EmbeddingModel(
            model=os.environ.get("SUPPORT_NLP_EMBEDDING_MODEL", BUNDLED_MODEL_NAME),
            backend=os.environ.get("SUPPORT_NLP_EMBEDDING_BACKEND", "auto"),
            cache_path=embedding_cache_path(storage),
            **s3,
        ),
        "report_store": ReportStore(base_path=f"{storage.rstrip('/')}/reports", **s3),
    }


def embedding_cache_path(storage: str) -> str | None:
    configured = os.environ.get("SUPPORT_NLP_EMBEDDING_CACHE", f"{storage.rstrip('/')}/embedding_cache")
    return None if configured == "off" else configured


def landing_area() -> UPath:
    landing = os.environ.get("SUPPORT_NLP_LANDING", str(DEFAULT_HOME / "landing"))
    endpoint_url, region = os.environ.get("SUPPORT_NLP_S3_ENDPOINT_URL"), os.environ.get("SUPPORT_NLP_S3_REGION")
    return UPath(landing, **s3_storage_options(landing, endpoint_url, region))


def build_definitions(resources: dict) -> dg.Definitions:
    predictions_module = cascade_inference if inference_path() == "cascade" else inference
    return dg.Definitions(
        assets=dg.load_assets_from_modules([ingestion, features, categories, predictions_module, report, trends]),
        jobs=[features_job, training_job, daily_inference_job, trends_job],
        schedules=[daily_inference_schedule, trends_schedule],
        sensors=[build_landing_sensor(landing_area()), build_drift_retrain_sensor(), build_alert_sensor()],
        resources=resources,
    )


defs = build_definitions(build_resources())
