"""The whole graph, end to end, on a slice of the real bundled sample, into a temporary folder."""

import html
import os
import re
import subprocess
import sys

import dagster as dg
import numpy as np
import pandas as pd
from dagster._core.storage.tags import REPOSITORY_LABEL_TAG
from upath import UPath

from support_nlp.core.cascade import stored_cascade_texts
from support_nlp.core.category_map import DEFAULT_CATEGORY_MAP, load_category_map
from support_nlp.core.classifier import CONVERSATIONAL_ID, UNCERTAIN_NAME
from support_nlp.core.conversation import ISSUE, MESSAGE_KINDS, message_kinds, opens_thread, states_problem
from support_nlp.core.model_store import ModelStore
from support_nlp.core.seeds import overlap_note
from support_nlp.core.text import mentions
from support_nlp.definitions import defs as product_defs
from support_nlp.defs.assets.trends import CONVERSATION_ONLY, trend_category
from support_nlp.pipeline import padded, summary
from support_nlp_tests.conftest import OUT_OF_RANGE_TWEET_IDS, SLICE_DAYS, SLICE_RANGE, slice_definitions


def latest_metadata(instance: dg.DagsterInstance, asset: str, partition: str | None = None) -> dict:
    event = instance.get_latest_materialization_event(dg.AssetKey(asset)) if partition is None else None
    if partition is not None:
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[partition]), limit=1
        ).records
        event = records[0].event_log_entry
    return {k: v.value for k, v in event.asset_materialization.metadata.items()}


def test_every_inbound_row_is_predicted_or_counted(pipeline_run, slice_inbound_count):
    storage, instance, result, _ = pipeline_run
    predictions = pd.concat(pd.read_parquet(p) for p in sorted((storage / "predictions").glob("*.parquet")))
    clean = pd.concat(pd.read_parquet(p) for p in sorted((storage / "clean_text").glob("*.parquet")))
    assert len(clean) == slice_inbound_count
    excluded_empty = int(clean["is_empty"].sum())
    assert len(predictions) + excluded_empty == slice_inbound_count
    assert result.rows_predicted == len(predictions)
    assert predictions["tweet_id"].is_unique
    assert set(predictions["tweet_id"]) == set(clean.loc[~clean["is_empty"], "tweet_id"])
    raw_metadata = latest_metadata(instance, "raw_tweets", SLICE_DAYS[0])
    assert raw_metadata["source_inbound_rows_outside_partition_range"] == OUT_OF_RANGE_TWEET_IDS


def test_known_brands_come_from_the_source_once_and_name_the_brand_a_tweet_addresses(pipeline_run, bundled_sample):
    storage, instance, _, _ = pipeline_run
    brands = pd.read_parquet(storage / "known_brands.parquet")["brand"].tolist()
    # The slice carries every brand reply of the sample.
    assert brands == sorted(bundled_sample.loc[bundled_sample["inbound"] == "False", "author_id"].unique())
    assert latest_metadata(instance, "known_brands")["dagster/row_count"] == len(brands)
    clean = pd.concat(pd.read_parquet(p) for p in (storage / "clean_text").glob("*.parquet"))
    # Without a brand reply in the thread, a mentioned brand handle wins over any other mention.
    handles = {brand.lower() for brand in brands}
    unanswered = clean[clean["thread_brand"] == ""]
    mentioning = unanswered[[any(h.lower() in handles for h in mentions(text)) for text in unanswered["text"]]]
    assert len(mentioning) > 0
    assert mentioning["brand"].isin(brands).all()


def test_clean_text_reads_known_brands_which_both_features_jobs_materialize():
    assert dg.AssetKey("known_brands") in product_defs.resolve_asset_graph().get(dg.AssetKey("clean_text")).parent_keys
    for job in ("features", "daily_inference"):
        assert dg.AssetKey("known_brands") in product_defs.resolve_job_def(job).asset_layer.executable_asset_keys


def test_days_in_the_range_without_tweets_materialize_as_empty(pipeline_run):
    storage, instance, result, _ = pipeline_run
    assert (result.first_day, result.last_day) == SLICE_RANGE
    all_days = pd.date_range(*SLICE_RANGE).strftime("%Y-%m-%d")
    for asset in ("raw_tweets", "clean_text", "predictions"):
        files = sorted(p.stem for p in (storage / asset).glob("*.parquet"))
        assert files == list(all_days), asset
    gap_day = next(day for day in all_days if day not in SLICE_DAYS)
    assert len(pd.read_parquet(storage / "predictions" / f"{gap_day}.parquet")) == 0
    assert latest_metadata(instance, "raw_tweets", gap_day)["dagster/row_count"] == 0


