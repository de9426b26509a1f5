"""Global and tag concurrency limits with the CLI, a run's logs with the SDK and the CLI, and
resuming a run that is not paused (issue 9 §3, §4; issue 10 §1).

The run belongs to no deployment, so no server starts it: its state and its log lines are
written here through the API, as the engine writes them.
"""

from datetime import datetime, timezone

from prefect.client.schemas.actions import LogCreate
from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId, LogFilterLevel
from prefect.client.schemas.sorting import LogSort
from prefect.states import Running


async def run_with_logs(client, saved):
    flow_id = await client.create_flow_from_name("logger")
    from prefect.client.schemas.actions import FlowRunCreate

    response = await client.request(
        "POST",
        "/flow_runs/",
        json=FlowRunCreate(flow_id=flow_id, name="logged").model_dump(
            mode="json", exclude_unset=True
        ),
    )
    run_id = response.json()["id"]
    saved["run"] = run_id
    await client.set_flow_run_state(run_id, Running(), force=True)
    at = datetime(2030, 1, 1, 12, 0, tzinfo=timezone.utc)
    await client.create_logs(
        [
            LogCreate(
                name="prefect.flow_runs",
                level=level,
                message=message,
                timestamp=at.replace(second=i),
                flow_run_id=run_id,
            )
            for i, (level, message) in enumerate(
                [(20, "Starting the load"), (30, "Slow source"), (20, "Loaded 42 rows")]
            )
        ]
    )
    return run_id


async def read_logs(client, saved):
    logs = await client.read_logs(
        log_filter=LogFilter(
            flow_run_id=LogFilterFlowRunId(any_=[saved["run"]]),
            level=LogFilterLevel(ge_=30),
        ),
        sort=LogSort.TIMESTAMP_DESC,
    )
    return [(log.level, log.message, str(log.timestamp)) for log in logs]


async def resume_running(client, saved):
    result = await client.resume_flow_run(saved["run"])
    return {"status": result.status.value, "details": result.details.model_dump(mode="json")}


STEPS = [
    ("cli", "global-concurrency-limit create warehouse --limit 3"),
    ("cli", "global-concurrency-limit create warehouse --limit 3"),
    ("cli", "global-concurrency-limit ls"),
    ("cli", "global-concurrency-limit inspect warehouse"),
    ("cli", "global-concurrency-limit update warehouse --limit 5 --slot-decay-per-second 0.5"),
    ("cli", "global-concurrency-limit disable warehouse"),
    ("cli", "global-concurrency-limit enable warehouse"),
    ("cli", "global-concurrency-limit inspect warehouse"),
    ("cli", "global-concurrency-limit inspect nope"),
    ("cli", "global-concurrency-limit delete warehouse"),
    ("cli", "global-concurrency-limit ls"),
    ("cli", "concurrency-limit create db 2"),
    ("cli", "concurrency-limit ls"),
    ("cli", "concurrency-limit inspect db"),
    ("cli", "concurrency-limit reset db"),
    ("cli", "concurrency-limit delete db"),
    ("cli", "concurrency-limit inspect db"),
    ("sdk", "create_logs", run_with_logs),
    ("cli", "flow-run logs {run}"),
    ("cli", "flow-run logs {run} --tail --num-logs 1"),
    ("sdk", "read_logs", read_logs),
    ("sdk", "resume_flow_run (not paused)", resume_running),
]
