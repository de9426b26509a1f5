"""A run paused waiting for input and resumed with it (`pause_flow_run(wait_for_input=…)`,
`resume_flow_run(run_input=…)`), and a run paused through the API and resumed.

The paused flow runs in a thread of the driver (its engine polls every second); the
scenario waits (bounded) for it to pause, resumes it with an invalid then a valid input,
and waits for its final state.
"""

import asyncio
import threading
from datetime import timedelta

from prefect import flow
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput
from prefect.states import Paused, Running


class Approval(RunInput):
    approver: str
    rows: int = 10


@flow(name="gated", flow_run_name="gated-run", persist_result=False)
def gated():
    answer = pause_flow_run(
        wait_for_input=Approval, timeout=120, poll_interval=1, key="gate"
    )
    return f"{answer.approver}:{answer.rows}"


_thread: dict = {}


def _state_view(state):
    details = state.state_details
    return {
        "type": state.type.value,
        "name": state.name,
        "message": state.message,
        "pause_key": details.pause_key,
        "pause_reschedule": details.pause_reschedule,
        "has_pause_timeout": details.pause_timeout is not None,
        "run_input_keyset": details.run_input_keyset,
    }


async def start_gated(client, saved):
    def run():
        _thread["state"] = gated(return_state=True)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    _thread["thread"] = thread
    for _ in range(240):
        runs = await client.read_flow_runs(
            flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=["gated-run"]))
        )
        if runs and runs[0].state_type and runs[0].state_type.value == "PAUSED":
            saved["run"] = str(runs[0].id)
            return _state_view(runs[0].state)
        await asyncio.sleep(0.25)
    raise TimeoutError("the flow did not pause within 60 s")


async def read_schema(client, saved):
    schema = await client.read_flow_run_input(saved["run"], "paused-gate-schema")
    return schema


def resume_with(run_input):
    async def step(client, saved):
        result = await client.resume_flow_run(saved["run"], run_input=run_input)
        run = await client.read_flow_run(saved["run"])
        return {
            "status": result.status.value,
            "details": result.details.model_dump(mode="json"),
            "state": (run.state_type.value, run.state_name),
        }

    return step


async def finish(client, saved):
    thread = _thread["thread"]
    for _ in range(240):
        if not thread.is_alive():
            break
        await asyncio.sleep(0.25)
    else:
        raise TimeoutError("the resumed flow did not finish within 60 s")
    state = _thread["state"]
    states = await client.read_flow_run_states(saved["run"])
    response = await client.read_flow_run_input(saved["run"], "paused-gate-response")
    return {
        "final": (state.type.value, state.name),
        "result": await state.aresult(raise_on_failure=False),
        "history": [(s.type.value, s.name) for s in states],
        "response": response,
    }


async def pause_by_api(client, saved):
    flow_id = await client.create_flow_from_name("held")
    from prefect.client.schemas.actions import FlowRunCreate

    response = await client.request(
        "POST",
        "/flow_runs/",
        json=FlowRunCreate(flow_id=flow_id, name="held-run").model_dump(
            mode="json", exclude_unset=True
        ),
    )
    run_id = response.json()["id"]
    saved["held"] = run_id
    await client.set_flow_run_state(run_id, Running(), force=True)
    result = await client.set_flow_run_state(
        run_id, Paused(timeout_seconds=600, pause_key="api")
    )
    run = await client.read_flow_run(run_id)
    return {"status": result.status.value, "state": _state_view(run.state)}


def resume_held(run_input):
    async def step(client, saved):
        result = await client.resume_flow_run(saved["held"], run_input=run_input)
        run = await client.read_flow_run(saved["held"])
        return {
            "status": result.status.value,
            "details": result.details.model_dump(mode="json"),
            "state": _state_view(run.state),
        }

    return step


STEPS = [
    ("sdk", "pause_flow_run(wait_for_input=Approval)", start_gated),
    ("cli", "flow-run ls --state-type PAUSED"),
    ("sdk", "read_flow_run_input paused-gate-schema", read_schema),
    ("sdk", "resume_flow_run without input", resume_with(None)),
    ("sdk", "resume_flow_run invalid input", resume_with({"approver": "ana", "rows": "many"})),
    ("sdk", "resume_flow_run valid input", resume_with({"approver": "ana", "rows": 3})),
    ("sdk", "resumed run finishes", finish),
    ("sdk", "resume_flow_run finished run", resume_with({"approver": "bo"})),
    ("sdk", "pause by the API", pause_by_api),
    ("sdk", "resume_flow_run with input (no keyset)", resume_held({"approver": "cy"})),
    ("cli", "flow-run ls --state-type RUNNING"),
]