def test_every_issue_has_a_named_category_or_is_uncertain_and_every_tweet_a_kind(pipeline_run):
    storage, _, result, _ = pipeline_run
    names = set(result.categories.names.values())
    predictions = pd.concat(pd.read_parquet(p) for p in (storage / "predictions").glob("*.parquet"))
    assert set(predictions["message_kind"]) <= set(MESSAGE_KINDS)
    issues = predictions[predictions["message_kind"] == ISSUE]
    assert 0.6 <= len(issues) / len(predictions) < 1
    assert set(issues["category_name"]) <= names | {UNCERTAIN_NAME}
    confident = issues["category_name"] != UNCERTAIN_NAME
    assert (issues.loc[confident, "confidence"] >= 0.5).all()
    assert (issues.loc[~confident, "category_id"] == -1).all()
    # Conversational messages have no category of their own, only their thread's.
    acts = predictions[predictions["message_kind"] != ISSUE]
    assert (acts["category_id"] == CONVERSATIONAL_ID).all() and (acts["category_name"] == "").all()
    assert set(predictions["thread_category"]) <= names | {UNCERTAIN_NAME, ""}
    assert (acts["thread_category"] != "").mean() >= 0.3
    for category in result.categories.categories:
        assert category.name and category.representatives
        assert category.keywords or category.name == f"category {category.id}"


def test_classifier_is_scored_on_later_days_than_it_trained_on(pipeline_run):
    _, _, result, _ = pipeline_run
    metrics = result.classifier.metrics
    assert metrics.holdout_days[0] > metrics.train_days[1]
    assert 0.0 <= metrics.agreement_macro_f1 <= 1.0
    assert metrics.holdout_rows > 0


def test_the_trained_version_records_its_training_days_texts_for_its_cascade(pipeline_run):
    storage, _, result, _ = pipeline_run
    store = ModelStore(UPath(storage) / "models")
    recorded = stored_cascade_texts(store.folder(store.deployed_version().version))
    first, last = result.classifier.training_days
    clean = pd.concat(pd.read_parquet(p) for p in (storage / "clean_text").glob("*.parquet"))
    trained_on = clean[~clean["is_empty"] & clean["day"].between(first, last)]
    fit, calibration = set(recorded.fit_texts), set(recorded.calibration_texts)
    # Every distinct text of the days the classifier learnt from, split in two disjoint draws.
    assert fit | calibration == set(trained_on["text_clean"])
    assert not fit & calibration
    assert len(recorded.fit_texts) == len(fit) and 0 < len(calibration) < len(fit)
    # The threshold is calibrated on issue messages, the only tweets the cascade labels.
    kinds = np.asarray(message_kinds(trained_on["text"].tolist(), opens_thread(trained_on["in_response_to_tweet_id"])))
    assert calibration <= set(trained_on.loc[kinds == ISSUE, "text_clean"])


def test_runs_report_progress_and_a_summary(pipeline_run):
    _, instance, result, lines = pipeline_run
    assert any("SUCCESS" in line for line in lines)
    text = summary(result)
    assert f"Categories found: {result.categories.k}" in text
    assert "agreement with the pseudo-labels" in text
    # Every shipped seed is either a category or named in the summary as left to discovery.
    shipped = {seed.name for seed in load_category_map(DEFAULT_CATEGORY_MAP).seeds}
    in_categories = {c.seed for c in result.categories.categories if c.seed}
    left = set(result.seeds_without_enough_tweets)
    assert in_categories | left == shipped and not in_categories & left
    assert all(name in text for name in left)
    # A discovered category that overlaps a seed says so under its line; the slice's share decides which do.
    assert all(f"\n{' ' * 12}{overlap_note(c)}: " in text for c in result.categories.categories if overlap_note(c))
    assert text.count("close to seed '") == sum(1 for c in result.categories.categories if overlap_note(c))
    logs = [
        record.user_message
        for run in instance.get_runs()
        for record in instance.all_logs(run.run_id)
        if "rows/s" in record.user_message
    ]
    assert any(message.startswith("embed (") for message in logs)
    embeddings_metadata = latest_metadata(instance, "embeddings", SLICE_DAYS[0])
    assert embeddings_metadata["dim"] == 384
    assert embeddings_metadata["model"] == "all-MiniLM-L6-v2"


