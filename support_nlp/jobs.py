"""Jobs over the asset graph, and the daily inference schedule."""

import dagster as dg

from support_nlp.assets.categories import classifier, cluster_labels
from support_nlp.assets.features import embeddings
from support_nlp.assets.inference import predictions
from support_nlp.assets.report import category_report
from support_nlp.assets.trends import category_trends
from support_nlp.resources import inference_path


def daily_inference_selection(inference: str) -> dg.AssetSelection:
    """The features group and predictions; under the cascade without `embeddings`: predictions then embed only the
    tweets the student is unsure of with the transformer (training still reads the features job's embeddings)."""
    features = dg.AssetSelection.groups("features")
    if inference == "cascade":
        features -= dg.AssetSelection.assets(embeddings)
    return features | dg.AssetSelection.assets(predictions)


features_job = dg.define_asset_job(
    "features",
    selection=dg.AssetSelection.groups("features"),
    description="Ingest, clean and embed days of tweets (the inputs training needs).",
)
training_job = dg.define_asset_job(
    "training",
    selection=dg.AssetSelection.assets(cluster_labels, classifier),
    description="Discover categories over all materialized days and train the classifier on them.",
)
daily_inference_job = dg.define_asset_job(
    "daily_inference",
    selection=daily_inference_selection(inference_path()),
    description="Ingest, clean, embed and classify one day of tweets with the deployed classifier.",
)
trends_job = dg.define_asset_job(
    "trends",
    selection=dg.AssetSelection.assets(category_trends, category_report),
    description="Tweets and cases per category and day over every predicted day with spike and emerging-topic "
    "checks; the category report (HTML in storage).",
)
# Runs shortly after midnight UTC for the day that just ended. A day without tweets still runs and materializes
# empty partitions (0 rows, no predictions). Past the configured last day each tick asks for the last day again
# under the same run key (the day), which the daemon drops as already requested: nothing runs.
daily_inference_schedule = dg.build_schedule_from_partitioned_job(daily_inference_job, hour_of_day=1, minute_of_hour=15)
# After the day's predictions: trends, their alerts and the report include the new day.
trends_schedule = dg.ScheduleDefinition(job=trends_job, cron_schedule="15 2 * * *", execution_timezone="UTC")
