"""Jobs over the asset graph, and the daily inference schedule."""

import dagster as dg

from support_nlp.defs.assets.categories import classifier, cluster_labels
from support_nlp.defs.assets.deployment import deployed_model
from support_nlp.defs.assets.inference import predictions
from support_nlp.defs.assets.report import category_report
from support_nlp.defs.assets.trends import category_trends

features_job = dg.define_asset_job(
    "features",
    selection=dg.AssetSelection.groups("features"),
    description="Ingest, clean and embed days of tweets (the inputs training needs).",
)
training_job = dg.define_asset_job(
    "training",
    selection=dg.AssetSelection.assets(cluster_labels, classifier, deployed_model),
    description="Discover categories over all materialized days, train the classifier on them, and deploy the pair "
    "when the classifier passes its quality floor.",
)
deploy_model_job = dg.define_asset_job(
    "deploy_model",
    selection=dg.AssetSelection.assets(deployed_model),
    description="Deploy a stored model version (a rollback): launch with config "
    "`ops: {deployed_model: {config: {version: <version>}}}`; `python -m support_nlp.model_store list` lists them.",
)
daily_inference_job = dg.define_asset_job(
    "daily_inference",
    # The features predictions reads, with theirs: under SUPPORT_NLP_INFERENCE=cascade no `embeddings`, so the daily
    # run embeds only the tweets the student is unsure of (training still reads the features job's embeddings).
    selection=(
        dg.AssetSelection.groups("features") & dg.AssetSelection.assets(predictions).upstream(depth=1)
    ).upstream()
    | dg.AssetSelection.assets(predictions),
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