def test_category_names_in_wide_script_are_padded_to_the_same_columns():
    # The bundled sample's mixed-language category as `make run` named it: katakana take two terminal columns each.
    japanese, english = padded("[other languages] プライム, comprar", 36), padded("delivery, package", 36)
    assert len(english) == 36
    assert len(japanese) == 36 - len("プライム")
    assert padded("x" * 40, 36) == "x" * 40


def test_definitions_validate(tmp_path):
    completed = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-m", "support_nlp.definitions"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "DAGSTER_HOME": str(tmp_path)},
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr


def test_every_asset_reports_its_checks_with_measured_values(pipeline_run):
    _, instance, _, _ = pipeline_run
    asset_graph = product_defs.resolve_asset_graph()
    for check_key in asset_graph.asset_check_keys:
        evaluation = instance.event_log_storage.get_latest_asset_check_execution_by_key([check_key])[check_key]
        assert evaluation is not None, check_key
        assert evaluation.evaluation.metadata, f"{check_key} reported no measured value"


def test_the_report_is_an_html_file_with_every_category_largest_first(pipeline_run):
    storage, instance, result, _ = pipeline_run
    report = latest_metadata(instance, "category_report")
    for plot in ("sizes", "projection", "confusion_matrix"):
        assert report[plot].startswith("![") and "data:image/png;base64," in report[plot]
    assert report["report_file"] == str(storage / "reports" / "category_report.html") == result.report_path
    document = (storage / "reports" / "category_report.html").read_text()
    by_size = result.categories.by_size()
    positions = [document.index(f"<h3>{html.escape(c.name)}</h3>") for c in by_size]
    assert positions == sorted(positions)
    assert "data:image/png;base64," in document and "By brand" in document and "in-sample" in document
    # Cases (conversations opened) are counted apart from the follow-ups that swell a category's tweets.
    volume = pd.read_parquet(storage / "category_trends.parquet")
    counts = volume.groupby("category_name")[["cases", "tweets"]].sum()
    for c in by_size:
        section = document[document.index(f'<section id="category-{c.id}">') :]
        cases, tweets = counts.loc[c.name] if c.name in counts.index else (0, 0)
        assert f"<b>{cases:,}</b> cases opened,\n{tweets:,} tweets with follow-ups" in section[: section.index("</p>")]
    # Each English category shows the share of its predicted issue messages that state a problem.
    predictions = pd.concat(pd.read_parquet(p) for p in (storage / "predictions").glob("*.parquet"))
    issues = predictions[predictions["message_kind"] == ISSUE]
    stated = issues["text"].map(states_problem).groupby(issues["category_name"]).mean()
    for c in by_size:
        section = document[document.index(f'<section id="category-{c.id}">') :]
        if c.languages.get("en", 0) >= 0.5 and c.name in stated:
            assert f"; {stated[c.name]:.0%} state a\nproblem." in section[: section.index("</p>")]
    brands = document[document.index('id="brands"') : document.index('id="examples"')]
    brand_cases = volume.groupby("brand")["cases"].sum().sort_values(ascending=False)
    # Categories down (most cases first), the brands with most cases across, their totals in the last rows.
    header, *rows = [re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S) for row in brands.split("<tr")[1:]]
    shown = header[1:]
    assert shown == list(brand_cases.index[: len(shown)]) and header[0] == ""
    totals = {row[0]: row[1:] for row in rows}["cases, all categories"]
    assert totals == [f"{cases:,}" for cases in brand_cases.iloc[: len(shown)]]
    assert rows[0][0] == html.escape(volume.groupby("category_name")["cases"].sum().idxmax())
    suggested = [c for c in by_size if not c.seed]
    listed = document[document.index('id="suggested"') : document.index('id="trend"')]
    positions = [listed.index(f"<b>{html.escape(c.name)}</b>") for c in suggested]
    assert positions == sorted(positions) and len(positions) == len(suggested)
    # Each suggestion overlapping a seed carries the hint, with the category map entry that merges it into the seed.
    seed_ids = {c.seed: c.id for c in by_size if c.seed}
    for c, start, end in zip(suggested, positions, positions[1:] + [len(listed)], strict=True):
        item = html.unescape(listed[start:end])
        assert (f"As discovered, {overlap_note(c)}: " in item) == bool(overlap_note(c))
        if overlap_note(c) and c.overlapping_seed in seed_ids:
            assert f"{c.id}: {{merge_into: {seed_ids[c.overlapping_seed]}}}" in item
    shipped = {seed.name for seed in load_category_map(DEFAULT_CATEGORY_MAP).seeds}
    assert {c.overlapping_seed for c in suggested} - {None} <= shipped
    assert any(overlap_note(c) for c in suggested)  # on the slice, seeds' topics reach into discovered categories
    assert not any(c.overlapping_seed for c in by_size if c.seed)
    printed = summary(result)
    assert result.report_path in printed and all(c.name in printed for c in by_size)


