"""`flow.serve()`: the deployment it registers, a run it picks up and executes, and its
schedule paused when it stops.

The serving process is a subprocess of the driver with a 1 s poll
(`PREFECT_RUNNER_POLL_FREQUENCY`); the scenario waits (bounded) for its deployment, runs
it with `run_deployment` (which waits for the run's final state), then stops the process
with SIGTERM and waits for it to exit. The schedule is a yearly cron, so no scheduled run
falls due while the scenario runs.
"""

import asyncio
import os
import signal
import subprocess
import sys
import tempfile

SERVED = '''
from prefect import flow


@flow(log_prints=True)
def greet(name: str = "world", times: int = 1):
    print(f"hello {name}")
    return name * times


if __name__ == "__main__":
    greet.serve(
        name="served",
        tags=["svc"],
        parameters={"times": 2},
        cron="0 0 1 1 *",
        description="Served by a process.",
        version="7",
    )
'''

_process: dict = {}


async def start_serving(client, saved):
    where = tempfile.mkdtemp(prefix="golden-serve-")
    with open(os.path.join(where, "served.py"), "w") as f:
        f.write(SERVED)
    env = dict(os.environ, PREFECT_RUNNER_POLL_FREQUENCY="1")
    log = open(os.path.join(where, "serve.log"), "w")
    _process["serve"] = subprocess.Popen(
        [sys.executable, "served.py"], cwd=where, env=env, stdout=log, stderr=log
    )
    _process["log"] = os.path.join(where, "serve.log")
    for _ in range(240):
        try:
            deployment = await client.read_deployment_by_name("greet/served")
            break
        except Exception:
            await asyncio.sleep(0.25)
    else:
        raise TimeoutError("flow.serve() registered no deployment in 60 s")
    saved["deployment"] = str(deployment.id)
    return {
        "name": deployment.name,
        "tags": deployment.tags,
        "parameters": deployment.parameters,
        "description": deployment.description,
        "version": deployment.version,
        "work_pool_name": deployment.work_pool_name,
        "work_queue_name": deployment.work_queue_name,
        "entrypoint": deployment.entrypoint,
        "path": deployment.path is not None,
        "paused": deployment.paused,
        "schedules": [(s.schedule.model_dump(mode="json"), s.active) for s in deployment.schedules],
    }


async def run_served(client, saved):
    from prefect.deployments.flow_runs import arun_deployment

    run = await arun_deployment(
        "greet/served",
        parameters={"name": "golden"},
        flow_run_name="served-run",
        timeout=120,
        poll_interval=1,
    )
    saved["run"] = str(run.id)
    states = await client.read_flow_run_states(run.id)
    return {
        "state": (run.state_type.value, run.state_name),
        "history": [(s.type.value, s.name) for s in states],
        "parameters": run.parameters,
        "tags": sorted(run.tags),
        "run_count": run.run_count,
        "work_pool_name": run.work_pool_name,
        "has_infrastructure_pid": run.infrastructure_pid is not None,
    }


async def stop_serving(client, saved):
    process = _process["serve"]
    process.send_signal(signal.SIGTERM)
    for _ in range(240):
        if process.poll() is not None:
            break
        await asyncio.sleep(0.25)
    else:
        process.kill()
        raise TimeoutError("flow.serve() did not stop within 60 s of SIGTERM")
    deployment = await client.read_deployment(saved["deployment"])
    return {
        "paused": deployment.paused,
        "schedules": [s.active for s in deployment.schedules],
    }


STEPS = [
    ("sdk", "flow.serve()", start_serving),
    ("cli", "deployment ls"),
    ("cli", "deployment schedule ls greet/served"),
    ("sdk", "run_deployment", run_served),
    ("cli", "flow-run ls --state-type COMPLETED"),
    ("sdk", "stop serving", stop_serving),
    ("cli", "deployment schedule ls greet/served"),
]
