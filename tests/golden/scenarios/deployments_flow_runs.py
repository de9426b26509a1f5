"""Deployments, their schedules and flow runs with the CLI and the SDK (issue 9 §1, §4).

The pool is paused so no server starts a run; the deployment schedules are far ahead or
inactive, so no server's scheduler makes a run the transcript would depend on.
"""

from datetime import datetime, timedelta, timezone

from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterName,
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
    FlowRunFilterTags,
)
from prefect.client.schemas.objects import StateType
from prefect.client.schemas.sorting import FlowRunSort
from prefect.states import Scheduled


async def deploy(client, saved):
    flow_id = await client.create_flow_from_name("etl")
    deployment_id = await client.create_deployment(
        flow_id=flow_id,
        name="nightly",
        work_pool_name="dp",
        entrypoint="flows.py:etl",
        parameters={"day": "monday"},
        tags=["team-a"],
        paused=True,
    )
    saved["deployment_id"] = str(deployment_id)
    return str(deployment_id)


async def make_runs(client, saved):
    later = datetime(2031, 1, 1, tzinfo=timezone.utc)
    names = []
    for i, tags in enumerate([["a"], ["a", "b"], ["b"]]):
        run = await client.create_flow_run_from_deployment(
            saved["deployment_id"],
            name=f"run-{i}",
            tags=tags,
            state=Scheduled(scheduled_time=later + timedelta(hours=i)),
        )
        names.append(run.name)
        saved[f"run{i}"] = str(run.id)
    return names


async def count_runs(client, saved):
    return {
        "all": await client.count_flow_runs(),
        "tag a": await client.count_flow_runs(
            flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=["a"]))
        ),
        "scheduled of nightly": await client.count_flow_runs(
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(
                    type=FlowRunFilterStateType(any_=[StateType.SCHEDULED])
                )
            ),
            deployment_filter=DeploymentFilter(
                name=DeploymentFilterName(any_=["nightly"])
            ),
        ),
    }


async def read_runs(client, saved):
    runs = await client.read_flow_runs(
        flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=["b"])),
        sort=FlowRunSort.EXPECTED_START_TIME_DESC,
        limit=5,
    )
    return [
        (r.name, sorted(r.tags), r.state_type.value, r.parameters, str(r.expected_start_time))
        for r in runs
    ]


async def schedule_ids(client, saved):
    deployment = await client.read_deployment(saved["deployment_id"])
    by_kind = {}
    for schedule in deployment.schedules:
        kind = type(schedule.schedule).__name__
        by_kind[kind] = schedule
        saved[kind] = str(schedule.id)
    return sorted((k, s.active) for k, s in by_kind.items())


async def run_it(client, saved):
    from prefect.deployments.flow_runs import arun_deployment

    run = await arun_deployment(
        "etl/nightly",
        parameters={"day": "friday"},
        scheduled_time=datetime(2032, 1, 1, tzinfo=timezone.utc),
        timeout=0,
        tags=["manual"],
        flow_run_name="manual-run",
    )
    return {
        "name": run.name,
        "state": run.state_type.value,
        "parameters": run.parameters,
        "tags": sorted(run.tags),
        "expected_start_time": str(run.expected_start_time),
        "work_pool_name": run.work_pool_name,
        "work_queue_name": run.work_queue_name,
    }


STEPS = [
    ("cli", "work-pool create dp --type process --paused"),
    ("sdk", "create_deployment", deploy),
    ("cli", "deployment ls"),
    ("cli", "deployment inspect etl/nightly"),
    ("cli", "deployment schedule ls etl/nightly"),
    ("cli", "deployment schedule create etl/nightly --cron '0 6 * * 1-5' --timezone Europe/Paris"),
    ("cli", "deployment schedule create etl/nightly --interval 3600 --anchor-date 2031-01-01T00:00:00Z --no-active"),
    ("cli", "deployment schedule create etl/nightly --rrule 'FREQ=WEEKLY;BYDAY=MO'"),
    ("cli", "deployment schedule ls etl/nightly"),
    ("cli", "deployment schedule create nope/missing --interval 60"),
    ("sdk", "read_deployment schedules", schedule_ids),
    ("cli", "deployment schedule pause etl/nightly {CronSchedule}"),
    ("cli", "deployment schedule pause etl/nightly {CronSchedule}"),
    ("cli", "deployment schedule resume etl/nightly {IntervalSchedule}"),
    ("cli", "deployment schedule ls etl/nightly"),
    ("cli", "deployment schedule delete etl/nightly {RRuleSchedule} -y"),
    ("sdk", "run_deployment", run_it),
    ("sdk", "create_flow_run_from_deployment", make_runs),
    ("sdk", "count_flow_runs", count_runs),
    ("sdk", "read_flow_runs", read_runs),
    ("cli", "flow-run ls"),
    ("cli", "flow-run ls --state-type SCHEDULED --limit 2"),
    ("cli", "flow-run inspect {run0}"),
    ("cli", "flow-run cancel {run1}"),
    ("cli", "flow-run ls --state-type CANCELLED"),
    ("cli", "flow-run delete {run2}"),
    ("cli", "flow-run inspect {run2}"),
    ("cli", "deployment schedule clear etl/nightly -y"),
    ("cli", "deployment schedule ls etl/nightly"),
    ("cli", "deployment delete etl/nightly"),
    ("cli", "deployment ls"),
]