def test_run_totals_are_on_the_run_and_each_day_page_has_its_own_figures(pipeline_run):
    _, instance, _, _ = pipeline_run
    tags = {key: value for run in instance.get_runs() for key, value in run.tags.items()}
    days = pd.date_range(*SLICE_RANGE).strftime("%Y-%m-%d")
    rows_in = sum(latest_metadata(instance, "clean_text", day)["dagster/row_count"] for day in days)
    assert int(tags["support_nlp/predictions.rows_in"].replace(",", "")) == rows_in
    assert "support_nlp/embeddings.distinct_texts_per_day" in tags
    for asset in ("raw_tweets", "clean_text", "embeddings", "predictions"):
        assert not [key for key in latest_metadata(instance, asset, SLICE_DAYS[0]) if key.startswith("run_")], asset
    embedded = latest_metadata(instance, "embeddings", SLICE_DAYS[0])
    assert 0 < embedded["distinct_texts"] <= embedded["dagster/row_count"]


def test_trends_count_every_predicted_tweet_per_category_and_day(pipeline_run):
    storage, instance, result, _ = pipeline_run
    volume = pd.read_parquet(storage / "category_trends.parquet")
    predictions = pd.concat(pd.read_parquet(p) for p in (storage / "predictions").glob("*.parquet"))
    assert volume["tweets"].sum() == len(predictions) == result.rows_predicted
    expected = predictions.assign(category_name=trend_category(predictions))
    counted = volume.groupby(["day", "category_name"])["tweets"].sum()
    assert counted.to_dict() == expected.groupby(["day", "category_name"]).size().to_dict()
    assert CONVERSATION_ONLY in set(volume["category_name"]) and "" not in set(volume["category_name"])
    trends = latest_metadata(instance, "category_trends")
    assert (storage / "reports" / "category_trends.png").exists() and trends["judged_day"] == SLICE_RANGE[1]


def test_retraining_keeps_category_ids(pipeline_run, real_slice_csv):
    storage, instance, result, _ = pipeline_run
    defs = slice_definitions(storage.parent, real_slice_csv)
    retrained = defs.resolve_job_def("training").execute_in_process(instance=instance)
    assert retrained.success
    model = retrained.asset_value("cluster_labels")
    assert model.names == result.categories.names
    identity = latest_metadata(instance, "cluster_labels")
    assert sorted(int(k) for k in identity["identity_matched"]) == sorted(model.names)
    assert identity["identity_new"] == [] and identity["identity_vanished"] == []
    # Each training run keeps its pair in the model store and, past the quality floor, deploys it.
    store = defs.resources["model_store"].open()
    assert [v.run_id for v in store.versions()][-1] == retrained.run_id
    assert store.deployed_version().run_id == retrained.run_id
    assert latest_metadata(instance, "deployed_model")["training_run_id"] == retrained.run_id


def test_runs_are_launched_through_the_code_location_so_they_show_under_their_jobs(pipeline_run):
    _, instance, _, _ = pipeline_run
    runs = instance.get_runs(dg.RunsFilter(tags={REPOSITORY_LABEL_TAG: "__repository__@support_nlp"}))
    # The UI lists a job's runs by job name and this repository label, which in-process runs do not carry.
    assert {run.job_name for run in runs} >= {"features", "training", "daily_inference", "trends"}
    assert all(run.status == dg.DagsterRunStatus.SUCCESS for run in runs)
