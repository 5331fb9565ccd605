"""The code location the stack test serves over gRPC: the production definitions, plus the production daily
inference schedule's evaluation on a cron of every minute, so a real daemon tick happens within the test's
time instead of at 01:15 UTC. Like every schedule here it is stopped until started (the test starts it)."""

import dagster as dg

from support_nlp import definitions as production
from support_nlp.defs.jobs import daily_inference_job, daily_inference_schedule

EVERY_MINUTE_SCHEDULE = "daily_inference_every_minute"
production_schedule = production.defs.resolve_schedule_def(daily_inference_schedule.name)


def requested_before(instance: dg.DagsterInstance, partition_key: str) -> bool:
    tags = {"dagster/schedule_name": EVERY_MINUTE_SCHEDULE, "dagster/partition": partition_key}
    return bool(instance.get_run_records(filters=dg.RunsFilter(tags=tags), limit=1))


@dg.schedule(name=EVERY_MINUTE_SCHEDULE, cron_schedule="* * * * *", job=daily_inference_job, execution_timezone="UTC")
def daily_inference_every_minute(context: dg.ScheduleEvaluationContext):
    # The production schedule decides what to run at this tick's time: its partition, the day before the tick.
    evaluation = production_schedule.evaluate_tick(context)
    # Once a day, as in production: the next ticks of the same day skip instead of running it again.
    requests = [
        request for request in evaluation.run_requests if not requested_before(context.instance, request.partition_key)
    ]
    return requests or dg.SkipReason(evaluation.skip_message or "this day was requested by an earlier tick")


defs = dg.Definitions.merge(production.defs, dg.Definitions(schedules=[daily_inference_every_minute]))
