"""Daily partitions end where the data ends, and what the schedule does on the days around that end."""

from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from support_nlp.core.twcs import BUNDLED_SAMPLE
from support_nlp.definitions import defs
from support_nlp.partitions import backfill_policy, daily_partitions_until
from support_nlp.settings import BUNDLED_SAMPLE_LAST_DAY, read_settings


def configured_last_day(environ: dict[str, str]) -> str | None:
    return read_settings(environ).last_day


def test_the_last_day_is_configured_or_the_bundled_samples_or_none():
    assert configured_last_day({}) == BUNDLED_SAMPLE_LAST_DAY
    assert configured_last_day({"SUPPORT_NLP_SOURCE": str(BUNDLED_SAMPLE)}) == BUNDLED_SAMPLE_LAST_DAY
    # An empty variable is unset, not a source named "".
    assert configured_last_day({"SUPPORT_NLP_SOURCE": ""}) == BUNDLED_SAMPLE_LAST_DAY
    assert configured_last_day({"SUPPORT_NLP_SOURCE": "s3://tweets/twcs.csv"}) is None
    assert configured_last_day({"SUPPORT_NLP_SOURCE": "s3://t/x.csv", "SUPPORT_NLP_LAST_DAY": "2018-01-31"}) == (
        "2018-01-31"
    )


def test_bounded_partitions_are_the_sample_days_and_unbounded_ones_reach_yesterday():
    keys = daily_partitions_until(BUNDLED_SAMPLE_LAST_DAY).get_partition_keys()
    assert (keys[0], keys[-1], len(keys)) == ("2017-10-01", "2017-12-03", 64)
    # A live source: a day's partition exists once the day has ended (UTC).
    live = daily_partitions_until(None).get_partition_keys()
    assert live[-1] == (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%d")


def schedule_tick(when: datetime):
    context = dg.build_schedule_context(scheduled_execution_time=when)
    return defs.resolve_schedule_def("daily_inference_schedule").evaluate_tick(context)


def test_the_schedule_classifies_the_day_that_ended_and_nothing_new_past_the_last_day():
    # The code location under test reads the bundled sample, so its partitions end on 2017-12-03.
    last = schedule_tick(datetime(2017, 12, 4, 1, 15, tzinfo=UTC))
    assert [(r.partition_key, r.run_key) for r in last.run_requests] == [("2017-12-03", "2017-12-03")]
    # Past the end it asks for the last day again under the same run key, which the daemon drops as done.
    past_the_end = schedule_tick(datetime(2017, 12, 5, 1, 15, tzinfo=UTC))
    assert [(r.partition_key, r.run_key) for r in past_the_end.run_requests] == [("2017-12-03", "2017-12-03")]


def test_a_backfill_is_one_run_unless_days_per_run_are_configured():
    def policy(environ: dict[str, str]) -> dg.BackfillPolicy:
        return backfill_policy(read_settings(environ).backfill_days_per_run)

    assert policy({}) == dg.BackfillPolicy.single_run()
    split = policy({"SUPPORT_NLP_BACKFILL_DAYS_PER_RUN": "7"})
    assert split == dg.BackfillPolicy.multi_run(max_partitions_per_run=7)
    for wrong in ("0", "-3", "seven", "1.5"):
        with pytest.raises(ValueError, match=f"SUPPORT_NLP_BACKFILL_DAYS_PER_RUN .*{wrong!r}"):
            policy({"SUPPORT_NLP_BACKFILL_DAYS_PER_RUN": wrong})
