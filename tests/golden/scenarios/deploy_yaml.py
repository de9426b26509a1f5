"""`prefect deploy` from a `prefect.yaml` (schedules, parameters, job variables, a work
queue), then the deployment it made with `deployment inspect`/`ls`/`schedule ls` and the
SDK, and a deployment with a concurrency limit: its `global_concurrency_limit` (the V2
limit named `deployment:<id>`) as the deployment and `/v2/concurrency_limits` show it.

The project (a flow file and its `prefect.yaml`) is written to a fresh directory the
driver moves into; its `pull` step names a fixed directory, so no temporary path reaches
the transcript. The pool is paused and the only active schedule is far in the future's
daily cron, so no server starts a run.
"""

import os
import tempfile

FLOW = '''
from prefect import flow


@flow(log_prints=True)
def etl(day: str = "monday", rows: int = 10):
    print(day, rows)
'''

PREFECT_YAML = '''
name: golden-project
prefect-version: 3.9.1
pull:
  - prefect.deployments.steps.set_working_directory:
      directory: /opt/flows
deployments:
  - name: nightly
    entrypoint: flows.py:etl
    description: The nightly load.
    version: "1.2"
    tags: [team-a, etl]
    parameters:
      day: friday
      rows: 500
    work_pool:
      name: yp
      work_queue_name: bulk
      job_variables:
        env:
          STAGE: prod
        working_dir: /opt/flows
    schedules:
      - cron: "0 6 * * 1-5"
        timezone: Europe/Paris
        active: true
      - interval: 3600
        anchor_date: "2031-01-01T00:00:00+00:00"
        active: false
  - name: limited
    entrypoint: flows.py:etl
    concurrency_limit: 2
    work_pool:
      name: yp
'''


async def write_project(client, saved):
    where = tempfile.mkdtemp(prefix="golden-deploy-")
    with open(os.path.join(where, "flows.py"), "w") as f:
        f.write(FLOW)
    with open(os.path.join(where, "prefect.yaml"), "w") as f:
        f.write(PREFECT_YAML)
    os.chdir(where)
    return sorted(os.listdir(where))


async def read_nightly(client, saved):
    deployment = await client.read_deployment_by_name("etl/nightly")
    saved["nightly"] = str(deployment.id)
    return {
        "parameters": deployment.parameters,
        "job_variables": deployment.job_variables,
        "work_pool_name": deployment.work_pool_name,
        "work_queue_name": deployment.work_queue_name,
        "tags": sorted(deployment.tags),
        "version": deployment.version,
        "description": deployment.description,
        "entrypoint": deployment.entrypoint,
        "pull_steps": deployment.pull_steps,
        "enforce_parameter_schema": deployment.enforce_parameter_schema,
        "parameter_openapi_schema": deployment.parameter_openapi_schema,
        "schedules": sorted(
            (
                type(s.schedule).__name__,
                s.active,
                s.schedule.model_dump(mode="json", exclude_none=True),
            )
            for s in deployment.schedules
        ),
        "concurrency_limit": deployment.concurrency_limit,
        "global_concurrency_limit": deployment.global_concurrency_limit,
    }


async def read_limited(client, saved):
    deployment = await client.read_deployment_by_name("etl/limited")
    saved["limited"] = str(deployment.id)
    return {
        "concurrency_limit": deployment.concurrency_limit,
        "concurrency_options": deployment.concurrency_options,
        "global_concurrency_limit": deployment.global_concurrency_limit,
    }


def _limit_view(limit):
    keep = ("name", "limit", "active", "active_slots", "slot_decay_per_second", "denied_slots")
    return {k: limit.get(k) for k in keep} if isinstance(limit, dict) else limit


async def v2_limits(client, saved):
    listed = await client.request("POST", "/v2/concurrency_limits/filter", json={})
    by_name = await client.request(
        "GET", f"/v2/concurrency_limits/deployment:{saved['limited']}"
    )
    return {
        "listed": sorted(
            (l["name"], l["limit"], l["active"], l["active_slots"]) for l in listed.json()
        ),
        "by_name": _limit_view(by_name.json()),
    }


async def update_deployment_limit(client, saved):
    await client.request(
        "PATCH", f"/deployments/{saved['limited']}", json={"concurrency_limit": 4}
    )
    deployment = await client.read_deployment(saved["limited"])
    return {
        "concurrency_limit": deployment.concurrency_limit,
        "global_concurrency_limit": _limit_view(
            deployment.global_concurrency_limit.model_dump(mode="json")
            if deployment.global_concurrency_limit
            else None
        ),
    }


STEPS = [
    ("cli", "work-pool create yp --type process --paused"),
    ("sdk", "write prefect.yaml", write_project),
    ("cli", "deploy -n nightly"),
    ("cli", "deploy -n limited"),
    ("cli", "deployment ls"),
    ("cli", "deployment inspect etl/nightly"),
    ("cli", "deployment schedule ls etl/nightly"),
    ("sdk", "read_deployment nightly", read_nightly),
    ("cli", "work-queue ls -p yp"),
    ("cli", "deploy -n nightly"),
    ("cli", "deployment schedule ls etl/nightly"),
    ("cli", "deploy -n missing"),
    ("sdk", "read_deployment limited", read_limited),
    ("cli", "deployment inspect etl/limited"),
    ("sdk", "v2 concurrency limits", v2_limits),
    ("sdk", "update concurrency_limit", update_deployment_limit),
    ("cli", "global-concurrency-limit ls"),
    ("cli", "global-concurrency-limit update deployment:{limited} --limit 7"),
    ("sdk", "read_deployment limited after the V2 update", read_limited),
    ("cli", "global-concurrency-limit delete deployment:{limited}"),
    ("sdk", "read_deployment limited after the V2 delete", read_limited),
    ("sdk", "update concurrency_limit again", update_deployment_limit),
    ("cli", "deployment delete etl/limited"),
    ("cli", "global-concurrency-limit ls"),
]
