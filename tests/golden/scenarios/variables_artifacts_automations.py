"""Variables, artifacts and automations with the CLI and the SDK (issue 9 §4)."""

from prefect.variables import Variable


async def set_and_get(client, saved):
    # Variable.set/get are sync-compatible; their async forms run in this loop.
    await Variable.aset("sdk_var", {"rows": 3, "on": True}, tags=["x"])
    got = await Variable.aget("sdk_var")
    missing = await Variable.aget("nope", default="fallback")
    await Variable.aset("sdk_var", [1, 2], overwrite=True)
    return {"got": got, "missing": missing, "after": await Variable.aget("sdk_var")}


async def overwrite_refused(client, saved):
    await Variable.aset("sdk_var", 5)


STEPS = [
    ("cli", "variable set region eu-west-1"),
    ("cli", "variable set region us-east-1"),
    ("cli", "variable set region us-east-1 --overwrite"),
    ("cli", "variable set limits '{{\"max\": 4}}' --tag ops"),
    ("cli", "variable get region"),
    ("cli", "variable get limits"),
    ("cli", "variable get nope"),
    ("cli", "variable ls"),
    ("cli", "variable inspect limits"),
    ("sdk", "Variable.set/get", set_and_get),
    ("sdk", "Variable.set without overwrite", overwrite_refused),
    ("cli", "variable unset region"),
    ("cli", "variable unset region"),
    ("cli", "variable ls"),
    ("cli", "artifact ls"),
    ("cli", "artifact inspect nope"),
    ("cli", "automation ls"),
]
